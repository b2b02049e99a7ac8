"""The paper's AlpacaEval protocol over arrays: random ensembles, routers scored by a judge.

Guha et al. (2024) evaluate routing on AlpacaEval by drawing random ensembles of models
from a larger pool and comparing, per ensemble, the judge's mean score of the outputs each
method picks. This module runs that protocol on arrays (embeddings, judge scores, output
lengths); embedding text and reading files are the CLI's job.

Per ensemble, in order (the rows come from one `Split`, see `_split.py`):
  1. Inputs with a missing (NaN) score for any of the ensemble's models are dropped.
  2. Test-time: `n_labelled` of the remaining inputs are drawn at random as the labelled
     set; the rest are held out. EVERY method is scored on the same held-out inputs, so
     all numbers in a row of the table are comparable; the labelled inputs are never
     scored. Label-free methods (longest output, medoid, Smoothie) see all remaining
     inputs, labelled ones included, but never a score: Smoothie is transductive, as in
     the paper. Labelled methods read only the labelled inputs' scores to choose.
  3. Train-time: half the remaining inputs are past traffic (outputs known, never a
     score), the other half new queries, of which only the instruction is seen. Routers
     are fitted on the past and call one model per new query; labelled baselines read
     `n_labelled` scored past inputs. Everything is scored on the new queries.

Each row also gets its gap closure per ensemble, G = (routed - random) / (best single
- random): 0 is random, 1 matches the best single model (which takes labels to find);
see `EvaluationResult.gap_closure`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Real

from .. import _validate
from .._agreement import agreements
from .._batch import Batch, make_batch
from .._cost import net_of_cost
from .._fit_router import fit_recommended_router, fit_smoothie_router
from .._progress import Progress
from .._route import decide_auto
from .._search import Search
from .._signals import LEAVE_ONE_SET_OUT, RECOMMENDED, Recipe
from .._smoothie import fit_global, global_fit, local_fit
from ._baselines import labelled_scores
from ._names import (
    AGREEING_PAST,
    AUTO_ROUTER,
    AUTO_ROUTER_HELD_OUT,
    BEST_ON_VAL,
    BEST_SINGLE,
    GLOBAL,
    LABEL_FREE,
    LABELLED,
    LONGEST,
    LONGEST_PAST,
    MAJORITY,
    MEDOID,
    ORACLE,
    RANDOM,
    REFERENCE,
    ROUTER,
    ROUTER_HELD_OUT,
    SCALE,
    labelled_knn_name,
    local_name,
    router_name,
)
from ._result import EvaluationResult, MethodResult
from ._split import REGIMES, TEST_TIME, TRAIN_TIME, draw_ensembles, split_ensemble
from ._stats import chosen_mean, spearman

# Trade-offs of the cost frontier, in units of the router's standardised score per
# standard deviation of cost within the ensemble: 0 is quality only, 100 the cheapest.
FRONTIER_TRADEOFFS = (0.0, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 100.0)


def _check_table(name: str, x: object, n: int, m: int, *, allow_nan: bool) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.shape != (n, m):
        raise ValueError(
            f"{name} must have shape (n_samples, n_models) = ({n}, {m}) like the output "
            f"embeddings; got {x.shape}"
        )
    bad = ~np.isfinite(x) & ~(np.isnan(x) if allow_nan else False)
    if bad.any():
        allowed = "inf" if allow_nan else "NaN or inf"
        raise ValueError(f"{name} contains {allowed} values (at {np.argwhere(bad)[0].tolist()})")
    return x


def _ensemble_outputs(outputs: Array, rows: np.ndarray, models: np.ndarray) -> Array:
    # Two takes rather than one broadcast index: the slice stays on the device.
    return jnp.take(jnp.take(outputs, jnp.asarray(rows), axis=0), jnp.asarray(models), axis=1)


def _labelled_rows(
    record: Callable[[str, str, float], None],
    regime: str,
    x_lab: Array,
    x_scored: Array,
    lab_scores: np.ndarray,
    scored: np.ndarray,
    knn_k: int,
) -> None:
    """Best-on-Val and labelled kNN: choices from the labelled rows' scores alone."""
    best_on_val, local = labelled_scores(x_lab, x_scored, lab_scores, scored, knn_k)
    record(BEST_ON_VAL, regime, best_on_val)
    record(labelled_knn_name(knn_k), regime, local)


def _reference_rows(record: Callable[[str, str, float], None], regime: str, s: np.ndarray) -> None:
    means = s.mean(axis=0)
    record(RANDOM, regime, SCALE * float(means.mean()))
    record(BEST_SINGLE, regime, SCALE * float(means.max()))
    record(ORACLE, regime, SCALE * float(s.max(axis=1).mean()))


def evaluate(
    outputs: Float[_validate.ArrayLike, "n_samples n_models dim"],
    inputs: Float[_validate.ArrayLike, "n_samples input_dim"],
    scores: Float[np.ndarray, "n_samples n_models"],
    lengths: Real[np.ndarray, "n_samples n_models"],
    models: Sequence[str],
    *,
    ensembles: int = 10,
    size: int = 5,
    seed: int = 0,
    ks: Sequence[int] = (5, 20, 50),
    n_labelled: int = 50,
    knn_labelled_k: int = 20,
    router_k: int = 20,
    progress: bool = False,
    observed: np.ndarray | None = None,
    costs: Sequence[float] | None = None,
    search: str | Search = "exact",
    answers: np.ndarray | None = None,
    recipe: Recipe = RECOMMENDED,
    held_out_recipe: Recipe | None = None,
) -> EvaluationResult:
    """Runs the paper's AlpacaEval routing protocol on random ensembles, in both regimes.

    For each of `ensembles` random ensembles of `size` distinct models (see
    `draw_ensembles`), every method chooses one of the ensemble's outputs per input and is
    scored by SCALE x the mean judge score of its choices, on the rows of the ensemble's
    `Split` (`split_ensemble`). Methods, test-time:

    - reference (read scored labels; bounds, not routers): random (the expected score of
      a uniform choice), best single model, per-input oracle (best output per input);
    - label-free (no scores read): longest output (ties: lower model index), embedding
      medoid (Smoothie-Local with k=1: minimum Bayes risk selection), Smoothie-Global,
      Smoothie-Local for each k in `ks` (k clipped to the ensemble's input count), and
      `sj.route`, the recommended router;
    - labelled (read only the labelled inputs' scores): Best-on-Val (the model with the
      best labelled mean), labelled kNN (per scored input, the model with the best mean
      score over its `knn_labelled_k` nearest labelled inputs); a tie of label means
      scores as a uniformly random pick among the tied (`tied_best`).

    Train-time (fit on past traffic, one model per new query from its input alone): the
    same reference rows on the new queries; label-free: the model with the longest past
    outputs on average, Smoothie-Global fitted on the past, the paper's router
    (`fit_router`, k = `router_k`) and the recommended `fit_router(method="auto")`;
    labelled: Best-on-Val and labelled kNN on `n_labelled` scored past inputs.

    Args:
        outputs: embedding of each model's output for each input.
        inputs: embedding of each input (neighbours for Smoothie-Local and labelled kNN).
        scores: judge score of each output, higher is better; NaN where missing.
        lengths: length of each output (e.g. in characters), for the length signals.
        models: one name per model (column).
        ensembles: ensembles to draw (ignored when size == n_models: one ensemble).
        size: models per ensemble, 3 <= size <= n_models.
        seed: seed of the ensemble draws and of the splits.
        ks: Smoothie-Local neighbourhood sizes, each >= 1.
        n_labelled: labelled inputs per ensemble; 0 drops the labelled baselines (and
            every kept input is held out).
        knn_labelled_k: labelled neighbours per scored input (clipped to n_labelled;
            the row is named by the k used).
        router_k: neighbours of the train-time routers.
        observed: True where model j answered input i; an unanswered output counts as
            a missing score (its input is dropped from the ensembles holding the model).
        costs: cost of one call to each model (any unit, >= 0), for the train-time
            quality-cost frontier: per new query, the recommended router's choice of
            argmax(score - tradeoff x standardised cost) (`FRONTIER_TRADEOFFS`).
        answers: integer codes of each output's final answer (`data.answer_codes`) for
            exact-answer tasks: the recommended routers vote on them, and the rows
            "majority vote (answers)" and "most agreeing past model (answers)" join.
        recipe: the recommended router's constants (`Recipe`; the shipped ones).
        held_out_recipe: the constants chosen without this data set (for a dev set, its
            leave-one-set-out fold's: `held_out_recipe`); adds the rows
            "... (recommended), leave-one-set-out" in both regimes.
        search: neighbour search of Smoothie-Local and the train-time routers: "exact"
            (default), "approximate" or a `Search` (see `knn`).
        progress: show a tqdm bar over ensembles (needs tqdm).

    Returns:
        An `EvaluationResult`; `str(result)` is the table.

    Raises:
        ValueError: on bad shapes or arguments, before any work; or when an ensemble keeps
            too few inputs with every score present for its splits.

    References:
        Guha et al., "Smoothie: Label Free Language Model Routing", NeurIPS 2024.

    >>> import jax
    >>> x = jax.random.normal(jax.random.key(0), (60, 4, 8))
    >>> s = np.asarray(jax.random.uniform(jax.random.key(1), (60, 4)))
    >>> r = evaluate(x, x[:, 0], s, np.ones((60, 4)), "abcd", size=3, ks=(5,), n_labelled=10)
    >>> [row.name for row in r.methods if row.kind == "labelled"][:2]
    ['Best-on-Val', 'labelled kNN k=10']
    """
    outputs = _validate.check_embeddings(outputs)
    n, m, _ = outputs.shape
    inputs = _validate.check_inputs(inputs, n)
    scores = _check_table("scores", scores, n, m, allow_nan=True)
    if observed is not None:
        observed = np.asarray(observed)
        if observed.dtype != bool or observed.shape != (n, m):
            raise ValueError(f"observed must be a bool array of shape {(n, m)}")
        scores = np.where(observed, scores, np.nan)
    lengths = _check_table("lengths", lengths, n, m, allow_nan=False)
    if answers is not None:
        answers = np.asarray(_validate.check_answers(answers, (n, m)))
    models = tuple(str(name) for name in models)
    if len(models) != m:
        raise ValueError(f"models has {len(models)} names for {m} models (axis 1 of outputs)")
    if len(set(models)) != m:
        raise ValueError(f"model names must be unique (they key the results), got {models}")
    size = _validate.check_int("size", size, _validate.MIN_MODELS, m)
    n_ensembles = _validate.check_int("ensembles", ensembles, 1)
    seed = _validate.check_int("seed", seed, 0)
    ks = tuple(
        dict.fromkeys(_validate.check_int("k in ks", k, 1) for k in ks)
    )  # dedupe, keep order
    n_labelled = _validate.check_int("n_labelled", n_labelled, 0, n - 1)
    knn_labelled_k = _validate.check_int("knn_labelled_k", knn_labelled_k, 1)
    router_k = _validate.check_int("router_k", router_k, 1)
    if costs is not None:
        costs = np.asarray(costs, np.float64)
        if costs.shape != (m,) or not np.all(np.isfinite(costs)) or np.any(costs < 0):
            raise ValueError(f"costs must be {m} finite numbers >= 0, one per model")

    spec = Search.parse(search)
    drawn = draw_ensembles(m, ensembles=n_ensembles, size=size, seed=seed)
    notes: list[str] = []
    if size == m and n_ensembles > 1:
        notes.append(f"size == n_models: the full set, evaluated once (not {n_ensembles} times).")
    knn_k = min(knn_labelled_k, n_labelled)
    if n_labelled and knn_k < knn_labelled_k:
        notes.append(f"labelled kNN k={knn_labelled_k} clipped to n_labelled={n_labelled}.")
    # Every split is drawn (and checked) before any fit: a bad file fails at once.
    splits = tuple(
        split_ensemble(scores, ens, e=e, seed=seed, n_labelled=n_labelled)
        for e, ens in enumerate(drawn)
    )

    values: dict[tuple[str, str], list[float]] = {}  # (method, regime) -> per ensemble
    kinds: dict[str, str] = {}
    clipped: set[tuple[int, int]] = set()  # (requested k, ensemble)
    weights_rows: list[tuple[float, ...]] = []
    choices: list[int] = []
    bests: list[int] = []
    picked: list[bool] = []
    correlations: list[float] = []
    frontier: list[list[tuple[float, float]]] = []

    def record(name: str, regime: str, value: float, kind: str = LABEL_FREE) -> None:
        values.setdefault((name, regime), []).append(value)
        kinds.setdefault(name, kind)

    def reference(name: str, regime: str, value: float) -> None:
        record(name, regime, value, REFERENCE)

    def labelled(name: str, regime: str, value: float) -> None:
        record(name, regime, value, LABELLED)

    with Progress(len(splits), "ensembles", enabled=progress, unit="ensemble") as bar:
        for e, split in bar.track(enumerate(splits)):
            ens = np.asarray(split.models)
            kept = split.kept
            # Positions into `kept`: Smoothie's per-input routes (fitted on kept) index directly.
            held_pos = np.searchsorted(kept, split.held_out)
            held = scores[split.held_out][:, ens]
            held_means = held.mean(axis=0)

            _reference_rows(reference, TEST_TIME, held)
            record(
                LONGEST, TEST_TIME, chosen_mean(held, np.argmax(lengths[split.held_out][:, ens], 1))
            )
            codes = None if answers is None else answers[kept][:, ens]
            # One batch per ensemble: D is computed once for every method below.
            batch = make_batch(
                _ensemble_outputs(outputs, kept, ens),
                jnp.take(inputs, jnp.asarray(kept), axis=0),
                lengths=lengths[kept][:, ens],
                answers=codes,
            )
            x = batch.inputs
            medoid = _local_route(batch, 1, Search())
            record(MEDOID, TEST_TIME, chosen_mean(held, medoid[held_pos]))
            smoothie = global_fit(batch)
            choice = int(smoothie.route())
            record(GLOBAL, TEST_TIME, SCALE * float(held_means[choice]))
            for k in ks:
                k_eff = min(k, kept.size)
                if k_eff < k:
                    clipped.add((k, e))
                local = _local_route(batch, k_eff, spec)
                record(local_name(k), TEST_TIME, chosen_mean(held, local[held_pos]))
            for name, r in ((ROUTER, recipe), (ROUTER_HELD_OUT, held_out_recipe)):
                if r is not None:
                    decision = decide_auto(batch, recipe=r)  # the test reports; it never decides
                    record(
                        name, TEST_TIME, chosen_mean(held, np.asarray(decision.choice)[held_pos])
                    )
            if codes is not None:
                record(MAJORITY, TEST_TIME, chosen_mean(held, _majority(codes)[held_pos]))
            lab_pos = np.searchsorted(kept, split.labelled)
            if n_labelled:
                _labelled_rows(
                    labelled,
                    TEST_TIME,
                    jnp.take(x, jnp.asarray(lab_pos), axis=0),
                    jnp.take(x, jnp.asarray(held_pos), axis=0),
                    scores[split.labelled][:, ens],
                    held,
                    knn_k,
                )

            # Train-time: past outputs only; the new queries are seen by their inputs alone.
            new = scores[split.new][:, ens]
            past_codes = None if answers is None else answers[split.past][:, ens]
            past = make_batch(
                _ensemble_outputs(outputs, split.past, ens),
                jnp.take(inputs, jnp.asarray(split.past), axis=0),
                lengths=lengths[split.past][:, ens],
                answers=past_codes,
            )
            past_x = past.inputs
            new_x = jnp.take(inputs, jnp.asarray(split.new), axis=0)
            new_means = new.mean(axis=0)
            _reference_rows(reference, TRAIN_TIME, new)
            longest_past = np.argmax(np.asarray(past.lengths).mean(0))
            record(LONGEST_PAST, TRAIN_TIME, SCALE * float(new_means[longest_past]))
            record(GLOBAL, TRAIN_TIME, SCALE * float(new_means[int(global_fit(past).route())]))
            k_router = min(router_k, split.past.size)
            index = spec.index(past_x)  # the past inputs, searched by every router below
            paper = fit_smoothie_router(past, index, k=k_router)
            record(
                router_name(router_k), TRAIN_TIME, chosen_mean(new, np.asarray(paper.route(new_x)))
            )
            auto = fit_recommended_router(past, index, k=k_router, recipe=recipe)
            record(AUTO_ROUTER, TRAIN_TIME, chosen_mean(new, np.asarray(auto.route(new_x))))
            if held_out_recipe is not None:
                held_router = fit_recommended_router(
                    past, index, k=k_router, recipe=held_out_recipe
                )
                route_new = np.asarray(held_router.route(new_x))
                record(AUTO_ROUTER_HELD_OUT, TRAIN_TIME, chosen_mean(new, route_new))
            if past_codes is not None:
                agreeing = np.asarray(agreements(past_codes)).sum(axis=(0, 2))
                record(AGREEING_PAST, TRAIN_TIME, SCALE * float(new_means[np.argmax(agreeing)]))
            if costs is not None:
                frontier.append(_frontier(np.asarray(auto.scores(new_x)), costs[ens], new))
            past_lab_pos = np.searchsorted(split.past, split.past_labelled)
            if n_labelled:
                _labelled_rows(
                    labelled,
                    TRAIN_TIME,
                    jnp.take(past_x, jnp.asarray(past_lab_pos), axis=0),
                    new_x,
                    scores[split.past_labelled][:, ens],
                    new,
                    knn_k,
                )

            weights = np.asarray(smoothie.weights, dtype=np.float64)
            weights_rows.append(tuple(float(w) for w in weights))
            choices.append(int(ens[choice]))
            bests.append(int(ens[np.argmax(held_means)]))
            # A tie with the best held-out mean counts as picking the best.
            picked.append(bool(held_means[choice] == held_means.max()))
            correlations.append(spearman(weights, held_means))

    for k in sorted({k for k, _ in clipped}):
        where = sorted(e for kk, e in clipped if kk == k)
        notes.append(
            f"Smoothie-Local k={k} clipped to the ensemble's input count in ensembles {where}."
        )
    dropped = [n - split.kept.size for split in splits]
    if any(dropped):
        notes.append(f"Inputs dropped for a missing score, per ensemble: {dropped}.")

    methods = tuple(
        MethodResult(name, kinds[name], tuple(v), regime)
        for regime in REGIMES
        for (name, r), v in values.items()
        if r == regime
    )

    # One fit on every model and input for the per-model figure: Smoothie reads no scores.
    all_weights = np.asarray(fit_global(outputs).weights, dtype=np.float64)
    counts = np.sum(~np.isnan(scores), axis=0)
    sums = np.nansum(scores, axis=0)
    model_scores = np.where(counts > 0, SCALE * sums / np.maximum(counts, 1), np.nan)

    return EvaluationResult(
        models=models,
        n_inputs=n,
        size=size,
        seed=seed,
        n_labelled=n_labelled,
        ks=ks,
        knn_labelled_k=knn_labelled_k,
        splits=splits,
        methods=methods,
        global_weights=tuple(weights_rows),
        global_choice=tuple(choices),
        best_model=tuple(bests),
        global_is_best=tuple(picked),
        spearman=tuple(correlations),
        model_weights=tuple(float(w) for w in all_weights),
        model_scores=tuple(float(s) for s in model_scores),
        notes=tuple(notes),
        frontier=tuple(
            (t, float(c), float(q))
            for t, (c, q) in zip(FRONTIER_TRADEOFFS, np.mean(frontier, axis=0).tolist())
        )
        if frontier
        else (),
    )


def held_out_recipe(data_path: str | Path) -> tuple[Recipe, str]:
    """The recommended router's constants chosen without this data set, and a note.

    For one of the four dev sets (by file name) it is the constant its leave-one-set-out
    fold chose on the other three (`benchmarks/router_dev.py`); for any other file the
    shipped constant, which was chosen on the dev sets alone.

    >>> held_out_recipe("data/alpaca_eval_v1_dev.jsonl.gz")[0].sharpness
    6.0
    """
    stem = Path(data_path).name.split(".")[0]
    if stem in LEAVE_ONE_SET_OUT:
        recipe = LEAVE_ONE_SET_OUT[stem]
        return recipe, (
            f"{stem} is a dev set: its leave-one-set-out rows use the constant chosen on the "
            f"other three ({recipe}); the recommended rows use the shipped one (chosen on all "
            "four)."
        )
    return RECOMMENDED, (
        "the recommended router's constant was chosen on the four dev sets, none of which "
        "is this file: its rows are leave-one-set-out figures already (repeated as such)."
    )


def _local_route(batch: Batch, k: int, search: Search) -> np.ndarray:
    """Smoothie-Local's route of every input of a validated batch."""
    return np.asarray(local_fit(batch, k=k, search=search).route())


def _majority(codes: np.ndarray) -> np.ndarray:
    """Per input, the first model giving the most common final answer (majority vote)."""
    return np.argmax(np.asarray(agreements(codes)).sum(axis=-1), axis=1)


def _frontier(score: np.ndarray, cost: np.ndarray, scores: np.ndarray) -> list[tuple[float, float]]:
    """(mean cost, SCALE x mean score) of argmax(score - t x z(cost)) for each trade-off."""
    sd = float(np.std(cost))
    z = (cost - cost.mean()) / (sd if sd > 0 else 1.0)
    out = []
    for t in FRONTIER_TRADEOFFS:
        choice = np.argmax(net_of_cost(score, z, t), axis=1)
        out.append((float(cost[choice].mean()), chosen_mean(scores, choice)))
    return out

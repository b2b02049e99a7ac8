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
- random): 0 is random, 1 matches the best single model (which takes labels to find).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .. import _validate
from .._route import route
from .._router import fit_router
from .._search import Search, knn
from .._smoothie import fit_global, fit_local
from ._report import json_safe
from ._split import REGIMES, TEST_TIME, TRAIN_TIME, Split, draw_ensembles, split_ensemble

SCALE = 100.0  # scores are reported x100: a win probability becomes a win rate in percent

REFERENCE, LABEL_FREE, LABELLED = "reference", "label-free", "labelled"
RANDOM = "random (expected)"
BEST_SINGLE = "best single model (all labels)"
ORACLE = "per-input oracle"
LONGEST = "longest output"
LONGEST_PAST = "longest past outputs"
MEDOID = "embedding medoid (MBR)"
GLOBAL = "Smoothie-Global"
ROUTER = "sj.route (recommended)"
AUTO_ROUTER = "sj.fit_router auto (recommended)"
BEST_ON_VAL = "Best-on-Val"
# Trade-offs of the cost frontier, in units of the router's standardised score per
# standard deviation of cost within the ensemble: 0 is quality only, 100 the cheapest.
FRONTIER_TRADEOFFS = (0.0, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 100.0)


def local_name(k: int) -> str:
    """Row name of Smoothie-Local with `k` neighbours (the requested k, before clipping)."""
    return f"Smoothie-Local k={k}"


def router_name(k: int) -> str:
    """Row name of the paper's train-time router with `k` neighbours."""
    return f"Smoothie router k={k}"


def labelled_knn_name(k: int) -> str:
    """Row name of the labelled kNN baseline with `k` labelled neighbours."""
    return f"labelled kNN k={k}"


@dataclasses.dataclass(frozen=True)
class MethodResult:
    """One method's routed score (x100) in each ensemble, in one regime.

    Attributes:
        name: row name, e.g. "Smoothie-Global".
        kind: "reference" (uses scored labels: bounds, not routers), "label-free" or
            "labelled" (uses the labelled inputs' scores).
        per_ensemble: 100 x mean score of the chosen outputs, one per ensemble.
        regime: "test-time" (scored on held-out inputs) or "train-time" (on new queries).
    """

    name: str
    kind: str
    per_ensemble: tuple[float, ...]
    regime: str = TEST_TIME

    @property
    def mean(self) -> float:
        return float(np.mean(self.per_ensemble))

    @property
    def std(self) -> float:
        """Sample standard deviation over ensembles (0 for a single ensemble)."""
        values = np.asarray(self.per_ensemble)
        return float(np.std(values, ddof=1)) if values.size > 1 else 0.0


@dataclasses.dataclass(frozen=True)
class EvaluationResult:
    """Everything `evaluate` measured, with the rows needed to recompute any number.

    Model indices refer to the columns of the arrays passed to `evaluate`; input indices
    to their rows.

    Attributes:
        models: model names, one per column.
        n_inputs: rows of the arrays passed in.
        size: models per ensemble.
        seed: seed of every random draw.
        n_labelled: labelled inputs per ensemble.
        ks: Smoothie-Local neighbourhood sizes requested.
        knn_labelled_k: neighbours of the labelled kNN baseline requested.
        splits: per ensemble, its models and rows (`Split`).
        methods: one row per method and regime, in table order.
        global_weights: per ensemble, test-time Smoothie-Global's normalised weight of
            each of the ensemble's models (in the order of its models).
        global_choice: per ensemble, the model test-time Smoothie-Global routes to.
        best_model: per ensemble, the model with the best held-out mean (lowest index on
            ties).
        global_is_best: per ensemble, whether Smoothie-Global's model has the best
            held-out mean (ties count as best).
        spearman: per ensemble, Spearman correlation of Smoothie-Global's weights with the
            models' held-out mean scores (NaN where either is constant).
        model_weights: Smoothie-Global weight of each model from one fit on all models and
            all inputs (NaN-score inputs included: Smoothie reads no scores).
        model_scores: 100 x each model's mean score over the inputs it has a score for.
        notes: anything the numbers depend on beyond the arguments (clipped k, ...).
        frontier: with `costs`, the train-time quality-cost frontier of the recommended
            router: (tradeoff, mean cost per call, mean score x100) averaged over
            ensembles, for each tradeoff of FRONTIER_TRADEOFFS.
    """

    models: tuple[str, ...]
    n_inputs: int
    size: int
    seed: int
    n_labelled: int
    ks: tuple[int, ...]
    knn_labelled_k: int
    splits: tuple[Split, ...]
    methods: tuple[MethodResult, ...]
    global_weights: tuple[tuple[float, ...], ...]
    global_choice: tuple[int, ...]
    best_model: tuple[int, ...]
    global_is_best: tuple[bool, ...]
    spearman: tuple[float, ...]
    model_weights: tuple[float, ...]
    model_scores: tuple[float, ...]
    notes: tuple[str, ...] = ()
    frontier: tuple[tuple[float, float, float], ...] = ()

    @property
    def ensembles(self) -> tuple[tuple[int, ...], ...]:
        """The model indices of each ensemble."""
        return tuple(split.models for split in self.splits)

    @property
    def labelled(self) -> tuple[tuple[int, ...], ...]:
        """Per ensemble, the test-time labelled inputs."""
        return tuple(tuple(int(i) for i in split.labelled) for split in self.splits)

    @property
    def evaluated(self) -> tuple[tuple[int, ...], ...]:
        """Per ensemble, the test-time held-out inputs every method is scored on."""
        return tuple(tuple(int(i) for i in split.held_out) for split in self.splits)

    def method(self, name: str, regime: str = TEST_TIME) -> MethodResult:
        """The row called `name` in `regime`; KeyError listing the rows if there is none."""
        for row in self.methods:
            if row.name == name and row.regime == regime:
                return row
        raise KeyError(
            f"no method {name!r} at {regime}; methods: "
            f"{[(row.name, row.regime) for row in self.methods]}"
        )

    def with_rows(self, rows: Iterable[MethodResult]) -> EvaluationResult:
        """A copy with `rows` added after the existing rows of their regime.

        Rows must have one value per ensemble of this result, scored on its splits'
        rows (`held_out` at test time, `new` at train time): that is what makes them
        comparable with the rest of the table.
        """
        rows = tuple(rows)
        for row in rows:
            if len(row.per_ensemble) != len(self.splits):
                raise ValueError(
                    f"row {row.name!r} has {len(row.per_ensemble)} values for "
                    f"{len(self.splits)} ensembles"
                )
            if row.regime not in REGIMES:
                raise ValueError(f"row {row.name!r} has an unknown regime {row.regime!r}")
        ordered = [r for regime in REGIMES for r in (*self.methods, *rows) if r.regime == regime]
        return dataclasses.replace(self, methods=tuple(ordered))

    def gap_closure(self, name: str, regime: str = TEST_TIME) -> tuple[float, ...]:
        """Per ensemble, G = (score - random) / (best single - random); NaN where the
        best single model is no better than random (every model equally good)."""
        score = np.asarray(self.method(name, regime).per_ensemble)
        low = np.asarray(self.method(RANDOM, regime).per_ensemble)
        high = np.asarray(self.method(BEST_SINGLE, regime).per_ensemble)
        span = high - low
        gap = np.where(span > 1e-12, (score - low) / np.where(span > 1e-12, span, 1.0), np.nan)
        return tuple(float(g) for g in gap)

    def below_random(self, name: str, regime: str = TEST_TIME) -> int:
        """In how many ensembles the row scores below random (by more than 1e-9)."""
        score = np.asarray(self.method(name, regime).per_ensemble)
        low = np.asarray(self.method(RANDOM, regime).per_ensemble)
        return int(np.sum(score < low - 1e-9))

    @property
    def picked_best(self) -> int:
        """In how many ensembles Smoothie-Global chose a model with the best held-out mean."""
        return sum(self.global_is_best)

    @property
    def mean_spearman(self) -> float:
        """Mean of the finite per-ensemble Spearman correlations (NaN if there are none)."""
        finite = [s for s in self.spearman if math.isfinite(s)]
        return float(np.mean(finite)) if finite else math.nan

    def _row_json(self, row: MethodResult) -> dict[str, Any]:
        gap = self.gap_closure(row.name, row.regime)
        return {
            "name": row.name,
            "kind": row.kind,
            "regime": row.regime,
            "mean": row.mean,
            "std": row.std,
            "per_ensemble": list(row.per_ensemble),
            "gap_closure": _nanmean(gap),
            "gap_closure_min": _nanmin(gap),
            "gap_closure_per_ensemble": list(gap),
            "below_random": self.below_random(row.name, row.regime),
        }

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (NaN becomes None): configuration, table, per-ensemble detail."""
        return json_safe(
            {
                "protocol": _protocol_line(self),
                "models": list(self.models),
                "n_inputs": self.n_inputs,
                "size": self.size,
                "seed": self.seed,
                "n_labelled": self.n_labelled,
                "ks": list(self.ks),
                "knn_labelled_k": self.knn_labelled_k,
                "score_scale": SCALE,
                "methods": [self._row_json(row) for row in self.methods],
                "smoothie_global_picked_best": self.picked_best,
                "mean_spearman": self.mean_spearman,
                "ensembles": [
                    {
                        "models": [self.models[i] for i in split.models],
                        "model_indices": list(split.models),
                        "global_weights": list(self.global_weights[e]),
                        "global_choice": self.models[self.global_choice[e]],
                        "best_model": self.models[self.best_model[e]],
                        "spearman": self.spearman[e],
                        "labelled": split.labelled.tolist(),
                        "evaluated": split.held_out.tolist(),
                        "past": split.past.tolist(),
                        "new": split.new.tolist(),
                        "past_labelled": split.past_labelled.tolist(),
                    }
                    for e, split in enumerate(self.splits)
                ],
                "all_models": {
                    name: {"global_weight": w, "mean_score": s}
                    for name, w, s in zip(
                        self.models, self.model_weights, self.model_scores, strict=True
                    )
                },
                "notes": list(self.notes),
                "train_time_cost_frontier": [
                    {"tradeoff": t, "mean_cost": c, "mean_score": q} for t, c, q in self.frontier
                ],
            }
        )

    def to_text(self, *, per_ensemble: bool = False) -> str:
        """The results table as plain text, one section per regime, with the protocol.

        Args:
            per_ensemble: add one column per ensemble.
        """
        rows = self.methods
        name_w = max(len("method"), *(len(r.name) for r in rows))
        kind_w = max(len("kind"), *(len(r.kind) for r in rows))
        head = f"{'method':<{name_w}}  {'kind':<{kind_w}}  {'mean':>6}  {'sd':>5}"
        head += f"  {'min':>6}  {'max':>6}  {'G':>5}  {'min G':>6}  {'below':>5}"
        if per_ensemble:
            head += "".join(f"  {f'e{e}':>6}" for e in range(len(self.splits)))
        rule = "  ".join("-" * w for w in (name_w, kind_w, 6, 5, 6, 6, 5, 6, 5))
        if per_ensemble:
            rule += "  " + "  ".join("-" * 6 for _ in self.splits)
        lines = [
            _protocol_line(self),
            f"Score: {SCALE:g} x mean judge score of the chosen output (higher is better). "
            "G: gap closure (routed - random) / (best single - random), mean and min over "
            "ensembles; below: ensembles under random.",
        ]
        for regime in REGIMES:
            regime_rows = [r for r in rows if r.regime == regime]
            if not regime_rows:
                continue
            where = (
                "scored on held-out inputs"
                if regime == TEST_TIME
                else "fitted on past traffic, one model called per new query, scored on those"
            )
            lines += ["", f"{regime} ({where}):", head, rule]
            for r in regime_rows:
                values = r.per_ensemble
                gap = self.gap_closure(r.name, r.regime)
                line = f"{r.name:<{name_w}}  {r.kind:<{kind_w}}  {r.mean:6.1f}  {r.std:5.1f}"
                line += f"  {min(values):6.1f}  {max(values):6.1f}"
                line += f"  {_nanmean(gap):5.2f}  {_nanmin(gap):6.2f}"
                line += f"  {self.below_random(r.name, r.regime):>5d}"
                if per_ensemble:
                    line += "".join(f"  {v:6.1f}" for v in values)
                lines.append(line)
        n_eval = sorted({len(split.held_out) for split in self.splits})
        n_eval_text = str(n_eval[0]) if len(n_eval) == 1 else f"{n_eval[0]}-{n_eval[-1]}"
        n_new = sorted({len(split.new) for split in self.splits})
        n_new_text = str(n_new[0]) if len(n_new) == 1 else f"{n_new[0]}-{n_new[-1]}"
        unscored = (
            f"; the {self.n_labelled} labelled inputs are never scored" if self.n_labelled else ""
        )
        lines += [
            "",
            f"Within each ensemble every method is scored on the same inputs: {n_eval_text} "
            f"held-out (test-time{unscored}), {n_new_text} new queries (train-time).",
            f"Smoothie-Global picked the ensemble's best model in {self.picked_best} of "
            f"{len(self.splits)} ensembles.",
            f"Spearman(Smoothie-Global weights, held-out mean scores): mean "
            f"{self.mean_spearman:.2f} over {len(self.splits)} ensembles.",
        ]
        lines += [f"Note: {note}" for note in self.notes]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_text()


def _nanmean(x: Sequence[float]) -> float:
    finite = [v for v in x if math.isfinite(v)]
    return float(np.mean(finite)) if finite else math.nan


def _nanmin(x: Sequence[float]) -> float:
    finite = [v for v in x if math.isfinite(v)]
    return float(np.min(finite)) if finite else math.nan


def _protocol_line(result: EvaluationResult) -> str:
    return (
        f"{len(result.splits)} random ensembles of {result.size} of {len(result.models)} "
        f"models (seed {result.seed}), {result.n_inputs} inputs, {result.n_labelled} "
        "labelled inputs each for the labelled baselines."
    )


def _ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties given their average rank (as scipy.stats.rankdata does)."""
    order = np.argsort(x, kind="stable")
    sorted_x = x[order]
    starts_group = np.concatenate([[True], sorted_x[1:] != sorted_x[:-1]])
    group = np.cumsum(starts_group) - 1
    starts = np.flatnonzero(starts_group)
    ends = np.append(starts[1:], x.size)
    ranks = np.empty(x.size)
    ranks[order] = ((starts + ends - 1) / 2 + 1)[group]
    return ranks


def spearman(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    """Spearman rank correlation (ties: average ranks); NaN if either input is constant.

    >>> spearman([1.0, 2.0, 3.0], [10.0, 30.0, 20.0])
    0.5
    """
    rx = _ranks(np.asarray(x, dtype=np.float64))
    ry = _ranks(np.asarray(y, dtype=np.float64))
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denom = math.sqrt(float(np.sum(rx * rx) * np.sum(ry * ry)))
    return float(np.sum(rx * ry) / denom) if denom > 0 else math.nan


def _check_int(name: str, value: object, low: int, high: float = math.inf) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an int, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be in [{low}, {high}], got {value}")
    return int(value)


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


def _chosen_mean(scores: np.ndarray, route: np.ndarray) -> float:
    """SCALE x mean over inputs of the score of the routed model."""
    return SCALE * float(np.mean(np.take_along_axis(scores, route[:, None], axis=1)))


def _progress(items: Iterable[Any], total: int, enabled: bool) -> Iterable[Any]:
    if not enabled:
        return items
    try:
        from tqdm.auto import tqdm
    except ImportError as error:
        raise ImportError("progress=True needs tqdm: pip install tqdm") from error
    return tqdm(items, total=total, desc="ensembles", unit="ensemble")


def tied_best(values: np.ndarray) -> np.ndarray:
    """Weights of a pick of the maximum along the last axis, split evenly over ties.

    A labelled baseline whose label means tie (frequent with a few 0 / 0.5 / 1 verdicts)
    is scored as a uniformly random pick among the tied, in expectation. argmax's
    first-column rule would read the file's column order instead, and published results
    often list models by rank (both AlpacaEval dev files nearly do).
    """
    top = values >= np.max(values, axis=-1, keepdims=True)
    return top / np.sum(top, axis=-1, keepdims=True)


def labelled_scores(
    x_lab: Array, x_scored: Array, lab_scores: np.ndarray, scored: np.ndarray, knn_k: int
) -> tuple[float, float]:
    """SCALE x the held-out score of Best-on-Val and of labelled kNN (ties split evenly)."""
    best_on_val = float(tied_best(lab_scores.mean(axis=0)) @ scored.mean(axis=0))
    neighbours = np.asarray(knn(x_scored, x_lab, min(knn_k, len(lab_scores))))
    local = tied_best(lab_scores[neighbours].mean(axis=1))
    return SCALE * best_on_val, SCALE * float(np.mean(np.sum(local * scored, axis=1)))


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
    outputs: Float[Array, "n_samples n_models dim"],
    inputs: Float[Array, "n_samples input_dim"],
    scores: Float[np.ndarray, "n_samples n_models"],
    lengths: Float[np.ndarray, "n_samples n_models"],
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
    models = tuple(str(name) for name in models)
    if len(models) != m:
        raise ValueError(f"models has {len(models)} names for {m} models (axis 1 of outputs)")
    if len(set(models)) != m:
        raise ValueError(f"model names must be unique (they key the results), got {models}")
    size = _check_int("size", size, _validate.MIN_MODELS, m)
    n_ensembles = _check_int("ensembles", ensembles, 1)
    seed = _check_int("seed", seed, 0)
    ks = tuple(dict.fromkeys(_check_int("k in ks", k, 1) for k in ks))  # dedupe, keep order
    n_labelled = _check_int("n_labelled", n_labelled, 0, n - 1)
    knn_labelled_k = _check_int("knn_labelled_k", knn_labelled_k, 1)
    router_k = _check_int("router_k", router_k, 1)
    if costs is not None:
        costs = np.asarray(costs, np.float64)
        if costs.shape != (m,) or not np.all(np.isfinite(costs)) or np.any(costs < 0):
            raise ValueError(f"costs must be {m} finite numbers >= 0, one per model")

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

    for e, split in _progress(enumerate(splits), len(splits), progress):
        ens = np.asarray(split.models)
        kept = split.kept
        # Positions into `kept`: Smoothie's per-input routes (fitted on kept) index directly.
        held_pos = np.searchsorted(kept, split.held_out)
        held = scores[split.held_out][:, ens]
        held_means = held.mean(axis=0)

        _reference_rows(reference, TEST_TIME, held)
        record(
            LONGEST, TEST_TIME, _chosen_mean(held, np.argmax(lengths[split.held_out][:, ens], 1))
        )
        embeddings = _ensemble_outputs(outputs, kept, ens)
        x = jnp.take(inputs, jnp.asarray(kept), axis=0)
        medoid = np.asarray(fit_local(embeddings, x, k=1).route())
        record(MEDOID, TEST_TIME, _chosen_mean(held, medoid[held_pos]))
        smoothie = fit_global(embeddings)
        choice = int(smoothie.route())
        record(GLOBAL, TEST_TIME, SCALE * float(held_means[choice]))
        for k in ks:
            k_eff = min(k, kept.size)
            if k_eff < k:
                clipped.add((k, e))
            local = np.asarray(fit_local(embeddings, x, k=k_eff, search=search).route())
            record(local_name(k), TEST_TIME, _chosen_mean(held, local[held_pos]))
        decision = route(embeddings, x, lengths=lengths[kept][:, ens])
        record(ROUTER, TEST_TIME, _chosen_mean(held, np.asarray(decision.choice)[held_pos]))
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
        past_emb = _ensemble_outputs(outputs, split.past, ens)
        past_x = jnp.take(inputs, jnp.asarray(split.past), axis=0)
        new_x = jnp.take(inputs, jnp.asarray(split.new), axis=0)
        past_lengths = lengths[split.past][:, ens]
        new_means = new.mean(axis=0)
        _reference_rows(reference, TRAIN_TIME, new)
        record(LONGEST_PAST, TRAIN_TIME, SCALE * float(new_means[np.argmax(past_lengths.mean(0))]))
        record(GLOBAL, TRAIN_TIME, SCALE * float(new_means[int(fit_global(past_emb).route())]))
        k_router = min(router_k, split.past.size)
        paper = fit_router(past_emb, past_x, k=k_router, search=search)
        record(router_name(router_k), TRAIN_TIME, _chosen_mean(new, np.asarray(paper.route(new_x))))
        auto = fit_router(
            past_emb, past_x, k=k_router, method="auto", lengths=past_lengths, search=search
        )
        record(AUTO_ROUTER, TRAIN_TIME, _chosen_mean(new, np.asarray(auto.route(new_x))))
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


def _frontier(score: np.ndarray, cost: np.ndarray, scores: np.ndarray) -> list[tuple[float, float]]:
    """(mean cost, SCALE x mean score) of argmax(score - t x z(cost)) for each trade-off."""
    sd = float(np.std(cost))
    z = (cost - cost.mean()) / (sd if sd > 0 else 1.0)
    out = []
    for t in FRONTIER_TRADEOFFS:
        choice = np.argmax(score - t * z[None, :], axis=1)
        out.append((float(cost[choice].mean()), _chosen_mean(scores, choice)))
    return out

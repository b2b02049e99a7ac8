"""The paper's AlpacaEval protocol over arrays: random ensembles, routers scored by a judge.

Guha et al. (2024) evaluate routing on AlpacaEval by drawing random ensembles of models
from a larger pool and comparing, per ensemble, the judge's mean score of the outputs each
method picks. This module runs that protocol on arrays (embeddings, judge scores, output
lengths); embedding text and reading files are the CLI's job.

Per ensemble, in order:
  1. Inputs with a missing (NaN) score for any of the ensemble's models are dropped.
  2. `n_labelled` of the remaining inputs are drawn at random as the labelled set; the
     rest are held out. EVERY method is scored on the same held-out inputs, so all numbers
     in a row of the table are comparable; the labelled inputs are never scored.
  3. Label-free methods (longest output, medoid, Smoothie) see all remaining inputs,
     labelled ones included, but never a score: Smoothie is transductive, as in the paper.
     Labelled methods read only the labelled inputs' scores to choose.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
from collections.abc import Iterable, Sequence
from typing import Any

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from . import _validate
from ._atomic import atomic_write
from ._neighbours import knn
from ._smoothie import fit_global, fit_local

SCALE = 100.0  # scores are reported x100: a win probability becomes a win rate in percent

REFERENCE, LABEL_FREE, LABELLED = "reference", "label-free", "labelled"
RANDOM = "random (expected)"
BEST_SINGLE = "best single model (all labels)"
ORACLE = "per-input oracle"
LONGEST = "longest output"
MEDOID = "embedding medoid (MBR)"
GLOBAL = "Smoothie-Global"
BEST_ON_VAL = "Best-on-Val"


def local_name(k: int) -> str:
    """Row name of Smoothie-Local with `k` neighbours (the requested k, before clipping)."""
    return f"Smoothie-Local k={k}"


def labelled_knn_name(k: int) -> str:
    """Row name of the labelled kNN baseline with `k` labelled neighbours."""
    return f"labelled kNN k={k}"


@dataclasses.dataclass(frozen=True)
class MethodResult:
    """One method's routed score (x100) in each ensemble.

    Attributes:
        name: row name, e.g. "Smoothie-Global".
        kind: "reference" (uses held-out labels: bounds, not routers), "label-free" or
            "labelled" (uses the labelled inputs' scores).
        per_ensemble: 100 x mean held-out score of the chosen outputs, one per ensemble.
    """

    name: str
    kind: str
    per_ensemble: tuple[float, ...]

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
    """Everything `evaluate` measured, with the draws needed to recompute any number.

    Model indices refer to the columns of the arrays passed to `evaluate`; input indices
    to their rows.

    Attributes:
        models: model names, one per column.
        n_inputs: rows of the arrays passed in.
        size: models per ensemble.
        seed: seed of every random draw.
        n_labelled: labelled inputs per ensemble (0: no labelled baselines).
        ks: Smoothie-Local neighbourhood sizes requested.
        knn_labelled_k: neighbours of the labelled kNN baseline requested.
        ensembles: the model indices of each ensemble, sorted.
        labelled: per ensemble, the inputs whose scores the labelled methods read.
        evaluated: per ensemble, the held-out inputs every method is scored on.
        methods: one row per method, in table order.
        global_weights: per ensemble, Smoothie-Global's normalised weight of each of the
            ensemble's models (in the order of `ensembles`).
        global_choice: per ensemble, the model Smoothie-Global routes every input to.
        best_model: per ensemble, the model with the best held-out mean score (lowest
            index on ties).
        global_is_best: per ensemble, whether Smoothie-Global's model has the best
            held-out mean (ties count as best).
        spearman: per ensemble, Spearman correlation of Smoothie-Global's weights with the
            models' held-out mean scores (NaN where either is constant).
        model_weights: Smoothie-Global weight of each model from one fit on all models and
            all inputs (NaN-score inputs included: Smoothie reads no scores).
        model_scores: 100 x each model's mean score over the inputs it has a score for.
        notes: anything the numbers depend on beyond the arguments (clipped k, ...).
    """

    models: tuple[str, ...]
    n_inputs: int
    size: int
    seed: int
    n_labelled: int
    ks: tuple[int, ...]
    knn_labelled_k: int
    ensembles: tuple[tuple[int, ...], ...]
    labelled: tuple[tuple[int, ...], ...]
    evaluated: tuple[tuple[int, ...], ...]
    methods: tuple[MethodResult, ...]
    global_weights: tuple[tuple[float, ...], ...]
    global_choice: tuple[int, ...]
    best_model: tuple[int, ...]
    global_is_best: tuple[bool, ...]
    spearman: tuple[float, ...]
    model_weights: tuple[float, ...]
    model_scores: tuple[float, ...]
    notes: tuple[str, ...] = ()

    def method(self, name: str) -> MethodResult:
        """The row called `name`; KeyError listing the rows if there is none."""
        for row in self.methods:
            if row.name == name:
                return row
        raise KeyError(f"no method {name!r}; methods: {[row.name for row in self.methods]}")

    @property
    def picked_best(self) -> int:
        """In how many ensembles Smoothie-Global chose a model with the best held-out mean."""
        return sum(self.global_is_best)

    @property
    def mean_spearman(self) -> float:
        """Mean of the finite per-ensemble Spearman correlations (NaN if there are none)."""
        finite = [s for s in self.spearman if math.isfinite(s)]
        return float(np.mean(finite)) if finite else math.nan

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (NaN becomes None): configuration, table, per-ensemble detail."""
        return _json_safe(
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
                "methods": [
                    {
                        "name": row.name,
                        "kind": row.kind,
                        "mean": row.mean,
                        "std": row.std,
                        "per_ensemble": list(row.per_ensemble),
                    }
                    for row in self.methods
                ],
                "smoothie_global_picked_best": self.picked_best,
                "mean_spearman": self.mean_spearman,
                "ensembles": [
                    {
                        "models": [self.models[i] for i in ens],
                        "model_indices": list(ens),
                        "global_weights": list(self.global_weights[e]),
                        "global_choice": self.models[self.global_choice[e]],
                        "best_model": self.models[self.best_model[e]],
                        "spearman": self.spearman[e],
                        "labelled": list(self.labelled[e]),
                        "evaluated": list(self.evaluated[e]),
                    }
                    for e, ens in enumerate(self.ensembles)
                ],
                "all_models": {
                    name: {"global_weight": w, "mean_score": s}
                    for name, w, s in zip(
                        self.models, self.model_weights, self.model_scores, strict=True
                    )
                },
                "notes": list(self.notes),
            }
        )

    def to_text(self, *, per_ensemble: bool = False) -> str:
        """The results table as plain text, with the protocol in its header and footer.

        Args:
            per_ensemble: add one column per ensemble.
        """
        rows = self.methods
        name_w = max(len("method"), *(len(r.name) for r in rows))
        kind_w = max(len("kind"), *(len(r.kind) for r in rows))
        head = f"{'method':<{name_w}}  {'kind':<{kind_w}}  {'mean':>6}  {'sd':>5}"
        head += f"  {'min':>6}  {'max':>6}"
        if per_ensemble:
            head += "".join(f"  {f'e{e}':>6}" for e in range(len(self.ensembles)))
        lines = [
            _protocol_line(self),
            f"Score: {SCALE:g} x mean judge score of the chosen output over the held-out "
            "inputs (higher is better).",
            "",
            head,
            "  ".join("-" * w for w in (name_w, kind_w, 6, 5, 6, 6))
            + ("  " + "  ".join("-" * 6 for _ in self.ensembles) if per_ensemble else ""),
        ]
        for r in rows:
            values = r.per_ensemble
            line = f"{r.name:<{name_w}}  {r.kind:<{kind_w}}  {r.mean:6.1f}  {r.std:5.1f}"
            line += f"  {min(values):6.1f}  {max(values):6.1f}"
            if per_ensemble:
                line += "".join(f"  {v:6.1f}" for v in values)
            lines.append(line)
        n_eval = sorted({len(e) for e in self.evaluated})
        n_eval_text = str(n_eval[0]) if len(n_eval) == 1 else f"{n_eval[0]}-{n_eval[-1]}"
        unscored = (
            f"; the {self.n_labelled} labelled inputs are never scored" if self.n_labelled else ""
        )
        lines += [
            "",
            f"Within each ensemble every method is scored on the same held-out inputs "
            f"({n_eval_text} per ensemble){unscored}.",
            f"Smoothie-Global picked the ensemble's best model in {self.picked_best} of "
            f"{len(self.ensembles)} ensembles.",
            f"Spearman(Smoothie-Global weights, held-out mean scores): mean "
            f"{self.mean_spearman:.2f} over {len(self.ensembles)} ensembles.",
        ]
        lines += [f"Note: {note}" for note in self.notes]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_text()


def _protocol_line(result: EvaluationResult) -> str:
    labelled = (
        f"{result.n_labelled} labelled inputs each" if result.n_labelled else "no labelled inputs"
    )
    return (
        f"{len(result.ensembles)} random ensembles of {result.size} of {len(result.models)} "
        f"models (seed {result.seed}), {result.n_inputs} inputs, {labelled}."
    )


def _json_safe(x: Any) -> Any:
    """NaN/inf -> None and numpy scalars -> Python, so `json.dump(allow_nan=False)` works."""
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    if isinstance(x, (float, np.floating)):
        return float(x) if math.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    return x


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


def draw_ensembles(
    n_models: int, *, ensembles: int, size: int, seed: int
) -> tuple[tuple[int, ...], ...]:
    """The ensembles `evaluate` uses: `ensembles` independent draws of `size` distinct models.

    Draws come from `numpy.random.default_rng(seed)` one after another, so the first e
    ensembles do not depend on how many are drawn; two draws may coincide. With size ==
    n_models there is one ensemble, the full set.

    >>> draw_ensembles(6, ensembles=2, size=6, seed=0)
    ((0, 1, 2, 3, 4, 5),)
    """
    if size == n_models:
        return (tuple(range(n_models)),)
    rng = np.random.default_rng(seed)
    return tuple(
        tuple(sorted(int(i) for i in rng.choice(n_models, size=size, replace=False)))
        for _ in range(ensembles)
    )


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
    progress: bool = False,
) -> EvaluationResult:
    """Runs the paper's AlpacaEval routing protocol on random ensembles of models.

    For each of `ensembles` random ensembles of `size` distinct models (see
    `draw_ensembles`), every method chooses one of the ensemble's outputs per input and is
    scored by SCALE x the mean judge score of its choices. Inputs with a NaN score for
    any of the ensemble's models are dropped for that ensemble. Of the rest, `n_labelled`
    drawn with `numpy.random.default_rng((seed, e))` form the labelled set of ensemble e;
    all methods are scored on the same remaining held-out inputs. Methods:

    - reference (use held-out scores; bounds, not routers): random (the expected score of
      a uniform choice), best single model, per-input oracle (best output per input);
    - label-free (no scores read): longest output (ties: lower model index), embedding
      medoid (Smoothie-Local with k=1: minimum Bayes risk selection), Smoothie-Global,
      Smoothie-Local for each k in `ks` (k clipped to the ensemble's input count);
    - labelled (read only the labelled inputs' scores): Best-on-Val (the model with the
      best labelled mean), labelled kNN (per held-out input, the model with the best mean
      score over its `knn_labelled_k` nearest labelled inputs).

    Smoothie runs in JAX on the ensemble's slice of `outputs`, fitted on all its kept
    inputs, labelled ones included (they are unlabelled to it). Each new input count or k
    compiles once, so NaN drops that vary between ensembles cost compile time.

    Args:
        outputs: embedding of each model's output for each input.
        inputs: embedding of each input (neighbours for Smoothie-Local and labelled kNN).
        scores: judge score of each output, higher is better; NaN where missing.
        lengths: length of each output (e.g. in characters), for the longest-output
            baseline.
        models: one name per model (column).
        ensembles: ensembles to draw (ignored when size == n_models: one ensemble).
        size: models per ensemble, 3 <= size <= n_models.
        seed: seed of the ensemble draws and of the labelled splits.
        ks: Smoothie-Local neighbourhood sizes, each >= 1.
        n_labelled: labelled inputs per ensemble; 0 drops the labelled baselines and
            scores every method on all kept inputs.
        knn_labelled_k: labelled neighbours per held-out input (clipped to n_labelled;
            the row is named by the k used).
        progress: show a tqdm bar over ensembles (needs tqdm).

    Returns:
        An `EvaluationResult`; `str(result)` is the table.

    Raises:
        ValueError: on bad shapes or arguments, before any work; or when an ensemble keeps
            no more than `n_labelled` inputs after dropping NaN scores.

    References:
        Guha et al., "Smoothie: Label Free Language Model Routing", NeurIPS 2024.

    >>> import jax
    >>> x = jax.random.normal(jax.random.key(0), (60, 4, 8))
    >>> s = np.asarray(jax.random.uniform(jax.random.key(1), (60, 4)))
    >>> r = evaluate(x, x[:, 0], s, np.ones((60, 4)), "abcd", size=3, ks=(5,), n_labelled=10)
    >>> [row.name for row in r.methods][-2:]
    ['Best-on-Val', 'labelled kNN k=10']
    """
    outputs = _validate.check_embeddings(outputs)
    n, m, _ = outputs.shape
    inputs = _validate.check_inputs(inputs, n)
    scores = _check_table("scores", scores, n, m, allow_nan=True)
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

    drawn = draw_ensembles(m, ensembles=n_ensembles, size=size, seed=seed)
    notes: list[str] = []
    if size == m and n_ensembles > 1:
        notes.append(f"size == n_models: the full set, evaluated once (not {n_ensembles} times).")
    knn_k = min(knn_labelled_k, n_labelled)
    if n_labelled and knn_k < knn_labelled_k:
        notes.append(f"labelled kNN k={knn_labelled_k} clipped to n_labelled={n_labelled}.")

    values: dict[str, list[float]] = {}  # method -> routed score per ensemble, table order
    clipped: set[tuple[int, int]] = set()  # (requested k, ensemble)
    labelled_rows: list[tuple[int, ...]] = []
    evaluated_rows: list[tuple[int, ...]] = []
    weights_rows: list[tuple[float, ...]] = []
    choices: list[int] = []
    bests: list[int] = []
    picked: list[bool] = []
    correlations: list[float] = []

    def record(name: str, value: float) -> None:
        values.setdefault(name, []).append(value)

    for e, ensemble in _progress(enumerate(drawn), len(drawn), progress):
        ens = np.asarray(ensemble)
        ens_scores = scores[:, ens]
        kept = np.flatnonzero(~np.isnan(ens_scores).any(axis=1))
        if kept.size <= n_labelled:
            raise ValueError(
                f"ensemble {e} ({[models[i] for i in ensemble]}) has {kept.size} inputs with "
                f"every score present, not more than n_labelled={n_labelled}: nothing to score"
            )
        # Positions into `kept`, so Smoothie's per-input routes (fit on kept) index directly.
        order = np.random.default_rng((seed, e)).permutation(kept.size)
        lab_pos, held_pos = np.sort(order[:n_labelled]), np.sort(order[n_labelled:])
        labelled_rows.append(tuple(int(i) for i in kept[lab_pos]))
        evaluated_rows.append(tuple(int(i) for i in kept[held_pos]))
        held = ens_scores[kept[held_pos]]
        held_means = held.mean(axis=0)

        record(RANDOM, SCALE * float(held_means.mean()))
        record(BEST_SINGLE, SCALE * float(held_means.max()))
        record(ORACLE, SCALE * float(held.max(axis=1).mean()))
        record(LONGEST, _chosen_mean(held, np.argmax(lengths[kept[held_pos]][:, ens], axis=1)))

        embeddings = _ensemble_outputs(outputs, kept, ens)
        x = jnp.take(inputs, jnp.asarray(kept), axis=0)
        medoid = np.asarray(fit_local(embeddings, x, k=1).route())
        record(MEDOID, _chosen_mean(held, medoid[held_pos]))
        smoothie = fit_global(embeddings)
        choice = int(smoothie.route())
        record(GLOBAL, SCALE * float(held_means[choice]))
        for k in ks:
            k_eff = min(k, kept.size)
            if k_eff < k:
                clipped.add((k, e))
            route = np.asarray(fit_local(embeddings, x, k=k_eff).route())
            record(local_name(k), _chosen_mean(held, route[held_pos]))

        if n_labelled:
            lab = ens_scores[kept[lab_pos]]
            record(BEST_ON_VAL, SCALE * float(held_means[np.argmax(lab.mean(axis=0))]))
            neighbours = np.asarray(
                knn(
                    jnp.take(x, jnp.asarray(held_pos), axis=0),
                    jnp.take(x, jnp.asarray(lab_pos), axis=0),
                    knn_k,
                )
            )
            record(
                labelled_knn_name(knn_k),
                _chosen_mean(held, np.argmax(lab[neighbours].mean(axis=1), axis=1)),
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
    kept_counts = [
        len(lab) + len(ev) for lab, ev in zip(labelled_rows, evaluated_rows, strict=True)
    ]
    dropped = [n - count for count in kept_counts]
    if any(dropped):
        notes.append(f"Inputs dropped for a missing score, per ensemble: {dropped}.")

    kinds = {
        RANDOM: REFERENCE,
        BEST_SINGLE: REFERENCE,
        ORACLE: REFERENCE,
        BEST_ON_VAL: LABELLED,
        labelled_knn_name(knn_k): LABELLED,
    }
    methods = tuple(
        MethodResult(name, kinds.get(name, LABEL_FREE), tuple(v)) for name, v in values.items()
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
        ensembles=drawn,
        labelled=tuple(labelled_rows),
        evaluated=tuple(evaluated_rows),
        methods=methods,
        global_weights=tuple(weights_rows),
        global_choice=tuple(choices),
        best_model=tuple(bests),
        global_is_best=tuple(picked),
        spearman=tuple(correlations),
        model_weights=tuple(float(w) for w in all_weights),
        model_scores=tuple(float(s) for s in model_scores),
        notes=tuple(notes),
    )


def write_result_json(result: EvaluationResult, path: str | os.PathLike) -> None:
    """Writes `result.to_json()` to `path` atomically (strict JSON: NaN written as null)."""
    with atomic_write(path) as f:
        json.dump(result.to_json(), f, indent=2, allow_nan=False)
        f.write("\n")


_KIND_COLOURS = {REFERENCE: "#9e9e9e", LABEL_FREE: "#1f77b4", LABELLED: "#ff7f0e"}


def plot_evaluation(result: EvaluationResult, path: str | os.PathLike, *, dpi: int = 150) -> None:
    """Writes a two-panel PNG of `result` to `path` atomically (needs matplotlib).

    (a) Each method's mean routed score (bar) and its score in each ensemble (points).
    (b) Each model's Smoothie-Global weight from one fit on all models and inputs, against
    its mean judge score, names annotated.

    Uses matplotlib's Agg canvas directly, never pyplot, so the caller's backend and
    global figure state are left alone.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    rows = result.methods
    fig = Figure(figsize=(13, max(4.0, 0.45 * len(rows) + 1.5)), layout="constrained")
    FigureCanvasAgg(fig)
    ax_methods, ax_models = fig.subplots(1, 2, width_ratios=(1.3, 1))

    y = np.arange(len(rows))[::-1]  # first method at the top
    colours = [_KIND_COLOURS.get(r.kind, "#333333") for r in rows]
    ax_methods.barh(y, [r.mean for r in rows], color=colours, alpha=0.6)
    jitter = np.random.default_rng(0)  # fixed: the same result draws the same figure
    for yi, r in zip(y, rows, strict=True):
        offsets = jitter.uniform(-0.25, 0.25, len(r.per_ensemble))
        ax_methods.scatter(r.per_ensemble, yi + offsets, s=10, color="black", zorder=3)
    ax_methods.set_yticks(y, [r.name for r in rows])
    ax_methods.set_xlabel(f"{SCALE:g} x mean judge score on held-out inputs")
    ax_methods.set_title(
        f"(a) Routing, {len(result.ensembles)} ensembles of {result.size} "
        f"(bar: mean; points: ensembles)"
    )
    ax_methods.legend(  # below the axis: inside, it would cover the last bars
        handles=[Patch(color=c, alpha=0.6, label=k) for k, c in _KIND_COLOURS.items()],
        loc="upper center",
        bbox_to_anchor=(0.5, -0.1),
        ncol=len(_KIND_COLOURS),
        fontsize="small",
    )

    weights = np.asarray(result.model_weights)
    model_scores = np.asarray(result.model_scores)
    ax_models.scatter(weights, model_scores, color=_KIND_COLOURS[LABEL_FREE])
    for name, w, s in zip(result.models, weights, model_scores, strict=True):
        if math.isfinite(s):
            ax_models.annotate(
                name, (w, s), textcoords="offset points", xytext=(4, 4), fontsize="small"
            )
    ax_models.margins(0.15)  # room for the names of the extreme models
    rho = spearman(weights, model_scores) if np.isfinite(model_scores).all() else math.nan
    ax_models.set_xlabel(
        f"Smoothie-Global weight (one fit on all {len(result.models)} models, all inputs)"
    )
    ax_models.set_ylabel(f"{SCALE:g} x mean judge score")
    ax_models.set_title(f"(b) Weight vs quality per model (Spearman {rho:.2f})")

    buffer = io.BytesIO()  # render fully before the file is opened: no half-written PNG
    fig.savefig(buffer, format="png", dpi=dpi)
    with atomic_write(path, mode="wb") as f:
        f.write(buffer.getvalue())

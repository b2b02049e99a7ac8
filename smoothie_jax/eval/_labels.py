"""Labels in the evaluation: the label-budget curve, and a person's labels file scored.

`label_budget`: for each ensemble of an `EvaluationResult` and each budget n, the first n
of its test-time labelled rows (in an order seeded per ensemble) go to the routers, all
scored on the same held-out rows:

- the recommended router with labels (`sj.route(..., labels=)`, `_label_model`): at
  n = 0 it is the label-free router;
- the same with the n rows suggested by `suggest_labels` among all the ensemble's inputs
  (in rounds of ROUND, each round's scores revealed before the next), scored on the
  held-out rows not suggested;
- Best-on-Val: the model with the best mean over the n labelled rows;
- labelled kNN: per held-out input, the best mean over its min(k, n) nearest labelled;
  both split ties evenly (`tied_best`).

`evaluate_labels` (`smoothie-jax evaluate --labels FILE`): the labels a person gave (a
filled labels file) on the protocol's ensembles, in both regimes: test-time, the labels
among each ensemble's inputs move `sj.route`, scored on the held-out inputs not
labelled; train-time, the labels among its past inputs move the router fitted on them
(`sj.fit_router(method="auto")`, whose per-query scores the labels move the same way),
scored on the new queries. Beside each: the label-free router and Best-on-Val on the
same labels.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int, Real

from .._batch import make_batch
from .._fit_router import fit_router
from .._label_model import label_evidence, labelled_score, router_doubt, router_score
from .._validate import ArrayLike
from ..posterior import suggest_labels
from ._baselines import labelled_scores, tied_best
from ._names import BEST_ON_VAL, SCALE
from ._result import EvaluationResult
from ._split import REGIMES, TEST_TIME
from ._stats import chosen_mean

ROUTED, ACTIVE, KNN = "route with labels", "route, labels suggested", "labelled kNN"
METHODS = (ROUTED, ACTIVE, BEST_ON_VAL, KNN)
ROUND = 5  # suggested labels come in rounds of this many (then the router refits)
LABEL_FREE, WITH_LABELS = "label-free (recommended)", "with the labels (recommended)"


@dataclasses.dataclass(frozen=True)
class LabelBudgetResult:
    """What `label_budget` measured.

    Attributes:
        budgets: labelled inputs per ensemble, one column each.
        scores: method -> per budget, per ensemble routed score (x100); NaN where a
            labelled baseline has no labels (n = 0).
        best_single: per ensemble, the best single model's held-out score (x100).
        oracle: per ensemble, the per-input oracle's held-out score (x100).
        knn_k: neighbours of the labelled kNN (clipped to n).
    """

    budgets: tuple[int, ...]
    scores: dict[str, tuple[tuple[float, ...], ...]]
    best_single: tuple[float, ...]
    oracle: tuple[float, ...]
    knn_k: int

    def mean(self, method: str) -> tuple[float, ...]:
        """Mean over ensembles per budget (NaN where undefined)."""
        return tuple(
            float(np.mean(v)) if np.all(np.isfinite(v)) else float("nan")
            for v in self.scores[method]
        )

    def to_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["means"] = {name: list(self.mean(name)) for name in self.scores}
        return out

    def to_text(self) -> str:
        head = f"{'labelled inputs':<24s}" + "".join(f"{n:>7d}" for n in self.budgets)
        lines = [head, "-" * len(head)]
        for name in self.scores:
            row = "".join(f"{v:7.1f}" if np.isfinite(v) else f"{'-':>7s}" for v in self.mean(name))
            lines.append(f"{name:<24s}{row}")
        lines.append(
            f"best single model {np.mean(self.best_single):.1f}, oracle "
            f"{np.mean(self.oracle):.1f} (held-out, mean of {len(self.best_single)} ensembles); "
            f"labelled kNN k=min({self.knn_k}, n)."
        )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_text()


def labelled_choice(
    router: Float[Array, "n_samples n_models"],
    label_scores: Float[np.ndarray, "n_labels n_models"],
    doubt: float,
) -> np.ndarray:
    """The labelled decision's choice per input, given the label-free score (`router_score`),
    the labelled rows' scores and the label-free router's doubt (`router_doubt`)."""
    quality = labelled_score(router, label_evidence(label_scores), doubt=doubt)
    return np.asarray(jnp.argmax(quality, axis=1))


def _suggested_rows(
    x: Array,
    scores: np.ndarray,
    answers: np.ndarray | None,
    n: int,
    key: Array,
) -> np.ndarray:
    """n rows suggested by `suggest_labels` in rounds of ROUND, each round's scores
    revealed before the next (a person labelling, then asking again)."""
    rows = np.zeros(0, np.int64)
    while rows.size < n:
        step = min(ROUND, n - rows.size)
        labels = (rows, scores[rows]) if rows.size else None
        new = suggest_labels(
            x, step, key=jax.random.fold_in(key, rows.size), labels=labels, answers=answers
        )
        rows = np.concatenate([rows, np.asarray(new)])
    return rows


def label_budget(
    result: EvaluationResult,
    outputs: Float[ArrayLike, "n_samples n_models dim"],
    inputs: Float[ArrayLike, "n_samples input_dim"],
    scores: Float[np.ndarray, "n_samples n_models"],
    lengths: Real[np.ndarray, "n_samples n_models"],
    *,
    key: Array,
    budgets: Sequence[int] = (0, 5, 10, 20, 50),
    knn_k: int = 20,
    seed: int = 0,
    answers: np.ndarray | None = None,
) -> LabelBudgetResult:
    """Routed score against the number of labelled inputs, on `result`'s splits.

    Args:
        result: what `evaluate` returned for the same arrays (its splits give the rows;
            it needs n_labelled >= max(budgets)).
        outputs: embedding of each model's output for each input.
        inputs: embedding of each input (labelled kNN's neighbours).
        scores: judge score of each output; the labelled rows' scores are the labels.
        lengths: length of each output (checked as `sj.route` checks them).
        key: PRNG key of the suggested labels' draws.
        budgets: numbers of labelled inputs, each in [0, result.n_labelled].
        knn_k: neighbours of the labelled kNN (clipped to n).
        seed: seed of the order in which each ensemble's labelled rows are taken.
        answers: final-answer codes, for the router (as `sj.route`).

    Returns:
        A `LabelBudgetResult`; `str(result)` is its table.
    """
    budgets = tuple(int(b) for b in budgets)
    if not budgets or min(budgets) < 0 or max(budgets) > result.n_labelled:
        raise ValueError(f"budgets must be in [0, n_labelled = {result.n_labelled}], got {budgets}")
    outputs, inputs = jnp.asarray(outputs), jnp.asarray(inputs)
    scores = np.asarray(scores, np.float64)
    lengths = np.asarray(lengths, np.float64)
    table: dict[str, list[list[float]]] = {name: [[] for _ in budgets] for name in METHODS}
    best_single, oracle = [], []
    for e, split in enumerate(result.splits):
        ens = np.asarray(split.models)
        kept = split.kept
        held = np.searchsorted(kept, split.held_out)
        order = np.random.default_rng((seed, e, 2)).permutation(split.labelled)
        x = jnp.take(jnp.take(outputs, jnp.asarray(kept), axis=0), jnp.asarray(ens), axis=1)
        s_kept = scores[kept][:, ens]
        s_held = s_kept[held]
        x_in = jnp.take(inputs, jnp.asarray(kept), axis=0)
        best_single.append(SCALE * float(s_held.mean(0).max()))
        oracle.append(SCALE * float(s_held.max(1).mean()))
        key, key_e = jax.random.split(key)
        ans_kept = None if answers is None else answers[kept][:, ens]
        batch = make_batch(x, lengths=lengths[kept][:, ens], answers=ans_kept)
        router, doubt = router_score(batch), router_doubt(batch)
        for b, n_lab in enumerate(budgets):
            rows = np.searchsorted(kept, order[:n_lab])
            choice = labelled_choice(router, s_kept[rows], doubt)
            table[ROUTED][b].append(chosen_mean(s_held, choice[held]))
            chosen = _suggested_rows(x, s_kept, ans_kept, n_lab, key_e)
            rest = np.setdiff1d(held, chosen)  # scored where no label was read
            choice = labelled_choice(router, s_kept[chosen], doubt)
            table[ACTIVE][b].append(chosen_mean(s_kept[rest], choice[rest]))
            if n_lab == 0:
                table[BEST_ON_VAL][b].append(float("nan"))
                table[KNN][b].append(float("nan"))
                continue
            best_on_val, local = labelled_scores(
                x_in[rows], x_in[held], s_kept[rows], s_held, knn_k
            )
            table[BEST_ON_VAL][b].append(best_on_val)
            table[KNN][b].append(local)
    return LabelBudgetResult(
        budgets=budgets,
        scores={name: tuple(tuple(v) for v in rows) for name, rows in table.items()},
        best_single=tuple(best_single),
        oracle=tuple(oracle),
        knn_k=knn_k,
    )


def gap_closed(scored: Float[np.ndarray, "n_rows n_models"], weights: np.ndarray) -> float:
    """G of one choice on scored rows: (routed - random) / (best single - random); NaN
    where every model scores alike. `weights` (n_rows, n_models) or (n_models,) are the
    probabilities of each choice (one-hot, or a tie split evenly).

    >>> gap_closed(np.array([[1.0, 0.0], [1.0, 0.0]]), np.array([1.0, 0.0]))
    1.0
    """
    means = scored.mean(axis=0)
    low, span = means.mean(), means.max() - means.mean()
    routed = float(np.mean(np.sum(np.broadcast_to(weights, scored.shape) * scored, axis=1)))
    return float((routed - low) / span) if span > 1e-12 else float("nan")


@dataclasses.dataclass(frozen=True)
class LabelsResult:
    """What `evaluate_labels` measured, per regime ("test-time", "train-time").

    Attributes:
        used: per regime, per ensemble, how many labelled inputs the routers read.
        scores: per regime, method -> per ensemble routed score (x100) on the scored
            rows (test-time: held out and not labelled; train-time: the new queries).
        gaps: per regime, method -> per ensemble G on the same rows.
    """

    used: dict[str, tuple[int, ...]]
    scores: dict[str, dict[str, tuple[float, ...]]]
    gaps: dict[str, dict[str, tuple[float, ...]]]

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_text(self) -> str:
        lines = [f"{'regime':<11s} {'method':<32s} {'score':>6s} {'G':>6s}"]
        for regime in self.scores:
            used = self.used[regime]
            for method in self.scores[regime]:
                g = np.asarray(self.gaps[regime][method], np.float64)
                v = np.asarray(self.scores[regime][method], np.float64)
                mean_g = float(np.nanmean(g)) if np.isfinite(g).any() else float("nan")
                score = float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")
                lines.append(f"{regime:<11s} {method:<32s} {score:6.1f} {mean_g:6.2f}")
            lines.append(
                f"{'':<11s} ({np.mean(used):.1f} labelled inputs read per ensemble, "
                f"{min(used)} to {max(used)})"
            )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_text()


def evaluate_labels(
    result: EvaluationResult,
    outputs: Float[ArrayLike, "n_samples n_models dim"],
    inputs: Float[ArrayLike, "n_samples input_dim"],
    scores: Float[np.ndarray, "n_samples n_models"],
    labels: tuple[Int[np.ndarray, " n_labels"], Float[np.ndarray, "n_labels n_models"]],
    *,
    answers: np.ndarray | None = None,
    k: int = 20,
) -> LabelsResult:
    """The labelled router, with a person's labels, on `result`'s ensembles, both regimes.

    Args:
        result: what `evaluate` returned for the same arrays.
        outputs: embedding of each model's output for each input.
        inputs: embedding of each input (the train-time router's neighbours).
        scores: judge score of each output: they grade only.
        labels: (rows, scores) a person gave (`data.read_labels`): rows index the data,
            scores (n_labels, n_models), NaN where unscored.
        answers: final-answer codes, for the routers (as `sj.route`).
        k: neighbours of the train-time router.

    Returns:
        A `LabelsResult`; `str(result)` is its table.
    """
    outputs, inputs = jnp.asarray(outputs), jnp.asarray(inputs)
    scores = np.asarray(scores, np.float64)
    label_rows = np.asarray(labels[0], np.int64)
    label_scores = np.asarray(labels[1], np.float64)
    used: dict[str, list[int]] = {r: [] for r in REGIMES}
    got: dict[str, dict[str, list[float]]] = {r: {} for r in REGIMES}
    gaps: dict[str, dict[str, list[float]]] = {r: {} for r in REGIMES}
    for split in result.splits:
        ens = np.asarray(split.models)
        for regime in REGIMES:
            fit, _, scored = split.rows(regime)
            inside = np.isin(label_rows, fit)
            lab = label_scores[inside][:, ens]
            if regime == TEST_TIME:
                scored = np.setdiff1d(scored, label_rows)
            x = outputs[fit][:, ens]
            codes = None if answers is None else answers[fit][:, ens]
            past = make_batch(x, answers=codes)
            doubt = router_doubt(past)  # read on the past at train time
            if regime == TEST_TIME:
                router = router_score(past)
                where = np.searchsorted(fit, scored)
            else:
                fitted = fit_router(
                    x, inputs[fit], k=min(k, len(fit)), method="auto", answers=codes
                )
                router = fitted.scores(inputs[scored])
                where = np.arange(len(scored))
            s = scores[scored][:, ens]
            free = np.asarray(jnp.argmax(router, axis=1))[where]
            labelled = labelled_choice(router, lab, doubt)[where]
            judged = lab[np.sum(~np.isnan(lab), axis=1) >= 2]
            rows = {LABEL_FREE: _one_hot(free, len(ens)), WITH_LABELS: _one_hot(labelled, len(ens))}
            rows[BEST_ON_VAL] = _best_on_val(judged, s.shape)
            used[regime].append(int(len(judged)))
            for method, weights in rows.items():
                if weights is None:  # no labelled input among this ensemble's rows
                    got[regime].setdefault(method, []).append(float("nan"))
                    gaps[regime].setdefault(method, []).append(float("nan"))
                    continue
                routed = float(np.mean(np.sum(weights * s, axis=1)))
                got[regime].setdefault(method, []).append(SCALE * routed)
                gaps[regime].setdefault(method, []).append(gap_closed(s, weights))
    return LabelsResult(
        used={r: tuple(v) for r, v in used.items()},
        scores={r: {m: tuple(v) for m, v in rows.items()} for r, rows in got.items()},
        gaps={r: {m: tuple(v) for m, v in rows.items()} for r, rows in gaps.items()},
    )


def _one_hot(choice: np.ndarray, m: int) -> np.ndarray:
    return np.eye(m)[np.asarray(choice)]


def _best_on_val(judged: np.ndarray, shape: tuple[int, ...]) -> np.ndarray | None:
    """Best-on-Val's weights on the scored rows (ties split evenly; a model no label
    scored is never chosen), None without labels."""
    if not len(judged):
        return None
    seen = np.sum(~np.isnan(judged), axis=0)
    means = np.where(seen > 0, np.nansum(judged, axis=0) / np.maximum(seen, 1), -np.inf)
    return np.broadcast_to(tied_best(means), shape)

"""The label-budget curve: routed score against the number of labelled inputs.

For each ensemble of an `EvaluationResult` and each budget n, the first n of its
test-time labelled rows (in an order seeded per ensemble) are given to three routers,
all scored on the same held-out rows:

- the posterior with labels (`fit_posterior(..., labels=, lengths=)`): per input, the
  model with the highest posterior mean quality (at n = 0 it is the recommended router);
- the same posterior with the n labelled rows chosen by `suggest_labels` among all the
  ensemble's inputs (in rounds of ROUND), scored on the held-out rows not chosen;
- Best-on-Val: the model with the best mean over the n labelled rows;
- labelled kNN: per held-out input, the best mean over its min(k, n) nearest labelled;
  both split ties evenly (`tied_best`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Real

from .._batch import make_batch
from .._label_model import fit_label_model, quality_mean
from .._signals import recommended_score
from .._validate import ArrayLike
from ..posterior import suggest_labels
from ._baselines import labelled_scores
from ._names import BEST_ON_VAL, SCALE
from ._result import EvaluationResult
from ._stats import chosen_mean

POSTERIOR, ACTIVE, KNN = "posterior with labels", "posterior, labels chosen", "labelled kNN"
METHODS = (POSTERIOR, ACTIVE, BEST_ON_VAL, KNN)
ROUND = 5  # chosen labels are suggested in rounds of this many (then the posterior refits)


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


def _chosen_rows(
    x: Array,
    scores: np.ndarray,
    lengths: np.ndarray,
    answers: np.ndarray | None,
    n: int,
    key: Array,
) -> np.ndarray:
    """n rows chosen by `suggest_labels` in rounds of ROUND, each round's scores revealed
    before the next (a person labelling, then asking again)."""
    rows = np.zeros(0, np.int64)
    while rows.size < n:
        step = min(ROUND, n - rows.size)
        labels = (rows, scores[rows]) if rows.size else None
        new = suggest_labels(
            x, step, key=jax.random.fold_in(key, rows.size), labels=labels, lengths=lengths,
            answers=answers,
        )  # fmt: skip
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
        lengths: length of each output, the posterior's per-input signal.
        key: PRNG key of the posterior draws.
        budgets: numbers of labelled inputs, each in [0, result.n_labelled].
        knn_k: neighbours of the labelled kNN (clipped to n).
        seed: seed of the order in which each ensemble's labelled rows are taken.
        answers: final-answer codes, for the router's score (as `sj.route`).

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
        len_kept = lengths[kept][:, ens]
        x_in = jnp.take(inputs, jnp.asarray(kept), axis=0)
        best_single.append(SCALE * float(s_held.mean(0).max()))
        oracle.append(SCALE * float(s_held.max(1).mean()))
        key, key_e = jax.random.split(key)
        ans_kept = None if answers is None else answers[kept][:, ens]
        router = recommended_score(make_batch(x, lengths=len_kept, answers=ans_kept))
        for b, n_lab in enumerate(budgets):
            rows = np.searchsorted(kept, order[:n_lab])
            q = quality_mean(router, fit_label_model(router, (rows, s_kept[rows])))
            table[POSTERIOR][b].append(chosen_mean(s_held, np.asarray(jnp.argmax(q, 1))[held]))
            chosen = _chosen_rows(x, s_kept, len_kept, ans_kept, n_lab, key_e)
            rest = np.setdiff1d(held, chosen)  # scored where no label was read
            q = quality_mean(router, fit_label_model(router, (chosen, s_kept[chosen])))
            table[ACTIVE][b].append(chosen_mean(s_kept[rest], np.asarray(jnp.argmax(q, 1))[rest]))
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

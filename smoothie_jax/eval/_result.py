"""What an evaluation measured: one row per method and regime, and the table around them.

`MethodResult` holds one method's score in each ensemble; `EvaluationResult` holds every
row of a run with the splits they were scored on, and derives the gap closure, the
table (`to_text`) and the JSON (`to_json`) from them.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from ._json import json_safe
from ._names import BEST_SINGLE, RANDOM, SCALE
from ._split import REGIMES, TEST_TIME, Split
from ._stats import nanmean, nanmin


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
            ensembles, for each trade-off of `_protocol.FRONTIER_TRADEOFFS`.
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
            "gap_closure": nanmean(gap),
            "gap_closure_min": nanmin(gap),
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
                line += f"  {nanmean(gap):5.2f}  {nanmin(gap):6.2f}"
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


def _protocol_line(result: EvaluationResult) -> str:
    return (
        f"{len(result.splits)} random ensembles of {result.size} of {len(result.models)} "
        f"models (seed {result.seed}), {result.n_inputs} inputs, {result.n_labelled} "
        "labelled inputs each for the labelled baselines."
    )

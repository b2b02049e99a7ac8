"""The plots of the evaluations: the routing table, the posterior policies, the label budget.

Plots use matplotlib's Agg canvas directly, never pyplot, so the caller's backend and
global figure state are left alone; each PNG is rendered in memory first, then written
atomically, so a failed plot never leaves half a file.
"""

from __future__ import annotations

import io
import math
import os
from typing import Any

import numpy as np

from .._atomic import atomic_write
from ._labels import LabelBudgetResult
from ._names import LABEL_FREE, LABELLED, REFERENCE, SCALE
from ._result import EvaluationResult
from ._split import TEST_TIME, TRAIN_TIME
from ._stats import spearman
from ._uncertainty import UncertaintyResult


def _save(fig: Any, path: str | os.PathLike, dpi: int) -> None:
    buffer = io.BytesIO()  # render fully before the file is opened: no half-written PNG
    fig.savefig(buffer, format="png", dpi=dpi)
    with atomic_write(path, mode="wb") as f:
        f.write(buffer.getvalue())


_KIND_COLOURS = {REFERENCE: "#9e9e9e", LABEL_FREE: "#1f77b4", LABELLED: "#ff7f0e"}


def _method_panel(ax: Any, result: EvaluationResult, regime: str, title: str) -> None:
    """Each method's mean routed score (bar), per-ensemble scores (points), G in the label."""
    rows = [r for r in result.methods if r.regime == regime]
    y = np.arange(len(rows))[::-1]  # first method at the top
    colours = [_KIND_COLOURS.get(r.kind, "#333333") for r in rows]
    ax.barh(y, [r.mean for r in rows], color=colours, alpha=0.6)
    jitter = np.random.default_rng(0)  # fixed: the same result draws the same figure
    for yi, r in zip(y, rows, strict=True):
        offsets = jitter.uniform(-0.25, 0.25, len(r.per_ensemble))
        ax.scatter(r.per_ensemble, yi + offsets, s=10, color="black", zorder=3)
    labels = []
    for r in rows:
        gap = [g for g in result.gap_closure(r.name, regime) if math.isfinite(g)]
        below = result.below_random(r.name, regime)
        text = f" (G {np.mean(gap):.2f}, {below} below)" if gap and r.kind != REFERENCE else ""
        labels.append(r.name + text)
    ax.set_yticks(y, labels)
    ax.set_xlabel(f"{SCALE:g} x mean judge score of the chosen outputs")
    ax.set_title(title, fontsize="medium")


def plot_evaluation(result: EvaluationResult, path: str | os.PathLike, *, dpi: int = 150) -> None:
    """Writes a four-panel PNG of `result` to `path` atomically (needs matplotlib).

    (a) Test-time and (b) train-time routing: each method's mean score (bar), its score in
    each ensemble (points), its gap closure G and ensembles below random in the label.
    (c) Each model's Smoothie-Global weight from one fit on all models and inputs against
    its mean judge score. (d) The train-time quality-cost frontier (when costs were given).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    n_rows = max(
        sum(r.regime == regime for r in result.methods) for regime in (TEST_TIME, TRAIN_TIME)
    )
    fig = Figure(figsize=(16, 2 * max(4.0, 0.4 * n_rows + 1.5)), layout="constrained")
    FigureCanvasAgg(fig)
    (ax_test, ax_train), (ax_models, ax_cost) = fig.subplots(2, 2)
    protocol = f"{len(result.splits)} ensembles of {result.size}"
    _method_panel(ax_test, result, TEST_TIME, f"(a) Test-time routing, {protocol}")
    _method_panel(ax_train, result, TRAIN_TIME, f"(b) Train-time: fit on past traffic, {protocol}")
    ax_test.legend(
        handles=[Patch(color=c, alpha=0.6, label=k) for k, c in _KIND_COLOURS.items()],
        loc="lower right",
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
    ax_models.set_title(f"(c) Weight vs quality per model (Spearman {rho:.2f})")

    if result.frontier:
        tradeoff, cost, score = zip(*result.frontier)
        ax_cost.plot(cost, score, "o-", color=_KIND_COLOURS[LABEL_FREE])
        for t, c, q in result.frontier:
            ax_cost.annotate(f"{t:g}", (c, q), textcoords="offset points", xytext=(4, 4))
        ax_cost.set_xlabel("mean cost per call (units of the costs given)")
        ax_cost.set_ylabel(f"{SCALE:g} x mean score on new queries")
        ax_cost.set_title("(d) Train-time quality-cost frontier (labels: trade-off)")
    else:
        ax_cost.axis("off")
        ax_cost.text(0.5, 0.5, "no costs given: no frontier", ha="center", va="center")

    _save(fig, path, dpi)


def plot_uncertainty(result: UncertaintyResult, path: str | os.PathLike, *, dpi: int = 150) -> None:
    """Two panels: coverage against score for abstention, and the quality-cost curve."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.2))
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.subplots(1, 2)
    ax1.plot(
        100 * np.asarray(result.coverage),
        result.selective_score,
        "o-",
        label="score on routed inputs",
    )
    ax1.plot(
        100 * np.asarray(result.coverage),
        result.fallback_score,
        "s--",
        label="all inputs, abstentions to Smoothie-Global",
    )
    for t, c, s in zip(result.thresholds, result.coverage, result.selective_score):
        ax1.annotate(f"{t:g}", (100 * c, s), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax1.set_xlabel("coverage: inputs routed without abstaining (%)")
    ax1.set_ylabel("mean routed score (x100)")
    ax1.set_title("(a) abstention: coverage vs score")
    ax1.legend(fontsize=8)
    ax2.plot(result.mean_cost, result.cost_score, "o-")
    ax2.set_xlabel("mean cost per routed call")
    ax2.set_ylabel("mean routed score (x100)")
    ax2.set_title("(b) cost-aware routing: quality vs cost")
    fig.tight_layout()
    _save(fig, path, dpi)


def plot_label_budget(
    result: LabelBudgetResult, path: str | os.PathLike, *, dpi: int = 150
) -> None:
    """Routed score against labelled inputs, one line per method (PNG, written atomically)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4.2))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    for name in result.scores:
        ax.plot(result.budgets, result.mean(name), marker="o", label=name)
    ax.axhline(np.mean(result.best_single), color="#555555", ls="--", label="best single model")
    ax.axhline(np.mean(result.oracle), color="#999999", ls=":", label="oracle")
    ax.set_xlabel("labelled inputs per ensemble")
    ax.set_ylabel("routed score on held-out inputs (x100)")
    ax.set_title("Label budget")
    ax.legend(fontsize=8)
    fig.tight_layout()
    _save(fig, path, dpi)

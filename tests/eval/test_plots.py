"""The plots: each result drawn to a PNG, written atomically (nothing else left behind)."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest

import smoothie_jax as sj
from smoothie_jax.eval import EvaluationResult, LabelBudgetResult, MethodResult, UncertaintyResult

pytestmark = pytest.mark.slow  # matplotlib renders each figure
PNG = b"\x89PNG\r\n\x1a\n"


def uncertainty_result() -> UncertaintyResult:
    """A small result by hand: what the plot reads, with a NaN where nothing is routed."""
    return UncertaintyResult(
        methods=(MethodResult("Smoothie-Global (closed form)", "closed form", (50.0, 60.0)),),
        thresholds=(0.0, 0.5, 1.01),
        coverage=(1.0, 0.5, 0.0),
        selective_score=(55.0, 60.0, math.nan),
        fallback_score=(55.0, 57.0, 52.0),
        tradeoffs=(0.0, 0.1, 1.0),
        mean_cost=(3.0, 2.0, 0.5),
        cost_score=(55.0, 50.0, 40.0),
        costs=(1.0, 2.0, 0.5),
        best_in_set=(True, False),
        prob_best_of_best=(0.6, 0.3),
        global_set_size=(2.0, 3.0),
        best_in_local_set=(0.9, 0.8),
        set_size=(1.5, 2.0),
        n_eff_per_sample=math.nan,
        k=20,
    )


def test_plot_evaluation(result: EvaluationResult, tmp_path: Path) -> None:
    png = tmp_path / "nested" / "result.png"
    sj.eval.plot_evaluation(result, png)
    assert png.read_bytes()[:8] == PNG
    assert [p.name for p in png.parent.iterdir()] == ["result.png"]
    # With costs, a fourth panel draws the frontier.
    with_costs = dataclasses.replace(result, frontier=((0.0, 2.0, 50.0), (1.0, 1.0, 40.0)))
    sj.eval.plot_evaluation(with_costs, tmp_path / "frontier.png", dpi=40)
    assert (tmp_path / "frontier.png").read_bytes()[:8] == PNG


def test_plot_uncertainty(tmp_path: Path) -> None:
    path = tmp_path / "uncertainty.png"
    sj.eval.plot_uncertainty(uncertainty_result(), path, dpi=40)
    assert path.read_bytes()[:8] == PNG


def test_plot_label_budget(tmp_path: Path) -> None:
    curve = LabelBudgetResult(
        budgets=(0, 5),
        scores={
            "posterior with labels": ((50.0, 52.0), (55.0, 56.0)),
            "Best-on-Val": ((math.nan, math.nan), (51.0, 53.0)),
        },
        best_single=(60.0, 61.0),
        oracle=(80.0, 82.0),
        knn_k=20,
    )
    path = tmp_path / "budget.png"
    sj.eval.plot_label_budget(curve, path, dpi=40)
    assert path.read_bytes()[:8] == PNG
    assert sorted(p.name for p in tmp_path.iterdir()) == ["budget.png"]

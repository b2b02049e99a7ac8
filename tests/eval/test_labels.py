"""Labels in the evaluation: the label-budget curve and a person's labels file scored
(`eval/_labels.py`), on the protocol's splits (`sim_result`, conftest.py)."""

from __future__ import annotations

import jax
import numpy as np
import pytest

import smoothie_jax as sj
from smoothie_jax.eval import EvaluationResult, LabelBudgetResult

from .tasks import Data

pytestmark = pytest.mark.slow  # the router per ensemble and budget


@pytest.fixture(scope="module")
def curve(sim_result: EvaluationResult, sim_data: Data) -> LabelBudgetResult:
    return sj.eval.label_budget(sim_result, *sim_data, key=jax.random.key(1), budgets=(0, 5, 20))


def test_label_budget_table(sim_result: EvaluationResult, curve: LabelBudgetResult) -> None:
    assert curve.budgets == (0, 5, 20)
    assert set(curve.scores) == {
        "route with labels",
        "route, labels suggested",
        "Best-on-Val",
        "labelled kNN",
    }
    for rows in curve.scores.values():
        assert len(rows) == 3 and all(len(r) == 2 for r in rows)
    assert np.isnan(curve.mean("Best-on-Val")[0]) and np.isfinite(curve.mean("Best-on-Val")[1])
    # At the full budget Best-on-Val reads the same labelled rows as `evaluate`.
    np.testing.assert_allclose(
        curve.scores["Best-on-Val"][2], sim_result.method("Best-on-Val").per_ensemble, rtol=1e-9
    )
    # With no labels the routed row is the label-free router (sj.route).
    np.testing.assert_allclose(
        curve.scores["route with labels"][0],
        sim_result.method("sj.route (recommended)").per_ensemble,
        rtol=1e-6,
    )
    for v in curve.mean("route with labels"):
        assert np.mean(curve.best_single) - 40 <= v <= np.mean(curve.oracle) + 1e-9
    assert "labelled inputs" in str(curve)
    assert set(curve.to_json()) >= {"budgets", "scores", "means", "best_single", "oracle"}


def test_label_budget_bad_budget(sim_result: EvaluationResult, sim_data: Data) -> None:
    with pytest.raises(ValueError, match="budgets must be in"):
        sj.eval.label_budget(sim_result, *sim_data, key=jax.random.key(0), budgets=(0, 50))


def test_a_labels_file_is_scored_in_both_regimes(
    sim_result: EvaluationResult, sim_data: Data
) -> None:
    """The labels are the first 30 inputs' scores: each ensemble reads those among its
    rows; without labels among them the labelled router is the label-free one."""
    outputs, inputs, scores, _ = sim_data
    rows = np.arange(30)
    got = sj.eval.evaluate_labels(sim_result, outputs, inputs, scores, (rows, scores[rows]))
    assert set(got.scores) == set(sj.eval.REGIMES)
    for regime, methods in got.scores.items():
        assert set(methods) == {
            "label-free (recommended)",
            "with the labels (recommended)",
            "Best-on-Val",
        }
        assert all(len(v) == len(sim_result.splits) for v in methods.values())
        assert 0 < min(got.used[regime]) <= 30
    none = sj.eval.evaluate_labels(
        sim_result, outputs, inputs, scores, (np.zeros(0, np.int64), np.zeros((0, 5)))
    )
    for regime in sj.eval.REGIMES:
        np.testing.assert_allclose(
            none.scores[regime]["with the labels (recommended)"],
            none.scores[regime]["label-free (recommended)"],
        )
        assert np.isnan(none.gaps[regime]["Best-on-Val"]).all()
    assert "test-time" in str(got) and "train-time" in str(got)

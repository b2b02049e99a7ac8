"""The label-budget curve: the posterior with n labels against the labelled baselines,
on the protocol's splits (`sim_result`, conftest.py)."""

from __future__ import annotations

import jax
import numpy as np
import pytest

import smoothie_jax as sj
from smoothie_jax.eval import EvaluationResult, LabelBudgetResult

from .tasks import Data

pytestmark = pytest.mark.slow  # posterior fits per ensemble and budget


@pytest.fixture(scope="module")
def curve(sim_result: EvaluationResult, sim_data: Data) -> LabelBudgetResult:
    return sj.eval.label_budget(sim_result, *sim_data, key=jax.random.key(1), budgets=(0, 5, 20))


def test_label_budget_table(sim_result: EvaluationResult, curve: LabelBudgetResult) -> None:
    assert curve.budgets == (0, 5, 20)
    assert set(curve.scores) == {
        "posterior with labels",
        "posterior, labels chosen",
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
    for v in curve.mean("posterior with labels"):
        assert np.mean(curve.best_single) - 40 <= v <= np.mean(curve.oracle) + 1e-9
    assert "labelled inputs" in str(curve)
    assert set(curve.to_json()) >= {"budgets", "scores", "means", "best_single", "oracle"}


def test_label_budget_bad_budget(sim_result: EvaluationResult, sim_data: Data) -> None:
    with pytest.raises(ValueError, match="budgets must be in"):
        sj.eval.label_budget(sim_result, *sim_data, key=jax.random.key(0), budgets=(0, 50))

"""The label-budget curve on the protocol's splits (`eval.label_budget`)."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import smoothie_jax as sj


@pytest.fixture(scope="module")
def budget_data():
    task_theta = jnp.array([[4.0, 2.0, 1.0, 0.6, 3.0], [0.6, 1.0, 3.0, 4.0, 2.0]])
    outputs, inputs, task = sj.simulate_tasks(
        jax.random.key(0), task_theta, n_samples=120, dim=16, input_dim=8
    )
    theta = np.asarray(task_theta)[np.asarray(task)]
    scores = theta / theta.max()
    lengths = np.ones_like(scores)
    return outputs, inputs, scores, lengths


@pytest.fixture(scope="module")
def budget(budget_data):
    result = sj.evaluate(*budget_data, "abcde", ensembles=2, size=4, ks=(20,), n_labelled=20)
    curve = sj.eval.label_budget(
        result, *budget_data, key=jax.random.key(1), budgets=(0, 5, 20), num_samples=50
    )
    return result, curve


@pytest.mark.slow
def test_label_budget_table(budget) -> None:
    result, curve = budget
    assert curve.budgets == (0, 5, 20)
    assert set(curve.scores) == {"posterior with labels", "Best-on-Val", "labelled kNN"}
    for rows in curve.scores.values():
        assert len(rows) == 3 and all(len(r) == 2 for r in rows)
    assert np.isnan(curve.mean("Best-on-Val")[0]) and np.isfinite(curve.mean("Best-on-Val")[1])
    # At the full budget Best-on-Val reads the same labelled rows as `evaluate`.
    np.testing.assert_allclose(
        curve.scores["Best-on-Val"][2], result.method("Best-on-Val").per_ensemble, rtol=1e-9
    )
    for v in curve.mean("posterior with labels"):
        assert np.mean(curve.best_single) - 40 <= v <= np.mean(curve.oracle) + 1e-9
    assert "labelled inputs" in str(curve)
    assert set(curve.to_json()) >= {"budgets", "scores", "means", "best_single", "oracle"}


@pytest.mark.slow
def test_label_budget_bad_budget(budget, budget_data) -> None:
    result, _ = budget
    with pytest.raises(ValueError, match="budgets must be in"):
        sj.eval.label_budget(result, *budget_data, key=jax.random.key(0), budgets=(0, 50))


@pytest.mark.slow
def test_label_budget_plot(budget, tmp_path: Path) -> None:
    _, curve = budget
    path = tmp_path / "budget.png"
    sj.eval.plot_label_budget(curve, path, dpi=40)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["budget.png"]

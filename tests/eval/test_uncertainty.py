"""Routing under uncertainty, scored with the paper's protocol: consistency with `evaluate`.

Data: `tasks.simulate`, two tasks with opposite model rankings; the judge score of an
output is its model's true theta on the input's task, scaled to [0, 1], so better models
score higher and Smoothie's assumptions hold. One `evaluate` result (`sim_result`) and two
`evaluate_uncertainty` runs on it (the second with zero costs and a threshold above any
probability) are shared by every test.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import smoothie_jax as sj
from smoothie_jax.eval import EvaluationResult, MethodResult, UncertaintyResult

from .tasks import SIM_DIM, SIM_NAMES, Data

pytestmark = pytest.mark.slow  # one posterior evaluation per module: tens of seconds

K = 20
NAMES = SIM_NAMES
COSTS = {"a": 1.0, "b": 2.0, "c": 0.5, "d": 4.0, "e": 0.1}
THRESHOLDS = (0.0, 0.3, 0.5, 0.7, 0.9, 0.99)
ABOVE_ANY_PROBABILITY = 1.01  # abstains on every input
ROWS = [
    "Smoothie-Global (closed form)",
    f"Smoothie-Local k={K} (closed form)",
    "Global posterior: most probably best",
    "Global posterior: Thompson per input",
    f"Local k={K} posterior: mean",
    f"Local k={K} posterior: most probably best",
    f"Local k={K} posterior: Thompson",
]
POOLED = f"Pooled Local k={K}: most probably best"  # Wishart only


def run(result: EvaluationResult, data: Data, **kw: object) -> UncertaintyResult:
    outputs, inputs, scores, _ = data
    kw = {"costs": COSTS, "thresholds": THRESHOLDS, **kw}
    return sj.eval.evaluate_uncertainty(
        result, outputs, inputs, scores, key=jax.random.key(1), k=K, num_samples=100, **kw
    )


@pytest.fixture(scope="module")
def unc(sim_result: EvaluationResult, sim_data: Data) -> UncertaintyResult:
    return run(sim_result, sim_data)


@pytest.fixture(scope="module")
def free(sim_result: EvaluationResult, sim_data: Data) -> UncertaintyResult:
    """Same key (so the same draws), every cost zero, and one threshold abstaining always."""
    return run(
        sim_result,
        sim_data,
        costs=dict.fromkeys(NAMES, 0.0),
        thresholds=(0.0, ABOVE_ANY_PROBABILITY),
        tradeoffs=(0.0, 0.1, 10.0),
    )


def row(res: UncertaintyResult, name: str) -> MethodResult:
    (found,) = [r for r in res.methods if r.name == name]
    return found


def test_rows_and_shapes(unc: UncertaintyResult) -> None:
    assert [r.name for r in unc.methods] == ROWS
    assert [r.kind for r in unc.methods] == ["closed form"] * 2 + ["posterior"] * 5
    assert all(len(r.per_ensemble) == 2 for r in unc.methods)
    assert unc.thresholds == THRESHOLDS and unc.k == K
    assert len(unc.coverage) == len(unc.selective_score) == len(unc.fallback_score) == 6
    assert len(unc.tradeoffs) == len(unc.mean_cost) == len(unc.cost_score)
    assert unc.costs == tuple(COSTS[name] for name in NAMES)
    assert len(unc.best_in_set) == len(unc.best_in_local_set) == len(unc.set_size) == 2
    assert len(unc.prob_best_of_best) == len(unc.global_set_size) == 2
    assert all(1 <= s <= 4 for s in unc.set_size)
    assert all(1 <= s <= 4 for s in unc.global_set_size)
    assert all(0 <= p <= 1 for p in unc.prob_best_of_best)
    assert unc.model == "additive" and math.isnan(unc.n_eff_per_sample)  # counts inputs
    assert "Abstention" in str(unc) and "Cost-aware" in str(unc)


def test_closed_forms_equal_evaluate(unc: UncertaintyResult, sim_result: EvaluationResult) -> None:
    """Same ensembles, same held-out inputs, same estimator: the same numbers."""
    for mine, theirs in [(ROWS[0], "Smoothie-Global"), (ROWS[1], f"Smoothie-Local k={K}")]:
        np.testing.assert_allclose(
            row(unc, mine).per_ensemble, sim_result.method(theirs).per_ensemble, rtol=1e-9
        )


def test_posterior_routes_like_the_closed_form(unc: UncertaintyResult) -> None:
    # Theta is well identified here: the posterior's choices score like the closed form's.
    assert row(unc, ROWS[2]).per_ensemble == row(unc, ROWS[0]).per_ensemble
    assert abs(row(unc, ROWS[5]).mean - row(unc, ROWS[1]).mean) < 3
    assert row(unc, ROWS[5]).mean > row(unc, ROWS[0]).mean + 10  # Local beats Global
    assert all(unc.best_in_set)
    assert np.mean(unc.prob_best_of_best) > 1 / 4  # informative, not only wide
    assert np.mean(unc.best_in_local_set) > 0.9


def test_abstention_curve(unc: UncertaintyResult) -> None:
    coverage = np.asarray(unc.coverage)
    assert coverage[0] == 1.0  # threshold 0: nothing abstains
    assert np.all(np.diff(coverage) <= 0)
    assert np.all((0 <= coverage) & (coverage <= 1))
    # No abstention: the fallback and selective scores are the Local most-probable row.
    local = row(unc, f"Local k={K} posterior: most probably best").mean
    assert unc.fallback_score[0] == pytest.approx(local)
    assert unc.selective_score[0] == pytest.approx(local)
    # A score on routed inputs exists exactly where some input is routed.
    assert [math.isnan(s) for s in unc.selective_score] == [c == 0 for c in unc.coverage]


def test_abstaining_everywhere_falls_back_to_global(free: UncertaintyResult) -> None:
    assert free.coverage == (1.0, 0.0)
    assert math.isnan(free.selective_score[1])
    global_score = row(free, "Smoothie-Global (closed form)").mean
    assert free.fallback_score[1] == pytest.approx(global_score)


def test_cost_curve(unc: UncertaintyResult, free: UncertaintyResult) -> None:
    assert unc.tradeoffs[0] == 0.0
    # A larger trade-off never picks a dearer model; the largest takes the cheapest.
    assert np.all(np.diff(unc.mean_cost) <= 1e-12)
    assert unc.mean_cost[-1] == pytest.approx(min(COSTS.values()))
    # Trade-off 0 is the quality-only choice, whatever the costs (same key: same draws)...
    assert unc.cost_score[0] == pytest.approx(free.cost_score[0])
    # ...and with zero costs every trade-off is the quality-only choice.
    assert free.mean_cost == (0.0, 0.0, 0.0)
    assert free.cost_score == pytest.approx((free.cost_score[0],) * 3)


def test_bad_costs(sim_result: EvaluationResult, sim_data: Data) -> None:
    missing = {name: 1.0 for name in NAMES if name != "c"}
    with pytest.raises(ValueError, match=r"costs has no entry for models \['c'\]"):
        run(sim_result, sim_data, costs=missing)
    with pytest.raises(ValueError, match="finite and >= 0"):
        run(sim_result, sim_data, costs={**COSTS, "b": -1.0})
    with pytest.raises(ValueError, match="finite and >= 0"):
        run(sim_result, sim_data, costs={**COSTS, "d": math.nan})


@pytest.mark.parametrize("level", [0.5, 0.9, 0.99])
def test_credible_set_is_the_smallest_set_reaching_level(level: float) -> None:
    prob = np.random.default_rng(3).dirichlet(np.full(6, 0.7), 500).astype(np.float32)
    mask = np.asarray(sj.eval.credible_set(jnp.asarray(prob), level))
    chex.assert_shape(mask, (500, 6))
    assert mask.dtype == bool
    assert np.all(mask[np.arange(500), np.argmax(prob, axis=1)])  # holds the most probable
    mass = np.sum(np.where(mask, prob, 0.0), axis=1)
    assert np.all(mass >= level - 1e-6)
    # Minimal: dropping its least probable member falls short of the level, and every
    # model left out is no more probable than every model kept.
    smallest_kept = np.min(np.where(mask, prob, np.inf), axis=1)
    assert np.all(mass - smallest_kept < level + 1e-6)
    largest_left = np.max(np.where(mask, -np.inf, prob), axis=1)
    assert np.all(largest_left <= smallest_kept)


def test_credible_set_of_a_certain_posterior_is_one_model() -> None:
    prob = jnp.array([[0.0, 1.0, 0.0], [0.5, 0.0, 0.5]])
    mask = np.asarray(sj.eval.credible_set(prob, 0.9))
    np.testing.assert_array_equal(mask, [[False, True, False], [True, False, True]])


def test_json_is_strict_with_nan_as_null(unc: UncertaintyResult, tmp_path: Path) -> None:
    with_nan = dataclasses.replace(unc, selective_score=(*unc.selective_score[:-1], math.nan))
    path = tmp_path / "uncertainty.json"
    sj.eval.write_json(with_nan, path)

    def reject(constant: str) -> None:
        raise ValueError(f"non-standard JSON constant {constant}")

    loaded = json.loads(path.read_text(), parse_constant=reject)
    assert loaded["selective_score"][-1] is None
    assert loaded["selective_score"][:-1] == pytest.approx(list(unc.selective_score[:-1]))
    assert [m["name"] for m in loaded["methods"]] == ROWS
    assert loaded["methods"][0]["per_ensemble"] == list(unc.methods[0].per_ensemble)
    assert loaded["coverage"] == list(unc.coverage) and loaded["k"] == K
    assert sorted(p.name for p in tmp_path.iterdir()) == ["uncertainty.json"]  # atomic


def test_local_coverage_counts_ties(sim_result: EvaluationResult, sim_data: Data) -> None:
    """Every model scoring the same on every input: any set covers every input."""
    outputs, inputs, scores, _ = sim_data
    tied = (outputs, inputs, np.ones_like(scores), None)
    unc = run(sim_result, tied)
    assert unc.best_in_local_set == (1.0, 1.0)


@pytest.mark.slow
def test_wishart_still_scores_with_the_pooled_row(
    sim_result: EvaluationResult, sim_data: Data
) -> None:
    unc = run(sim_result, sim_data, model="wishart")
    assert [r.name for r in unc.methods] == [*ROWS, POOLED]
    assert unc.model == "wishart" and 0 < unc.n_eff_per_sample <= SIM_DIM
    assert "Posterior: wishart" in str(unc)


@pytest.mark.unchecked  # not one of the annotation's Literal values
def test_bad_model(sim_result: EvaluationResult, sim_data: Data) -> None:
    with pytest.raises(ValueError, match="model must be"):
        run(sim_result, sim_data, model="gaussian")

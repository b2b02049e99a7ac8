"""Tasks found in the inputs: groups get their own best model only where answers show it."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import numpy as np
import pytest

import smoothie_jax as sj
from smoothie_jax import _tasks

FIXTURES = Path(__file__).parent / "fixtures"


def two_tasks(best: tuple[int, int], n: int = 400, m: int = 4, seed: int = 0):
    """Inputs of two tasks (two tight clusters); model best[t] is right 90% of the time on
    task t, the others 50-60%; wrong answers rarely coincide."""
    rng = np.random.default_rng(seed)
    task = np.repeat([0, 1], n // 2)
    centres = rng.normal(size=(2, 8))
    inputs = (centres[task] + 0.1 * rng.normal(size=(n, 8))).astype(np.float32)
    p = np.tile([0.5, 0.55, 0.6, 0.5][:m], (n, 1))
    p[task == 0, best[0]] = 0.9
    p[task == 1, best[1]] = 0.9
    codes = np.where(rng.random((n, m)) < p, 0, 1 + rng.integers(0, 30, size=(n, m)))
    outputs = rng.normal(size=(n, m, 8)).astype(np.float32)
    return outputs, inputs, codes, task


def test_find_tasks_separates_distinct_tasks_and_keeps_one_group_when_few() -> None:
    _, inputs, _, task = two_tasks((0, 1))
    groups = _tasks.assign_tasks(inputs, _tasks.find_tasks(inputs, 2))
    assert {tuple(np.unique(groups[task == t])) for t in (0, 1)} == {(0,), (1,)}
    assert _tasks.find_tasks(inputs[:60]).shape[0] == 1  # too few inputs for two groups


def test_find_tasks_keeps_as_many_groups_as_the_inputs_show() -> None:
    rng = np.random.default_rng(1)
    for k in (2, 3):
        centres = rng.normal(size=(k, 8))
        inputs = np.repeat(centres, 80, axis=0) + 0.1 * rng.normal(size=(80 * k, 8))
        assert _tasks.find_tasks(inputs, 4).shape[0] == k  # not cut into 4 by topic


def test_plurality_marks_each_inputs_most_common_answer() -> None:
    codes = np.array([[0, 0, 1, -1], [2, 3, 4, 5], [-1, -1, -1, -1]])
    assert _tasks.plurality(codes).tolist() == [[1, 1, 0, 0], [1, 1, 1, 1], [0, 0, 0, 0]]


def test_a_small_task_gets_its_own_best_model_beside_a_large_one() -> None:
    # 600 inputs of task 0 (model 0 right 90%), 200 of task 1 (model 1 right 90%, model 0
    # 50%); wrong answers often coincide. The answer model fitted on all inputs is read by
    # task 0 and ranks model 0 first everywhere; the group's own readings show model 1.
    rng = np.random.default_rng(0)
    task = np.repeat([0, 1], [600, 200])
    inputs = rng.normal(size=(2, 8))[task] + 0.1 * rng.normal(size=(800, 8))
    p = np.where(task[:, None] == 0, [0.9, 0.5, 0.6, 0.6, 0.6], [0.5, 0.9, 0.4, 0.4, 0.4])
    codes = np.where(rng.random(p.shape) < p, 0, 1 + rng.integers(0, 4, size=p.shape))
    outputs = rng.normal(size=(800, 5, 8)).astype(np.float32)
    router = sj.fit_router(outputs, inputs.astype(np.float32), k=5, method="auto", answers=codes)
    routed = np.asarray(router.route(inputs.astype(np.float32)))
    assert np.mean(routed[task == 1] == 1) > 0.95 and np.mean(routed[task == 0] == 0) > 0.95


def test_right_probability_is_a_distribution_over_each_inputs_answers() -> None:
    codes = np.array([[0, 0, 1, -1], [2, 3, 2, 3]])
    model = sj._agreement.fit_answers(np.random.default_rng(0).integers(0, 3, (200, 4)))
    support = np.asarray(sj._agreement.answer_posterior(codes, model)[1])
    right = _tasks.right_probability(codes, support)
    assert right[0, 3] == 0.0  # no answer, never right
    np.testing.assert_allclose(right[0, 0] + right[0, 2], 1.0, rtol=1e-6)  # two answers
    np.testing.assert_allclose(right[1, 0] + right[1, 1], 1.0, rtol=1e-6)
    assert right[0, 0] == right[0, 1]  # the same answer, the same probability


def test_train_time_router_sends_each_task_to_its_own_best_model(tmp_path) -> None:
    outputs, inputs, codes, task = two_tasks((0, 1))
    router = sj.fit_router(outputs, inputs, k=5, method="auto", answers=codes)
    assert isinstance(router, sj.AnswerRouter) and router.n_tasks > 1
    routed = np.asarray(router.route(inputs))
    assert np.mean(routed[task == 0] == 0) > 0.95 and np.mean(routed[task == 1] == 1) > 0.95
    assert "own best models" in router.explain()[1]
    sj.save_router(tmp_path / "r.eqx", router)
    again = sj.load_router(tmp_path / "r.eqx")
    np.testing.assert_array_equal(again.route(inputs), routed)


def test_one_best_model_on_every_task_routes_as_one_task() -> None:
    outputs, inputs, codes, _ = two_tasks((2, 2))
    router = sj.fit_router(outputs, inputs, k=5, method="auto", answers=codes)
    assert router.accuracy.shape == (1, 4)
    assert set(np.asarray(router.route(inputs)).tolist()) == {2}


def test_test_time_reads_each_task_by_its_own_answers() -> None:
    outputs, inputs, codes, task = two_tasks((0, 1))
    choice = np.asarray(sj.route(outputs, inputs, answers=codes, method="auto").choice)
    right = codes[np.arange(len(codes)), choice] == 0
    # Each task's best model is right 90% of the time; the global model cannot know which.
    assert right[task == 0].mean() > 0.85 and right[task == 1].mean() > 0.85


def test_the_best_models_answer_stands_against_a_weak_agreement() -> None:
    # Model 0 is right 95% of the time, the others 40%; where two weak models agree on a
    # wrong answer against it, the posterior alone may follow them: the bonus keeps it.
    rng = np.random.default_rng(3)
    n, p = 600, np.array([0.95, 0.4, 0.4, 0.4])
    right = rng.random((n, 4)) < p
    codes = np.where(right, 0, 1 + rng.integers(0, 3, size=(n, 4)))  # mistakes coincide
    points = rng.normal(size=(n, 8))
    choice, score, favoured = _tasks.answer_choice(_tasks.read_answers(codes, points))
    assert set(favoured.tolist()) == {0}
    chosen_right = codes[np.arange(n), choice] == 0
    assert chosen_right.mean() >= right[:, 0].mean() - 0.01
    assert np.all(np.isfinite(score[codes >= 0]))


@pytest.mark.parametrize(
    ("saved", "kind", "rtol"),
    [
        ("router_v0.5_auto_answers", sj.AnswerRouter, 1e-6),  # answer router of 0.5
        ("router_v0.7_auto", sj.ConsensusRouter, 1e-5),  # vote router of 0.7
    ],
)
def test_a_router_saved_before_tasks_loads_as_one_task_and_routes_as_it_did(
    saved, kind, rtol, tmp_path
) -> None:
    release = saved.split("_auto")[0]
    expected = json.loads((FIXTURES / f"{release}_expected.json").read_text())
    queries = np.load(FIXTURES / f"{release}_queries.npy")
    router = sj.load_router(FIXTURES / f"{saved}.eqx")
    assert isinstance(router, kind) and router.n_tasks == 1
    np.testing.assert_allclose(router.weights(queries), expected["weights"], rtol=rtol)
    assert router.route(queries).tolist() == expected["route"]
    assert router.method == expected["method"]
    sj.save_router(tmp_path / "again.eqx", router)
    again = sj.load_router(tmp_path / "again.eqx")
    assert again.route(queries).tolist() == expected["route"]


@pytest.mark.unchecked  # __check_init__'s own message
def test_answer_router_refuses_mismatched_tasks() -> None:
    index = sj.Search().index(np.zeros((3, 4), np.float32))
    with pytest.raises(ValueError, match="centroids"):
        sj.AnswerRouter(
            index=index,
            accuracy=np.full((2, 3), 0.5, np.float32),
            centroids=np.zeros((1, 4), np.float32),
            k=1,
            models=(),
            embedder=None,
        )


def test_a_truncated_0_5_answer_router_is_refused_by_name(tmp_path) -> None:
    data = (FIXTURES / "router_v0.5_auto_answers.eqx").read_bytes()
    (tmp_path / "cut.eqx").write_bytes(data[: len(data) - 8])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        sj.load_router(tmp_path / "cut.eqx")


def two_task_outputs(n: int = 300, m: int = 4, dim: int = 16, seed: int = 0):
    """Outputs of two tasks (two tight clusters of inputs) under the paper's model: model 0
    is the most accurate on task 0 (the larger), model 1 on task 1; the others are noisy."""
    rng = np.random.default_rng(seed)
    task = (np.arange(n) >= 0.6 * n).astype(int)
    inputs = (np.array([[6.0], [-6.0]])[task] + rng.normal(size=(n, 6))).astype(np.float32)
    sd = np.full((n, m), 1.2)
    sd[task == 0, 0] = sd[task == 1, 1] = 0.3
    x = rng.normal(size=(n, 1, dim)) + sd[:, :, None] * rng.normal(size=(n, m, dim))
    return x.astype(np.float32), inputs, task


def test_the_label_free_reading_goes_task_by_task_where_the_decisions_differ() -> None:
    from smoothie_jax import _batch, _signals

    x, inputs, task = two_task_outputs()
    theta = np.asarray(_signals.read_tasks(_batch.make_batch(x, inputs))[0])
    assert theta.shape == (len(task), 4)  # one theta per input: its task's own
    assert set(np.argmax(theta[task == 0], 1)) == {0}
    assert set(np.argmax(theta[task == 1], 1)) == {1}
    # One task: the one Global theta, as the paper's.
    single = _batch.make_batch(x[task == 0], inputs[task == 0])
    np.testing.assert_array_equal(_signals.read_tasks(single)[0], sj.fit_global(x[task == 0]).theta)


def test_the_vote_router_routes_each_task_to_its_own_top_model(tmp_path) -> None:
    x, inputs, task = two_task_outputs()
    router = sj.fit_router(x, inputs, k=10, method="auto", recipe=sj.Recipe(prior=1e6))
    assert isinstance(router, sj.ConsensusRouter) and router.n_tasks > 1  # groups found
    routed = np.asarray(router.route(inputs))
    assert np.mean(routed[task == 0] == 0) > 0.95 and np.mean(routed[task == 1] == 1) > 0.95
    assert "their own top models" in router.explain()[1]
    sj.save_router(tmp_path / "r.eqx", router)
    loaded = sj.load_router(tmp_path / "r.eqx")
    assert loaded.n_tasks == router.n_tasks
    np.testing.assert_array_equal(loaded.route(inputs), routed)
    # One task: one rate per model for every query (the most voted model at this prior).
    one = sj.fit_router(x[task == 0], inputs[task == 0], k=10, method="auto")
    assert one.n_tasks == 1 and "own top models" not in one.explain()[1]


def test_the_leader_is_the_plurality_pick_among_the_models_the_answers_cannot_rule_out() -> None:
    """One model far ahead leads; two within noise of each other: of the bootstrap's set,
    the one most often of its input's plurality, and `Evidence.accuracy` ranks it first."""
    from smoothie_jax._agreement import answer_prob_best, fit_answers

    rng = np.random.default_rng(6)
    right = rng.random((600, 5)) < np.array([0.95, 0.6, 0.55, 0.5, 0.5])
    codes = np.where(right, 0, 1 + rng.integers(0, 30, (600, 5))).astype(np.int32)
    model = fit_answers(codes)
    assert _tasks.leader(codes, model, _tasks.plurality(codes)) == 0
    right = rng.random((600, 5)) < np.array([0.8, 0.79, 0.5, 0.45, 0.4])
    codes = np.where(right, 0, 1 + rng.integers(0, 30, (600, 5))).astype(np.int32)
    model, agreed = fit_answers(codes), _tasks.plurality(codes)
    prob = answer_prob_best(codes, jax.random.key(0), model=model)
    order = np.argsort(-prob, kind="stable")
    contenders = order[: int(np.searchsorted(np.cumsum(prob[order]), 0.8 - 1e-9) + 1)]
    assert set(contenders) <= {0, 1}
    lead = _tasks.leader(codes, model, agreed)
    assert lead == contenders[np.argmax(agreed.mean(0)[contenders])]
    evidence = _tasks.read_answers(codes, rng.normal(size=(600, 8)))
    assert evidence.overall == lead and int(np.argmax(evidence.accuracy)) == lead

"""Labels (`_label_model.py`): the evidence that a model is worse, and the decision it moves."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import pytest

import smoothie_jax as sj
from smoothie_jax import _label_model as lm

N, M, DIM = 150, 4, 8


@pytest.fixture(scope="module")
def fooled() -> tuple[jax.Array, np.ndarray, np.ndarray]:
    """Consensus is fooled: models 2 and 3 share a family error and so agree, while the
    judge's best model (0) is a loner. Scores are the judge's quality plus noise."""
    individual = jnp.array([1.0, 1.5, 0.6, 0.6])
    x = sj.simulate_families(
        jax.random.key(0), individual, jnp.array([0.0, 3.0]), [0, 0, 1, 1], n_samples=N, dim=DIM
    )
    quality = np.array([0.8, 0.5, 0.3, 0.2])
    rng = np.random.default_rng(0)
    scores = quality[None, :] + 0.3 * rng.standard_normal((N, M))
    return x, scores, quality


def numpy_against(scores: np.ndarray) -> np.ndarray:
    """The evidence by its definition, complete rows: paired mean differences over the
    two-way fit's residual sd, sqrt(2 sigma^2 / n) their standard error."""
    n, m = scores.shape
    centred = scores - scores.mean(axis=1, keepdims=True)
    eta = centred.mean(axis=0)
    sigma2 = np.sum((centred - eta) ** 2) / ((n - 1) * (m - 1))
    t = (eta[:, None] - eta[None, :]) / np.sqrt(2 * sigma2 / n)
    return np.maximum(t.max(axis=0), 0.0)


def test_the_evidence_matches_its_definition() -> None:
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(12, M)) + np.array([0.5, 0.0, 0.0, -0.3])
    evidence = lm.label_evidence(scores)
    np.testing.assert_allclose(evidence.against, numpy_against(scores), rtol=1e-8)
    np.testing.assert_allclose(evidence.means.sum(), 0.0, atol=1e-12)
    assert evidence.n_rows == 12 and evidence.judged.tolist() == [12] * M


def test_the_evidence_reads_only_differences_within_a_row() -> None:
    """A row's difficulty (a constant per row) and the score's scale change nothing;
    permuting the models permutes the evidence."""
    rng = np.random.default_rng(1)
    scores = rng.normal(size=(9, M))
    base = lm.label_evidence(scores).against
    shifted = 3.0 * scores + rng.normal(size=(9, 1)) * 10
    np.testing.assert_allclose(lm.label_evidence(shifted).against, base, rtol=1e-8)
    perm = np.array([2, 0, 3, 1])
    np.testing.assert_allclose(lm.label_evidence(scores[:, perm]).against, base[perm], rtol=1e-8)


def test_unjudged_models_are_never_dropped_and_one_row_is_no_evidence() -> None:
    scores = np.array([[1.0, 0.0, np.nan, 0.1], [0.9, 0.1, np.nan, 0.0], [1.0, 0.2, np.nan, 0.1]])
    evidence = lm.label_evidence(scores)
    assert evidence.against[2] == 0 and evidence.judged[2] == 0
    assert evidence.against[1] > lm.THRESHOLD and evidence.against[3] > lm.THRESHOLD
    assert lm.dropped(evidence) == [1, 3]
    one = lm.label_evidence(scores[:1])
    assert not one.against.any() and one.n_rows == 1


def test_the_gap_is_each_models_distance_behind_the_best_in_noise_sds() -> None:
    scores = np.array([[1.0, 0.0, np.nan, 0.1], [0.9, 0.1, np.nan, 0.0], [1.0, 0.2, np.nan, 0.3]])
    evidence = lm.label_evidence(scores)
    judged = evidence.judged > 0
    expected = (evidence.means[judged].max() - evidence.means) / evidence.noise
    np.testing.assert_allclose(evidence.gap[judged], expected[judged], rtol=1e-10)
    assert evidence.gap[0] == 0 and evidence.gap[2] == 0  # the best; never judged
    assert not lm.label_evidence(scores[:1]).gap.any()  # one row: nothing read


def test_the_doubt_scales_how_far_the_labels_move_the_route() -> None:
    """Doubt 0 (a sure router): labels only drop models; doubt 1: the gap counts in full.
    A model behind the best by less than the threshold but far in noise sds loses its
    inputs only where the router is unsure."""
    labels = np.array(
        [
            [0.3, 0.2, 0.0],
            [0.2, 0.3, 0.0],
            [0.4, 0.3, 0.1],
            [0.3, 0.3, 0.0],
            [0.3, 0.4, 0.1],
            [0.5, 0.3, 0.0],
        ]
    )
    evidence = lm.label_evidence(labels)
    assert lm.dropped(evidence) == [2] and evidence.gap[1] > 0.4  # 1 kept, behind 0
    score = jnp.asarray(np.tile([0.0, 0.5, 9.0], (4, 1)), jnp.float32)  # the router: 2, then 1
    chex.assert_trees_all_equal(
        jnp.argmax(lm.labelled_score(score, evidence, doubt=0.0), axis=1), jnp.ones(4, int)
    )
    unsure = lm.labelled_score(score, evidence, doubt=1.0, weight=10.0)
    chex.assert_trees_all_equal(jnp.argmax(unsure, axis=1), jnp.zeros(4, int))
    half = lm.labelled_score(score, evidence, doubt=0.05, weight=10.0)  # 0.24 < 0.5: kept
    chex.assert_trees_all_equal(jnp.argmax(half, axis=1), jnp.ones(4, int))


def test_the_doubt_is_low_where_the_answers_show_the_best_and_high_where_nothing_does() -> None:
    rng = np.random.default_rng(4)
    right = rng.random((400, 5)) < np.array([0.9, 0.6, 0.55, 0.5, 0.5])
    codes = np.where(right, 0, 1 + rng.integers(0, 50, (400, 5))).astype(np.int32)
    x = jnp.asarray(rng.normal(size=(400, 5, DIM)), jnp.float32)
    assert lm.router_doubt(sj.make_batch(x, answers=codes)) < 0.1
    same = sj.make_batch(x)  # exchangeable outputs, no answers: the Global posterior
    prob = sj.posterior.certainty(x, key=jax.random.key(lm.DOUBT_KEY)).prob_best
    np.testing.assert_allclose(lm.router_doubt(same), (1 - prob.max()) / (1 - 1 / 5), rtol=1e-6)
    assert lm.router_doubt(same) > 0.3
    observed = np.ones((400, 5), bool)
    observed[1:, 0] = False  # one input every model answered: nothing to read
    assert lm.router_doubt(sj.make_batch(x, answers=codes, observed=observed)) == 1.0


def test_labels_that_show_no_difference_leave_the_route_unchanged(fooled) -> None:
    x, _, _ = fooled
    free = sj.route(x).choice
    ties = (np.arange(10), np.ones((10, M)))
    chex.assert_trees_all_equal(sj.route(x, labels=ties).choice, free)
    few = (np.array([3]), np.array([[1.0, 0.0, 0.0, 0.0]]))  # one row: no evidence
    chex.assert_trees_all_equal(sj.route(x, labels=few).choice, free)


@pytest.mark.slow  # seconds of work: the independence test per route
def test_labels_overturn_a_wrong_router(fooled) -> None:
    """The router prefers the agreeing family; 20 labels from the judge (model 0 best)
    move the route to model 0 and drop the models they show worse."""
    x, scores, quality = fooled
    free = np.asarray(sj.route(x).choice)
    assert np.mean(free == 0) < 0.5  # the router is wrong
    rows = np.arange(20)
    decision = sj.route(x, labels=(rows, scores[rows]))
    assert np.mean(np.asarray(decision.choice) == 0) > 0.9
    assert decision.method == "labels" and "20 labelled inputs" in decision.reason
    assert "how unsure the label-free router is" in decision.reason
    assert quality[np.asarray(decision.choice)].mean() > quality[free].mean()


def test_with_answers_the_start_is_the_answer_vote() -> None:
    """Models giving one answer tie in the answer posterior's score: the tie goes where
    the label-free vote goes (the most accurate giver, an answer over none)."""
    rng = np.random.default_rng(2)
    right = rng.random((300, M)) < np.array([0.9, 0.7, 0.6, 0.5])
    codes = np.where(right, 0, 1 + rng.integers(0, 3, (300, M))).astype(np.int32)
    codes[:5, :3] = -1  # rows only one model answered
    x = jnp.asarray(rng.normal(size=(300, M, DIM)), jnp.float32)
    score = lm.router_score(sj.make_batch(x, answers=codes))
    chex.assert_trees_all_equal(jnp.argmax(score, axis=1), sj.route(x, answers=codes).choice)


@pytest.mark.slow  # seconds of work: a posterior per budget
def test_the_labels_posterior_finds_the_best_model(fooled) -> None:
    x, scores, _ = fooled
    prob = []
    for n_lab in (2, 20, 80):
        rows = np.arange(n_lab)
        post = sj.posterior.fit_posterior(
            x, key=jax.random.key(1), num_samples=500, labels=(rows, scores[rows])
        )
        chex.assert_shape(post.theta_samples, (500, M))
        chex.assert_tree_all_finite(post.theta_samples)
        prob.append(float(post.prob_best[0]))
    assert prob[2] > 0.95 and prob[2] >= prob[0], prob


def test_suggested_labels_are_fresh_and_with_answers_where_answers_differ() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(40, M, DIM)).astype(np.float32)
    first = np.asarray(sj.posterior.suggest_labels(x, 5, key=jax.random.key(0)))
    assert first.shape == (5,) and len(set(first.tolist())) == 5
    labels = (first, rng.random((5, M)))
    again = np.asarray(sj.posterior.suggest_labels(x, 30, key=jax.random.key(0), labels=labels))
    assert not set(again.tolist()) & set(first.tolist())  # never twice
    answers = np.zeros((40, M), np.int32)
    answers[[3, 11, 29], 2] = 1  # the models differ on three inputs only
    picks = np.asarray(sj.posterior.suggest_labels(x, 4, key=jax.random.key(0), answers=answers))
    assert set(picks[:3].tolist()) == {3, 11, 29}
    with pytest.raises(ValueError, match="n must be"):
        sj.posterior.suggest_labels(x, 41, key=jax.random.key(0))


@pytest.mark.parametrize(
    "labels, message",
    [
        ((np.array([0, N]), np.ones((2, M))), r"rows must be in \[0, 150\)"),
        ((np.array([-1]), np.ones((1, M))), r"rows must be in \[0, 150\)"),
        ((np.array([0, 1]), np.full((2, M), np.nan)), "no labelled row has two or more"),
        ((np.array([0]), np.array([[1.0, np.inf, 0.0, 0.0]])), "contain inf"),
        ((np.array([0, 1, 2]), np.ones((2, M))), "differ in length"),
        ((np.array([0, 1]), np.ones((2, M + 1))), "must have shape"),
        ((np.array([0.5, 1.0]), np.ones((2, M))), "1-d array of ints"),
        ((np.array([[0, 1]]), np.ones((2, M))), "1-d array of ints"),
        pytest.param(np.ones((2, M)), "pair", marks=pytest.mark.unchecked),
    ],
)
def test_bad_labels_raise(fooled, labels, message: str) -> None:
    x, _, _ = fooled
    with pytest.raises(ValueError, match=message):
        sj.route(x, labels=labels)


@pytest.mark.slow
def test_label_model_site_shapes() -> None:
    scores = jnp.array([[1.0, 0.0, jnp.nan], [0.5, 0.5, 1.0]])
    seeded = numpyro.handlers.seed(lm.label_model, jax.random.key(0))
    trace = numpyro.handlers.trace(seeded).get_trace(scores, 0.3, 0.2)
    assert trace["eta"]["value"].shape == (3,)
    assert trace["row"]["value"].shape == (2,)
    assert trace["scores"]["value"].shape == (2, 3)

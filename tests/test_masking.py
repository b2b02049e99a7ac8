"""Models that did not answer some inputs: the estimators work on the observed entries."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from reference import brute_force_knn, reference_masked_theta

import smoothie_jax as sj

N, M, DIM = 120, 5, 8


@pytest.fixture(scope="module")
def problem() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    theta = jnp.array([4.0, 2.0, 1.0, 0.5, 3.0])
    x, inputs, _ = sj.simulate_tasks(
        jax.random.key(0), jnp.stack([theta, theta[::-1]]), n_samples=N, dim=DIM, input_dim=6
    )
    observed = np.array(jax.random.uniform(jax.random.key(1), (N, M)) > 0.3)
    observed[:, :3] = True  # every input keeps three answers
    return np.asarray(x), np.asarray(inputs), observed


@pytest.mark.slow
def test_nothing_masked_equals_the_full_fits(problem) -> None:
    x, inputs, _ = problem
    full = np.ones((N, M), bool)
    g = sj.fit_global(x).theta
    np.testing.assert_allclose(
        sj.fit_global(x, observed=full).theta, np.broadcast_to(g, (N, M)), rtol=1e-5
    )
    local = sj.fit_local(x, inputs, k=10).theta
    np.testing.assert_allclose(sj.fit_local(x, inputs, k=10, observed=full).theta, local, rtol=1e-5)
    router = sj.fit_router(x, inputs, k=10)
    masked = sj.fit_router(x, inputs, k=10, observed=full)
    np.testing.assert_allclose(masked.theta(inputs[:7]), router.theta(inputs[:7]), rtol=1e-5)


@pytest.mark.slow
def test_masked_global_matches_the_oracle(problem) -> None:
    x, _, observed = problem
    want = reference_masked_theta(x, observed)
    got = np.asarray(sj.fit_global(x, observed=observed).theta)
    np.testing.assert_allclose(got, np.where(observed, want, 0.0), rtol=1e-4)


def test_masked_local_matches_the_oracle(problem) -> None:
    x, inputs, observed = problem
    got = np.asarray(sj.fit_local(x, inputs, k=12, observed=observed).theta)
    neighbours = brute_force_knn(inputs, inputs, 12, include_self=True)
    for i in (0, 17, 63, 119):
        rows = neighbours[i]
        want = reference_masked_theta(x[rows], observed[rows])
        np.testing.assert_allclose(got[i], np.where(observed[i], want, 0.0), rtol=1e-4)


def test_masked_router_matches_the_oracle(problem) -> None:
    x, inputs, observed = problem
    router = sj.fit_router(x, inputs, k=12, observed=observed)
    queries = inputs[:5] + 0.01
    got = np.asarray(router.theta(queries))
    neighbours = brute_force_knn(queries, inputs, 12)
    for q in range(5):
        rows = neighbours[q]
        np.testing.assert_allclose(
            got[q], reference_masked_theta(x[rows], observed[rows]), rtol=1e-4
        )


def test_a_model_is_never_chosen_where_it_did_not_answer(problem) -> None:
    x, inputs, observed = problem
    for smoothie in (
        sj.fit_global(x, observed=observed),
        sj.fit_local(x, inputs, k=10, observed=observed),
    ):
        route = np.asarray(smoothie.route())
        assert observed[np.arange(N), route].all()


def test_the_vote_router_counts_only_where_a_model_answered(problem, tmp_path) -> None:
    x, inputs, observed = problem
    router = sj.fit_router(x, inputs, k=10, observed=observed, method="auto")
    votes = np.asarray(router.votes)
    assert np.all(votes[~observed] == 0) and np.all(votes.sum(1) == 1)  # one vote, answered
    # A rate per model over the inputs it answered, not over all of them.
    np.testing.assert_allclose(router.share[0], votes.sum(0) / observed.sum(0), rtol=1e-6)
    sj.save_router(tmp_path / "r.eqx", router)
    loaded = sj.load_router(tmp_path / "r.eqx")
    np.testing.assert_array_equal(loaded.scores(inputs[:9]), router.scores(inputs[:9]))


def test_saved_masked_router_round_trips(problem, tmp_path) -> None:
    x, inputs, observed = problem
    router = sj.fit_router(x, inputs, k=12, observed=observed)
    sj.save_router(tmp_path / "r.eqx", router)
    loaded = sj.load_router(tmp_path / "r.eqx")
    np.testing.assert_array_equal(loaded.theta(inputs[:9]), router.theta(inputs[:9]))


@pytest.mark.parametrize(
    ("mask", "match"),
    [
        pytest.param(lambda o: o.astype(int), "bool", marks=pytest.mark.unchecked),
        pytest.param(lambda o: o[:, :4], "shape", marks=pytest.mark.unchecked),
        (lambda o: np.where(np.arange(N)[:, None] == 3, False, o), "no answer from any model"),
        (lambda o: np.where(np.arange(M) == 4, False, o), "two other models"),
    ],
    ids=["dtype", "shape", "unanswered input", "model never answered"],
)
def test_bad_masks_are_refused(problem, mask, match) -> None:
    x, inputs, observed = problem
    with pytest.raises(ValueError, match=match):
        sj.fit_local(x, inputs, k=5, observed=mask(observed))

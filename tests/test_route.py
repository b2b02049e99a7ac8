"""The decision stage: `sj.route` (test-time) and `sj.fit_router(method="auto")`."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import smoothie_jax as sj
from smoothie_jax._signals import CONSENSUS_WEIGHT

N, M, DIM = 150, 5, 16


@pytest.fixture(scope="module")
def problem() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two families (models 0-2 share an error, 3-4 another): the consensus is confounded."""
    x = sj.simulate_families(
        jax.random.key(0),
        jnp.array([0.2, 0.3, 0.4, 0.2, 0.5]),
        jnp.array([0.6, 0.6]),
        [0, 0, 0, 1, 1],
        n_samples=N,
        dim=DIM,
    )
    inputs = np.asarray(jax.random.normal(jax.random.key(2), (N, 6)))
    lengths = np.asarray(jax.random.randint(jax.random.key(1), (N, M), 0, 3000), np.float64)
    return np.asarray(x), inputs, lengths


@pytest.fixture(scope="module")
def independent() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Independent errors (the paper's model): the consensus is trusted."""
    theta = jnp.array([4.0, 2.0, 1.0, 0.5, 3.0])
    x, inputs, _ = sj.simulate_tasks(
        jax.random.key(0), jnp.stack([theta, theta]), n_samples=N, dim=DIM, input_dim=6
    )
    lengths = np.asarray(jax.random.randint(jax.random.key(1), (N, M), 0, 3000), np.float64)
    return np.asarray(x), np.asarray(inputs), lengths


def lencons_by_hand(x: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The recommended score, written out in NumPy float64 from its definition."""
    d = np.mean(np.sum((x[:, :, None] - x[:, None]) ** 2, axis=-1), axis=0)
    m = d.shape[0]
    r, s = d.sum(1), d.sum() / 2
    log_theta = -np.log(np.maximum(((m - 1) * r - s) / ((m - 1) * (m - 2)), 1e-6))

    def z(a: np.ndarray) -> np.ndarray:
        c = a - a.mean(axis=1, keepdims=True)
        return c / c.std()

    return z(np.log1p(lengths)) + CONSENSUS_WEIGHT * z(np.broadcast_to(log_theta, lengths.shape))


@pytest.mark.slow
def test_route_is_lencons_where_families_confound_the_consensus(problem) -> None:
    x, inputs, lengths = problem
    decision = sj.route(x, inputs, lengths=lengths)
    assert sj.diagnose(x).groups  # the test sees the families
    assert decision.method == "lencons" and decision.choice.shape == (N,)
    np.testing.assert_array_equal(decision.choice, np.argmax(lencons_by_hand(x, lengths), 1))
    np.testing.assert_allclose(decision.probabilities.sum(1), 1.0)
    assert decision.diagnosis is not None and decision.diagnosis.n_samples == N


@pytest.mark.slow
def test_route_trusts_the_consensus_without_families(independent) -> None:
    x, inputs, lengths = independent
    decision = sj.route(x, inputs, lengths=lengths)
    assert decision.diagnosis is not None and not decision.diagnosis.groups
    assert decision.method == "smoothie-global" and "trusted" in decision.reason
    assert set(np.asarray(decision.choice).tolist()) == {int(sj.fit_global(x).route())}


@pytest.mark.slow
def test_route_without_lengths_is_smoothie_global(problem) -> None:
    x, inputs, _ = problem
    decision = sj.route(x, inputs)
    assert decision.method.startswith("smoothie-global")
    assert set(np.asarray(decision.choice).tolist()) == {int(sj.fit_global(x).route())}


def test_equal_lengths_leave_the_consensus(problem) -> None:
    x, _, _ = problem
    decision = sj.route(x, lengths=np.full((N, M), 100.0))
    assert decision.method == "lencons"
    assert set(np.asarray(decision.choice).tolist()) == {int(sj.fit_global(x).route())}


@pytest.mark.slow
def test_paper_estimators_by_name(independent) -> None:
    x, inputs, lengths = independent
    local = sj.route(x, inputs, lengths=lengths, method="local", k=10)
    np.testing.assert_array_equal(local.choice, sj.fit_local(x, inputs, k=10).route())
    plain = sj.route(x, inputs, method="global", check=False)
    assert set(np.asarray(plain.choice).tolist()) == {int(sj.fit_global(x).route())}


@pytest.mark.slow
def test_route_masks_models_that_did_not_answer(problem) -> None:
    x, inputs, lengths = problem
    observed = np.ones((N, M), bool)
    observed[::2, 0] = False
    observed[1::3, 3] = False
    decision = sj.route(x, inputs, lengths=lengths, observed=observed)
    assert observed[np.arange(N), np.asarray(decision.choice)].all()


def test_fit_router_auto_scores_by_hand(problem) -> None:
    x, inputs, lengths = problem
    router = sj.fit_router(x, inputs, k=10, method="auto", lengths=lengths)
    assert router.confounded
    queries = inputs[:20] + 0.01
    ll = np.log1p(lengths)
    dist = np.sum((queries[:, None] - inputs[None]) ** 2, axis=-1)
    near = np.argsort(dist, axis=1, kind="stable")[:, :10]
    predicted = ll[near].mean(axis=1)
    # The spread is fixed at fit time, leave-one-out over the past inputs.
    d_self = np.sum((inputs[:, None] - inputs[None]) ** 2, axis=-1)
    np.fill_diagonal(d_self, np.inf)
    loo = ll[np.argsort(d_self, axis=1, kind="stable")[:, :10]].mean(axis=1)
    scale = (loo - loo.mean(1, keepdims=True)).std()
    full = lencons_by_hand(x, lengths)
    consensus = full[0] - (np.log1p(lengths[0]) - np.log1p(lengths[0]).mean()) / (
        (np.log1p(lengths) - np.log1p(lengths).mean(1, keepdims=True)).std()
    )
    want = (predicted - predicted.mean(1, keepdims=True)) / scale + consensus
    np.testing.assert_allclose(router.scores(queries), want, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(router.route(queries), np.argmax(want, axis=1))
    # A query routes the same whatever else is in its batch.
    np.testing.assert_array_equal(router.route(queries[:3]), router.route(queries)[:3])


def test_auto_router_trusts_the_consensus_without_families(independent) -> None:
    x, inputs, lengths = independent
    router = sj.fit_router(x, inputs, k=10, method="auto", lengths=lengths)
    assert not router.confounded
    assert set(np.asarray(router.route(inputs[:40])).tolist()) == {int(sj.fit_global(x).route())}


def test_auto_router_saves_and_loads(problem, tmp_path) -> None:
    x, inputs, lengths = problem
    router = sj.fit_router(x, inputs, k=10, method="auto", lengths=lengths, models="abcde")
    sj.save_router(tmp_path / "r.eqx", router)
    loaded = sj.load_router(tmp_path / "r.eqx")
    assert loaded.method == "auto" and loaded.models == tuple("abcde")
    np.testing.assert_array_equal(loaded.route(inputs[:30]), router.route(inputs[:30]))


@pytest.mark.parametrize(
    ("change", "match"),
    [
        pytest.param(
            lambda lengths: lengths[:, :4], "lengths must have shape", marks=pytest.mark.unchecked
        ),
        (lambda lengths: -lengths, "lengths must be >= 0"),
        (lambda lengths: np.where(lengths > 1000, np.nan, lengths), "lengths contains NaN"),
    ],
    ids=["shape", "negative", "nan"],
)
def test_bad_lengths_are_refused(problem, change, match) -> None:
    x, inputs, lengths = problem
    with pytest.raises(ValueError, match=match):
        sj.route(x, inputs, lengths=change(lengths))
    with pytest.raises(ValueError, match=match):
        sj.fit_router(x, inputs, k=5, method="auto", lengths=change(lengths))


def test_bad_methods_are_refused(problem) -> None:
    x, inputs, lengths = problem
    with pytest.raises(ValueError, match="method must be one of"):
        sj.route(x, inputs, method="best")
    with pytest.raises(ValueError, match="method must be one of"):
        sj.fit_router(x, inputs, k=5, method="lencons")
    with pytest.raises(ValueError, match="needs lengths"):
        sj.fit_router(x, inputs, k=5, method="auto")
    with pytest.raises(ValueError, match="needs inputs"):
        sj.route(x, method="local")


def test_route_dispatches_to_one_function_per_method(independent) -> None:
    x, inputs, lengths = independent
    pairs = [
        (sj.route(x, inputs, lengths=lengths), sj.route_auto(x, lengths=lengths)),
        (sj.route(x, method="global", check=False), sj.route_global(x, check=False)),
        (
            sj.route(x, inputs, method="local", k=10, check=False),
            sj.route_local(x, inputs, k=10, check=False),
        ),
    ]
    for via_route, direct in pairs:
        np.testing.assert_array_equal(via_route.choice, direct.choice)
        np.testing.assert_allclose(via_route.weights, direct.weights)
        assert via_route.method == direct.method and via_route.reason == direct.reason


def test_router_decides_with_a_reason(independent) -> None:
    x, inputs, _ = independent
    router = sj.fit_router(x, inputs, k=10)
    decision = router.decide(inputs[:7])
    assert isinstance(decision, sj.Decision)
    np.testing.assert_array_equal(decision.choice, router.route(inputs[:7]))
    np.testing.assert_allclose(decision.weights, router.weights(inputs[:7]), rtol=1e-6)
    assert decision.method.startswith("smoothie-local") and "nearest past inputs" in decision.reason
    # A model that did not answer a query is never chosen for it.
    observed = np.ones((7, M), bool)
    observed[:, np.asarray(decision.choice)[0]] = False
    masked = router.decide(inputs[:7], observed=observed)
    assert observed[np.arange(7), np.asarray(masked.choice)].all()

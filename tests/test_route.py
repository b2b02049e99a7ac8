"""The decision stage: `sj.route` (test-time), the recommended router and `Router.decide`."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import smoothie_jax as sj
from smoothie_jax import _batch, _family_design, _validate

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


@pytest.fixture(scope="module")
def tracking() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each output's error scale varies by input, and its length falls with it: length
    tracks the consensus (the gate opens)."""
    rng = np.random.default_rng(3)
    truth = rng.normal(size=(N, 1, DIM))
    scale = rng.uniform(0.3, 1.5, size=(N, M)) * np.array([0.6, 0.8, 1.0, 1.2, 1.4])
    x = truth + scale[:, :, None] * rng.normal(size=(N, M, DIM))
    lengths = 2000 * np.exp(-scale) * rng.uniform(0.9, 1.1, size=(N, M))
    inputs = rng.normal(size=(N, 6))
    return x.astype(np.float32), inputs.astype(np.float32), lengths


def recommended_by_hand(x: np.ndarray, sharpness: float | None = None) -> np.ndarray:
    """The weighted consensus, written out in NumPy float64 from its definition: each
    output's squared distance to the others, weighted by Global theta^s."""
    s = sj.Recipe().sharpness if sharpness is None else sharpness
    d = np.sum((np.asarray(x, np.float64)[:, :, None] - x[:, None]) ** 2, axis=-1)
    theta = np.asarray(sj.fit_global(x).theta, np.float64)
    v = (theta / theta.max()) ** s
    return -d @ (v / v.sum())


def test_the_recommended_router_is_the_weighted_consensus(tracking) -> None:
    x, inputs, lengths = tracking
    decision = sj.route(x, inputs, lengths=lengths)
    assert decision.method == "weighted consensus" and "Lengths are left out" in decision.reason
    np.testing.assert_array_equal(decision.choice, np.argmax(recommended_by_hand(x), 1))
    np.testing.assert_allclose(decision.probabilities.sum(1), 1.0)
    np.testing.assert_allclose(decision.weights.sum(1), 1.0, rtol=1e-5)
    assert decision.diagnosis is not None and decision.diagnosis.n_samples == N


def test_lengths_never_change_the_label_free_route(tracking) -> None:
    x, inputs, lengths = tracking
    with_lengths = sj.route(x, inputs, lengths=lengths)
    without = sj.route(x, inputs)
    np.testing.assert_array_equal(with_lengths.choice, without.choice)
    assert "Lengths" not in without.reason


def test_the_sharpness_runs_from_the_consensus_to_global(problem) -> None:
    x, inputs, _ = problem
    # s = 0: the plain consensus, the paper's per-input choice (Smoothie-Local, k = 1).
    flat = sj.route_auto(x, recipe=sj.Recipe(sharpness=0.0))
    np.testing.assert_array_equal(flat.choice, sj.fit_local(x, inputs, k=1).route())
    # A large s: Smoothie-Global's model on every input.
    sharp = sj.route_auto(x, recipe=sj.Recipe(sharpness=200.0))
    assert set(np.asarray(sharp.choice).tolist()) == {int(sj.fit_global(x).route())}
    middle = sj.route_auto(x, recipe=sj.Recipe(sharpness=1.0))
    np.testing.assert_array_equal(middle.choice, np.argmax(recommended_by_hand(x, 1.0), 1))


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


def test_fit_router_auto_scores_by_hand(tracking) -> None:
    x, inputs, lengths = tracking
    router = sj.fit_router(x, inputs, k=10, method="auto", lengths=lengths)
    assert isinstance(router, sj.ConsensusRouter)
    queries = inputs[:20] + 0.01
    # Each past input votes for its test-time choice at s = 1 (the model's own answer).
    votes = np.eye(M)[np.argmax(recommended_by_hand(x, sharpness=1.0), axis=1)]
    near = np.argsort(np.sum((queries[:, None] - inputs[None]) ** 2, -1), 1, kind="stable")
    prior = sj.Recipe().prior * votes.mean(axis=0)
    raw = votes[near[:, :10]].mean(axis=1) + prior
    # In the units of the test-time score: divided by the spread of the same score
    # predicted for each past input from its 10 nearest others (leave one out).
    d_self = np.sum((inputs[:, None] - inputs[None]) ** 2, axis=-1)
    np.fill_diagonal(d_self, np.inf)
    loo = votes[np.argsort(d_self, axis=1, kind="stable")[:, :10]].mean(axis=1) + prior
    scale = (loo - loo.mean(1, keepdims=True)).std()
    want = (raw - raw.mean(1, keepdims=True)) / scale
    np.testing.assert_allclose(router.scores(queries), want, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(router.route(queries), np.argmax(want, axis=1))
    # A query routes the same whatever else is in its batch.
    np.testing.assert_array_equal(router.route(queries[:3]), router.route(queries)[:3])
    assert router.decide(queries).method == "consensus vote, train-time"


def test_the_vote_prior_moves_routing_from_the_neighbours_to_one_model() -> None:
    # Two kinds of input: model 0 is best on the larger, model 1 on the other; too few
    # inputs (90) to look for tasks (`_tasks.MIN_TASK`), so the kinds are one task.
    rng = np.random.default_rng(0)
    n, dim = 90, 16
    kind = (np.arange(n) >= 55).astype(int)
    inputs = (rng.normal(size=(n, 4)) + 6.0 * kind[:, None]).astype(np.float32)
    noise = np.where(kind[:, None] == 0, [0.3, 1.0, 1.0, 1.0], [1.0, 0.3, 1.0, 1.0])
    x = rng.normal(size=(n, 1, dim)) + noise[:, :, None] * rng.normal(size=(n, 4, dim))
    local = sj.fit_router(x, inputs, k=10, method="auto", recipe=sj.Recipe(prior=0.0))
    overall = sj.fit_router(x, inputs, k=10, method="auto", recipe=sj.Recipe(prior=1e6))
    assert np.mean(np.asarray(local.route(inputs)) == kind) > 0.9  # each kind its own
    assert np.all(np.asarray(overall.route(inputs)) == 0)  # the most voted model


@pytest.mark.parametrize(
    "bad",
    [
        {"prior": -1.0},
        {"prior": float("nan")},
        {"sharpness": -0.5},
        pytest.param({"prior": "16"}, marks=pytest.mark.unchecked),
    ],
)
def test_a_recipe_refuses_a_bad_constant(bad) -> None:
    name = next(iter(bad))
    with pytest.raises(ValueError, match=f"Recipe.{name} must be a finite number >= 0"):
        sj.Recipe(**bad)


def test_auto_router_saves_and_loads(tracking, tmp_path) -> None:
    x, inputs, lengths = tracking
    router = sj.fit_router(x, inputs, k=10, method="auto", lengths=lengths, models="abcde")
    sj.save_router(tmp_path / "r.eqx", router)
    loaded = sj.load_router(tmp_path / "r.eqx")
    assert isinstance(loaded, sj.ConsensusRouter) and loaded.models == tuple("abcde")
    assert loaded.recipe == router.recipe
    np.testing.assert_array_equal(loaded.route(inputs[:30]), router.route(inputs[:30]))


def test_old_recommended_routers_are_refused(tmp_path) -> None:
    path = tmp_path / "old.eqx"
    path.write_text('{"format": "smoothie_jax.Router/2", "method": "auto"}\n')
    with pytest.raises(ValueError, match="fit it again"):
        sj.load_router(path)


def test_consensus_routers_of_0_6_are_refused_with_how_to_refit(tracking, tmp_path) -> None:
    x, inputs, _ = tracking
    path = tmp_path / "r.eqx"
    sj.save_router(path, sj.fit_router(x, inputs, k=10, method="auto"))
    header, rest = path.read_bytes().split(b"\n", 1)
    old = json.loads(header)
    del old["settings"]["rule"], old["settings"]["recipe"]["prior"]  # as 0.4 to 0.6 wrote
    path.write_bytes(json.dumps(old).encode() + b"\n" + rest)
    with pytest.raises(ValueError, match=r"0.4 to 0.6.*fit it again.*method='auto'"):
        sj.load_router(path)


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
    with pytest.raises(ValueError, match="read by method='auto' only"):
        sj.fit_router(x, inputs, k=5, lengths=lengths)
    with pytest.raises(ValueError, match="read by method='auto' only"):
        sj.route(x, inputs, method="local", answers=np.zeros((N, M), int))
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


@pytest.mark.parametrize("method", ["auto", "local", "global", "router", "auto router"])
def test_embeddings_are_validated_once_and_d_computed_once(problem, method, monkeypatch) -> None:
    # The public entry point builds one Batch; nothing below it validates or derives D again.
    x, inputs, lengths = problem
    calls = {"validated": 0, "distances": 0}
    check, distances = _validate.check_embeddings, _batch._distances

    def counting_check(*args: object, **kwargs: object) -> object:
        calls["validated"] += 1
        return check(*args, **kwargs)

    def counting_distances(embeddings: object) -> object:
        calls["distances"] += 1
        return distances(embeddings)

    def no_second_d(embeddings: object) -> None:
        raise AssertionError("the independence test must read the batch's D")

    monkeypatch.setattr(_validate, "check_embeddings", counting_check)
    monkeypatch.setattr(_batch, "_distances", counting_distances)
    monkeypatch.setattr(_family_design, "pair_vectors", no_second_d)
    if method == "router":
        sj.fit_router(x, inputs, k=10)
    elif method == "auto router":
        sj.fit_router(x, inputs, k=10, method="auto", lengths=lengths)
    else:
        sj.route(x, inputs, lengths=lengths if method == "auto" else None, method=method)
    assert calls == {"validated": 1, "distances": 1}

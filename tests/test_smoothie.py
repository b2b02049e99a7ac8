"""The fit_* entry points: parity with the NumPy oracle, recovery, invariants, tracing."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from reference import (
    random_problem,
    reference_generations,
    reference_global,
    reference_kernel,
    reference_local,
)

import smoothie_jax as sj
from smoothie_jax import _smoothie

RTOL = 1e-5  # float32 JAX against float64 NumPy
EPS = 1e-6


@pytest.fixture(scope="module")
def problem() -> tuple[np.ndarray, np.ndarray]:
    return random_problem(0)  # n=200, m=5, dim=32, input_dim=8


# ---- parity with the per-sample, per-triplet NumPy loop -------------------------------


def test_global_matches_reference(problem) -> None:
    embeddings, _ = problem
    theta = sj.fit_global(embeddings).theta
    chex.assert_shape(theta, (5,))
    np.testing.assert_allclose(np.asarray(theta), reference_global(embeddings), rtol=RTOL)


@pytest.mark.parametrize("k", [1, 5, 20])
def test_local_matches_reference(problem, k: int) -> None:
    embeddings, inputs = problem
    expected = reference_local(embeddings, inputs, k)
    # Precondition: even one sample's delta is far from 0, where float32 cancellation would
    # dominate (k = 1 is the hardest case), and nothing is clamped.
    assert np.min(32 / (2 * expected)) > 0.5
    theta = sj.fit_local(embeddings, inputs, k=k).theta
    chex.assert_shape(theta, (200, 5))
    np.testing.assert_allclose(np.asarray(theta), expected, rtol=RTOL)


def test_local_clamps_where_reference_clamps() -> None:
    # Wider sigmas and a small dim: some single-sample deltas come out <= 0 (clamped) and
    # some near 0 (where float32 and float64 legitimately differ); compare the rest.
    embeddings, inputs = random_problem(1, dim=16, sigma_range=(0.3, 1.0))
    expected = reference_local(embeddings, inputs, 1, eps=EPS)
    delta = 16 / (2 * reference_local(embeddings, inputs, 1, eps=-np.inf))  # unclamped
    theta = np.asarray(sj.fit_local(embeddings, inputs, k=1, eps=EPS).theta)
    clamped = delta <= EPS
    assert clamped.any()
    np.testing.assert_array_equal(expected[clamped], 16 / (2 * EPS))
    # Reference delta clearly negative -> JAX clamps too, to exactly dim / (2 eps).
    sure = delta < -1e-2
    assert sure.any()
    np.testing.assert_allclose(theta[sure], 16 / (2 * EPS), rtol=1e-6)
    clear = delta > 0.5
    np.testing.assert_allclose(theta[clear], expected[clear], rtol=RTOL)


def test_kernel_matches_reference(problem) -> None:
    embeddings, inputs = problem
    # Inputs are 8-d standard normal (squared distances ~16): bandwidth 1.5 weights a
    # neighbourhood of a few samples heavily, neither 1-NN nor global.
    theta = sj.fit_kernel(embeddings, inputs, bandwidth=1.5).theta
    np.testing.assert_allclose(
        np.asarray(theta), reference_kernel(embeddings, inputs, 1.5), rtol=RTOL
    )


def test_generations_match_reference() -> None:
    rng = np.random.default_rng(2)
    y = rng.normal(size=(40, 1, 1, 32))
    sigma = rng.uniform(0.6, 1.0, size=(1, 1, 5, 1))
    embeddings = (y + sigma * rng.normal(size=(40, 6, 5, 32))).astype(np.float32)
    theta = sj.fit_generations(embeddings).theta
    chex.assert_shape(theta, (40, 5))
    np.testing.assert_allclose(np.asarray(theta), reference_generations(embeddings), rtol=RTOL)


# ---- recovery of the paper's model ----------------------------------------------------


# Both recovery tests draw (10_000, 5, 10) outputs: same shapes, so the random draws
# compile once for the two.
N_SIM, DIM_SIM = 10_000, 10


@pytest.mark.slow
def test_global_recovers_simulated_theta(key) -> None:
    true_theta = jnp.array([0.5, 1.0, 2.0, 4.0, 8.0])
    embeddings = sj.simulate_outputs(key, jnp.broadcast_to(true_theta, (N_SIM, 5)), dim=DIM_SIM)
    fitted = sj.fit_global(embeddings)
    true_weights = true_theta / jnp.sum(true_theta)
    np.testing.assert_allclose(np.asarray(fitted.weights), np.asarray(true_weights), rtol=0.05)
    # Raw theta, not only its normalisation, is the per-axis 1 / (2 sigma^2).
    np.testing.assert_allclose(np.asarray(fitted.theta), np.asarray(true_theta), rtol=0.05)
    assert int(fitted.route()) == 4


@pytest.mark.slow
def test_local_recovers_per_task_best_model(key) -> None:
    base = jnp.array([1.0, 2.0, 4.0, 8.0, 16.0])
    task_theta = jnp.stack([base, base[::-1], jnp.roll(base, 2)])
    embeddings, inputs, task = sj.simulate_tasks(
        key, task_theta, n_samples=N_SIM, dim=DIM_SIM, input_dim=8
    )
    route = sj.fit_local(embeddings, inputs, k=30).route()
    true_best = jnp.argmax(task_theta, axis=-1)[task]
    assert float(jnp.mean(route == true_best)) > 0.95
    # Global can pick only one model: it is right for at most the largest task.
    global_route = sj.fit_global(embeddings).route()
    assert float(jnp.mean(global_route == true_best)) < 0.5


# ---- invariants -----------------------------------------------------------------------


def test_permuting_models_permutes_theta(problem) -> None:
    embeddings, inputs = problem
    perm = np.array([3, 0, 4, 1, 2])
    for fit in (
        sj.fit_global,
        lambda e: sj.fit_local(e, inputs, k=7),
        lambda e: sj.fit_kernel(e, inputs, bandwidth=1.5),
    ):
        theta = np.asarray(fit(embeddings).theta)
        permuted = np.asarray(fit(embeddings[:, perm]).theta)
        np.testing.assert_allclose(permuted, theta[..., perm], rtol=RTOL)


def test_translation_and_rotation_leave_theta_unchanged(problem) -> None:
    embeddings, inputs = problem
    rng = np.random.default_rng(5)
    per_sample = rng.normal(scale=3.0, size=(200, 1, 32))  # one shift per sample, all models
    everywhere = rng.normal(scale=3.0, size=(1, 1, 32))
    rotation, _ = np.linalg.qr(rng.normal(size=(32, 32)))
    emb64 = embeddings.astype(np.float64)
    transformed = {
        "per-sample translation": emb64 + per_sample,
        "global translation": emb64 + everywhere,
        "rotation": emb64 @ rotation.T,
    }
    fits = {
        "global": sj.fit_global,
        "local": lambda e: sj.fit_local(e, inputs, k=10),
        "kernel": lambda e: sj.fit_kernel(e, inputs, bandwidth=1.5),
    }
    for fit_name, fit in fits.items():
        theta = np.asarray(fit(embeddings).theta)
        for name, moved in transformed.items():
            got = np.asarray(fit(moved.astype(np.float32)).theta)
            np.testing.assert_allclose(got, theta, rtol=1e-4, err_msg=f"{fit_name}, {name}")


def test_local_with_k_equal_n_equals_global(problem) -> None:
    embeddings, inputs = problem
    local = sj.fit_local(embeddings, inputs, k=200).theta
    global_ = sj.fit_global(embeddings).theta
    np.testing.assert_allclose(
        np.asarray(local), np.broadcast_to(np.asarray(global_), (200, 5)), rtol=RTOL
    )


def test_kernel_with_huge_bandwidth_equals_global(problem) -> None:
    embeddings, inputs = problem
    kernel = sj.fit_kernel(embeddings, inputs, bandwidth=1e4).theta
    global_ = sj.fit_global(embeddings).theta
    np.testing.assert_allclose(
        np.asarray(kernel), np.broadcast_to(np.asarray(global_), (200, 5)), rtol=1e-4
    )


def test_generations_with_one_generation_equals_local_k1(problem) -> None:
    embeddings, inputs = problem
    generations = sj.fit_generations(embeddings[:, None]).theta
    local = sj.fit_local(embeddings, inputs, k=1).theta
    np.testing.assert_allclose(np.asarray(generations), np.asarray(local), rtol=RTOL)


def test_weights_and_route(problem) -> None:
    embeddings, inputs = problem
    fitted = sj.fit_local(embeddings, inputs, k=5)
    np.testing.assert_allclose(np.asarray(jnp.sum(fitted.weights, axis=-1)), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(
        np.asarray(fitted.route()), np.argmax(np.asarray(fitted.theta), axis=-1)
    )


def test_identical_models_give_finite_theta(problem) -> None:
    embeddings, inputs = problem
    two_same = embeddings.copy()
    two_same[:, 1] = two_same[:, 0]
    all_same = np.broadcast_to(embeddings[:, :1], embeddings.shape)
    for emb in (two_same, all_same):
        for fitted in (
            sj.fit_global(emb),
            sj.fit_local(emb, inputs, k=3),
            sj.fit_kernel(emb, inputs, bandwidth=1.0),
        ):
            chex.assert_tree_all_finite(fitted.theta)
            chex.assert_tree_all_finite(fitted.weights)
    np.testing.assert_allclose(
        np.asarray(sj.fit_global(all_same, eps=EPS).theta), np.full(5, 32 / (2 * EPS)), rtol=1e-6
    )


# ---- jit behaviour --------------------------------------------------------------------


@pytest.mark.slow
def test_entry_points_do_not_retrace_on_new_values(monkeypatch) -> None:
    # Every entry point's jitted pipeline calls theta_from_distances once per trace; a
    # chex-counted wrapper in its place fails on a second trace. Shapes unique to this test
    # so earlier compilations cannot hide a trace.
    rng = np.random.default_rng(6)

    def data():
        emb = rng.normal(size=(37, 4, 9)).astype(np.float32)
        return emb, emb[:, 0] + 0.1 * rng.normal(size=(37, 9)).astype(np.float32)

    calls = {
        "global": lambda e, x: sj.fit_global(e, eps=float(rng.uniform(1e-7, 1e-5))),
        "local": lambda e, x: sj.fit_local(e, x, k=6),
        "kernel": lambda e, x: sj.fit_kernel(e, x, bandwidth=float(rng.uniform(0.5, 2))),
        "generations": lambda e, x: sj.fit_generations(e.reshape(37, 1, 4, 9)),
    }
    for call in calls.values():
        chex.clear_trace_counter()  # the counter is keyed by the wrapped function
        monkeypatch.setattr(
            _smoothie, "theta_from_distances", chex.assert_max_traces(sj.theta_from_distances, n=1)
        )
        for _ in range(3):
            chex.assert_tree_all_finite(call(*data()).theta)
    chex.clear_trace_counter()
    size = _smoothie._local_fit._cache_size()
    sj.fit_local(*data(), k=6)
    assert _smoothie._local_fit._cache_size() == size


def test_fit_works_inside_jit(problem) -> None:
    embeddings, inputs = problem
    jitted = jax.jit(lambda e, x: sj.fit_local(e, x, k=5).theta)
    np.testing.assert_allclose(
        np.asarray(jitted(embeddings, inputs)),
        np.asarray(sj.fit_local(embeddings, inputs, k=5).theta),
        rtol=RTOL,
    )
    smoothie = jax.jit(sj.fit_global)(embeddings)  # the fitted module is a pytree
    assert isinstance(smoothie, sj.Smoothie)

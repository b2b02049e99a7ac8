"""The per-sample building blocks: squared distances, the triplet closed form, theta."""

from __future__ import annotations

import itertools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from reference import reference_theta

import smoothie_jax as sj

EPS = 1e-6


def triplet_loop(distances: np.ndarray) -> np.ndarray:
    """delta_i as the paper writes it, from a given D: mean over {j<k} without i."""
    m = distances.shape[0]
    delta = np.zeros(m)
    for i in range(m):
        pairs = list(itertools.combinations([j for j in range(m) if j != i], 2))
        delta[i] = np.mean(
            [(distances[i, j] + distances[i, k] - distances[j, k]) / 2 for j, k in pairs]
        )
    return delta


def random_distances(seed: int, m: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    points = rng.normal(size=(m, 6))
    return np.sum((points[:, None] - points[None]) ** 2, axis=-1)


@pytest.mark.parametrize("m", [3, 4, 7, 12])
def test_triplet_closed_form_equals_triplet_loop(m: int) -> None:
    distances = random_distances(m, m)
    delta = sj.triplet_delta(jnp.asarray(distances, jnp.float32))
    np.testing.assert_allclose(np.asarray(delta), triplet_loop(distances), rtol=1e-5, atol=1e-5)


def test_theta_from_distances_matches_reference_on_one_sample() -> None:
    rng = np.random.default_rng(0)
    embeddings = rng.normal(size=(1, 6, 16)).astype(np.float32)
    distances = sj.squared_distances(jnp.asarray(embeddings[0]))
    theta = sj.theta_from_distances(distances, 16)
    np.testing.assert_allclose(np.asarray(theta), reference_theta(embeddings), rtol=1e-5)


def test_squared_distances_is_exact_and_symmetric() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(5, 9)).astype(np.float32)
    distances = np.asarray(sj.squared_distances(jnp.asarray(x)))
    expected = np.sum((x[:, None].astype(np.float64) - x[None]) ** 2, axis=-1)
    np.testing.assert_allclose(distances, expected, rtol=1e-6)
    np.testing.assert_array_equal(np.diag(distances), 0.0)
    np.testing.assert_array_equal(distances, distances.T)


def test_squared_distances_keeps_precision_for_nearby_outputs() -> None:
    # Far from the origin and 1e-3 apart: a Gram-matrix formula would lose this to
    # cancellation in float32; differences keep it.
    base = 1000.0 * jnp.ones((1, 4))
    x = base + jnp.array([[0.0, 0.0, 0.0, 0.0], [1e-3, 0.0, 0.0, 0.0], [0.0, 2e-3, 0.0, 0.0]])
    distances = sj.squared_distances(x)
    np.testing.assert_allclose(np.asarray(distances[0, 1]), 1e-6, rtol=0.1)


def test_variance_at_or_below_zero_is_clamped_to_eps() -> None:
    # Model 0 lies halfway between models 1 and 2: delta_0 = (1 + 1 - 4) / 2 = -1 < 0.
    x = jnp.array([[0.0], [-1.0], [1.0]])
    delta = sj.triplet_delta(sj.squared_distances(x))
    np.testing.assert_allclose(np.asarray(delta), [-1.0, 2.0, 2.0])
    theta = sj.theta_from_distances(sj.squared_distances(x), 1, eps=EPS)
    np.testing.assert_allclose(np.asarray(theta), [1 / (2 * EPS), 0.25, 0.25], rtol=1e-6)
    chex.assert_tree_all_finite(theta)


def test_identical_outputs_give_finite_theta() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(4, 8)).astype(np.float32)
    x[1] = x[0]  # two models agree exactly
    theta = sj.theta_from_distances(sj.squared_distances(jnp.asarray(x)), 8)
    chex.assert_tree_all_finite(theta)
    same = jnp.broadcast_to(jnp.asarray(x[:1]), (4, 8))  # every model agrees
    theta_same = sj.theta_from_distances(sj.squared_distances(same), 8, eps=EPS)
    chex.assert_tree_all_finite(theta_same)
    np.testing.assert_allclose(np.asarray(theta_same), np.full(4, 8 / (2 * EPS)), rtol=1e-6)


class VariantsTest(chex.TestCase):
    """jit and eager give the same answers on the pure per-sample functions."""

    def setUp(self) -> None:
        super().setUp()
        rng = np.random.default_rng(3)
        self.x = jnp.asarray(rng.normal(size=(6, 10)), jnp.float32)
        self.expected = np.sum(
            (np.asarray(self.x)[:, None].astype(np.float64) - np.asarray(self.x)[None]) ** 2,
            axis=-1,
        )

    @chex.variants(with_jit=True, without_jit=True)
    def test_squared_distances(self) -> None:
        distances = self.variant(sj.squared_distances)(self.x)
        chex.assert_shape(distances, (6, 6))
        np.testing.assert_allclose(np.asarray(distances), self.expected, rtol=1e-5)

    @chex.variants(with_jit=True, without_jit=True)
    def test_triplet_delta(self) -> None:
        delta = self.variant(sj.triplet_delta)(jnp.asarray(self.expected, jnp.float32))
        chex.assert_shape(delta, (6,))
        np.testing.assert_allclose(np.asarray(delta), triplet_loop(self.expected), rtol=1e-5)

    @chex.variants(with_jit=True, without_jit=True)
    def test_theta_from_distances(self) -> None:
        fn = self.variant(lambda d: sj.theta_from_distances(d, 10, eps=EPS))
        theta = fn(jnp.asarray(self.expected, jnp.float32))
        expected = 10 / (2 * np.maximum(triplet_loop(self.expected), EPS))
        np.testing.assert_allclose(np.asarray(theta), expected, rtol=1e-5)


def test_building_blocks_trace_once_for_same_shapes() -> None:
    rng = np.random.default_rng(4)
    distances_fn = jax.jit(chex.assert_max_traces(lambda x: jax.vmap(sj.squared_distances)(x), n=1))
    delta_fn = jax.jit(chex.assert_max_traces(lambda d: jax.vmap(sj.triplet_delta)(d), n=1))
    theta_fn = jax.jit(
        chex.assert_max_traces(
            lambda d, eps: jax.vmap(lambda di: sj.theta_from_distances(di, 7, eps=eps))(d), n=1
        )
    )
    for _ in range(3):  # new values, same shapes: one trace each
        x = jnp.asarray(rng.normal(size=(11, 5, 7)), jnp.float32)
        distances = distances_fn(x)
        delta_fn(distances)
        theta_fn(distances, jnp.asarray(rng.uniform(1e-7, 1e-5), jnp.float32))

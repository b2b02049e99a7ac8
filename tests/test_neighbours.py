"""Smoothing over neighbourhoods (`_neighbours`): neighbour means and kernel weights."""

from __future__ import annotations

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from reference import brute_force_knn, grid_points

import smoothie_jax as sj


def numpy_kernel_mean(queries, points, values, bandwidth):
    queries, points = np.float64(queries), np.float64(points)
    sq = np.sum((queries[:, None] - points[None]) ** 2, axis=-1)
    w = np.exp(-(sq - sq.min(axis=1, keepdims=True)) / (2 * bandwidth**2))
    w /= w.sum(axis=1, keepdims=True)
    return np.einsum("qp,p...->q...", w, np.float64(values))


@pytest.mark.parametrize("bandwidth", [0.3, 1.0, 100.0])
def test_kernel_mean_equals_numpy(bandwidth: float) -> None:
    rng = np.random.default_rng(4)
    points = rng.normal(size=(53, 4)).astype(np.float32)
    values = rng.uniform(size=(53, 3, 3)).astype(np.float32)
    got = sj.kernel_mean(
        jnp.asarray(points[:17]),
        jnp.asarray(points),
        jnp.asarray(values),
        bandwidth=bandwidth,
        block_size=5,
    )
    chex.assert_shape(got, (17, 3, 3))
    np.testing.assert_allclose(
        np.asarray(got), numpy_kernel_mean(points[:17], points, values, bandwidth), rtol=1e-5
    )


@pytest.mark.slow
def test_kernel_mean_limits() -> None:
    rng = np.random.default_rng(5)
    points = jnp.asarray(rng.normal(size=(40, 3)), jnp.float32)
    values = jnp.asarray(rng.uniform(size=(40,)), jnp.float32)
    narrow = sj.kernel_mean(points, points, values, bandwidth=1e-3)  # -> the point itself
    np.testing.assert_allclose(np.asarray(narrow), np.asarray(values), rtol=1e-6)
    wide = sj.kernel_mean(points, points, values, bandwidth=1e4)  # -> the global mean
    np.testing.assert_allclose(np.asarray(wide), np.full(40, float(jnp.mean(values))), rtol=1e-5)
    far = sj.kernel_mean(points + 1e3, points, values, bandwidth=0.1)  # no 0 / 0 far away
    chex.assert_tree_all_finite(far)


def test_neighbour_mean() -> None:
    values = jnp.arange(12.0).reshape(6, 2)
    got = sj.neighbour_mean(values, jnp.array([[0, 1], [5, 5], [2, 4]]))
    np.testing.assert_allclose(np.asarray(got), [[1.0, 2.0], [10.0, 11.0], [6.0, 7.0]])


class VariantsTest(chex.TestCase):
    """jit and eager agree on the neighbour functions."""

    def setUp(self) -> None:
        super().setUp()
        self.points = grid_points(6, 45)

    @chex.variants(with_jit=True, without_jit=True)
    def test_knn(self) -> None:
        fn = self.variant(functools.partial(sj.knn, k=6, include_self=True, block_size=10))
        got = fn(jnp.asarray(self.points), jnp.asarray(self.points))
        np.testing.assert_array_equal(
            np.asarray(got), brute_force_knn(self.points, self.points, 6, include_self=True)
        )

    @chex.variants(with_jit=True, without_jit=True)
    def test_kernel_mean(self) -> None:
        values = np.arange(45.0, dtype=np.float32)
        fn = self.variant(functools.partial(sj.kernel_mean, bandwidth=1.5, block_size=8))
        got = fn(jnp.asarray(self.points), jnp.asarray(self.points), jnp.asarray(values))
        np.testing.assert_allclose(
            np.asarray(got), numpy_kernel_mean(self.points, self.points, values, 1.5), rtol=1e-5
        )


def test_knn_and_kernel_mean_trace_once_for_same_shapes() -> None:
    rng = np.random.default_rng(7)
    knn_fn = jax.jit(
        chex.assert_max_traces(lambda q, x: sj.knn(q, x, 4, include_self=True, block_size=8), n=1)
    )
    kernel_fn = jax.jit(
        chex.assert_max_traces(
            lambda q, x, v, h: sj.kernel_mean(q, x, v, bandwidth=h, block_size=8), n=1
        )
    )
    for _ in range(3):
        x = jnp.asarray(rng.normal(size=(30, 5)), jnp.float32)
        knn_fn(x, x)
        kernel_fn(x, x, x[:, 0], jnp.asarray(rng.uniform(0.5, 2.0), jnp.float32))

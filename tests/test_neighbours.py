"""Exact blocked kNN and kernel smoothing against brute force."""

from __future__ import annotations

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from reference import brute_force_knn

import smoothie_jax as sj


def grid_points(seed: int, n: int, dim: int = 3) -> np.ndarray:
    """Small-integer points with many duplicates and equal distances.

    On small integers every distance and every knn score is exact in float32, so ties are
    real ties and the tie order (lower index first) is checked exactly.
    """
    rng = np.random.default_rng(seed)
    points = rng.integers(-2, 3, size=(n, dim)).astype(np.float32)
    points[n // 2] = points[1]  # at least one exact duplicate
    return points


# 7 and 16 do not divide n = 101; 1024 is one block.
@pytest.mark.slow
@pytest.mark.parametrize(("k", "block_size"), [(1, 7), (5, 16), (12, 7), (12, 1024)])
def test_blocked_knn_with_self_equals_brute_force_ties_included(block_size: int, k: int) -> None:
    points = grid_points(0, 101)
    got = sj.knn(
        jnp.asarray(points), jnp.asarray(points), k, include_self=True, block_size=block_size
    )
    chex.assert_shape(got, (101, k))
    np.testing.assert_array_equal(
        np.asarray(got), brute_force_knn(points, points, k, include_self=True)
    )
    np.testing.assert_array_equal(np.asarray(got[:, 0]), np.arange(101))


@pytest.mark.parametrize("block_size", [6, 50])
def test_blocked_knn_queries_against_points_equals_brute_force(block_size: int) -> None:
    points = grid_points(1, 97)
    queries = grid_points(2, 23)
    got = sj.knn(jnp.asarray(queries), jnp.asarray(points), 9, block_size=block_size)
    np.testing.assert_array_equal(np.asarray(got), brute_force_knn(queries, points, 9))


def test_duplicate_points_go_lower_index_first_self_first() -> None:
    x = jnp.array([[0.0], [5.0], [0.0], [0.0], [5.0]])
    got = sj.knn(x, x, 3, include_self=True, block_size=2)
    np.testing.assert_array_equal(
        np.asarray(got), [[0, 2, 3], [1, 4, 0], [2, 0, 3], [3, 0, 2], [4, 1, 0]]
    )
    without_self = sj.knn(x, x, 3, block_size=2)
    np.testing.assert_array_equal(
        np.asarray(without_self), [[0, 2, 3], [1, 4, 0], [0, 2, 3], [0, 2, 3], [1, 4, 0]]
    )


@pytest.mark.slow
def test_random_knn_equals_brute_force() -> None:
    rng = np.random.default_rng(3)
    points = rng.normal(size=(300, 16)).astype(np.float32)
    got = sj.knn(jnp.asarray(points), jnp.asarray(points), 20, include_self=True, block_size=64)
    np.testing.assert_array_equal(
        np.asarray(got), brute_force_knn(points, points, 20, include_self=True)
    )


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


# Tiles of 7 and 30 do not divide n = 101; 200 is one tile; 3 < k is raised to k.
@pytest.mark.slow
@pytest.mark.parametrize("tile_size", [3, 7, 30, 200])
def test_tiled_knn_equals_brute_force_ties_included(tile_size: int) -> None:
    points = grid_points(8, 101)
    got = sj.knn(
        jnp.asarray(points),
        jnp.asarray(points),
        6,
        include_self=True,
        block_size=16,
        tile_size=tile_size,
    )
    np.testing.assert_array_equal(
        np.asarray(got), brute_force_knn(points, points, 6, include_self=True)
    )
    queries = grid_points(9, 13)
    got = sj.knn(jnp.asarray(queries), jnp.asarray(points), 6, tile_size=tile_size)
    np.testing.assert_array_equal(np.asarray(got), brute_force_knn(queries, points, 6))


def test_negative_zero_scores_tie_with_zero() -> None:
    # q.x - |x|^2 / 2 is -0.0 for some points and +0.0 for others; they must tie (lower
    # index first), as they do in the merge of the sharded search.
    x = jnp.array([[0.0, 0.0], [-1.0, 0.0], [0.0, 0.0], [1.0, 0.0]])
    q = jnp.array([[0.5, 0.0], [-0.5, 0.0]])
    got = sj.knn(q, x, 4, tile_size=2)
    np.testing.assert_array_equal(np.asarray(got), brute_force_knn(q, x, 4))

"""Neighbourhoods in input-embedding space: exact blocked kNN and Gaussian kernels.

Both work on blocks of queries against all points, so memory is O(block_size x
n_points), never n_queries x n_points.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, Shaped

DEFAULT_BLOCK_SIZE = 1024
_HIGHEST = jax.lax.Precision.HIGHEST  # exact float32 search on GPU/TPU too (no tf32)


def _blocks(queries: Float[Array, "n_queries d"], block_size: int) -> tuple[Array, Array]:
    """Pads the queries to whole blocks: (n_blocks, block, d) and their row numbers."""
    n = queries.shape[0]
    block = min(block_size, n)
    n_blocks = math.ceil(n / block)
    padded = jnp.pad(queries, ((0, n_blocks * block - n), (0, 0)))
    rows = jnp.arange(n_blocks * block).reshape(n_blocks, block)
    return padded.reshape(n_blocks, block, -1), rows


def _unblock(x: Shaped[Array, "n_blocks block ..."], n: int) -> Shaped[Array, "n ..."]:
    return x.reshape(-1, *x.shape[2:])[:n]


def knn(
    queries: Float[Array, "n_queries input_dim"],
    points: Float[Array, "n_points input_dim"],
    k: int,
    *,
    include_self: bool = False,
    block_size: int = DEFAULT_BLOCK_SIZE,
) -> Int[Array, "n_queries k"]:
    """Exact k nearest neighbours by Euclidean distance, computed block by block.

    Each block ranks points by q.x - |x|^2 / 2 (same order as -|q - x|^2 / 2) with one
    matmul and `lax.top_k`. Ties go to the lower point index, deterministically.

    Args:
        queries: points to find neighbours for.
        points: candidates.
        k: neighbours per query (static).
        include_self: queries are `points` in the same order, and query i must be its
            own first neighbour even where rounding or duplicate points say otherwise.
        block_size: queries per block (static); bounds memory at block_size x n_points.

    Returns:
        Indices into `points`, nearest first.

    >>> x = jnp.array([[0.0], [1.0], [3.0]])
    >>> knn(x, x, 2, include_self=True)
    Array([[0, 1],
           [1, 0],
           [2, 1]], dtype=int32)
    """
    half_sq_norms = 0.5 * jnp.sum(points * points, axis=-1)
    point_ids = jnp.arange(points.shape[0])

    def block(args: tuple[Array, Array]) -> Array:
        q, rows = args
        scores = jnp.matmul(q, points.T, precision=_HIGHEST) - half_sq_norms[None, :]
        if include_self:
            scores = jnp.where(rows[:, None] == point_ids[None, :], jnp.inf, scores)
        return jax.lax.top_k(scores, k)[1]

    blocks = _blocks(queries, block_size)
    return _unblock(jax.lax.map(block, blocks), queries.shape[0])


def neighbour_mean(
    values: Shaped[Array, "n_points ..."], indices: Int[Array, "n_queries k"]
) -> Shaped[Array, "n_queries ..."]:
    """Average of `values` over each query's neighbours (the Smoothie-Local smoothing)."""
    return jnp.mean(values[indices], axis=1)


def kernel_mean(
    queries: Float[Array, "n_queries input_dim"],
    points: Float[Array, "n_points input_dim"],
    values: Float[Array, "n_points ..."],
    *,
    bandwidth: float,
    block_size: int = DEFAULT_BLOCK_SIZE,
) -> Float[Array, "n_queries ..."]:
    """Average of `values` with Gaussian weights exp(-|q - x|^2 / (2 bandwidth^2)).

    Weights are normalised per query with a softmax, so a query far from every point
    still gets a proper average (of its nearest points) instead of 0 / 0.

    Args:
        queries: where to evaluate the smoothed average.
        points: where `values` were observed.
        values: one statistic per point, any trailing shape.
        bandwidth: kernel width in input-embedding units; small approaches 1-NN, large
            approaches the global mean.
        block_size: queries per block (static).

    Returns:
        The kernel-weighted mean of `values` for each query.

    >>> x = jnp.array([[0.0], [10.0]])
    >>> kernel_mean(x, x, jnp.array([1.0, 3.0]), bandwidth=1.0)
    Array([1., 3.], dtype=float32)
    """
    half_sq_norms = 0.5 * jnp.sum(points * points, axis=-1)
    flat = values.reshape(values.shape[0], -1)

    def block(args: tuple[Array, Array]) -> Array:
        q, _ = args
        # -|q - x|^2 / 2 up to a per-query constant, which the softmax cancels.
        logits = jnp.matmul(q, points.T, precision=_HIGHEST) - half_sq_norms[None, :]
        weights = jax.nn.softmax(logits / bandwidth**2, axis=-1)
        return jnp.matmul(weights, flat, precision=_HIGHEST)

    means = _unblock(jax.lax.map(block, _blocks(queries, block_size)), queries.shape[0])
    return means.reshape(queries.shape[0], *values.shape[1:])

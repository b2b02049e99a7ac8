"""Smoothing over neighbourhoods: the mean of a per-input statistic over nearby inputs.

Smoothie-Local's statistic for an input is the mean squared-distance matrix D over its
k nearest inputs (`local_distances`); the kernel variant weighs every input by a Gaussian
of its distance instead (`kernel_mean`). Where some models did not answer some inputs,
each pair's distance is averaged over the neighbours where both models answered: the
pair mask (`pair_mask`) is the weight, and all-observed is the mask of ones.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, Shaped

from ._knn import DEFAULT_BLOCK_SIZE, blocks, unblock
from ._search import Search, knn
from ._validate import ArrayLike

_HIGHEST = jax.lax.Precision.HIGHEST  # exact float32 weights on GPU/TPU too (no tf32)


def neighbour_mean(
    values: Shaped[ArrayLike, "n_points ..."],
    indices: Int[ArrayLike, "n_queries k"],
    weights: Float[ArrayLike, "n_points ..."] | None = None,
) -> Shaped[Array, "n_queries ..."]:
    """Average of `values` over each query's neighbours (the Smoothie-Local smoothing).

    With `weights` (for example the pair mask: 1 where both models answered), the
    weighted average, 0 where a query's neighbours weigh nothing.

    >>> neighbour_mean(jnp.array([1.0, 3.0, 5.0]), jnp.array([[0, 1], [1, 2]]))
    Array([2., 4.], dtype=float32)
    """
    if weights is None:
        return jnp.mean(values[indices], axis=1)
    total = jnp.sum((values * weights)[indices], axis=1)
    weight = jnp.sum(weights[indices], axis=1)
    return total / jnp.where(weight > 0, weight, 1.0)


def local_distances(
    distances: Float[ArrayLike, "n_points n_models n_models"],
    points: Float[ArrayLike, "n_points input_dim"],
    queries: Float[ArrayLike, "n_queries input_dim"],
    k: int,
    *,
    pairs: Float[ArrayLike, "n_points n_models n_models"] | None = None,
    search: Search | str = "exact",
    include_self: bool = False,
    query_ids: Int[ArrayLike, " n_queries"] | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
) -> Float[Array, "n_queries n_models n_models"]:
    """Smoothie-Local's statistic: each query's mean D over its k nearest points.

    Args:
        distances: per-point squared-distance matrices.
        points: input embeddings of the points, searched for neighbours.
        queries: input embeddings of the queries.
        k: neighbours per query (static).
        pairs: where some models did not answer some inputs, the pair mask of each point
            (`pair_mask`): each pair is averaged over the neighbours where both answered.
        search: as `knn`.
        include_self: as `knn`.
        query_ids: as `knn`.
        block_size: as `knn`.

    >>> d = jnp.arange(3.0)[:, None, None] * jnp.ones((3, 2, 2))
    >>> x = jnp.array([[0.0], [1.0], [5.0]])
    >>> local_distances(d, x, x, 2, include_self=True)[:, 0, 0]
    Array([0.5, 0.5, 1.5], dtype=float32)
    """
    neighbours = knn(
        queries,
        points,
        k,
        search=search,
        include_self=include_self,
        query_ids=query_ids,
        block_size=block_size,
    )
    return neighbour_mean(distances, neighbours, pairs)


def kernel_mean(
    queries: Float[ArrayLike, "n_queries input_dim"],
    points: Float[ArrayLike, "n_points input_dim"],
    values: Float[ArrayLike, "n_points ..."],
    *,
    bandwidth: float | Float[ArrayLike, ""],
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

    means = unblock(jax.lax.map(block, blocks(queries, block_size)), queries.shape[0])
    return means.reshape(queries.shape[0], *values.shape[1:])

"""Test-time Smoothie: every model answered every input; fit theta, pick the best answer.

Each public `fit_*` validates its arguments once (`make_batch`: ValueError before any
work), then runs one jitted pipeline on the batch's per-sample distances D: smoothing ->
theta. The smoothing is the only thing that differs between the variants. `global_fit`
and `local_fit` are the same fits on a batch already validated, for callers that hold one.
"""

from __future__ import annotations

from typing import final

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int

from . import _validate
from ._batch import Batch, make_batch
from ._distances import sample_distances
from ._estimator import DEFAULT_EPS, theta_from_distances
from ._knn import DEFAULT_BLOCK_SIZE
from ._neighbours import kernel_mean, neighbour_mean
from ._search import Search, find_knn


@final
class Smoothie(eqx.Module):
    """Fitted Smoothie quality scores.

    Attributes:
        theta: unnormalised quality dim / (2 * estimated E||lambda_i - y||^2); shape
            (n_models,) for Global, (n_samples, n_models) for per-sample variants.
    """

    theta: Float[Array, "*batch n_models"]

    def __check_init__(self) -> None:
        if self.theta.ndim < 1 or self.theta.shape[-1] < _validate.MIN_MODELS:
            raise ValueError(f"theta must end in an n_models >= 3 axis, got {self.theta.shape}")

    @property
    def weights(self) -> Float[Array, "*batch n_models"]:
        """theta normalised to sum to 1 over models (per sample where theta is)."""
        return _validate.normalise(self.theta)

    def route(self) -> Int[Array, "*batch"]:
        """Index of the model with the highest quality (per sample where theta is)."""
        return jnp.argmax(self.theta, axis=-1)


def global_theta(
    distances: Float[Array, "n_samples n_models n_models"],
    dim: int,
    *,
    eps: Float[Array, ""],
    pairs: Float[Array, "n_samples n_models n_models"] | None = None,
) -> Float[Array, " n_models"]:
    """Smoothie-Global's theta from per-sample D: each pair's distance averaged over the
    samples (over those where both models answered, with the pair mask `pairs`)."""
    if pairs is None:
        return theta_from_distances(jnp.mean(distances, axis=0), dim, eps=eps)
    counts = jnp.sum(pairs, axis=0)
    mean = jnp.sum(distances * pairs, axis=0) / jnp.maximum(counts, 1)
    return theta_from_distances(mean, dim, eps=eps, pairs=counts)


def neighbourhood_theta(
    distances: Float[Array, "n_points n_models n_models"],
    neighbours: Int[Array, "n_queries k"],
    dim: int,
    *,
    eps: Float[Array, ""],
    pairs: Float[Array, "n_points n_models n_models"] | None = None,
) -> Float[Array, "n_queries n_models"]:
    """Smoothie-Local's theta of each query from the mean D over its neighbours (each
    pair over the neighbours where both models answered, with the pair mask `pairs`);
    a model without a complete triplet there gets 0."""
    mean = neighbour_mean(distances, neighbours, pairs)
    share = None if pairs is None else neighbour_mean(pairs, neighbours)
    return theta_from_distances(mean, dim, eps=eps, pairs=share)


@jax.jit
def group_theta(
    batch: Batch, members: Float[Array, "n_samples n_groups"], eps: Array | float = DEFAULT_EPS
) -> Float[Array, "n_groups n_models"]:
    """Smoothie-Global of each group of inputs (`members`: 1 where an input belongs to a
    group): the mean D over the group's inputs (each pair over those where both models
    answered, with the batch's pair mask)."""
    eps = jnp.asarray(eps, batch.distances.dtype)
    if batch.pairs is None:
        size = jnp.maximum(jnp.sum(members, axis=0), 1.0)[:, None, None]
        mean = jnp.einsum("ng,nij->gij", members, batch.distances) / size
        return theta_from_distances(mean, batch.dim, eps=eps)
    counts = jnp.einsum("ng,nij->gij", members, batch.pairs)
    mean = jnp.einsum("ng,nij->gij", members, batch.distances * batch.pairs)
    return theta_from_distances(mean / jnp.maximum(counts, 1.0), batch.dim, eps=eps, pairs=counts)


@jax.jit
def _global_fit(batch: Batch, eps: Array) -> Array:
    theta = global_theta(batch.distances, batch.dim, eps=eps, pairs=batch.pairs)
    return theta if batch.observed is None else jnp.where(batch.observed, theta, 0.0)


@jax.jit
def _local_fit(batch: Batch, neighbours: Array, eps: Array) -> Array:
    theta = neighbourhood_theta(batch.distances, neighbours, batch.dim, eps=eps, pairs=batch.pairs)
    return theta if batch.observed is None else jnp.where(batch.observed, theta, 0.0)


def global_fit(batch: Batch, *, eps: float = DEFAULT_EPS) -> Smoothie:
    """`fit_global` on a validated batch (theta 0 where a model did not answer)."""
    return Smoothie(_global_fit(batch, jnp.asarray(eps, batch.distances.dtype)))


def local_fit(
    batch: Batch,
    *,
    k: int,
    search: str | Search = "exact",
    block_size: int = DEFAULT_BLOCK_SIZE,
    eps: float = DEFAULT_EPS,
) -> Smoothie:
    """`fit_local` on a validated batch with its inputs (k, eps and block_size checked)."""
    neighbours = find_knn(
        batch.inputs,
        batch.inputs,
        k,
        search=Search.parse(search),
        include_self=True,
        block_size=block_size,
    )
    return Smoothie(_local_fit(batch, neighbours, jnp.asarray(eps, batch.distances.dtype)))


@jax.jit(static_argnames=("block_size",))
def _kernel_theta(batch: Batch, eps: Array, bandwidth: Array, block_size: int) -> Array:
    distances = kernel_mean(
        batch.inputs, batch.inputs, batch.distances, bandwidth=bandwidth, block_size=block_size
    )
    return theta_from_distances(distances, batch.dim, eps=eps)


@jax.jit
def _generations_theta(embeddings: Array, eps: Array) -> Array:
    per_generation = jax.vmap(sample_distances)(embeddings)
    return theta_from_distances(jnp.mean(per_generation, axis=1), embeddings.shape[-1], eps=eps)


def fit_global(
    embeddings: Float[_validate.ArrayLike, "n_samples n_models dim"],
    *,
    eps: float = DEFAULT_EPS,
    observed: Bool[_validate.ArrayLike, "n_samples n_models"] | None = None,
) -> Smoothie:
    """Smoothie-Global: one theta for the whole data set (jitted).

    Args:
        embeddings: embedding of each model's output for each sample.
        eps: floor on the estimated squared error; see `theta_from_distances`.
        observed: where models did not answer every input, True where model j answered
            input i (the embedding there is ignored). Each pair's distance is then
            averaged over the inputs both answered, and theta is per input: the global
            quality, 0 where the model did not answer (so it is never chosen there).

    Returns:
        `Smoothie` with theta of shape (n_models,), or (n_samples, n_models) with
        `observed`.

    References:
        Guha et al., "Smoothie: Label Free Language Model Routing", NeurIPS 2024.

    >>> smoothie = fit_global(jax.random.normal(jax.random.key(0), (100, 3, 8)))
    >>> smoothie.theta.shape
    (3,)
    """
    batch = make_batch(embeddings, observed=observed)
    smoothie = global_fit(batch, eps=_validate.check_eps(eps))
    if observed is not None and smoothie.theta.ndim == 1:  # a mask of all True: per input
        return Smoothie(jnp.broadcast_to(smoothie.theta, (batch.n_samples, batch.n_models)))
    return smoothie


def fit_local(
    embeddings: Float[_validate.ArrayLike, "n_samples n_models dim"],
    inputs: Float[_validate.ArrayLike, "n_samples input_dim"],
    *,
    k: int,
    eps: float = DEFAULT_EPS,
    block_size: int = DEFAULT_BLOCK_SIZE,
    observed: Bool[_validate.ArrayLike, "n_samples n_models"] | None = None,
    search: str | Search = "exact",
) -> Smoothie:
    """Smoothie-Local: a theta per sample from its k nearest inputs, itself included (jitted).

    k = 1 uses the sample alone: the route is then the embedding medoid (minimum Bayes
    risk selection); k = n_samples equals `fit_global`.

    Args:
        embeddings: embedding of each model's output for each sample.
        inputs: embedding of each sample's input, used to find neighbours.
        k: neighbourhood size, 1 <= k <= n_samples (static: a new k recompiles).
        eps: floor on the estimated squared error; see `theta_from_distances`.
        block_size: queries per block of the neighbour search (static).
        observed: True where model j answered input i; each pair's distance is then
            averaged over the neighbours both answered, and a model gets theta 0 where
            it did not answer (see `fit_global`).
        search: how neighbours are found: a `Search` or a name ("exact", the default;
            "approximate", an inverted file for hundreds of thousands of inputs on a
            CPU; "bf16" or "tf32", a two-stage search for accelerators).

    Returns:
        `Smoothie` with theta of shape (n_samples, n_models).

    >>> x = jax.random.normal(jax.random.key(0), (100, 3, 8))
    >>> fit_local(x, x[:, 0], k=10).theta.shape
    (100, 3)
    """
    batch = make_batch(embeddings, inputs, observed=observed)
    return local_fit(
        batch,
        k=_validate.check_k(k, batch.n_samples),
        search=search,
        block_size=_validate.check_block_size(block_size),
        eps=_validate.check_eps(eps),
    )


def fit_kernel(
    embeddings: Float[_validate.ArrayLike, "n_samples n_models dim"],
    inputs: Float[_validate.ArrayLike, "n_samples input_dim"],
    *,
    bandwidth: float,
    eps: float = DEFAULT_EPS,
    block_size: int = DEFAULT_BLOCK_SIZE,
) -> Smoothie:
    """Smoothie-Local with Gaussian kernel weights over input distances (jitted).

    Args:
        embeddings: embedding of each model's output for each sample.
        inputs: embedding of each sample's input.
        bandwidth: kernel width in input-embedding units (> 0).
        eps: floor on the estimated squared error; see `theta_from_distances`.
        block_size: queries per block (static).

    Returns:
        `Smoothie` with theta of shape (n_samples, n_models).

    >>> x = jax.random.normal(jax.random.key(0), (100, 3, 8))
    >>> fit_kernel(x, x[:, 0], bandwidth=1.0).theta.shape
    (100, 3)
    """
    batch = make_batch(embeddings, inputs)
    bandwidth = _validate.check_positive("bandwidth", bandwidth)
    eps = _validate.check_eps(eps)
    block_size = _validate.check_block_size(block_size)
    dtype = batch.distances.dtype
    return Smoothie(
        _kernel_theta(
            batch, jnp.asarray(eps, dtype), jnp.asarray(bandwidth, dtype), block_size=block_size
        )
    )


def fit_generations(
    embeddings: Float[_validate.ArrayLike, "n_samples n_generations n_models dim"],
    *,
    eps: float = DEFAULT_EPS,
) -> Smoothie:
    """Smoothie with several generations per input instead of neighbours (jitted).

    Each model answered each input n_generations times (sampling, or one prompt
    template per generation); D for an input is averaged over its generations, where
    generation g of every model forms one sample.

    Args:
        embeddings: embedding of each generation of each model for each input.
        eps: floor on the estimated squared error; see `theta_from_distances`.

    Returns:
        `Smoothie` with theta of shape (n_samples, n_models).

    >>> x = jax.random.normal(jax.random.key(0), (10, 4, 3, 8))
    >>> fit_generations(x).theta.shape
    (10, 3)
    """
    embeddings = _validate.check_embeddings(embeddings, ndim=4)
    eps = _validate.check_eps(eps)
    return Smoothie(_generations_theta(embeddings, jnp.asarray(eps, embeddings.dtype)))

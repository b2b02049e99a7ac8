"""Test-time Smoothie: every model answered every input; fit theta, pick the best answer.

Each `fit_*` validates its arguments (ValueError before any work), then runs one jitted
pipeline: per-sample distances D -> smoothing -> theta. The smoothing is the only thing
that differs between the variants.
"""

from __future__ import annotations

from typing import final

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int

from . import _validate
from ._distances import pair_mask, sample_distances
from ._estimator import DEFAULT_EPS, theta_from_distances
from ._inverted_file import index_self_knn
from ._neighbours import (
    DEFAULT_BLOCK_SIZE,
    Search,
    as_search,
    kernel_mean,
    local_distances,
    local_masked_distances,
    masked_neighbour_mean,
    neighbour_mean,
)


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
        return self.theta / jnp.sum(self.theta, axis=-1, keepdims=True)

    def route(self) -> Int[Array, "*batch"]:
        """Index of the model with the highest quality (per sample where theta is)."""
        return jnp.argmax(self.theta, axis=-1)


@jax.jit
def _global_theta(embeddings: Array, eps: Array) -> Array:
    distances = jnp.mean(sample_distances(embeddings), axis=0)
    return theta_from_distances(distances, embeddings.shape[-1], eps=eps)


def masked_global_theta(
    distances: Float[Array, "n_samples n_models n_models"],
    pairs: Float[Array, "n_samples n_models n_models"],
    dim: int,
    *,
    eps: Array,
) -> Float[Array, " n_models"]:
    """Smoothie-Global's theta from per-sample D where only `pairs` were observed: each
    pair's distance averaged over the samples where both models answered."""
    counts = jnp.sum(pairs, axis=0)
    mean = jnp.sum(distances * pairs, axis=0) / jnp.maximum(counts, 1)
    return theta_from_distances(mean, dim, eps=eps, pairs=counts)


@jax.jit
def _masked_global_theta(embeddings: Array, observed: Array, eps: Array) -> Array:
    pairs = pair_mask(observed)
    theta = masked_global_theta(sample_distances(embeddings), pairs, embeddings.shape[-1], eps=eps)
    return jnp.where(observed, theta, 0.0)  # a model is never chosen where it did not answer


@jax.jit(static_argnames=("k", "block_size"))
def _masked_local_theta(
    embeddings: Array, observed: Array, inputs: Array, eps: Array, k: int, block_size: int
) -> Array:
    pairs = pair_mask(observed)
    distances, share = local_masked_distances(
        sample_distances(embeddings) * pairs,
        pairs,
        inputs,
        inputs,
        k,
        include_self=True,
        block_size=block_size,
    )
    theta = theta_from_distances(distances, embeddings.shape[-1], eps=eps, pairs=share)
    return jnp.where(observed, theta, 0.0)


@jax.jit
def _theta_from_neighbours(
    embeddings: Array, observed: Array | None, neighbours: Array, eps: Array
) -> Array:
    """Smoothie-Local's theta from neighbours found outside (the approximate search)."""
    distances = sample_distances(embeddings)
    dim = embeddings.shape[-1]
    if observed is None:
        return theta_from_distances(neighbour_mean(distances, neighbours), dim, eps=eps)
    pairs = pair_mask(observed)
    mean, share = masked_neighbour_mean(distances * pairs, pairs, neighbours)
    return jnp.where(observed, theta_from_distances(mean, dim, eps=eps, pairs=share), 0.0)


@jax.jit(static_argnames=("k", "block_size"))
def _local_theta(embeddings: Array, inputs: Array, eps: Array, k: int, block_size: int) -> Array:
    distances = local_distances(
        sample_distances(embeddings), inputs, inputs, k, include_self=True, block_size=block_size
    )
    return theta_from_distances(distances, embeddings.shape[-1], eps=eps)


@jax.jit(static_argnames=("block_size",))
def _kernel_theta(
    embeddings: Array, inputs: Array, eps: Array, bandwidth: Array, block_size: int
) -> Array:
    distances = kernel_mean(
        inputs, inputs, sample_distances(embeddings), bandwidth=bandwidth, block_size=block_size
    )
    return theta_from_distances(distances, embeddings.shape[-1], eps=eps)


@jax.jit
def _generations_theta(embeddings: Array, eps: Array) -> Array:
    per_generation = jax.vmap(sample_distances)(embeddings)
    return theta_from_distances(jnp.mean(per_generation, axis=1), embeddings.shape[-1], eps=eps)


def fit_global(
    embeddings: Float[Array, "n_samples n_models dim"],
    *,
    eps: float = DEFAULT_EPS,
    observed: Bool[Array, "n_samples n_models"] | None = None,
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
    embeddings = _validate.check_embeddings(embeddings)
    eps_ = jnp.asarray(_validate.check_eps(eps), embeddings.dtype)
    if observed is None:
        return Smoothie(_global_theta(embeddings, eps_))
    observed = _validate.check_observed(observed, embeddings.shape[:2])
    return Smoothie(_masked_global_theta(embeddings, observed, eps_))


def fit_local(
    embeddings: Float[Array, "n_samples n_models dim"],
    inputs: Float[Array, "n_samples input_dim"],
    *,
    k: int,
    eps: float = DEFAULT_EPS,
    block_size: int = DEFAULT_BLOCK_SIZE,
    observed: Bool[Array, "n_samples n_models"] | None = None,
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
        search: "exact" (default), "approximate" (an inverted file: `knn`'s
            `method="approximate"`, for hundreds of thousands of inputs on a CPU) or a
            `Search` with its cells and nprobe.

    Returns:
        `Smoothie` with theta of shape (n_samples, n_models).

    >>> x = jax.random.normal(jax.random.key(0), (100, 3, 8))
    >>> fit_local(x, x[:, 0], k=10).theta.shape
    (100, 3)
    """
    embeddings = _validate.check_embeddings(embeddings)
    inputs = _validate.check_inputs(inputs, embeddings.shape[0])
    k = _validate.check_k(k, embeddings.shape[0])
    block_size = _validate.check_block_size(block_size)
    eps_ = jnp.asarray(_validate.check_eps(eps), embeddings.dtype)
    search = as_search(search)
    if observed is not None:
        observed = _validate.check_observed(observed, embeddings.shape[:2])
    if not search.exact:  # neighbours from the index (eager), then one jitted tail
        neighbours = index_self_knn(search.index(inputs), k, nprobe=search.nprobe)
        return Smoothie(_theta_from_neighbours(embeddings, observed, neighbours, eps_))
    if observed is None:
        return Smoothie(_local_theta(embeddings, inputs, eps_, k=k, block_size=block_size))
    theta = _masked_local_theta(embeddings, observed, inputs, eps_, k=k, block_size=block_size)
    return Smoothie(theta)


def fit_kernel(
    embeddings: Float[Array, "n_samples n_models dim"],
    inputs: Float[Array, "n_samples input_dim"],
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
    embeddings = _validate.check_embeddings(embeddings)
    inputs = _validate.check_inputs(inputs, embeddings.shape[0])
    bandwidth = _validate.check_positive("bandwidth", bandwidth)
    eps = _validate.check_eps(eps)
    block_size = _validate.check_block_size(block_size)
    dtype = embeddings.dtype
    return Smoothie(
        _kernel_theta(
            embeddings,
            inputs,
            jnp.asarray(eps, dtype),
            jnp.asarray(bandwidth, dtype),
            block_size=block_size,
        )
    )


def fit_generations(
    embeddings: Float[Array, "n_samples n_generations n_models dim"],
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

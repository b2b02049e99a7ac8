"""Train-time Smoothie: fit on past inputs and outputs, route new queries by input alone.

A new query's theta comes from the distance statistics of its k nearest past inputs, so
routing calls one model per query.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Sequence
from typing import final

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int

from . import _validate
from ._2_distances import pair_mask, sample_distances
from ._3_neighbours import DEFAULT_BLOCK_SIZE, local_distances, local_masked_distances
from ._4_estimator import DEFAULT_EPS, theta_from_distances
from ._atomic import atomic_write

_FORMAT = "smoothie_jax.Router/1"


@final
class Router(eqx.Module):
    """A fitted train-time router. Build it with `fit_router`; it never mutates.

    Attributes:
        inputs: input embeddings of the training samples, searched for neighbours.
        distances: per-training-sample squared distances between the models' outputs.
        dim: dimension of the output embeddings (theta is per axis).
        k: neighbours per query.
        eps: floor on the estimated squared error; see `theta_from_distances`.
        block_size: queries per block of the neighbour search.
        models: optional model names, in column order, kept for saving and reporting.
        pairs: where past inputs were answered by only some models, 1.0 where both
            models of a pair answered each training input (`pair_mask`); else None.
    """

    inputs: Float[Array, "n_samples input_dim"]
    distances: Float[Array, "n_samples n_models n_models"]
    dim: int = eqx.field(static=True)
    k: int = eqx.field(static=True)
    eps: float = eqx.field(static=True, default=DEFAULT_EPS)
    block_size: int = eqx.field(static=True, default=DEFAULT_BLOCK_SIZE)
    models: tuple[str, ...] = eqx.field(static=True, default=())
    pairs: Float[Array, "n_samples n_models n_models"] | None = None

    def __check_init__(self) -> None:
        n, m, m2 = self.distances.shape
        if self.inputs.ndim != 2 or self.inputs.shape[0] != n or m != m2:
            raise ValueError(
                f"Router needs inputs (n, input_dim) and distances (n, m, m) for the same n; "
                f"got {self.inputs.shape} and {self.distances.shape}"
            )
        if not 1 <= self.k <= n:
            raise ValueError(f"k must be in [1, n_samples={n}], got k={self.k}")
        if self.models and len(self.models) != m:
            raise ValueError(f"{len(self.models)} model names for {m} models")
        if self.pairs is not None and self.pairs.shape != self.distances.shape:
            raise ValueError(f"pairs {self.pairs.shape} must match distances {(n, m, m)}")

    @property
    def n_models(self) -> int:
        return self.distances.shape[-1]

    def theta(
        self, queries: Float[Array, "n_queries input_dim"]
    ) -> Float[Array, "n_queries n_models"]:
        """Quality of each model for each query, from its k nearest training inputs (jitted)."""
        queries = _validate.check_array("queries", queries, 2, "n_queries, input_dim")
        if queries.shape[1] != self.inputs.shape[1]:
            raise ValueError(
                f"queries have input_dim {queries.shape[1]}, the router was fit on "
                f"{self.inputs.shape[1]}: embed them with the same embedder"
            )
        eps = jnp.asarray(self.eps, self.distances.dtype)
        return _router_theta(
            self.inputs,
            self.distances,
            self.pairs,
            eps,
            queries,
            k=self.k,
            dim=self.dim,
            block_size=self.block_size,
        )

    def weights(
        self, queries: Float[Array, "n_queries input_dim"]
    ) -> Float[Array, "n_queries n_models"]:
        """theta normalised to sum to 1 over models, per query."""
        theta = self.theta(queries)
        return theta / jnp.sum(theta, axis=-1, keepdims=True)

    def route(self, queries: Float[Array, "n_queries input_dim"]) -> Int[Array, " n_queries"]:
        """Index of the model to call for each query."""
        return jnp.argmax(self.theta(queries), axis=-1)


# Arrays in, shapes static: a new eps or new model names reuse the compiled search.
@functools.partial(jax.jit, static_argnames=("k", "dim", "block_size"))
def _router_theta(
    inputs: Array,
    distances: Array,
    pairs: Array | None,
    eps: Array,
    queries: Array,
    *,
    k: int,
    dim: int,
    block_size: int,
) -> Array:
    if pairs is None:
        smoothed = local_distances(distances, inputs, queries, k, block_size=block_size)
        return theta_from_distances(smoothed, dim, eps=eps)
    smoothed, share = local_masked_distances(
        distances, pairs, inputs, queries, k, block_size=block_size
    )
    return theta_from_distances(smoothed, dim, eps=eps, pairs=share)


def fit_router(
    embeddings: Float[Array, "n_samples n_models dim"],
    inputs: Float[Array, "n_samples input_dim"],
    *,
    k: int,
    eps: float = DEFAULT_EPS,
    block_size: int = DEFAULT_BLOCK_SIZE,
    models: Sequence[str] = (),
    observed: Bool[Array, "n_samples n_models"] | None = None,
) -> Router:
    """Fits a train-time router on past inputs and every model's outputs for them.

    Args:
        embeddings: embedding of each model's output for each training sample.
        inputs: embedding of each training sample's input.
        k: neighbours used for each new query, 1 <= k <= n_samples.
        eps: floor on the estimated squared error; see `theta_from_distances`.
        block_size: queries per block of the neighbour search.
        models: optional model names in column order, saved with the router.
        observed: for sparse logs, True where model j answered past input i (the
            embedding there is ignored); each query's pair distances are then averaged
            over the neighbours both models answered, and a model without a complete
            triplet among a query's neighbours gets theta 0 (never called for it).

    Returns:
        A `Router`; `router.route(query_inputs)` picks one model per query.

    >>> x = jax.random.normal(jax.random.key(0), (100, 3, 8))
    >>> router = fit_router(x, x[:, 0], k=10)
    >>> router.route(x[:5, 1]).shape
    (5,)
    """
    embeddings = _validate.check_embeddings(embeddings)
    inputs = _validate.check_inputs(inputs, embeddings.shape[0])
    k = _validate.check_k(k, embeddings.shape[0])
    eps = _validate.check_eps(eps)
    block_size = _validate.check_block_size(block_size)
    distances = jax.jit(sample_distances)(embeddings)
    pairs = None
    if observed is not None:
        observed = _validate.check_observed(observed, embeddings.shape[:2])
        pairs = pair_mask(observed)
        distances = distances * pairs  # unobserved pairs never enter a mean
    return Router(
        inputs=inputs,
        distances=distances,
        pairs=pairs,
        dim=embeddings.shape[-1],
        k=k,
        eps=float(eps),
        block_size=block_size,
        models=tuple(models),
    )


def save_router(path: str | os.PathLike, router: Router) -> None:
    """Saves a router atomically: a JSON header line, then `eqx.tree_serialise_leaves`."""
    header = {
        "format": _FORMAT,
        "n_samples": router.inputs.shape[0],
        "input_dim": router.inputs.shape[1],
        "n_models": router.n_models,
        "dim": router.dim,
        "k": router.k,
        "eps": router.eps,
        "block_size": router.block_size,
        "models": list(router.models),
        "masked": router.pairs is not None,
    }
    with atomic_write(path, "wb") as f:
        f.write((json.dumps(header) + "\n").encode())
        eqx.tree_serialise_leaves(f, router)


def load_router(path: str | os.PathLike) -> Router:
    """Loads a router written by `save_router`."""
    with open(path, "rb") as f:
        try:
            header = json.loads(f.readline())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ValueError(f"{path} is not a saved smoothie_jax router: {e}") from None
        if not isinstance(header, dict) or header.get("format") != _FORMAT:
            raise ValueError(f"{path} is not a saved smoothie_jax router (format {_FORMAT})")
        try:
            n, m = header["n_samples"], header["n_models"]
            like = Router(
                inputs=jnp.zeros((n, header["input_dim"]), jnp.float32),
                distances=jnp.zeros((n, m, m), jnp.float32),
                pairs=jnp.zeros((n, m, m), jnp.float32) if header.get("masked") else None,
                dim=header["dim"],
                k=header["k"],
                eps=header["eps"],
                block_size=header["block_size"],
                models=tuple(header.get("models", ())),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{path} has a bad smoothie_jax router header: {e!r}") from None
        try:
            router = eqx.tree_deserialise_leaves(f, like)
        except (RuntimeError, ValueError, EOFError) as e:  # eqx wraps errors in RuntimeError
            raise ValueError(f"{path} is a truncated or corrupt smoothie_jax router: {e}") from None
    # Deserialising does not check shapes (nor run __check_init__): compare with the header.
    if router.inputs.shape != like.inputs.shape or router.distances.shape != like.distances.shape:
        raise ValueError(f"{path} is a corrupt smoothie_jax router: arrays do not match its header")
    return router

"""Train-time routing: fit on past inputs and outputs, route new queries by input alone.

A new query's theta comes from the distance statistics of its k nearest past inputs, so
routing calls one model per query. Two methods: "smoothie", the paper's Smoothie-Local
router (the default), and "auto", the recommended LenCons router (`_signals.py`): the
mean log length of each model's past outputs over the query's k nearest past inputs,
standardised with a spread fixed at fit time, plus half the standardised log theta of
Smoothie-Global on the past outputs.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
from collections.abc import Sequence
from typing import final

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int, Real

from . import _validate
from ._atomic import atomic_write
from ._decision import Decision, argmax_decision
from ._distances import pair_mask, sample_distances
from ._estimator import DEFAULT_EPS
from ._inverted_file import IVFIndex, index_knn, index_self_knn
from ._knn import DEFAULT_BLOCK_SIZE
from ._neighbours import neighbour_mean
from ._search import Search, knn
from ._signals import centre, consensus_term, lencons_scores, log_length, spread
from ._smoothie import find_neighbours, global_theta, neighbourhood_theta
from .families import confounded

_FORMAT = "smoothie_jax.Router/2"
METHODS = ("smoothie", "auto")


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
        observed: for sparse logs, True where model j answered past input i; else None.
        method: "smoothie" (the paper's router) or "auto" (LenCons).
        log_lengths: "auto": log(1 + length) of each past output (0 where unanswered).
        length_scale: "auto": spread of the length signal, fixed at fit time.
        consensus: "auto": CONSENSUS_WEIGHT x z(log theta) of Smoothie-Global on the past.
        search: how a query's neighbours are found (`Search`).
        index: with an "approximate" search, the inverted file over `inputs` (built once
            at fit time, saved with the router); else None.
        confounded: "auto": whether the independence test found families among the
            past outputs. If not, the consensus is trusted and the route is
            Smoothie-Global's on the past (the length signal is left out).
    """

    inputs: Float[Array, "n_samples input_dim"]
    distances: Float[Array, "n_samples n_models n_models"]
    dim: int = eqx.field(static=True)
    k: int = eqx.field(static=True)
    eps: float = eqx.field(static=True, default=DEFAULT_EPS)
    block_size: int = eqx.field(static=True, default=DEFAULT_BLOCK_SIZE)
    models: tuple[str, ...] = eqx.field(static=True, default=())
    observed: Bool[Array, "n_samples n_models"] | None = None
    method: str = eqx.field(static=True, default="smoothie")
    log_lengths: Float[Array, "n_samples n_models"] | None = None
    length_scale: Float[Array, ""] | None = None
    consensus: Float[Array, " n_models"] | None = None
    search: Search = eqx.field(static=True, default=Search())
    index: IVFIndex | None = None
    confounded: bool = eqx.field(static=True, default=True)

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
        if self.observed is not None and self.observed.shape != (n, m):
            raise ValueError(f"observed {self.observed.shape} must be (n, m) = {(n, m)}")
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        lencons = (self.log_lengths, self.length_scale, self.consensus)
        if (self.method == "auto") != all(x is not None for x in lencons):
            raise ValueError("method 'auto' needs log_lengths, length_scale and consensus")
        if self.log_lengths is not None and self.log_lengths.shape != (n, m):
            raise ValueError(f"log_lengths {self.log_lengths.shape} must be (n, m) = {(n, m)}")
        if (self.index is not None) != (self.search.method == "approximate"):
            raise ValueError("an approximate search needs its index, and only it has one")

    @property
    def n_models(self) -> int:
        return self.distances.shape[-1]

    def theta(
        self, queries: Float[_validate.ArrayLike, "n_queries input_dim"]
    ) -> Float[Array, "n_queries n_models"]:
        """Smoothie-Local's quality of each model for each query, from its k nearest
        training inputs (jitted), whatever the routing method."""
        queries = self._check_queries(queries)
        eps = jnp.asarray(self.eps, self.distances.dtype)
        pairs = None if self.observed is None else pair_mask(self.observed)
        return _theta(self.distances, self._neighbours(queries), pairs, eps, dim=self.dim)

    def scores(
        self, queries: Float[_validate.ArrayLike, "n_queries input_dim"]
    ) -> Float[Array, "n_queries n_models"]:
        """What the route maximises: theta ("smoothie") or the LenCons score ("auto")."""
        if self.method == "smoothie":
            return self.theta(queries)
        queries = self._check_queries(queries)
        if not self.confounded:  # the consensus alone: Smoothie-Global on the past
            return jnp.broadcast_to(self.consensus, (queries.shape[0], self.n_models))
        return _lencons_scores(
            self.log_lengths,
            self.observed,
            self.length_scale,
            self.consensus,
            self._neighbours(queries),
        )

    def weights(
        self, queries: Float[_validate.ArrayLike, "n_queries input_dim"]
    ) -> Float[Array, "n_queries n_models"]:
        """Per query, the route's preference over models, summing to 1: theta normalised
        ("smoothie"), or a softmax of the LenCons score ("auto")."""
        if self.method == "auto":
            return jax.nn.softmax(self.scores(queries), axis=-1)
        return _validate.normalise(self.theta(queries))

    def route(
        self, queries: Float[_validate.ArrayLike, "n_queries input_dim"]
    ) -> Int[Array, " n_queries"]:
        """Index of the model to call for each query."""
        return jnp.argmax(self.scores(queries), axis=-1)

    def decide(
        self,
        queries: Float[_validate.ArrayLike, "n_queries input_dim"],
        *,
        observed: Bool[_validate.ArrayLike, "n_queries n_models"] | None = None,
    ) -> Decision:
        """The model to call for each query, as a `Decision` (what, how sure, why).

        Args:
            queries: input embeddings of the new queries (the router's embedder).
            observed: where the queries' outputs exist already and some models did not
                answer: True where model j answered query i (it is never chosen elsewhere).
        """
        weights = self.weights(queries)
        score = weights if observed is None else jnp.where(observed, weights, -jnp.inf)
        if self.method == "smoothie":
            how = f"smoothie-local (k={self.k}), train-time"
            why = (
                f"Smoothie-Local router: each query's quality from its {self.k} nearest "
                "past inputs."
            )
        elif self.confounded:
            how = "lencons, train-time"
            why = (
                "families agree more than independence allows on the past outputs: LenCons, "
                f"each model's mean log length over the query's {self.k} nearest past inputs "
                "plus half of Smoothie-Global's standardised log quality on the past."
            )
        else:
            how = "smoothie-global, train-time"
            why = (
                "no family of models agrees more than independence allows on the past "
                "outputs: the consensus is trusted, Smoothie-Global on the past."
            )
        return argmax_decision(score, weights, method=how, reason=why)

    def _neighbours(self, queries: Array) -> Array:
        """Each query's k nearest past inputs: from the index (eager), or jitted."""
        if self.index is not None:
            return index_knn(self.index, queries, self.k, nprobe=self.search.nprobe)
        return _jitted_knn(
            queries, self.inputs, k=self.k, search=self.search, block_size=self.block_size
        )

    def _check_queries(self, queries: object) -> Array:
        queries = _validate.check_array("queries", queries, 2, "n_queries, input_dim")
        if queries.shape[1] != self.inputs.shape[1]:
            raise ValueError(
                f"queries have input_dim {queries.shape[1]}, the router was fit on "
                f"{self.inputs.shape[1]}: embed them with the same embedder"
            )
        return queries


@functools.partial(jax.jit, static_argnames=("k", "search", "block_size"))
def _jitted_knn(queries: Array, inputs: Array, *, k: int, search: Search, block_size: int) -> Array:
    return knn(queries, inputs, k, search=search, block_size=block_size)


# Arrays in, shapes static: a new eps or new model names reuse the compiled function.
@functools.partial(jax.jit, static_argnames=("dim",))
def _theta(
    distances: Array, neighbours: Array, pairs: Array | None, eps: Array, *, dim: int
) -> Array:
    return neighbourhood_theta(distances, neighbours, dim, eps=eps, pairs=pairs)


def _neighbour_length_mean(log_lengths: Array, observed: Array | None, neighbours: Array) -> Array:
    """Each model's mean past log length over the neighbours where it answered."""
    weight = None if observed is None else observed.astype(log_lengths.dtype)
    return neighbour_mean(log_lengths, neighbours, weight)


@jax.jit
def _lencons_scores(
    log_lengths: Array,
    observed: Array | None,
    length_scale: Array,
    consensus: Array,
    neighbours: Array,
) -> Array:
    predicted = _neighbour_length_mean(log_lengths, observed, neighbours)
    seen = (
        None if observed is None else neighbour_mean(observed.astype(jnp.float32), neighbours) > 0
    )
    length_z = centre(predicted, seen) / length_scale
    return lencons_scores(length_z, consensus, seen)


@jax.jit
def _length_scale(log_lengths: Array, observed: Array | None, neighbours: Array) -> Array:
    """The spread of the length signal over the past inputs themselves, each predicted
    from its k nearest OTHER past inputs (leave one out, as a new query would be)."""
    neighbours = neighbours[:, 1:]  # the input itself comes first
    predicted = _neighbour_length_mean(log_lengths, observed, neighbours)
    seen = (
        None if observed is None else neighbour_mean(observed.astype(jnp.float32), neighbours) > 0
    )
    return spread(centre(predicted, seen), seen)


def fit_router(
    embeddings: Float[_validate.ArrayLike, "n_samples n_models dim"],
    inputs: Float[_validate.ArrayLike, "n_samples input_dim"],
    *,
    k: int,
    eps: float = DEFAULT_EPS,
    block_size: int = DEFAULT_BLOCK_SIZE,
    models: Sequence[str] = (),
    observed: Bool[_validate.ArrayLike, "n_samples n_models"] | None = None,
    method: str = "smoothie",
    lengths: Real[_validate.ArrayLike, "n_samples n_models"] | None = None,
    search: str | Search = "exact",
) -> Router:
    """Fits a train-time router on past inputs and every model's outputs for them.

    `method="smoothie"` (default) is the paper's router: a query's theta from the
    distance statistics of its k nearest past inputs. `method="auto"` is the recommended
    router, which also needs the past outputs' `lengths`. It runs the independence test
    on the past outputs: where families of models agree more than independence allows,
    it is LenCons, scoring each model by the mean log length of its past outputs near
    the query (standardised by a spread fixed here) plus half of Smoothie-Global's
    standardised log theta on the past; otherwise the consensus is trusted and it routes
    as Smoothie-Global on the past.

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
        method: "smoothie" (the paper's router) or "auto" (recommended; needs lengths).
        lengths: length of each past output in characters (>= 0), for "auto".
        search: how a query's neighbours are found (a `Search` or its name): with
            "approximate" the router builds an inverted file over the past inputs once,
            keeps it (and saves it), and each query probes `nprobe` of its cells.

    Returns:
        A `Router`; `router.route(query_inputs)` picks one model per query.

    >>> x = jax.random.normal(jax.random.key(0), (100, 3, 8))
    >>> router = fit_router(x, x[:, 0], k=10)
    >>> router.route(x[:5, 1]).shape
    (5,)
    """
    embeddings = _validate.check_embeddings(embeddings)
    n, m, dim = embeddings.shape
    inputs = _validate.check_inputs(inputs, n)
    k = _validate.check_k(k, n)
    eps = _validate.check_eps(eps)
    block_size = _validate.check_block_size(block_size)
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if method == "auto" and lengths is None:
        raise ValueError("method='auto' needs lengths: the past outputs' lengths in characters")
    if method == "smoothie" and lengths is not None:
        raise ValueError("lengths are read by method='auto' only (the paper's router ignores them)")
    distances = jax.jit(sample_distances)(embeddings)
    if observed is not None:
        observed = _validate.check_observed(observed, (n, m))
    pairs = None if observed is None else pair_mask(observed)
    if pairs is not None:
        distances = distances * pairs  # unobserved pairs never enter a mean
    search = Search.parse(search)
    index = search.index(inputs) if search.method == "approximate" else None
    extra: dict = {}
    if method == "auto":
        log_lengths = log_length(_validate.check_lengths(lengths, (n, m)))
        if observed is not None:
            log_lengths = jnp.where(observed, log_lengths, 0.0)
        theta = global_theta(distances, dim, eps=jnp.asarray(eps, distances.dtype), pairs=pairs)
        k_loo = min(k, n - 1) if n > 1 else 1
        loo = (
            find_neighbours(inputs, k_loo + 1, search, block_size)
            if index is None
            else index_self_knn(index, k_loo + 1, nprobe=search.nprobe)
        )
        extra.update(
            log_lengths=log_lengths,
            length_scale=_length_scale(log_lengths, observed, loo),
            consensus=consensus_term(theta),
            confounded=confounded(embeddings, observed),
        )
    return Router(
        inputs=inputs,
        distances=distances,
        observed=observed,
        method=method,
        search=search,
        index=index,
        **extra,
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
        "masked": router.observed is not None,
        "method": router.method,
        "confounded": router.confounded,
        "search": dataclasses.asdict(router.search),
        "index": None
        if router.index is None
        else {
            "n_cells": router.index.n_cells,
            "n_blocks": router.index.blocks.shape[0],
            "block_size": router.index.block_size,
            "max_cell_blocks": router.index.max_cell_blocks,
        },
    }
    with atomic_write(path, "wb") as f:
        f.write((json.dumps(header) + "\n").encode())
        eqx.tree_serialise_leaves(f, router)


def _search_of(header: dict) -> Search:
    """The saved search; routers saved before it was recorded keep nprobe in the index."""
    if "search" in header:
        return Search(**header["search"])
    index = header.get("index")
    return Search() if index is None else Search("approximate", nprobe=index["nprobe"])


def _index_like(spec: dict | None, n: int, dim: int) -> IVFIndex | None:
    """A zero index shaped as the saved one, for `tree_deserialise_leaves`."""
    if spec is None:
        return None
    c, b, size = spec["n_cells"], spec["n_blocks"], spec["block_size"]
    index = IVFIndex(
        centroids=jnp.zeros((c, dim), jnp.float32),
        blocks=jnp.zeros((b, size, dim), jnp.float32),
        block_ids=jnp.zeros((b, size), jnp.int32),
        half_sq_norms=jnp.zeros((b, size), jnp.float32),
        cell_start=jnp.zeros(c, jnp.int32),
        cell_blocks=jnp.zeros(c, jnp.int32),
        cell_sizes=jnp.zeros(c, jnp.int32),
        n_points=n,
        n_cells=c,
        block_size=size,
        max_cell_blocks=spec["max_cell_blocks"],
    )
    return index


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
                observed=jnp.zeros((n, m), bool) if header.get("masked") else None,
                method=header.get("method", "smoothie"),
                confounded=header.get("confounded", True),
                **(
                    dict(
                        log_lengths=jnp.zeros((n, m), jnp.float32),
                        length_scale=jnp.zeros((), jnp.float32),
                        consensus=jnp.zeros(m, jnp.float32),
                    )
                    if header.get("method") == "auto"
                    else {}
                ),
                search=_search_of(header),
                index=_index_like(header.get("index"), n, header["input_dim"]),
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

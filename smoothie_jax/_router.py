"""Train-time routing: fit on past inputs and outputs, route new queries by input alone.

A new query's choice comes from the past inputs nearest it, so routing calls one model per
query. Two methods: "smoothie", the paper's Smoothie-Local router (the default: a query's
theta from the mean distance matrix of its k nearest past inputs), and "auto", the
recommended router (`_signals.py`): each model's consensus over those past inputs, plus
its mean past log length where length tracks the consensus in the past data; with past
final answers (`_agreement.py`), the model with the best estimated answer accuracy.
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
from ._agreement import answer_accuracy, answer_families
from ._atomic import atomic_write
from ._decision import Decision, argmax_decision
from ._distances import pair_mask, sample_distances
from ._embedder import Embedder
from ._estimator import DEFAULT_EPS
from ._inverted_file import IVFIndex, index_knn, index_self_knn
from ._knn import DEFAULT_BLOCK_SIZE
from ._neighbours import neighbour_mean
from ._search import Search, knn
from ._signals import RECOMMENDED, Recipe, agreement, centre, consensus, log_length, spread
from ._smoothie import find_neighbours, neighbourhood_theta

_FORMAT = "smoothie_jax.Router/3"
_OLD_FORMAT = "smoothie_jax.Router/2"  # the paper's routers saved then still load
METHODS = ("smoothie", "auto")


@final
class PastSignals(eqx.Module):
    """What the recommended router ("auto") keeps of the past, beside the distances.

    Attributes:
        consensus: each past output's consensus (`_signals.consensus`), 0 where unanswered.
        log_lengths: log(1 + length) of each past output (0 where unanswered), or None.
        consensus_scale: spread of the consensus predicted for a query (fixed at fit time,
            so a route never depends on the other queries).
        length_scale: the same for the length signal, or None.
        rho: the gate's reading on the past outputs (`_signals.agreement`), or None.
        recipe: the gate's constants.
        accuracy: with past answers, each model's estimated answer accuracy; else None.
    """

    consensus: Float[Array, "n_samples n_models"]
    consensus_scale: Float[Array, ""]
    log_lengths: Float[Array, "n_samples n_models"] | None = None
    length_scale: Float[Array, ""] | None = None
    rho: float | None = eqx.field(static=True, default=None)
    recipe: Recipe = eqx.field(static=True, default=RECOMMENDED)
    accuracy: Float[Array, " n_models"] | None = None

    @property
    def use_length(self) -> bool:
        return bool(self.rho is not None and self.rho > self.recipe.gate)


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
        search: how a query's neighbours are found (`Search`).
        index: with an "approximate" search, the inverted file over `inputs` (built once
            at fit time, saved with the router); else None.
        signals: the recommended router's past signals (`PastSignals`); None for the
            paper's router.
        embedder: how the past inputs were embedded (`Embedder`), so that new queries
            are embedded the same way; None where unknown (routers saved without it).
    """

    inputs: Float[Array, "n_samples input_dim"]
    distances: Float[Array, "n_samples n_models n_models"]
    dim: int = eqx.field(static=True)
    k: int = eqx.field(static=True)
    eps: float = eqx.field(static=True, default=DEFAULT_EPS)
    block_size: int = eqx.field(static=True, default=DEFAULT_BLOCK_SIZE)
    models: tuple[str, ...] = eqx.field(static=True, default=())
    observed: Bool[Array, "n_samples n_models"] | None = None
    search: Search = eqx.field(static=True, default=Search())
    index: IVFIndex | None = None
    signals: PastSignals | None = None
    embedder: Embedder | None = eqx.field(static=True, default=None)

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
        if self.signals is not None and self.signals.consensus.shape != (n, m):
            raise ValueError(f"signals must be per past input and model: (n, m) = {(n, m)}")
        if (self.index is not None) != (self.search.method == "approximate"):
            raise ValueError("an approximate search needs its index, and only it has one")
        if self.embedder is not None and self.embedder.dim != self.inputs.shape[1]:
            raise ValueError(
                f"the embedder {self.embedder.describe()} makes {self.embedder.dim}-dim "
                f"embeddings; the inputs are {self.inputs.shape[1]}-dim"
            )

    @property
    def n_models(self) -> int:
        return self.distances.shape[-1]

    @property
    def method(self) -> str:
        """ "smoothie" (the paper's router) or "auto" (the recommended one)."""
        return "smoothie" if self.signals is None else "auto"

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
        """What the route maximises: theta ("smoothie"), or the recommended score ("auto":
        the gated consensus-and-length score; with past answers, the log-odds of each
        model's answer accuracy, the same for every query)."""
        if self.signals is None:
            return self.theta(queries)
        queries = self._check_queries(queries)
        past = self.signals
        if past.accuracy is not None:
            log_odds = jnp.log(past.accuracy) - jnp.log1p(-past.accuracy)
            return jnp.broadcast_to(log_odds, (queries.shape[0], self.n_models))
        return _recommended_scores(
            past.consensus,
            past.log_lengths if past.use_length else None,
            self.observed,
            past.consensus_scale,
            past.length_scale,
            self._neighbours(queries),
            length_weight=past.recipe.length_weight,
        )

    def weights(
        self, queries: Float[_validate.ArrayLike, "n_queries input_dim"]
    ) -> Float[Array, "n_queries n_models"]:
        """Per query, the route's preference over models, summing to 1: theta normalised
        ("smoothie"), or a softmax of the recommended score ("auto")."""
        if self.signals is not None:
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
        how, why = self._reason()
        return argmax_decision(score, weights, method=how, reason=why)

    def _reason(self) -> tuple[str, str]:
        past = self.signals
        if past is None:
            return f"smoothie-local (k={self.k}), train-time", (
                f"Smoothie-Local router: each query's quality from its {self.k} nearest "
                "past inputs."
            )
        if past.accuracy is not None:
            return "answer accuracy, train-time", (
                "Past answers given: the model whose final answers agree best with the "
                "others' (its accuracy from answer agreement, families counted once)."
            )
        near = f"over the query's {self.k} nearest past inputs"
        if past.rho is None:
            return "consensus, train-time", f"No past lengths: each model's consensus {near}."
        if past.use_length:
            return "consensus + length, train-time", (
                f"Length tracks the consensus in the past outputs (rho = {past.rho:.3f} > "
                f"{past.recipe.gate}): each model's consensus plus its log length {near}."
            )
        return "consensus, train-time", (
            f"Length does not track the consensus in the past outputs (rho = {past.rho:.3f} "
            f"<= {past.recipe.gate}), so it is left out: each model's consensus {near}."
        )

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


def _predicted(
    signal: Array, observed: Array | None, neighbours: Array
) -> tuple[Array, Array | None]:
    """Each model's mean past signal over the neighbours where it answered, centred per
    query over the models seen there; and where it was seen."""
    weight = None if observed is None else observed.astype(signal.dtype)
    mean = neighbour_mean(signal, neighbours, weight)
    seen = None if weight is None else neighbour_mean(weight, neighbours) > 0
    return centre(mean, seen), seen


@functools.partial(jax.jit, static_argnames=("length_weight",))
def _recommended_scores(
    cons: Array,
    log_lengths: Array | None,
    observed: Array | None,
    consensus_scale: Array,
    length_scale: Array | None,
    neighbours: Array,
    *,
    length_weight: float,
) -> Array:
    predicted, seen = _predicted(cons, observed, neighbours)
    score = predicted / consensus_scale
    if log_lengths is not None:
        predicted_length, _ = _predicted(log_lengths, observed, neighbours)
        score = score + length_weight * predicted_length / length_scale
    return score if seen is None else jnp.where(seen, score, -jnp.inf)


@jax.jit
def _scale(signal: Array, observed: Array | None, neighbours: Array) -> Array:
    """The spread of a signal predicted for the past inputs themselves, each from its k
    nearest OTHER past inputs (leave one out, as a new query would be)."""
    centred, seen = _predicted(signal, observed, neighbours[:, 1:])  # itself comes first
    return spread(centred, seen)


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
    answers: Int[_validate.ArrayLike, "n_samples n_models"] | None = None,
    recipe: Recipe = RECOMMENDED,
    search: str | Search = "exact",
    embedder: Embedder | None = None,
) -> Router:
    """Fits a train-time router on past inputs and every model's outputs for them.

    `method="smoothie"` (default) is the paper's router: a query's theta from the
    distance statistics of its k nearest past inputs. `method="auto"` is the recommended
    router (`_signals.py`): each model's consensus over the query's k nearest past
    inputs, plus its mean past log length there where length tracks the consensus in the
    past outputs (the gate is read here, once); with past final `answers`, the model
    whose answers agree best with the others' (`_agreement.py`).

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
        method: "smoothie" (the paper's router) or "auto" (the recommended one).
        lengths: "auto": length of each past output in characters (>= 0).
        answers: "auto": integer codes of each past output's final answer (equal in a
            row: the same answer; -1: none; `data.answer_codes`).
        recipe: "auto": the gate's constants (`Recipe`).
        search: how a query's neighbours are found (a `Search` or its name): with
            "approximate" the router builds an inverted file over the past inputs once,
            keeps it (and saves it), and each query probes `nprobe` of its cells.
        embedder: what embedded `inputs` (`describe_embedder(model)`), kept and saved
            with the router so that text queries are embedded the same way and queries
            embedded otherwise are refused (`serve.route_texts`, the gateway).

    Returns:
        A `Router`; `router.route(query_inputs)` picks one model per query.

    >>> x = jax.random.normal(jax.random.key(0), (100, 3, 8))
    >>> router = fit_router(x, x[:, 0], k=10)
    >>> router.route(x[:5, 1]).shape
    (5,)
    """
    embeddings = _validate.check_embeddings(embeddings)
    n, m, _ = embeddings.shape
    inputs = _validate.check_inputs(inputs, n)
    k = _validate.check_k(k, n)
    eps = _validate.check_eps(eps)
    block_size = _validate.check_block_size(block_size)
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if method == "smoothie" and (lengths is not None or answers is not None):
        raise ValueError(
            "lengths and answers are read by method='auto' only (the paper's router ignores them)"
        )
    if observed is not None:
        observed = _validate.check_observed(observed, (n, m))
    distances = jax.jit(sample_distances)(embeddings)
    pairs = None if observed is None else pair_mask(observed)
    if pairs is not None:
        distances = distances * pairs  # unobserved pairs never enter a mean
    search = Search.parse(search)
    index = search.index(inputs) if search.method == "approximate" else None
    signals = None
    if method == "auto":
        k_loo = min(k, n - 1) if n > 1 else 1
        loo = (
            find_neighbours(inputs, k_loo + 1, search, block_size)
            if index is None
            else index_self_knn(index, k_loo + 1, nprobe=search.nprobe)
        )
        signals = _past_signals(distances, pairs, observed, lengths, answers, loo, recipe)
    return Router(
        inputs=inputs,
        distances=distances,
        observed=observed,
        search=search,
        index=index,
        signals=signals,
        dim=embeddings.shape[-1],
        k=k,
        eps=float(eps),
        block_size=block_size,
        models=tuple(models),
        embedder=embedder,
    )


def _past_signals(
    distances: Array,
    pairs: Array | None,
    observed: Array | None,
    lengths: object,
    answers: object,
    loo: Array,
    recipe: Recipe,
) -> PastSignals:
    """The recommended router's signals on the past, their spreads and the gate's reading."""
    n, m, _ = distances.shape
    cons = consensus(distances, pairs)
    if observed is not None:
        cons = jnp.where(observed, cons, 0.0)
    accuracy = None
    if answers is not None:
        codes = _validate.check_answers(answers, (n, m))
        accuracy = jnp.asarray(answer_accuracy(codes, answer_families(codes)), jnp.float32)
    log_lengths = length_scale = rho = None
    if lengths is not None:
        log_lengths = log_length(_validate.check_lengths(lengths, (n, m)))
        if observed is not None:
            log_lengths = jnp.where(observed, log_lengths, 0.0)
        rho = float(agreement(log_lengths, cons, observed))
        length_scale = _scale(log_lengths, observed, loo)
    return PastSignals(
        consensus=cons,
        consensus_scale=_scale(cons, observed, loo),
        log_lengths=log_lengths,
        length_scale=length_scale,
        rho=rho,
        recipe=recipe,
        accuracy=accuracy,
    )


def save_router(path: str | os.PathLike, router: Router) -> None:
    """Saves a router atomically: a JSON header line (its settings, and its `embedder`
    where known), then `eqx.tree_serialise_leaves`."""
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
        "signals": None if router.signals is None else _signals_header(router.signals),
        "search": dataclasses.asdict(router.search),
        "index": None
        if router.index is None
        else {
            "n_cells": router.index.n_cells,
            "n_blocks": router.index.blocks.shape[0],
            "block_size": router.index.block_size,
            "max_cell_blocks": router.index.max_cell_blocks,
        },
        "embedder": None if router.embedder is None else router.embedder.to_json(),
    }
    with atomic_write(path, "wb") as f:
        f.write((json.dumps(header) + "\n").encode())
        eqx.tree_serialise_leaves(f, router)


def _signals_header(past: PastSignals) -> dict:
    return {
        "lengths": past.log_lengths is not None,
        "answers": past.accuracy is not None,
        "rho": past.rho,
        "recipe": dataclasses.asdict(past.recipe),
    }


def _signals_like(spec: dict | None, n: int, m: int) -> PastSignals | None:
    """Zero signals shaped as the saved ones, for `tree_deserialise_leaves`."""
    if spec is None:
        return None
    zeros, scalar = jnp.zeros((n, m), jnp.float32), jnp.zeros((), jnp.float32)
    return PastSignals(
        consensus=zeros,
        consensus_scale=scalar,
        log_lengths=zeros if spec["lengths"] else None,
        length_scale=scalar if spec["lengths"] else None,
        rho=spec["rho"],
        recipe=Recipe(**spec["recipe"]),
        accuracy=jnp.zeros(m, jnp.float32) if spec["answers"] else None,
    )


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


def _embedder_of(header: dict) -> Embedder | None:
    """The recorded embedder; None for routers saved before it was recorded."""
    record = header.get("embedder")
    return None if record is None else Embedder.from_json(record)


def load_router(path: str | os.PathLike) -> Router:
    """Loads a router written by `save_router`."""
    with open(path, "rb") as f:
        try:
            header = json.loads(f.readline())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ValueError(f"{path} is not a saved smoothie_jax router: {e}") from None
        if not isinstance(header, dict) or header.get("format") not in (_FORMAT, _OLD_FORMAT):
            raise ValueError(f"{path} is not a saved smoothie_jax router (format {_FORMAT})")
        if header["format"] == _OLD_FORMAT and header.get("method") == "auto":
            raise ValueError(
                f"{path} holds a recommended router saved by smoothie_jax < 0.3, whose rule "
                "has changed since: fit it again (route --train ... --save-router)"
            )
        try:
            n, m = header["n_samples"], header["n_models"]
            like = Router(
                inputs=jnp.zeros((n, header["input_dim"]), jnp.float32),
                distances=jnp.zeros((n, m, m), jnp.float32),
                observed=jnp.zeros((n, m), bool) if header.get("masked") else None,
                signals=_signals_like(header.get("signals"), n, m),
                search=_search_of(header),
                index=_index_like(header.get("index"), n, header["input_dim"]),
                dim=header["dim"],
                k=header["k"],
                eps=header["eps"],
                block_size=header["block_size"],
                models=tuple(header.get("models", ())),
                embedder=_embedder_of(header),
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

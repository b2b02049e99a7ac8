"""Train-time routing: fit on past inputs and outputs, route new queries by input alone.

A new query's choice comes from the past inputs nearest it, so routing calls one model per
query. Each router is its own final class under the abstract `Router`, which holds what
they share (the past inputs' `SearchIndex`, k, model names, the embedder) and the route
itself (`route`, `decide`); each says only how it scores a query:

- `SmoothieRouter`, the paper's: a query's theta from the mean distance matrix of its k
  nearest past inputs (Smoothie-Local on the past).
- `ConsensusRouter`, the recommended one without answers (`_signals.py`): the test-time
  decisions made on the past, voted over those past inputs and all of them.
- `AnswerRouter`, the recommended one with past final answers (`_agreement.py`): the model
  whose answers agree best with the others' (families counted once), for every query.

`_fit_router.py` fits them (`fit_router` validates the past once and builds the one
`method` asks for); `_router_io.py` saves and loads them.
"""

from __future__ import annotations

import abc
import dataclasses
import functools
from typing import Any, ClassVar, final

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int

from . import _validate
from ._decision import Decision, argmax_decision
from ._distances import pair_mask
from ._embedder import Embedder
from ._estimator import DEFAULT_EPS
from ._neighbours import neighbour_mean
from ._search import Search, SearchIndex
from ._signals import RECOMMENDED, VOTE_SHARPNESS, Recipe, centre
from ._smoothie import neighbourhood_theta


class Router(eqx.Module):
    """A fitted train-time router: one model per new query, from the query alone.

    Build one with `fit_router` (or load one with `load_router`); it never mutates. The
    variants are `SmoothieRouter`, `ConsensusRouter` and `AnswerRouter`; each says how it
    scores a query (`scores`, `weights`, `explain`), and this class routes on that.

    Attributes:
        index: the past inputs, kept to be searched for each query's neighbours.
        k: neighbours per query.
        models: model names in column order (kept for saving and reporting), or ().
        embedder: how the past inputs were embedded, so that text queries are embedded
            the same way; None where unknown.
    """

    kind: ClassVar[str]  # the name `save_router` writes
    index: eqx.AbstractVar[SearchIndex]
    k: eqx.AbstractVar[int]
    models: eqx.AbstractVar[tuple[str, ...]]
    embedder: eqx.AbstractVar[Embedder | None]

    @property
    @abc.abstractmethod
    def n_models(self) -> int:
        """Models the router chooses among."""

    @abc.abstractmethod
    def _scores(self, queries: Array) -> Float[Array, "n_queries n_models"]:
        """What the route maximises, for checked queries."""

    @abc.abstractmethod
    def _weights(self, scores: Array) -> Float[Array, "n_queries n_models"]:
        """The route's preference over models from its scores, summing to 1 per query."""

    @abc.abstractmethod
    def explain(self) -> tuple[str, str]:
        """The method's name (as `Decision.method` says it) and one sentence of why."""

    @abc.abstractmethod
    def settings(self) -> dict[str, Any]:
        """What `save_router` writes to shape the variant's own arrays (JSON)."""

    @classmethod
    @abc.abstractmethod
    def empty(cls, n: int, m: int, settings: dict[str, Any], **shared: Any) -> Router:
        """A router of this variant with zero arrays shaped by `settings`, for loading
        (`shared`: the fields every variant has)."""

    @property
    def method(self) -> str:
        """The route's name, e.g. "consensus vote, train-time"."""
        return self.explain()[0]

    @property
    def input_dim(self) -> int:
        """Dimension of the input embeddings a query must have."""
        return self.index.input_dim

    @property
    def n_samples(self) -> int:
        """Past inputs the router was fitted on."""
        return self.index.n_points

    @property
    def search(self) -> Search:
        return self.index.search

    @property
    def block_size(self) -> int:
        return self.index.block_size

    def scores(
        self, queries: Float[_validate.ArrayLike, "n_queries input_dim"]
    ) -> Float[Array, "n_queries n_models"]:
        """What the route maximises for each query (the variant says what)."""
        return self._scores(self.check_queries(queries))

    def weights(
        self, queries: Float[_validate.ArrayLike, "n_queries input_dim"]
    ) -> Float[Array, "n_queries n_models"]:
        """Per query, the route's preference over models, summing to 1."""
        return self._weights(self.scores(queries))

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
        how, why = self.explain()
        return argmax_decision(score, weights, method=how, reason=why)

    def with_search(self, search: Search | str) -> Router:
        """The same router searching its past inputs another way (e.g. "bf16" on a GPU);
        a router that keeps an inverted file refuses any other search."""
        return dataclasses.replace(self, index=self.index.with_search(search))

    def _neighbours(self, queries: Array) -> Int[Array, "n_queries k"]:
        return self.index.query(queries, self.k)

    def check_queries(self, queries: object) -> Array:
        """Query embeddings as a float array of this router's input_dim (ValueError else)."""
        queries = _validate.check_array("queries", queries, 2, "n_queries, input_dim")
        if queries.shape[1] != self.input_dim:
            raise ValueError(
                f"queries have input_dim {queries.shape[1]}, the router was fit on "
                f"{self.input_dim}: embed them with the same embedder"
            )
        return queries

    def _check_common(self, n_models: int) -> None:
        """The invariants every variant shares (called from each `__check_init__`)."""
        n = self.index.n_points
        if not 1 <= self.k <= n:
            raise ValueError(f"k must be in [1, n_samples={n}], got k={self.k}")
        if self.models and len(self.models) != n_models:
            raise ValueError(f"{len(self.models)} model names for {n_models} models")
        if self.embedder is not None and self.embedder.dim != self.input_dim:
            raise ValueError(
                f"the embedder {self.embedder.describe()} makes {self.embedder.dim}-dim "
                f"embeddings; the inputs are {self.input_dim}-dim"
            )


def _check_rows(name: str, x: Array | None, shape: tuple[int, ...]) -> None:
    if x is not None and x.shape != shape:
        raise ValueError(f"{name} must be per past input and model: {shape}, got {x.shape}")


@final
class SmoothieRouter(Router):
    """The paper's router: a query's theta from its k nearest past inputs' mean D.

    Attributes:
        distances: per-past-input squared distances between the models' outputs (0 for
            a pair where a model did not answer).
        observed: for sparse logs, True where model j answered past input i; else None.
        dim: dimension of the output embeddings (theta is per axis).
        eps: floor on the estimated squared error; see `theta_from_distances`.
    """

    kind: ClassVar[str] = "smoothie"
    index: SearchIndex
    distances: Float[Array, "n_samples n_models n_models"]
    observed: Bool[Array, "n_samples n_models"] | None
    k: int = eqx.field(static=True)
    dim: int = eqx.field(static=True)
    eps: float = eqx.field(static=True, default=DEFAULT_EPS)
    models: tuple[str, ...] = eqx.field(static=True)
    embedder: Embedder | None = eqx.field(static=True)

    def __check_init__(self) -> None:
        n, m, m2 = self.distances.shape
        if n != self.index.n_points or m != m2:
            raise ValueError(
                f"SmoothieRouter needs distances (n, m, m) for its n = {self.index.n_points} "
                f"past inputs; got {self.distances.shape}"
            )
        _check_rows("observed", self.observed, (n, m))
        self._check_common(m)

    @property
    def n_models(self) -> int:
        return self.distances.shape[-1]

    def theta(
        self, queries: Float[_validate.ArrayLike, "n_queries input_dim"]
    ) -> Float[Array, "n_queries n_models"]:
        """Smoothie-Local's quality of each model for each query (jitted)."""
        return self.scores(queries)

    def _scores(self, queries: Array) -> Array:
        eps = jnp.asarray(self.eps, self.distances.dtype)
        pairs = None if self.observed is None else pair_mask(self.observed)
        return _theta(self.distances, self._neighbours(queries), pairs, eps, dim=self.dim)

    def _weights(self, scores: Array) -> Array:
        return _validate.normalise(scores)

    def explain(self) -> tuple[str, str]:
        return f"smoothie-local (k={self.k}), train-time", (
            f"Smoothie-Local router: each query's quality from its {self.k} nearest past inputs."
        )

    def settings(self) -> dict[str, Any]:
        return {"dim": self.dim, "eps": self.eps, "masked": self.observed is not None}

    @classmethod
    def empty(cls, n: int, m: int, settings: dict[str, Any], **shared: Any) -> SmoothieRouter:
        return cls(
            distances=jnp.zeros((n, m, m), jnp.float32),
            observed=jnp.zeros((n, m), bool) if settings["masked"] else None,
            dim=settings["dim"],
            eps=settings["eps"],
            **shared,
        )


@final
class ConsensusRouter(Router):
    """The recommended router without answers: it learns the test-time decisions made on
    past traffic. Each past input votes for the model nearest the estimate of its truth
    (`_signals.vote_decisions`); a query calls the model with the highest vote rate among
    its k nearest past inputs plus `recipe.prior` times its rate over all past inputs; where
    the past inputs hold a task with its own top model (`_signals.read_tasks`), a query of
    that task weighs the task's rate, the others the rate over the rest. Scores are
    centred per query and divided by `scale`, so that labels move them in the same units
    as the test-time score (`_label_model`).

    Attributes:
        votes: per past input, 1 for the model it chose, else 0.
        share: (n_tasks, n_models) each model's vote rate over the past inputs it
            answered: one row for all, or each task's own where it has its own top model
            and the rest's elsewhere.
        centroids: (n_tasks, input_dim) unit centroids of the tasks: a query joins the
            task of highest cosine (one task: zeros).
        scale: spread of the score predicted for a query (each past input's from its k
            nearest others; fixed at fit time, so a route never depends on other queries).
        observed: for sparse logs, True where model j answered past input i; else None (a
            rate counts only the inputs the model answered; never chosen where unseen).
        recipe: the prior's weight (`Recipe.prior`).
    """

    kind: ClassVar[str] = "consensus"
    index: SearchIndex
    votes: Float[Array, "n_samples n_models"]
    share: Float[Array, "n_tasks n_models"]
    centroids: Float[Array, "n_tasks input_dim"]
    scale: Float[Array, ""]
    observed: Bool[Array, "n_samples n_models"] | None
    k: int = eqx.field(static=True)
    recipe: Recipe = eqx.field(static=True, default=RECOMMENDED)
    models: tuple[str, ...] = eqx.field(static=True)
    embedder: Embedder | None = eqx.field(static=True)

    def __check_init__(self) -> None:
        shape = (self.index.n_points, self.votes.shape[-1])
        _check_rows("votes", self.votes, shape)
        _check_rows("observed", self.observed, shape)
        if self.share.ndim != 2 or self.share.shape[1] != shape[1]:
            raise ValueError(
                f"share must be (n_tasks, n_models) with n_models = {shape[1]}, "
                f"got {self.share.shape}"
            )
        if self.centroids.shape != (self.share.shape[0], self.index.input_dim):
            raise ValueError(
                f"centroids must be (n_tasks, input_dim) = ({self.share.shape[0]}, "
                f"{self.index.input_dim}), got {self.centroids.shape}"
            )
        self._check_common(shape[1])

    @property
    def n_models(self) -> int:
        return self.votes.shape[-1]

    @property
    def n_tasks(self) -> int:
        return self.share.shape[0]

    def _scores(self, queries: Array) -> Array:
        share = self.share[jnp.argmax(queries @ self.centroids.T, axis=1)]
        raw = vote_score(
            self.votes, share, self.observed, self.recipe.prior, self._neighbours(queries)
        )
        return raw / self.scale

    def _weights(self, scores: Array) -> Array:
        return jax.nn.softmax(scores, axis=-1)

    def explain(self) -> tuple[str, str]:
        per_task = _per_task(self.share, "vote for their own top models", "weighs its task's rate")
        return "consensus vote, train-time", (
            "Each past input votes for the output nearest its estimated truth (weighted "
            f"consensus at s = {VOTE_SHARPNESS:g}); the query's model has the highest vote rate "
            f"over its {self.k} nearest past inputs plus {self.recipe.prior:g} x its rate "
            "over all past inputs." + per_task
        )

    def settings(self) -> dict[str, Any]:
        return {
            "recipe": dataclasses.asdict(self.recipe),
            "masked": self.observed is not None,
            "rule": "vote",
            "tasks": self.n_tasks,
        }

    @classmethod
    def empty(cls, n: int, m: int, settings: dict[str, Any], **shared: Any) -> ConsensusRouter:
        tasks = settings.get("tasks", 1)
        return cls(
            votes=jnp.zeros((n, m), jnp.float32),
            share=jnp.zeros((tasks, m), jnp.float32),
            centroids=jnp.zeros((tasks, shared["index"].input_dim), jnp.float32),
            scale=jnp.ones((), jnp.float32),
            observed=jnp.zeros((n, m), bool) if settings["masked"] else None,
            recipe=Recipe(**settings["recipe"]),
            **shared,
        )


@final
class AnswerRouter(Router):
    """The recommended router with past final answers: the model whose answers agree best
    with the others' (its accuracy from answer agreement, families counted once), per
    task found in the past inputs where their answers show the tasks differ (`_tasks.py`).

    Attributes:
        accuracy: (n_tasks, n_models) each model's estimated answer accuracy on the past
            inputs of each task (the overall estimate where the task's answers showed no
            other best model).
        centroids: (n_tasks, input_dim) unit centroids of the tasks: a query joins the
            task of highest cosine.
    """

    kind: ClassVar[str] = "answers"
    index: SearchIndex
    accuracy: Float[Array, "n_tasks n_models"]
    centroids: Float[Array, "n_tasks input_dim"]
    k: int = eqx.field(static=True)
    models: tuple[str, ...] = eqx.field(static=True)
    embedder: Embedder | None = eqx.field(static=True)

    def __check_init__(self) -> None:
        if self.accuracy.ndim != 2 or self.centroids.shape != (
            self.accuracy.shape[0],
            self.index.input_dim,
        ):
            raise ValueError(
                "accuracy must be (n_tasks, n_models) and centroids (n_tasks, input_dim), "
                f"got {self.accuracy.shape} and {self.centroids.shape}"
            )
        self._check_common(self.accuracy.shape[1])

    @property
    def n_models(self) -> int:
        return self.accuracy.shape[1]

    @property
    def n_tasks(self) -> int:
        return self.accuracy.shape[0]

    def _scores(self, queries: Array) -> Array:
        task = jnp.argmax(queries @ self.centroids.T, axis=1)
        accuracy = self.accuracy[task]
        return jnp.log(accuracy) - jnp.log1p(-accuracy)

    def _weights(self, scores: Array) -> Array:
        return jax.nn.softmax(scores, axis=-1)

    def explain(self) -> tuple[str, str]:
        per_task = _per_task(self.accuracy, "have their own best models", "goes to its task's")
        return "answer accuracy, train-time", (
            "Past answers given: the model whose final answers agree best with the "
            "others' (its accuracy from answer agreement, families counted once)." + per_task
        )

    def settings(self) -> dict[str, Any]:
        return {"tasks": self.n_tasks}

    @classmethod
    def empty(cls, n: int, m: int, settings: dict[str, Any], **shared: Any) -> AnswerRouter:
        tasks = settings.get("tasks", 1)
        dim = shared["index"].input_dim
        return cls(
            accuracy=jnp.full((tasks, m), 0.5, jnp.float32),
            centroids=jnp.zeros((tasks, dim), jnp.float32),
            **shared,
        )


def _per_task(table: Array, found: str, query: str) -> str:
    """The explanation's sentence where tasks found in the past inputs (rows of `table`,
    one per task) have different top models; "" where they share one."""
    tops = sorted(set(np.argmax(np.asarray(table), axis=1).tolist()))
    return (
        f" Tasks found in the past inputs {found} ({tops}): a query {query}."
        if len(tops) > 1
        else ""
    )


# Arrays in, shapes static: a new eps or new model names reuse the compiled function.
@functools.partial(jax.jit, static_argnames=("dim",))
def _theta(
    distances: Array, neighbours: Array, pairs: Array | None, eps: Array, *, dim: int
) -> Array:
    return neighbourhood_theta(distances, neighbours, dim, eps=eps, pairs=pairs)


def vote_rate(votes: Array, observed: Array | None, neighbours: Array) -> Array:
    """Each model's share of the votes among each query's `neighbours` it answered; -inf
    where it answered none of them (never chosen where unseen). Over all past inputs:
    `_tasks.vote_rates`."""
    if observed is None:
        return neighbour_mean(votes, neighbours)
    weight = observed.astype(votes.dtype)
    rate = neighbour_mean(votes, neighbours, weight)
    return jnp.where(neighbour_mean(weight, neighbours) > 0, rate, -jnp.inf)


@jax.jit
def vote_score(
    votes: Array, share: Array, observed: Array | None, prior: Array | float, neighbours: Array
) -> Array:
    """Per query, each model's vote rate over its neighbours plus `prior` x its rate over
    all past inputs, or its task's (`share`: one row per query), centred over the models
    seen there (-inf where unseen)."""
    score = vote_rate(votes, observed, neighbours) + prior * share
    seen = jnp.isfinite(score)
    return jnp.where(seen, centre(jnp.where(seen, score, 0.0), seen), -jnp.inf)

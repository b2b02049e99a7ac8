"""Fitting the train-time routers (`_router.py`) on past traffic.

`fit_router` is the public entry point: it validates the past once (`make_batch`), keeps
the past inputs to search (`Search.index`) and builds the variant `method` asks for. The
`fit_*_router` functions build one variant from a validated batch and an index, for
callers that hold them already (the evaluation fits several routers on one past).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax.numpy as jnp
import numpy as np
from jaxtyping import Bool, Float, Int, Real

from . import _validate
from ._batch import Batch, make_batch
from ._embedder import Embedder
from ._estimator import DEFAULT_EPS
from ._knn import DEFAULT_BLOCK_SIZE
from ._router import (
    AnswerRouter,
    ConsensusRouter,
    Router,
    SmoothieRouter,
    vote_score,
)
from ._search import Search, SearchIndex
from ._signals import RECOMMENDED, Recipe, spread, vote_decisions
from ._tasks import read_answers, task_points, vote_rates

METHODS = ("smoothie", "auto")


def fit_smoothie_router(
    batch: Batch,
    index: SearchIndex,
    *,
    k: int,
    eps: float = DEFAULT_EPS,
    models: Sequence[str] = (),
    embedder: Embedder | None = None,
) -> SmoothieRouter:
    """The paper's router on a validated batch of past traffic and its inputs' index."""
    return SmoothieRouter(
        index=index,
        distances=batch.distances,
        observed=batch.observed,
        k=k,
        dim=batch.dim,
        eps=float(eps),
        models=tuple(models),
        embedder=embedder,
    )


def fit_consensus_router(
    batch: Batch,
    index: SearchIndex,
    *,
    k: int,
    recipe: Recipe = RECOMMENDED,
    models: Sequence[str] = (),
    embedder: Embedder | None = None,
) -> ConsensusRouter:
    """The recommended router without answers, on a validated batch of past traffic: each
    past input's test-time decision (`_signals.vote_decisions`), each model's vote rate
    over all of them, or over its task's inputs where the test-time reading found the task
    to have its own top model (`_signals.read_tasks`), and the spread of the score (each
    past input predicted from its k nearest others), taken once here."""
    (votes, tasks), observed = vote_decisions(batch), batch.observed
    n = batch.n_samples
    # Each departed task's rate, and last the rest's (all inputs where none departed).
    rates = vote_rates(votes, tasks.reading(), len(tasks.best) + 1, observed)
    share = jnp.asarray(rates[-1:], jnp.float32)
    centroids = jnp.zeros((1, index.input_dim), jnp.float32)
    task = jnp.zeros(n, jnp.int32)  # each past input's task
    if tasks.departed.any():  # a task with its own top model: its own rate; the rest theirs
        share = jnp.asarray(np.where(tasks.departed[:, None], rates[:-1], rates[-1]), jnp.float32)
        centroids = jnp.asarray(tasks.centroids, jnp.float32)
        task = jnp.asarray(tasks.groups, jnp.int32)
    k_loo = min(k, n - 1) if n > 1 else 1
    loo = index.self_query(k_loo + 1)[:, 1:]  # itself comes first
    past = vote_score(votes, share[task], observed, recipe.prior, loo)
    seen = jnp.isfinite(past)
    return ConsensusRouter(
        index=index,
        votes=votes,
        share=share,
        centroids=centroids,
        scale=spread(jnp.where(seen, past, 0.0), seen),
        observed=observed,
        k=k,
        recipe=recipe,
        models=tuple(models),
        embedder=embedder,
    )


def fit_answer_router(
    batch: Batch,
    index: SearchIndex,
    *,
    k: int,
    models: Sequence[str] = (),
    embedder: Embedder | None = None,
) -> AnswerRouter:
    """The recommended router with past answers, on a validated batch that holds them:
    each model's accuracy from answer agreement, and per task found in the past inputs
    the accuracy read from that task's answers where they show another best model
    (`_tasks.py`)."""
    if batch.answers is None:
        raise ValueError("an answer router needs the past outputs' answers")
    evidence = read_answers(batch.answers, task_points(batch))
    best, accuracy = evidence.best(), evidence.accuracy
    if np.all(best == evidence.overall):  # one best model: one task, as without groups
        accuracy, centroids = accuracy[None], np.zeros_like(evidence.centroids[:1])
    else:  # a task whose answers show its own best model is read by its own answers
        accuracy = np.where((best == evidence.overall)[:, None], accuracy, evidence.group_right())
        centroids = evidence.centroids
    return AnswerRouter(
        index=index,
        accuracy=jnp.asarray(accuracy, jnp.float32),
        centroids=jnp.asarray(centroids, jnp.float32),
        k=k,
        models=tuple(models),
        embedder=embedder,
    )


def fit_recommended_router(
    batch: Batch,
    index: SearchIndex,
    *,
    k: int,
    recipe: Recipe = RECOMMENDED,
    models: Sequence[str] = (),
    embedder: Embedder | None = None,
) -> AnswerRouter | ConsensusRouter:
    """The recommended router on a validated batch: by the past answers where it holds
    them, else by the vote of the past inputs' test-time decisions."""
    named = {"k": k, "models": tuple(models), "embedder": embedder}
    if batch.answers is not None:
        return fit_answer_router(batch, index, **named)
    return fit_consensus_router(batch, index, recipe=recipe, **named)


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

    `method="smoothie"` (default) is the paper's router (`SmoothieRouter`): a query's
    theta from the distance statistics of its k nearest past inputs. `method="auto"` is
    the recommended router: with past final `answers`, the model whose answers agree best
    with the others' (`AnswerRouter`); otherwise the test-time decisions made on the
    past, voted over the query's k nearest past inputs and all of them (`ConsensusRouter`).

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
        lengths: "auto": length of each past output in characters (>= 0): checked, not
            read by the label-free router.
        answers: "auto": integer codes of each past output's final answer (equal in a
            row: the same answer; -1: none; `data.answer_codes`).
        recipe: "auto": the recommended router's constants (`Recipe`; train-time: `prior`).
        search: how a query's neighbours are found (a `Search` or its name): with
            "approximate" the router builds an inverted file over the past inputs once,
            keeps it (and saves it), and each query probes `nprobe` of its cells.
        embedder: what embedded `inputs` (`sj.text.describe_embedder(model)`), kept and
            saved with the router so that text queries are embedded the same way and
            queries embedded otherwise are refused (`serve.route_texts`, the gateway).

    Returns:
        A `Router`; `router.route(query_inputs)` picks one model per query.

    >>> import jax
    >>> x = jax.random.normal(jax.random.key(0), (100, 3, 8))
    >>> router = fit_router(x, x[:, 0], k=10)
    >>> router.route(x[:5, 1]).shape
    (5,)
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if method == "smoothie" and (lengths is not None or answers is not None):
        raise ValueError(
            "lengths and answers are read by method='auto' only (the paper's router ignores them)"
        )
    batch = make_batch(embeddings, inputs, lengths=lengths, answers=answers, observed=observed)
    k = _validate.check_k(k, batch.n_samples)
    eps = _validate.check_eps(eps)
    block_size = _validate.check_block_size(block_size)
    index = Search.parse(search).index(batch.inputs, block_size=block_size)
    named = {"k": k, "models": tuple(models), "embedder": embedder}
    if method == "smoothie":
        return fit_smoothie_router(batch, index, eps=eps, **named)
    return fit_recommended_router(batch, index, recipe=recipe, **named)

"""The recommended router's label-free signal: the consensus, weighted by quality.

    score[x, i] = - sum_j v_j D_ij(x),   v_j = theta_j^s / sum_k theta_k^s

D(x) is input x's squared distances between the models' outputs and theta Smoothie-
Global's quality of each model. Under the paper's model (lambda_i = y + N(0, sigma_i^2 I))
the posterior mean of the true output y given one input's outputs is their mean weighted
by precision, theta; an output's squared distance to that mean is, up to a constant of
the input, sum_j v_j D_ij. So s = 1 is the model's own answer (the output nearest the best
estimate of the truth), s = 0 the plain consensus (the medoid, Smoothie-Local with k = 1),
and s -> infinity Smoothie-Global (the best model's output every time). The sharpness s is
the test-time router's constant, chosen leave-one-set-out over the four dev sets on
test-time routing (`benchmarks/router_dev.py`; docs/results/routing.md gives each fold's).

A mix of tasks can have a different best model per task, which one theta for the file
misreads. `read_tasks` groups the inputs (`_tasks.find_tasks`) and gives a group its own
Global theta only where two readings agree, as answers are read: the group's decisions
(s = 1) show another top model than all inputs' by more than `_tasks.VOTE_Z` paired
standard errors (`_tasks.vote_tasks`), and its own Global fit ranks that model first;
the other inputs are then read by a theta of their own. Elsewhere the one theta stands.
On the multi-task dev set (GSM8K and CRUXEval, no answers) it lifts test-time routing by
0.4 points (0.6 with each task its own best model); on the four single sets it moves G
by at most 0.004 (GSM8K test-time 0.739 -> 0.736; `benchmarks/router_dev.py`).

The train-time router (`ConsensusRouter`) learns these decisions: each past input's
choice at s = 1 (`vote_decisions`) is a vote; a query's score is its k nearest past
inputs' vote rate plus `prior` times the overall rate, or its task's where the task's
votes show its own top model (`Recipe.prior`, chosen leave-one-set-out on train-time
routing). The teacher is the paper's model's own answer, not the test-time s: sharper
decisions all go to Global's top model, and their vote only echoes Global (on CRUXEval
below the paper's router).

Output length is not a label-free signal here: length tracked the consensus on chat
judged by a length-loving judge, and on data-to-text, where longer outputs carry more
errors, just as well; no label-free reading told them apart. A few labels can weigh it
(`_label_model.py`).
"""

from __future__ import annotations

import dataclasses
import math
import numbers

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Real

from ._batch import Batch
from ._smoothie import global_fit, group_theta
from ._tasks import (
    Evidence,
    VoteTasks,
    answer_choice,
    read_answers,
    task_points,
    vote_tasks,
)
from ._validate import ArrayLike

SHARPNESS = 4.0  # chosen as the folds choose, on all four dev sets
PRIOR = 16.0  # likewise (the grid's top: larger sends one model every query, as 16 nearly does)
VOTE_SHARPNESS = 1.0  # the train-time router's teacher: the model's own answer (not tuned)


@dataclasses.dataclass(frozen=True)
class Recipe:
    """The recommended router's constants (hashable: a static jit argument).

    Attributes:
        sharpness: s, the power of Global's quality that weighs the other outputs of an
            input (0: the plain consensus; large: Smoothie-Global). Test-time.
        prior: train-time, the weight of the overall vote rate beside the query's
            neighbours' (0: the neighbours alone; large: one model for every query).
    """

    sharpness: float = SHARPNESS
    prior: float = PRIOR

    def __post_init__(self) -> None:
        for name in ("sharpness", "prior"):
            value = getattr(self, name)
            if not (isinstance(value, numbers.Real) and math.isfinite(value) and value >= 0):
                raise ValueError(f"Recipe.{name} must be a finite number >= 0, got {value!r}")


RECOMMENDED = Recipe()  # the shipped constant

# What each leave-one-set-out fold of `benchmarks/router_dev.py` chose on the other three
# dev sets, keyed by the held-out set's file stem: `evaluate` scores a dev set with its fold's.
LEAVE_ONE_SET_OUT = {
    "alpaca_eval_dev": Recipe(sharpness=4.0, prior=16.0),
    "alpaca_eval_v1_dev": Recipe(sharpness=6.0, prior=16.0),
    "zeroeval_gsm8k": Recipe(sharpness=4.0, prior=16.0),
    "zeroeval_crux": Recipe(sharpness=4.0, prior=16.0),
}


def log_length(lengths: Real[ArrayLike, "*batch n_models"]) -> Float[Array, "*batch n_models"]:
    """log(1 + length): an empty answer is 0, and doubling a long answer adds log 2."""
    return jnp.log1p(lengths)


def consensus(
    distances: Float[ArrayLike, "n n_models n_models"],
    pairs: Float[ArrayLike, "n n_models n_models"] | None = None,
) -> Float[Array, "n n_models"]:
    """Minus each output's mean squared distance to the other outputs of its input.

    With the pair mask `pairs` (`pair_mask`), the mean runs over the models that answered
    too; 0 where no other model did.

    >>> d = jnp.array([[[0.0, 1.0, 4.0], [1.0, 0.0, 1.0], [4.0, 1.0, 0.0]]])
    >>> consensus(d)
    Array([[-2.5, -1. , -2.5]], dtype=float32)
    """
    m = distances.shape[-1]
    if pairs is None:
        return -jnp.sum(distances, axis=-1) / (m - 1)
    count = jnp.sum(pairs, axis=-1)
    return -jnp.sum(distances * pairs, axis=-1) / jnp.maximum(count, 1.0)


def weighted_consensus(
    distances: Float[ArrayLike, "n n_models n_models"],
    theta: Float[ArrayLike, "*n n_models"],
    sharpness: float,
    observed: Bool[ArrayLike, "n n_models"] | None = None,
) -> Float[Array, "n n_models"]:
    """Minus each output's squared distance to its input's other outputs, each weighted by
    its model's quality^sharpness (normalised over the models that answered the input).

    >>> d = jnp.array([[[0.0, 1.0, 4.0], [1.0, 0.0, 1.0], [4.0, 1.0, 0.0]]])
    >>> weighted_consensus(d, jnp.array([1.0, 1.0, 8.0]), 1.0).round(2)
    Array([[-3.3, -0.9, -0.5]], dtype=float32)
    """
    # Relative to the best model, so a large power never overflows.
    theta = jnp.broadcast_to(jnp.asarray(theta), distances.shape[:-1])
    top = jnp.maximum(jnp.max(theta, axis=-1, keepdims=True), 1e-30)
    relative = jnp.maximum(theta, 0.0) / top
    weight = relative**sharpness
    if observed is not None:
        weight = jnp.where(observed, weight, 0.0)
    weight = weight / jnp.maximum(jnp.sum(weight, axis=-1, keepdims=True), 1e-30)
    score = -jnp.einsum("nij,nj->ni", distances, weight)
    return score if observed is None else jnp.where(observed, score, -jnp.inf)


def centre(
    x: Float[ArrayLike, "n n_models"], observed: Bool[ArrayLike, "n n_models"] | None = None
) -> Float[Array, "n n_models"]:
    """Each row minus its mean over the (observed) models; 0 where unobserved."""
    if observed is None:
        return x - jnp.mean(x, axis=-1, keepdims=True)
    count = jnp.maximum(jnp.sum(observed, axis=-1, keepdims=True), 1)
    mean = jnp.sum(jnp.where(observed, x, 0.0), axis=-1, keepdims=True) / count
    return jnp.where(observed, x - mean, 0.0)


def spread(
    centred: Float[ArrayLike, "n n_models"], observed: Bool[ArrayLike, "n n_models"] | None = None
) -> Float[Array, ""]:
    """Population sd of the (observed) centred entries; 1 where it is 0 (all equal)."""
    if observed is None:
        sd = jnp.std(centred)
    else:
        count = jnp.maximum(jnp.sum(observed), 1)
        sd = jnp.sqrt(jnp.sum(jnp.where(observed, centred**2, 0.0)) / count)
    return jnp.where(sd > 0, sd, 1.0)


def standardise(
    x: Float[ArrayLike, "n n_models"], observed: Bool[ArrayLike, "n n_models"] | None = None
) -> Float[Array, "n n_models"]:
    """z(): rows centred over models, one scale for the whole batch.

    >>> standardise(jnp.array([[1.0, 3.0], [2.0, 2.0]]))
    Array([[-1.4142135,  1.4142135],
           [ 0.       ,  0.       ]], dtype=float32)
    """
    c = centre(x, observed)
    return c / spread(c, observed)


def read_tasks(batch: Batch) -> tuple[Float[Array, "*n n_models"], VoteTasks]:
    """Smoothie-Global's theta of a validated batch, read task by task where the tasks
    differ, and the tasks found (`_tasks.vote_tasks`).

    A group of the inputs gets its own Global theta (fitted on its inputs alone) only
    where two readings agree, as with answers: its decisions (the weighted consensus at
    s = `VOTE_SHARPNESS` under the overall theta) show another top model than all inputs'
    by more than `_tasks.VOTE_Z` paired standard errors, and its own Global fit ranks
    that same model first. The other inputs are read together, by the Global theta of
    their own (so a task of its own does not move the rest). With one task, or tasks that
    share their top model, the one theta (n_models,) of all inputs stands.
    """
    theta = global_fit(batch).theta
    first = weighted_consensus(batch.distances, theta, VOTE_SHARPNESS, batch.observed)
    tasks = vote_tasks(_decisions(first), task_points(batch), batch.observed)
    if not tasks.departed.any():
        return theta, tasks
    groups = jnp.asarray(tasks.groups)
    own = group_theta(batch, jax.nn.one_hot(groups, len(tasks.best)))
    agree = tasks.departed & (np.argmax(np.asarray(own), axis=1) == tasks.best)
    tasks = dataclasses.replace(tasks, best=np.where(agree, tasks.best, tasks.top))
    if not agree.any():
        return theta, tasks
    rest = jnp.asarray(~agree)[groups]  # the inputs read together
    rest_theta = group_theta(batch, rest[:, None].astype(own.dtype))[0]
    rows = jnp.where(rest[:, None], rest_theta, own[groups])
    return rows if batch.observed is None else jnp.where(batch.observed, rows, 0.0), tasks


def consensus_score(batch: Batch, recipe: Recipe = RECOMMENDED) -> Float[Array, "n n_models"]:
    """The weighted consensus of a validated batch, its weights from Smoothie-Global on
    it (per task where the tasks differ, `read_tasks`); -inf where a model did not answer
    (so it is never chosen there)."""
    theta = read_tasks(batch)[0]
    return weighted_consensus(batch.distances, theta, recipe.sharpness, batch.observed)


def _decisions(score: Float[Array, "n n_models"]) -> Float[Array, "n n_models"]:
    """One-hot of each row's highest score; 0 where no model answered (all -inf)."""
    answered = jnp.any(jnp.isfinite(score), axis=-1, keepdims=True)
    return jnp.where(answered, jax.nn.one_hot(jnp.argmax(score, axis=-1), score.shape[-1]), 0.0)


def vote_decisions(batch: Batch) -> tuple[Float[Array, "n n_models"], VoteTasks]:
    """One-hot per past input: the model whose output is nearest the paper's model's own
    estimate of the truth (the weighted consensus at s = `VOTE_SHARPNESS`); 0 where none
    answered. What the train-time router counts; with the tasks read (`read_tasks`)."""
    theta, tasks = read_tasks(batch)
    score = weighted_consensus(batch.distances, theta, VOTE_SHARPNESS, batch.observed)
    return _decisions(score), tasks


def recommended_score(
    batch: Batch, recipe: Recipe = RECOMMENDED, evidence: Evidence | None = None
) -> Float[Array, "n n_models"]:
    """The recommended router's per-input score, standardised.

    Without answers: z of the weighted consensus (`consensus_score`). With answers: z of
    each answer's log-probability of being right, the favoured model's raised by the
    bonus (`_tasks.answer_choice`; a missing answer scores its row's minimum), the score
    above where no model answered.
    -inf where a model did not answer. The label model's prior is centred on it.
    `evidence`: the batch's `read_answers`, where the caller has it already.
    """
    observed = batch.observed
    if batch.answers is None:
        score = _consensus_z(batch, recipe)
    else:
        if evidence is None:
            evidence = read_answers(batch.answers, task_points(batch))
        support = jnp.asarray(answer_choice(evidence)[1], jnp.float32)
        floor = jnp.min(jnp.where(jnp.isfinite(support), support, jnp.inf), axis=1, keepdims=True)
        support = jnp.where(jnp.isfinite(support), support, floor)
        unanswered = ~jnp.isfinite(floor)  # no model answered: the embedding score stands
        score = standardise(jnp.where(unanswered, 0.0, support))
        if bool(jnp.any(unanswered)):  # read the embeddings only where they are needed
            score = jnp.where(unanswered, _consensus_z(batch, recipe), score)
    return score if observed is None else jnp.where(observed, score, -jnp.inf)


def _consensus_z(batch: Batch, recipe: Recipe) -> Float[Array, "n n_models"]:
    """z of the weighted consensus, 0 where a model did not answer."""
    raw = consensus_score(batch, recipe)
    return standardise(jnp.where(jnp.isfinite(raw), raw, 0.0), batch.observed)

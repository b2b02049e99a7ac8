"""The recommended router's signals: per-input consensus, length, and the gate between them.

    score[x, i] = z(consensus[x, i]) + LENGTH_WEIGHT * z(log(1 + length[x, i]))  if rho > GATE
    score[x, i] = z(consensus[x, i])                                             otherwise

`consensus[x, i]` is minus output i's mean squared distance to the other outputs for the
same input: Smoothie's per-input estimate of the error (delta is linear in it, so its
argmax is Smoothie-Local's with k = 1, the medoid), and averaged over a query's nearest
past inputs, the paper's train-time router. z() centres each input's row over the models
and divides by one spread for the whole data set.

Whether length joins is read from the data, not assumed: `rho` (`agreement`) is the
correlation of log length and consensus once each model's mean and each input's mean are
removed. It asks whether a model's longer-than-usual answers are also its closer-to-the-
others answers. Where they are (chat judged by an LLM: dev and v1), length carries
quality; where length only varies (exact answers: GSM8K), rho sits at or below zero and
length is left out, so the paper's consensus decides. Families and house styles cancel in
the double centring, which is why this gate works where the independence test (which
rejects on almost every real ensemble) could not.

The two constants are chosen leave-one-set-out over the three dev sets; the benchmark
`benchmarks/router_dev.py` runs the folds and docs/results/routing.md gives each fold's
choice and figure. The shipped values are the same procedure on all three sets.
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int, Real

from ._validate import ArrayLike

GATE = 0.08  # rho above which length joins; chosen as the folds choose, on all three dev sets
LENGTH_WEIGHT = 2.0  # its weight against the consensus, both standardised (same choice)


@dataclasses.dataclass(frozen=True)
class Recipe:
    """The recommended router's two constants (hashable: a static jit argument).

    Attributes:
        gate: length joins the score where `agreement` of length and consensus > gate.
        length_weight: weight of the standardised log length against the consensus.
    """

    gate: float = GATE
    length_weight: float = LENGTH_WEIGHT


RECOMMENDED = Recipe()  # the shipped constants

# What each leave-one-set-out fold of `benchmarks/router_dev.py` chose on the other two dev
# sets, keyed by the held-out set's file stem: `evaluate` scores a dev set with its fold's.
LEAVE_ONE_SET_OUT = {
    "alpaca_eval_dev": Recipe(gate=0.08, length_weight=0.5),
    "alpaca_eval_v1_dev": Recipe(gate=0.08, length_weight=2.0),
    "zeroeval_gsm8k": Recipe(gate=-0.05, length_weight=2.0),
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


def double_centre(
    x: Float[ArrayLike, "n n_models"], observed: Bool[ArrayLike, "n n_models"] | None = None
) -> Float[Array, "n n_models"]:
    """x without each model's (column) mean and then each input's (row) mean; 0 where
    unobserved."""
    x = jnp.asarray(x)
    if observed is None:
        return (
            x
            - jnp.mean(x, axis=0, keepdims=True)
            - jnp.mean(x, axis=1, keepdims=True)
            + jnp.mean(x)
        )
    w = jnp.asarray(observed, x.dtype)
    column = jnp.sum(x * w, axis=0, keepdims=True) / jnp.maximum(
        jnp.sum(w, axis=0, keepdims=True), 1.0
    )
    return centre(x - column, observed)


def agreement(
    lengths: Real[ArrayLike, "n n_models"],
    scores: Float[ArrayLike, "n n_models"],
    observed: Bool[ArrayLike, "n n_models"] | None = None,
) -> Float[Array, ""]:
    """rho: the correlation of two signals once model and input means are removed.

    >>> x = jnp.array([[1.0, 2.0, 3.0], [2.0, 1.0, 5.0]])
    >>> float(agreement(x, x)), float(agreement(x, -x))
    (1.0, -1.0)
    """
    a, b = double_centre(lengths, observed), double_centre(scores, observed)
    denom = jnp.sqrt(jnp.sum(a * a) * jnp.sum(b * b))
    return jnp.where(denom > 0, jnp.sum(a * b) / jnp.where(denom > 0, denom, 1.0), 0.0)


def gated_score(
    consensus_z: Float[ArrayLike, "n n_models"],
    length_z: Float[ArrayLike, "n n_models"] | None,
    use_length: bool,
    recipe: Recipe = RECOMMENDED,
    observed: Bool[ArrayLike, "n n_models"] | None = None,
) -> Float[Array, "n n_models"]:
    """The recommended score from standardised signals; -inf where a model did not answer
    (so it is never chosen there)."""
    score = jnp.asarray(consensus_z)
    if use_length and length_z is not None:
        score = score + recipe.length_weight * length_z
    return score if observed is None else jnp.where(observed, score, -jnp.inf)


def recommended_score(
    embeddings: Float[ArrayLike, "n n_models dim"],
    *,
    lengths: Real[ArrayLike, "n n_models"] | None = None,
    answers: Int[ArrayLike, "n n_models"] | None = None,
    observed: Bool[ArrayLike, "n n_models"] | None = None,
    recipe: Recipe = RECOMMENDED,
) -> tuple[Float[Array, "n n_models"], float | None]:
    """The recommended router's per-input score, standardised, and the gate's rho.

    Without answers: z(consensus), plus `recipe.length_weight` x z(log length) where rho >
    `recipe.gate` (None without lengths). With answers: z of the weighted vote's support
    (`_agreement.answer_vote`; a missing answer scores its row's minimum). -inf where a
    model did not answer. The label model's prior is centred on it.
    """
    from ._agreement import answer_accuracy, answer_families, answer_vote
    from ._distances import pair_mask, sample_distances

    pairs = None if observed is None else pair_mask(observed)
    cons = consensus(sample_distances(jnp.asarray(embeddings)), pairs)
    rho = None if lengths is None else float(agreement(log_length(lengths), cons, observed))
    length_z = None if lengths is None else standardise(log_length(lengths), observed)
    score = gated_score(
        standardise(cons, observed), length_z, bool(rho is not None and rho > recipe.gate), recipe
    )
    if answers is not None:
        labels = answer_families(answers)
        _, support = answer_vote(answers, answer_accuracy(answers, labels), labels)
        floor = jnp.min(jnp.where(jnp.isfinite(support), support, jnp.inf), axis=1, keepdims=True)
        support = jnp.where(jnp.isfinite(support), support, floor)
        unanswered = ~jnp.isfinite(floor)  # no model answered: the embedding score stands
        score = jnp.where(unanswered, score, standardise(jnp.where(unanswered, 0.0, support)))
    return (score if observed is None else jnp.where(observed, score, -jnp.inf)), rho

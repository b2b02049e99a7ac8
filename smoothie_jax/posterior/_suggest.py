"""Labels chosen, not drawn: the inputs whose scores tell most about which model is best.

A label (a person's score for each model's output of one input) moves the estimate of the
leading models' difference only where their outputs differ: where they agree, both get
the same score. So `suggest_labels` ranks the unlabelled inputs by how far apart the
outputs of the models still in contention are: the `contenders` models with the highest
posterior mean quality under the label model (`_label_model`, given the labels so far),
their mean squared embedding distance on the input, or, with final answers, the share of
contender pairs whose answers differ (rows where they agree carry a difference of exactly
0). Labelling in rounds (label a few, suggest again) lets the contenders follow the
labels.

Measured (`benchmarks/uncertainty_dev.py`, 40 ensembles per dev set, rounds of 5; gsm8k
with its answers): G with 10 chosen labels 0.94 / 1.02 / 1.08 on dev / v1 / gsm8k, against
0.96 / 0.77 / 1.02 with 10 random labels and 1.01 / 0.92 / 1.04 with 20
(docs/results/uncertainty.md).
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int, PRNGKeyArray, Real

from .. import _validate
from .._batch import make_batch
from .._label_model import check_labels, fit_label_model, quality_mean
from .._signals import recommended_score
from .._validate import ArrayLike

CONTENDERS = 2  # models whose outputs' disagreement picks the input (2 measured best of 2, 3)


def suggest_labels(
    embeddings: Float[ArrayLike, "n_samples n_models dim"],
    n: int,
    *,
    key: PRNGKeyArray,
    labels: tuple[object, object] | None = None,
    lengths: Real[ArrayLike, "n_samples n_models"] | None = None,
    answers: Int[ArrayLike, "n_samples n_models"] | None = None,
    contenders: int = CONTENDERS,
) -> Int[Array, " n"]:
    """The n unlabelled inputs to label next, most telling first.

    Args:
        embeddings: embedding of each model's output for each input.
        n: how many inputs to suggest (at most the unlabelled ones).
        key: PRNG key; breaks ties between equally telling inputs.
        labels: (rows, scores) already labelled (scores NaN where unjudged); they move the
            contenders and are never suggested again.
        lengths: output lengths, for the router's score (as `sj.route`).
        answers: final-answer codes (`data.answer_codes`): disagreement of answers then
            decides.
        contenders: how many leading models' disagreement counts (>= 2).

    Returns:
        Row indices, (n,) int32, most telling first.

    >>> x = jax.random.normal(jax.random.key(0), (50, 4, 8))
    >>> suggest_labels(x, 3, key=jax.random.key(1)).shape
    (3,)
    """
    batch = make_batch(embeddings, lengths=lengths, answers=answers)
    rows_n, m = batch.n_samples, batch.n_models
    contenders = _validate.check_int("contenders", contenders, 2, m)
    answers = batch.answers
    labelled = np.zeros(rows_n, bool)
    if labels is not None:
        labels = check_labels(labels, rows_n, m)
        labelled[np.asarray(labels[0])] = True
    n = _validate.check_int("n", n, 0, int((~labelled).sum()))
    score = recommended_score(batch)
    q = quality_mean(score, fit_label_model(score, labels))
    leading = jnp.argsort(-jnp.mean(jnp.where(jnp.isfinite(q), q, 0.0), axis=0))[:contenders]
    pairs = np.array(list(itertools.combinations(np.asarray(leading), 2)))
    if answers is None:
        d = batch.distances
        telling = jnp.mean(d[:, pairs[:, 0], pairs[:, 1]], axis=1)
    else:  # answers that differ (a missing one differs from every other)
        a, b = answers[:, pairs[:, 0]], answers[:, pairs[:, 1]]
        telling = jnp.mean((a != b) | (a < 0) | (b < 0), axis=1) + 1e-3
    jitter = 1e-6 * jax.random.uniform(key, (rows_n,)) * jnp.max(telling)
    telling = jnp.where(jnp.asarray(labelled), -jnp.inf, telling + jitter)
    return jnp.argsort(-telling)[:n].astype(jnp.int32)

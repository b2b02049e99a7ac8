"""Labels to ask for: a fair draw of the inputs, restricted to those that can tell.

The labelled decision (`_label_model`) drops the models the labels show to be worse, by
paired differences over the labelled inputs: it needs rows that stand for the data, and
rows where the models still in contention (those the labels have not dropped) could
differ. With final answers that is exact: where every such model gives the same answer
they score alike (all right or all wrong) and the row tells nothing, so `suggest_labels`
draws among the rows where their answers differ (a missing answer differs from every
other). Without answers it draws among all unlabelled rows.

Why not the rows where the leading models' outputs are furthest apart (the previous
design): on the dev sets the embedding distance between two models' outputs hardly
predicts where their scores differ (Spearman 0.05-0.26 between the mean distance of a
row and the spread of its scores), and choosing by it lowered the labelled router's G on
both chat sets (10 chosen labels: 0.82-0.87 on alpaca_eval_dev against 0.89-0.96 drawn;
0.96-1.01 against 1.06-1.09 on alpaca_eval_v1_dev; `benchmarks/uncertainty_dev.py`
reports the row this function gives).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int, PRNGKeyArray, Real

from .. import _validate
from .._batch import make_batch
from .._label_model import THRESHOLD, check_labels, label_evidence
from .._validate import ArrayLike


def suggest_labels(
    embeddings: Float[ArrayLike, "n_samples n_models dim"],
    n: int,
    *,
    key: PRNGKeyArray,
    labels: tuple[object, object] | None = None,
    lengths: Real[ArrayLike, "n_samples n_models"] | None = None,
    answers: Int[ArrayLike, "n_samples n_models"] | None = None,
    contenders: int | None = None,
) -> Int[Array, " n"]:
    """The n unlabelled inputs to label next, in the order to label them.

    Args:
        embeddings: embedding of each model's output for each input.
        n: how many inputs to suggest (at most the unlabelled ones).
        key: PRNG key of the draw.
        labels: (rows, scores) already labelled (scores NaN where unjudged): never
            suggested again; the models they drop no longer count as contenders.
        lengths: output lengths, checked (as `sj.route`); not read.
        answers: final-answer codes (`data.answer_codes`): the draw is then among the
            rows where the contenders' answers differ first, then among the others.
        contenders: with answers, how many of the models still in contention count (the
            ones with the best labelled means first); None: all of them.

    Returns:
        Row indices, (n,) int32.

    >>> x = jax.random.normal(jax.random.key(0), (50, 4, 8))
    >>> suggest_labels(x, 3, key=jax.random.key(1)).shape
    (3,)
    """
    batch = make_batch(embeddings, lengths=lengths, answers=answers)
    rows_n, m = batch.n_samples, batch.n_models
    if contenders is not None:
        contenders = _validate.check_int("contenders", contenders, 2, m)
    labelled = np.zeros(rows_n, bool)
    against, means = np.zeros(m), np.zeros(m)
    if labels is not None:
        rows, scores = check_labels(labels, rows_n, m)
        labelled[np.asarray(rows)] = True
        evidence = label_evidence(np.asarray(scores))
        against, means = evidence.against, evidence.means
    n = _validate.check_int("n", n, 0, int((~labelled).sum()))
    priority = np.asarray(jax.random.uniform(key, (rows_n,)), np.float64)
    if batch.answers is not None:
        order = np.lexsort((-means, against > THRESHOLD))  # kept first, best labelled first
        kept = order[: int(np.sum(against <= THRESHOLD))]
        lead = kept if contenders is None else kept[:contenders]
        codes = np.asarray(batch.answers)[:, lead]
        differ = np.any((codes != codes[:, :1]) | (codes < 0), axis=1)
        priority = priority + differ  # rows that can tell first, then the others
    priority = np.where(labelled, -1.0, priority)
    return jnp.asarray(np.argsort(-priority, kind="stable")[:n], jnp.int32)

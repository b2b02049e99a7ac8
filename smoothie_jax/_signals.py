"""The recommended router's score: length-led, consensus-checked ("LenCons").

    score[n, i] = z(log(1 + length[n, i])) + CONSENSUS_WEIGHT * z(log theta_i)

theta_i is Smoothie-Global's quality of model i (the paper's closed form on the mean
squared-distance matrix over all inputs). z() centres each input's row over the models
and divides by one scale for the whole batch: the population standard deviation of all
centred entries. The route is the argmax over models.

`sj.route` and `fit_router(method="auto")` use it only where the independence test finds
families of models that agree more than independence allows (the consensus is then
confounded); elsewhere they trust the paper's consensus, Smoothie-Global. Measured on the
shipped quiz (length unrelated to quality, an off-topic model writing the longest
answers), LenCons alone is far below random and the gate keeps Smoothie-Global.

Why: on real ensembles two label-free signals fail in opposite places. Consensus is
fooled by families of models that agree with each other (Smoothie-Global is below
random on `alpaca_eval_dev`), and length alone is fooled by a model that writes long,
off-target answers. Length picks between families; consensus, at half weight, cannot
overturn a family's length lead, but does demote an outlier whose answers no other model
agrees with. Measured (README, `benchmarks/router_dev.py`): gap closure 0.83 and 0.80 at
test time on the two dev sets, no ensemble below random, above "longest output" on both.
CONSENSUS_WEIGHT was chosen on those two files from {0.25, 0.35, 0.5, 0.7, 1}: the one
value that met every goal on both; re-measure it on a new kind of data.

Train time the new query's outputs do not exist yet, so its length signal is the mean
log length of each model's past outputs over the query's k nearest past inputs, scaled
by a spread fixed when the router is fitted (a route never depends on the other queries).
"""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, Bool, Float

CONSENSUS_WEIGHT = 0.5


def log_length(lengths: Float[Array, "*batch n_models"]) -> Float[Array, "*batch n_models"]:
    """log(1 + length): an empty answer is 0, and doubling a long answer adds log 2."""
    return jnp.log1p(lengths)


def centre(
    x: Float[Array, "n n_models"], observed: Bool[Array, "n n_models"] | None = None
) -> Float[Array, "n n_models"]:
    """Each row minus its mean over the (observed) models; 0 where unobserved."""
    if observed is None:
        return x - jnp.mean(x, axis=-1, keepdims=True)
    count = jnp.maximum(jnp.sum(observed, axis=-1, keepdims=True), 1)
    mean = jnp.sum(jnp.where(observed, x, 0.0), axis=-1, keepdims=True) / count
    return jnp.where(observed, x - mean, 0.0)


def spread(
    centred: Float[Array, "n n_models"], observed: Bool[Array, "n n_models"] | None = None
) -> Float[Array, ""]:
    """Population sd of the (observed) centred entries; 1 where it is 0 (all equal)."""
    if observed is None:
        sd = jnp.std(centred)
    else:
        count = jnp.maximum(jnp.sum(observed), 1)
        sd = jnp.sqrt(jnp.sum(jnp.where(observed, centred**2, 0.0)) / count)
    return jnp.where(sd > 0, sd, 1.0)


def standardise(
    x: Float[Array, "n n_models"], observed: Bool[Array, "n n_models"] | None = None
) -> Float[Array, "n n_models"]:
    """z(): rows centred over models, one scale for the whole batch.

    >>> standardise(jnp.array([[1.0, 3.0], [2.0, 2.0]]))
    Array([[-1.4142135,  1.4142135],
           [ 0.       ,  0.       ]], dtype=float32)
    """
    c = centre(x, observed)
    return c / spread(c, observed)


def consensus_term(
    theta: Float[Array, " n_models"], observed: Bool[Array, " n_models"] | None = None
) -> Float[Array, " n_models"]:
    """CONSENSUS_WEIGHT x z(log theta) of one quality vector (Smoothie-Global's).

    Models without an estimate (theta 0, or unobserved) get 0: they are then ranked by
    length alone, and the caller masks those that did not answer.
    """
    valid = theta > 0 if observed is None else (theta > 0) & observed
    log_theta = jnp.log(jnp.where(valid, theta, 1.0))
    return CONSENSUS_WEIGHT * standardise(log_theta[None], valid[None])[0]


def lencons_scores(
    length_z: Float[Array, "n n_models"],
    consensus: Float[Array, " n_models"],
    observed: Bool[Array, "n n_models"] | None = None,
) -> Float[Array, "n n_models"]:
    """The LenCons score: standardised length signal plus the consensus term; -inf where
    a model did not answer (so it is never chosen there)."""
    score = length_z + consensus[None, :]
    return score if observed is None else jnp.where(observed, score, -jnp.inf)

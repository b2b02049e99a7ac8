"""Routing under uncertainty: pure policies over posterior draws of theta.

Every policy takes a `Posterior` (draws shaped (num_samples, *batch, n_models)) and
returns model indices shaped like `batch`. Quality here is the normalised weight
theta_i / sum_j theta_j of each draw, so costs and trade-offs do not depend on the
embedding's scale.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from .._cost import net_of_cost
from .._validate import ArrayLike, normalise
from ._posterior import Posterior


def highest_mean(posterior: Posterior) -> Int[Array, "*batch"]:
    """The model with the highest posterior mean of theta."""
    return jnp.argmax(posterior.mean, axis=-1)


def most_probable(posterior: Posterior) -> Int[Array, "*batch"]:
    """The model most probably best (the mode of the posterior over the argmax)."""
    return jnp.argmax(posterior.prob_best, axis=-1)


def thompson(posterior: Posterior, key: PRNGKeyArray) -> Int[Array, "*batch"]:
    """Thompson sampling: the argmax of one posterior draw, drawn per input."""
    theta = posterior.theta_samples
    batch = theta.shape[1:-1]
    draw = jax.random.randint(key, batch, 0, theta.shape[0])
    one = jnp.take_along_axis(theta, draw[None, ..., None], axis=0)[0]
    return jnp.argmax(one, axis=-1)


def abstain(
    posterior: Posterior, *, threshold: float, default: int
) -> tuple[Int[Array, "*batch"], Bool[Array, "*batch"]]:
    """The most probably best model, or `default` where that probability is below threshold.

    Returns:
        (choice, abstained): abstained marks inputs routed to `default`.
    """
    prob = posterior.prob_best
    abstained = jnp.max(prob, axis=-1) < threshold
    return jnp.where(abstained, default, jnp.argmax(prob, axis=-1)), abstained


def expected_quality(posterior: Posterior) -> Float[Array, "*batch n_models"]:
    """Posterior mean of each model's normalised weight."""
    return jnp.mean(normalise(posterior.theta_samples), axis=0)


def cost_aware(
    posterior: Posterior,
    costs: Float[ArrayLike, " n_models"],
    *,
    tradeoff: float | Float[Array, ""],  # a traced scalar under `tradeoff_sweep`
) -> Int[Array, "*batch"]:
    """The model with the best expected quality net of cost: E[w_i] - tradeoff * cost_i
    (`net_of_cost`).

    tradeoff = 0 (or equal costs) reproduces the quality-only choice.
    """
    return jnp.argmax(net_of_cost(expected_quality(posterior), costs, tradeoff), axis=-1)


def tradeoff_sweep(
    posterior: Posterior,
    costs: Float[ArrayLike, " n_models"],
    tradeoffs: Float[ArrayLike, " n_points"],
) -> Int[Array, " n_points *batch"]:
    """`cost_aware` choices for each trade-off: the points of a quality-cost curve."""
    return jax.vmap(lambda t: cost_aware(posterior, costs, tradeoff=t))(jnp.asarray(tradeoffs))

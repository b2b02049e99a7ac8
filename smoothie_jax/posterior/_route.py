"""The posterior's decision: the most probably best model under the NumPyro posterior of
the paper's estimator, with each model's probability of being best and its credible
bounds, as a `Decision`."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Float, PRNGKeyArray

from .. import _validate
from .._decision import Decision
from .._independence import diagnose_answered
from ._fit_posterior import fit_posterior
from ._policies import most_probable

DEFAULT_K = 20


def route_posterior(
    embeddings: Float[_validate.ArrayLike, "n_samples n_models dim"],
    inputs: Float[_validate.ArrayLike, "n_samples input_dim"] | None = None,
    *,
    key: PRNGKeyArray | None = None,
    k: int = DEFAULT_K,
    level: float = 0.9,
    check: bool = True,
) -> Decision:
    """The most probably best model under the NumPyro posterior of the paper's estimator:
    Global without `inputs`, Local with k neighbours with them.

    `probabilities` is each model's posterior probability of being best, `weights` the
    normalised posterior mean, and `interval` the credible bounds of theta at `level`.

    Args:
        embeddings: embedding of each model's output for each input (every model
            answered every input).
        inputs: embedding of each input; with them, Local with k neighbours.
        key: PRNG key of the posterior draws; default key 0.
        k: neighbours of Local (clipped to n_samples).
        level: credible level of `interval`.
        check: also run (and report) the independence test.

    >>> x = jax.random.normal(jax.random.key(0), (60, 4, 8))
    >>> route_posterior(x).method
    'posterior (Smoothie-Global)'
    """
    embeddings = _validate.check_embeddings(embeddings)
    n, m, _ = embeddings.shape
    key = jax.random.key(0) if key is None else key
    local = inputs is not None
    if local:
        inputs = _validate.check_inputs(inputs, n)
        k = _validate.check_k(k, n, clip=True)
    post = fit_posterior(embeddings, key=key, inputs=inputs, k=k if local else None)
    lower, upper = post.interval(level)
    diagnosis = diagnose_answered(embeddings) if check else None
    how = f"Smoothie-Local k={k}" if local else "Smoothie-Global"
    return Decision(
        choice=jnp.broadcast_to(most_probable(post), (n,)).astype(jnp.int32),
        probabilities=jnp.broadcast_to(post.prob_best, (n, m)).astype(jnp.float32),
        weights=jnp.broadcast_to(_validate.normalise(post.mean), (n, m)),
        method=f"posterior ({how})",
        reason=f"The most probably best model under the NumPyro posterior of {how}.",
        diagnosis=diagnosis,
        interval=(jnp.broadcast_to(lower, (n, m)), jnp.broadcast_to(upper, (n, m))),
    )

"""The result of every posterior fit: draws of theta, and what they say about the best model."""

from __future__ import annotations

from typing import final

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float


@final
class Posterior(eqx.Module):
    """Posterior draws of theta. Global: (num_samples, n_models); Local: (num_samples,
    n_inputs, n_models).

    >>> post = Posterior(jnp.array([[1.0, 2.0], [3.0, 2.0], [1.0, 4.0]]))
    >>> post.prob_best
    Array([0.33333334, 0.6666667 ], dtype=float32)
    >>> int(post.route())
    1
    """

    theta_samples: Float[Array, "num_samples *batch n_models"]

    @property
    def mean(self) -> Float[Array, "*batch n_models"]:
        """Posterior mean of theta."""
        return jnp.mean(self.theta_samples, axis=0)

    @property
    def prob_best(self) -> Float[Array, "*batch n_models"]:
        """Posterior probability that each model has the highest theta; sums to 1."""
        best = jnp.argmax(self.theta_samples, axis=-1)
        return jnp.mean(jax.nn.one_hot(best, self.theta_samples.shape[-1]), axis=0)

    def interval(self, level: float = 0.9) -> tuple[Array, Array]:
        """Equal-tailed credible interval (lower, upper), each shaped like one draw.

        Args:
            level: the probability inside the interval, in (0, 1).
        """
        if not 0 < level < 1:
            raise ValueError(f"level must be in (0, 1), got {level}")
        tail = (1 - level) / 2
        lower, upper = jnp.quantile(self.theta_samples, jnp.array([tail, 1 - tail]), axis=0)
        return lower, upper

    def route(self) -> Array:
        """The most probably best model (per input where the posterior is local)."""
        return jnp.argmax(self.prob_best, axis=-1)

"""The decision: which model answers each input, how sure, by which method and why.

Test-time routing (`route`) and the train-time router (`Router.decide`) both return one.
"""

from __future__ import annotations

from typing import final

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from ._independence import Diagnosis


@final
class Decision(eqx.Module):
    """Which model answers each input, and how sure the router is.

    Attributes:
        choice: (n_samples,) index of the chosen model for each input.
        probabilities: (n_samples, n_models) probability of routing each input to each
            model: one-hot where the choice is deterministic, spread where the router
            draws (a fallback when consensus cannot be trusted), posterior probability
            of being best where a posterior chose.
        weights: (n_samples, n_models) normalised quality scores behind the choice.
        method: the method that decided, e.g. "consensus" or "smoothie-local (k=20)".
        reason: one sentence saying what the router did and why, for logs and reports.
        diagnosis: the independence test, reported with the decision; it decides only
            for Smoothie-Global (`route_families`). None where it was not run: too few
            inputs to test, or asked not to.
        interval: with a posterior, the (lower, upper) credible bounds of each model's
            theta per input at the requested level (90% by default), each
            (n_samples, n_models); else None.
    """

    choice: Int[Array, " n_samples"]
    probabilities: Float[Array, "n_samples n_models"]
    weights: Float[Array, "n_samples n_models"]
    method: str = eqx.field(static=True)
    reason: str = eqx.field(static=True)
    diagnosis: Diagnosis | None = eqx.field(static=True, default=None)
    interval: tuple[Array, Array] | None = None

    def __check_init__(self) -> None:
        n, m = self.probabilities.shape
        if self.choice.shape != (n,) or self.weights.shape != (n, m):
            raise ValueError(
                f"Decision needs choice (n,), probabilities and weights (n, m); got "
                f"{self.choice.shape}, {self.probabilities.shape}, {self.weights.shape}"
            )

    @property
    def n_models(self) -> int:
        return self.probabilities.shape[-1]


def argmax_decision(
    score: Float[Array, "n_samples n_models"],
    weights: Float[Array, "n_samples n_models"],
    *,
    method: str,
    reason: str,
    diagnosis: Diagnosis | None = None,
) -> Decision:
    """The deterministic decision: the best-scoring model of each input, one-hot."""
    choice = jnp.argmax(score, axis=-1).astype(jnp.int32)
    return Decision(
        choice=choice,
        probabilities=jax.nn.one_hot(choice, score.shape[-1], dtype=jnp.float32),
        weights=weights,
        method=method,
        reason=reason,
        diagnosis=diagnosis,
    )

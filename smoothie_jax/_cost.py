"""The cost trade-off: quality net of cost, the one objective of every cost-aware choice.

`cost_aware` (expected weight over posterior draws), the gateway's ranking (the router's
weights) and the evaluation's quality-cost frontier all rank models by
quality_i - tradeoff * cost_i; tradeoff 0, or equal costs, leaves the quality order.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jaxtyping import Float

from ._validate import ArrayLike


def net_of_cost(
    quality: Float[ArrayLike, "*batch n_models"],
    costs: Float[ArrayLike, "*cost_batch n_models"],
    tradeoff: float | Float[ArrayLike, ""],
) -> Float[ArrayLike, "*batch n_models"]:
    """Each model's quality net of its cost: quality - tradeoff * costs.

    NumPy in, NumPy out (in the inputs' precision: the gateway ranks in float64); JAX in,
    JAX out, traceable (`tradeoff_sweep` vmaps over the trade-off). Nothing is checked:
    callers validate the trade-off (>= 0) and costs once, at their boundary.

    Args:
        quality: each model's quality (weights, expected weights, standardised scores).
        costs: each model's cost, broadcast against `quality` (one row for all inputs).
        tradeoff: quality given up per unit of cost.

    Returns:
        quality - tradeoff * costs, shaped like `quality`.

    >>> net_of_cost(np.array([[0.5, 0.3, 0.2]]), np.array([1.0, 0.0, 0.0]), 0.25)
    array([[0.25, 0.3 , 0.2 ]])
    """
    xp = np if isinstance(quality, np.ndarray) else jnp
    # Broadcast explicitly: the suite runs with jax_numpy_rank_promotion="raise".
    return quality - tradeoff * xp.broadcast_to(xp.asarray(costs), quality.shape)

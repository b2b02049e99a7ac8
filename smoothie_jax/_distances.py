"""Per-sample squared distances between models' embeddings: the statistic D."""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, Float


def squared_distances(
    embeddings: Float[Array, "n_models dim"],
) -> Float[Array, "n_models n_models"]:
    """Squared Euclidean distances between the models' embeddings of one sample.

    Written for one sample; `jax.vmap` adds the batch. Differences are taken directly
    rather than through a Gram matrix, so near-identical outputs do not lose precision
    to cancellation (XLA fuses the broadcast into the reduction, so nothing of size
    n_models^2 x dim is stored).

    Args:
        embeddings: one row per model.

    Returns:
        D with D[i, j] = ||lambda_i - lambda_j||^2 and an exactly zero diagonal.

    >>> squared_distances(jnp.array([[0.0, 0.0], [3.0, 4.0], [0.0, 1.0]]))[0, 1]
    Array(25., dtype=float32)
    """
    diff = embeddings[:, None, :] - embeddings[None, :, :]
    return jnp.sum(diff * diff, axis=-1)

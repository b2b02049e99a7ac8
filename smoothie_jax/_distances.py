"""Per-sample squared distances between models' embeddings: the statistic D."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float

from ._validate import ArrayLike


def squared_distances(
    embeddings: Float[ArrayLike, "n_models dim"],
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


def sample_distances(
    embeddings: Float[ArrayLike, "n_samples n_models dim"],
) -> Float[Array, "n_samples n_models n_models"]:
    """Per-sample squared-distance matrices: `squared_distances` vmapped over samples.

    >>> sample_distances(jnp.zeros((4, 3, 2))).shape
    (4, 3, 3)
    """
    return jax.vmap(squared_distances)(embeddings)


def pair_mask(
    observed: Bool[ArrayLike, "n_samples n_models"],
) -> Float[Array, "n_samples n_models n_models"]:
    """1.0 where both models of a pair answered the sample, else 0 (zero diagonal).

    A pair's distance is only known where both models answered; the masked estimators
    average D over those samples alone.

    >>> pair_mask(jnp.array([[True, True, False]]))[0]
    Array([[0., 1., 0.],
           [1., 0., 0.],
           [0., 0., 0.]], dtype=float32)
    """
    both = observed[:, :, None] & observed[:, None, :]
    m = observed.shape[-1]
    return jnp.where(jnp.eye(m, dtype=bool), False, both).astype(jnp.float32)

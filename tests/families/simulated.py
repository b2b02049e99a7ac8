"""Data of the families tests (a helper module, not a test module): outputs simulated
from the family model, with independent errors or with two families that fool Smoothie."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from smoothie_jax import simulate_families

DIM = 16


def null_data(seed: int, n: int = 120, m: int = 5, **kwargs: float) -> jax.Array:
    """Independent errors: every model its own family with no shared variance."""
    individual = jnp.linspace(0.3, 1.5, m)
    return simulate_families(
        jax.random.key(seed),
        individual,
        jnp.zeros(m),
        list(range(m)),
        n_samples=n,
        dim=DIM,
        **kwargs,
    )


# Two families and two models alone. Family 0 has small individual errors but a large
# shared one: its members agree closely and win Smoothie's vote, but model 5 is best.
FAMILIES = [0, 0, 0, 1, 1, 2, 3]
INDIVIDUAL = jnp.array([0.2, 0.25, 0.3, 0.6, 0.8, 0.5, 0.9])
FAMILY_VAR = jnp.array([1.0, 0.5, 0.0, 0.0])
TRUE_DELTA = DIM * (np.asarray(INDIVIDUAL) + np.asarray(FAMILY_VAR)[FAMILIES])


def family_data(seed: int, n: int = 400) -> jax.Array:
    return simulate_families(
        jax.random.key(seed), INDIVIDUAL, FAMILY_VAR, FAMILIES, n_samples=n, dim=DIM
    )

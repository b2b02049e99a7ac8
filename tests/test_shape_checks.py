"""The shape annotations are enforced in the suite (see conftest): a wrong axis fails."""

from __future__ import annotations

import jax.numpy as jnp
import pytest
from jaxtyping import TypeCheckError

import smoothie_jax as sj


def test_annotations_are_checked_at_run_time() -> None:
    with pytest.raises(TypeCheckError):
        sj.squared_distances(jnp.zeros((2, 3, 4)))  # one sample's (n_models, dim) expected
    with pytest.raises(TypeCheckError):
        sj.theta_from_distances(jnp.zeros((3, 4)), 8)  # D must be square


@pytest.mark.slow
def test_consistent_axes_across_arguments() -> None:
    d = jnp.zeros((5, 3, 3))
    x = jnp.zeros((5, 2))
    assert sj.local_distances(d, x, x, 2, include_self=True).shape == (5, 3, 3)
    with pytest.raises(TypeCheckError):  # 4 points' statistics for 5 points
        sj.local_distances(d[:4], x, x, 2)

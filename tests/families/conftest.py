"""Fixtures of the families tests: the two data sets several modules' tests read
(simulated once per session, when a test first asks)."""

from __future__ import annotations

import jax
import pytest

from .simulated import family_data, null_data


@pytest.fixture(scope="session")
def null_x() -> jax.Array:
    """120 inputs, 5 models with independent errors."""
    return null_data(0)


@pytest.fixture(scope="session")
def family_x() -> jax.Array:
    """400 inputs, 7 models: two families and two models alone (`simulated.FAMILIES`)."""
    return family_data(0)

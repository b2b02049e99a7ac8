"""`_family_design`: group labels, the design of E D (with every model alone, the
plain closed form), and the checks on the families a user gives."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import smoothie_jax as sj
from smoothie_jax._family_design import design_matrix as _design
from smoothie_jax.families import family_labels, fit_families


def test_least_squares_on_pairs_is_the_triplet_closed_form() -> None:
    rng = np.random.default_rng(0)
    for m in (3, 4, 7):
        d = rng.uniform(1, 2, (m, m))
        d = d + d.T
        np.fill_diagonal(d, 0)
        x, _ = _design(tuple(range(m)))
        ls = np.linalg.lstsq(x, d[np.triu_indices(m, 1)], rcond=None)[0]
        triplet = np.asarray(sj.triplet_delta(jnp.asarray(d, jnp.float32)))
        np.testing.assert_allclose(ls, triplet, rtol=1e-5, atol=1e-5)


def test_labels_from_mapping_keep_unnamed_models_alone() -> None:
    labels = family_labels({"a": "x", "c": "x"}, models=["a", "b", "c", "d"])
    assert labels == (0, 1, 0, 2)
    assert list(itertools.accumulate(labels, max))[-1] == 2


@pytest.mark.parametrize(
    ("families", "models", "match"),
    [
        ([0, 0, 1], None, "3 labels for 5 models"),
        ({"a": 0}, None, "need models"),
        ({"zz": 0}, list("abcde"), "not in models"),
        ("aabbc", None, "sequence of one label"),
        pytest.param(
            [[0], [0], [1], [2], [3]], None, "hashable", marks=pytest.mark.unchecked
        ),  # lists are not the annotation's Hashable labels
    ],
)
def test_bad_families_raise_value_error(
    null_x: jax.Array, families: object, models: list[str] | None, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        fit_families(null_x, families, models=models)

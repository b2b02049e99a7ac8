"""The annotations are enforced in the suite (see conftest): a wrong axis fails.

Every module of the package goes through the checker, including those written after this
test: the first test asks each module how it was loaded, the others call one function of
each subpackage with a badly shaped or typed argument.
"""

from __future__ import annotations

import importlib
import pkgutil

import jax.numpy as jnp
import numpy as np
import pytest
from jaxtyping import TypeCheckError

import smoothie_jax as sj
import smoothie_jax.cli

MODULES = sorted(
    m.name
    for m in pkgutil.walk_packages(sj.__path__, "smoothie_jax.")
    if m.name != "smoothie_jax.__main__"  # importing it runs the command
)


@pytest.mark.parametrize("name", ["smoothie_jax", *MODULES])
def test_every_module_is_loaded_through_the_checker(name: str) -> None:
    # jaxtyping's import hook loads (and decorates) a module with its own loader class.
    loader = importlib.import_module(name).__spec__.loader
    assert type(loader).__name__ == "_JaxtypingLoader", f"{name} is not checked at run time"


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


X = np.zeros((10, 3, 4), np.float32)  # (n_samples, n_models, dim)
INPUTS = np.zeros((10, 2), np.float32)


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda: sj.data.extract_answer(5, r"\d+"), id="data"),  # not a text
        pytest.param(lambda: sj.text.clean_generation(b"bytes"), id="text"),  # not a str
        pytest.param(  # scores for 9 inputs, embeddings of 10
            lambda: sj.eval.evaluate(X, INPUTS, np.zeros((9, 3)), np.ones((10, 3)), "abc"),
            id="eval",
        ),
        pytest.param(lambda: sj.families.diagnose(X[0]), id="families"),  # no samples axis
        pytest.param(lambda: sj.posterior.effective_dim(X[0]), id="posterior"),
        pytest.param(lambda: sj.scale.sharded_knn(INPUTS, X[:, 0], 1), id="scale"),  # 2 vs 4
        pytest.param(lambda: smoothie_jax.cli.main(5), id="cli"),  # argv: strings or None
        pytest.param(lambda: sj.fit_local(X, INPUTS[:9], k=2), id="core"),  # 9 inputs, not 10
    ],
)
def test_each_subpackage_is_checked(call) -> None:  # noqa: ANN001
    with pytest.raises(TypeCheckError):
        call()

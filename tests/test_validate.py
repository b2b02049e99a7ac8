"""Bad inputs raise ValueError before any work, with a message naming the problem.

Cases marked `unchecked` break an argument's annotation (its rank, its axes, its type):
the suite's runtime checker would reject them first (conftest.py), so they run without it
to test the library's own message.
"""

from __future__ import annotations

import numpy as np
import pytest

import smoothie_jax as sj

RNG = np.random.default_rng(0)
EMB = RNG.normal(size=(20, 4, 6)).astype(np.float32)
INPUTS = RNG.normal(size=(20, 3)).astype(np.float32)

# Every per-sample entry point, as a function of (embeddings, inputs) with a valid k.
FITS = {
    "global": lambda e, x: sj.fit_global(e),
    "local": lambda e, x: sj.fit_local(e, x, k=3),
    "kernel": lambda e, x: sj.fit_kernel(e, x, bandwidth=1.0),
    "router": lambda e, x: sj.fit_router(e, x, k=3),
}
WITH_INPUTS = ["local", "kernel", "router"]
UNCHECKED = pytest.mark.unchecked


def with_value(array: np.ndarray, index: tuple, value: float) -> np.ndarray:
    out = array.copy()
    out[index] = value
    return out


@pytest.mark.parametrize("fit", FITS)
@pytest.mark.parametrize(
    ("embeddings", "match"),
    [
        (EMB[:, :2], "at least 3"),  # two models
        (EMB[:, :1], "at least 3"),
        pytest.param(EMB[:0], "empty", marks=UNCHECKED),  # n = 0 (inputs keep one row)
        (EMB[:, :, :0], "empty"),  # dim = 0
        pytest.param(EMB[0], "3-d", marks=UNCHECKED),  # rank 2
        pytest.param(EMB[None], "3-d", marks=UNCHECKED),  # rank 4
        (with_value(EMB, (3, 1, 2), np.nan), "NaN or inf"),
        (with_value(EMB, (0, 0, 0), np.inf), "NaN or inf"),
        (with_value(EMB, (5, 2, 1), -np.inf), "NaN or inf"),
    ],
    ids=["2 models", "1 model", "n=0", "dim=0", "rank 2", "rank 4", "nan", "inf", "-inf"],
)
def test_bad_embeddings(fit: str, embeddings: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        FITS[fit](embeddings, INPUTS[: max(len(embeddings), 1)])


@pytest.mark.parametrize("fit", WITH_INPUTS)
@pytest.mark.parametrize(
    ("inputs", "match"),
    [
        pytest.param(INPUTS[:19], "19 rows but embeddings has 20", marks=UNCHECKED),
        pytest.param(np.concatenate([INPUTS, INPUTS[:1]]), "21 rows", marks=UNCHECKED),
        (INPUTS[:, :0], "empty"),
        pytest.param(INPUTS[:, 0], "2-d", marks=UNCHECKED),
        pytest.param(INPUTS[None], "2-d", marks=UNCHECKED),
        (with_value(INPUTS, (4, 1), np.nan), "NaN or inf"),
        (with_value(INPUTS, (4, 1), np.inf), "NaN or inf"),
    ],
    ids=["fewer rows", "more rows", "input_dim=0", "rank 1", "rank 3", "nan", "inf"],
)
def test_bad_inputs(fit: str, inputs: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        FITS[fit](EMB, inputs)


@pytest.mark.parametrize("fit", [sj.fit_local, sj.fit_router])
@pytest.mark.parametrize(
    ("k", "match"),
    [
        (0, r"k must be in \[1, n_samples=20\]"),
        (-3, r"k must be in \[1"),
        (21, r"k must be in \[1, n_samples=20\], got k=21"),
        pytest.param(3.0, "k must be an int", marks=UNCHECKED),
        pytest.param("3", "k must be an int", marks=UNCHECKED),
        (True, "k must be an int"),
        pytest.param(None, "k must be an int", marks=UNCHECKED),
        pytest.param(np.array([3]), "k must be an int", marks=UNCHECKED),
    ],
    ids=["0", "negative", "> n", "float", "str", "bool", "None", "array"],
)
def test_bad_k(fit, k: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        fit(EMB, INPUTS, k=k)


def test_k_may_be_a_numpy_int_and_n() -> None:
    assert sj.fit_local(EMB, INPUTS, k=np.int64(20)).theta.shape == (20, 4)
    assert sj.fit_router(EMB, INPUTS, k=np.int32(1)).k == 1


@pytest.mark.parametrize("bandwidth", [0.0, -1.0, np.nan, np.inf])
def test_bad_bandwidth(bandwidth: float) -> None:
    with pytest.raises(ValueError, match="bandwidth must be a finite number > 0"):
        sj.fit_kernel(EMB, INPUTS, bandwidth=bandwidth)


@pytest.mark.parametrize(
    ("embeddings", "match"),
    [
        pytest.param(EMB, "4-d", marks=UNCHECKED),  # no generations axis
        (EMB[:, None, :2], "at least 3"),
        (EMB[:, None][:, :0], "empty"),  # no generations
        (with_value(EMB[:, None], (1, 0, 1, 1), np.nan), "NaN or inf"),
    ],
    ids=["rank 3", "2 models", "0 generations", "nan"],
)
def test_bad_generations(embeddings: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        sj.fit_generations(embeddings)


@pytest.mark.parametrize(
    ("queries", "match"),
    [
        (INPUTS[:, :2], "input_dim 2, the router was fit on 3"),
        pytest.param(INPUTS[0], "2-d", marks=UNCHECKED),
        (INPUTS[:0], "empty"),
        (with_value(INPUTS, (0, 0), np.nan), "queries contains NaN or inf"),
        (with_value(INPUTS, (0, 0), np.inf), "queries contains NaN or inf"),
    ],
    ids=["input_dim", "rank 1", "no queries", "nan", "inf"],
)
def test_bad_router_queries(queries: np.ndarray, match: str) -> None:
    router = sj.fit_router(EMB, INPUTS, k=3)
    for method in (router.theta, router.weights, router.route):
        with pytest.raises(ValueError, match=match):
            method(queries)


@UNCHECKED  # beyond the annotated arrays: nested lists are converted too
def test_nested_lists_and_int_arrays_are_accepted() -> None:
    as_lists = EMB.round().astype(int).tolist()
    theta = sj.fit_global(as_lists).theta
    np.testing.assert_allclose(
        np.asarray(theta), np.asarray(sj.fit_global(EMB.round()).theta), rtol=1e-6
    )


@UNCHECKED
def test_smoothie_rejects_theta_without_a_models_axis() -> None:
    with pytest.raises(ValueError, match="n_models >= 3"):
        sj.Smoothie(np.ones((5, 2), np.float32))


EPS_FITS = {
    "global": lambda eps: sj.fit_global(EMB, eps=eps),
    "local": lambda eps: sj.fit_local(EMB, INPUTS, k=3, eps=eps),
    "kernel": lambda eps: sj.fit_kernel(EMB, INPUTS, bandwidth=1.0, eps=eps),
    "generations": lambda eps: sj.fit_generations(EMB[:, None], eps=eps),
    "router": lambda eps: sj.fit_router(EMB, INPUTS, k=3, eps=eps),
}


@pytest.mark.parametrize("fit", EPS_FITS)
@pytest.mark.parametrize("eps", [0.0, -1e-6, np.nan, np.inf])
def test_bad_eps(fit: str, eps: float) -> None:
    # eps <= 0 would turn a clamped delta into theta = inf.
    with pytest.raises(ValueError, match="eps must be a finite number > 0"):
        EPS_FITS[fit](eps)


@pytest.mark.parametrize(
    ("fit", "block_size", "match"),
    [
        (lambda b: sj.fit_local(EMB, INPUTS, k=3, block_size=b), 0, "block_size must be >= 1"),
        (lambda b: sj.fit_kernel(EMB, INPUTS, bandwidth=1.0, block_size=b), -2, ">= 1"),
        pytest.param(
            lambda b: sj.fit_router(EMB, INPUTS, k=3, block_size=b),
            2.5,
            "must be an int",
            marks=UNCHECKED,
        ),
    ],
    ids=["local 0", "kernel negative", "router float"],
)
def test_bad_block_size(fit, block_size: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        fit(block_size)

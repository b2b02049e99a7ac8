"""The train-time router: parity on new queries, persistence, jit."""

from __future__ import annotations

import json
from pathlib import Path

import chex
import equinox as eqx
import jax
import numpy as np
import pytest
from reference import random_problem, reference_router

import smoothie_jax as sj
from smoothie_jax import _smoothie

RTOL = 1e-5


@pytest.fixture(scope="module")
def train() -> tuple[np.ndarray, np.ndarray]:
    return random_problem(10)  # n=200, m=5, dim=32, input_dim=8


@pytest.fixture(scope="module")
def queries() -> np.ndarray:
    return np.random.default_rng(11).normal(size=(50, 8)).astype(np.float32)


@pytest.mark.slow
@pytest.mark.parametrize("k", [1, 5, 20])
def test_router_matches_reference_on_new_queries(train, queries, k: int) -> None:
    embeddings, inputs = train
    router = sj.fit_router(embeddings, inputs, k=k, block_size=16)
    theta = router.theta(queries)
    chex.assert_shape(theta, (50, 5))
    np.testing.assert_allclose(
        np.asarray(theta), reference_router(embeddings, inputs, queries, k), rtol=RTOL
    )
    np.testing.assert_array_equal(
        np.asarray(router.route(queries)), np.argmax(np.asarray(theta), axis=-1)
    )
    np.testing.assert_allclose(np.asarray(router.weights(queries).sum(axis=-1)), 1.0, rtol=1e-6)


def test_router_on_training_inputs_equals_fit_local(train) -> None:
    # The router does not force self first, but with distinct training inputs each one's
    # nearest training input is itself, so the neighbourhoods are Local's.
    embeddings, inputs = train
    router = sj.fit_router(embeddings, inputs, k=7)
    np.testing.assert_allclose(
        np.asarray(router.theta(inputs)),
        np.asarray(sj.fit_local(embeddings, inputs, k=7).theta),
        rtol=RTOL,
    )


def test_save_load_round_trip(train, queries, tmp_path) -> None:
    embeddings, inputs = train
    router = sj.fit_router(embeddings, inputs, k=9, eps=1e-5, block_size=32)
    path = tmp_path / "sub" / "router.smoothie"
    sj.save_router(path, router)
    loaded = sj.load_router(path)
    assert (loaded.k, loaded.eps, loaded.block_size, loaded.dim) == (9, 1e-5, 32, 32)
    chex.assert_trees_all_equal(eqx.filter(loaded, eqx.is_array), eqx.filter(router, eqx.is_array))
    np.testing.assert_array_equal(
        np.asarray(loaded.theta(queries)), np.asarray(router.theta(queries))
    )
    assert [p.name for p in path.parent.iterdir()] == ["router.smoothie"]  # no temp left


def test_saved_file_starts_with_a_json_header(train, tmp_path) -> None:
    embeddings, inputs = train
    sj.save_router(tmp_path / "r", sj.fit_router(embeddings, inputs, k=3))
    with open(tmp_path / "r", "rb") as f:
        header = json.loads(f.readline())
    assert header["format"].startswith("smoothie_jax.Router")
    assert (header["n_samples"], header["n_models"], header["k"]) == (200, 5, 3)


def test_loading_a_non_router_file_raises(train, tmp_path) -> None:
    embeddings, inputs = train
    sj.save_router(tmp_path / "good", sj.fit_router(embeddings, inputs, k=3))
    good = (tmp_path / "good").read_bytes()
    header, _, body = good.partition(b"\n")
    bad_files = {
        "random bytes": np.random.default_rng(0).bytes(500),
        "empty": b"",
        "text": b"hello world\n",
        "other json": b'{"format": "something else"}\n' + body,
        "json list": b"[1, 2, 3]\n",
        "header without fields": b'{"format": "smoothie_jax.Router/1"}\n' + body,
        "truncated": good[: len(good) - 40],
        "header only": header + b"\n",
        "header of another shape": header.replace(b'"n_samples": 200', b'"n_samples": 100')
        + b"\n"
        + body,
    }
    for name, data in bad_files.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ValueError, match="router"):
            sj.load_router(tmp_path / name)


def test_router_inside_jit(train, queries) -> None:
    embeddings, inputs = train
    router = sj.fit_router(embeddings, inputs, k=5)

    @jax.jit
    def route(r: sj.Router, q: jax.Array) -> jax.Array:
        return r.route(q)

    np.testing.assert_array_equal(
        np.asarray(route(router, queries)), np.asarray(router.route(queries))
    )
    theta = eqx.filter_jit(lambda r, q: r.theta(q))(router, queries)
    np.testing.assert_allclose(np.asarray(theta), np.asarray(router.theta(queries)), rtol=RTOL)


def test_router_does_not_retrace_on_new_values(monkeypatch) -> None:
    rng = np.random.default_rng(12)
    chex.clear_trace_counter()
    monkeypatch.setattr(
        _smoothie, "theta_from_distances", chex.assert_max_traces(sj.theta_from_distances, n=1)
    )
    for _ in range(3):  # new training data and new queries, same shapes
        embeddings = rng.normal(size=(41, 3, 6)).astype(np.float32)
        router = sj.fit_router(embeddings, embeddings[:, 0], k=4)
        chex.assert_tree_all_finite(router.theta(rng.normal(size=(13, 6)).astype(np.float32)))
    chex.clear_trace_counter()


@pytest.mark.unchecked  # __check_init__'s own message on arrays that break the annotations
def test_router_check_init_rejects_inconsistent_arrays(train) -> None:
    embeddings, inputs = train
    distances = sj.sample_distances(embeddings)
    common = {"observed": None, "dim": 32, "models": (), "embedder": None}
    with pytest.raises(ValueError, match="past inputs"):
        sj.SmoothieRouter(index=sj.Search().index(inputs[:10]), distances=distances, k=3, **common)
    with pytest.raises(ValueError, match="k must be"):
        sj.SmoothieRouter(index=sj.Search().index(inputs), distances=distances, k=201, **common)
    with pytest.raises(TypeError, match="abstract"):
        sj.Router()  # the variants are the routers; the base only routes on their scores


@pytest.mark.parametrize(
    ("name", "variant"),
    [
        ("smoothie", "SmoothieRouter"),
        ("smoothie_masked_ivf", "SmoothieRouter"),
        ("auto_answers", "AnswerRouter"),
    ],
)
def test_routers_saved_by_0_3_load_and_route_as_they_did(name, variant, tmp_path) -> None:
    # Saved by smoothie_jax 0.3.0 (one Router class, format /3), with what they routed then.
    fixtures = Path(__file__).parent / "fixtures"
    expected = json.loads((fixtures / "router_v0.3_expected.json").read_text())[name]
    queries = np.load(fixtures / "router_v0.3_queries.npy")
    router = sj.load_router(fixtures / f"router_v0.3_{name}.eqx")
    assert type(router).__name__ == variant
    np.testing.assert_allclose(router.weights(queries), expected["weights"], rtol=1e-6)
    assert router.route(queries).tolist() == expected["route"]
    assert router.decide(queries).method == expected["method"]
    sj.save_router(tmp_path / "again.eqx", router)  # and they save in this release's format
    again = sj.load_router(tmp_path / "again.eqx")
    np.testing.assert_array_equal(again.weights(queries), router.weights(queries))


def test_a_0_3_recommended_router_without_answers_is_refused_with_how_to_refit() -> None:
    # Its rule (consensus plus a gated length) is not this release's.
    path = Path(__file__).parent / "fixtures" / "router_v0.3_auto_lengths.eqx"
    with pytest.raises(ValueError, match="fit it again"):
        sj.load_router(path)

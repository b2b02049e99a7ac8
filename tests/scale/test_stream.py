"""Streaming routes from .npy memmaps equal in-memory routes; failures leave no output.

The command `route-stream` is tested in tests/cli/test_route_stream.py."""

from __future__ import annotations

import json

import chex
import numpy as np
import pytest

import smoothie_jax as sj
from smoothie_jax.scale import fit_local_stream, route_stream, write_decisions

MODELS = ("a", "b", "c", "d")


@pytest.fixture(scope="module")
def problem() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    embeddings = rng.normal(size=(300, 4, 16)).astype(np.float32)
    inputs = rng.normal(size=(300, 8)).astype(np.float32)
    queries = rng.normal(size=(250, 8)).astype(np.float32)
    return embeddings, inputs, queries


@pytest.fixture(scope="module")
def router(problem) -> sj.Router:
    embeddings, inputs, _ = problem
    return sj.fit_router(embeddings, inputs, k=9, block_size=32, models=MODELS)


@pytest.mark.slow
def test_route_stream_of_a_file_of_many_chunks_equals_route(problem, router, tmp_path) -> None:
    _, _, queries = problem
    np.save(tmp_path / "queries.npy", queries)
    weights = np.asarray(router.weights(queries))
    route = np.asarray(router.route(queries))

    # 250 queries in chunks of 64 (two blocks of 32): 4 chunks, the last one padded.
    n = route_stream(router, tmp_path / "queries.npy", tmp_path / "out.npy", chunk_size=64)
    assert n == 250
    got = np.load(tmp_path / "out.npy")
    chex.assert_shape(got, (250, 4))
    np.testing.assert_allclose(got, weights, rtol=1e-6)
    np.testing.assert_array_equal(got.argmax(axis=1), route)

    route_stream(router, tmp_path / "queries.npy", tmp_path / "out.jsonl", chunk_size=50)
    lines = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [line["idx"] for line in lines] == list(range(250))  # idx: the 0-based row
    assert [line["model"] for line in lines] == [MODELS[i] for i in route]
    np.testing.assert_allclose(
        [[line["weights"][m] for m in MODELS] for line in lines], weights, atol=1e-6
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl", "out.npy", "queries.npy"]


@pytest.mark.slow
def test_route_stream_with_bf16_search(problem, router, tmp_path) -> None:
    _, _, queries = problem
    route_stream(router, queries, tmp_path / "out.npy", chunk_size=100, search="bf16")
    got = np.load(tmp_path / "out.npy")
    assert np.mean(got.argmax(axis=1) == np.asarray(router.route(queries))) > 0.98


def test_failing_run_leaves_no_partial_output(problem, router, tmp_path) -> None:
    _, _, queries = problem
    bad = queries.copy()
    bad[200, 3] = np.nan  # in the 4th chunk of 64, after three chunks are written
    np.save(tmp_path / "bad.npy", bad)
    out = tmp_path / "out.jsonl"
    out.write_text("previous run\n")
    with pytest.raises(ValueError, match="queries rows 192..249 contains NaN"):
        route_stream(router, tmp_path / "bad.npy", out, chunk_size=64)
    assert out.read_text() == "previous run\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.npy", "out.jsonl"]  # no temp


def test_route_stream_rejects_bad_queries(router, tmp_path) -> None:
    with pytest.raises(ValueError, match="input_dim 5"):
        route_stream(router, np.zeros((10, 5), np.float32), tmp_path / "o.npy")
    (tmp_path / "x.npy").write_bytes(b"not numpy")
    with pytest.raises(ValueError, match="cannot read"):
        route_stream(router, tmp_path / "x.npy", tmp_path / "o.npy")
    assert not (tmp_path / "o.npy").exists()


@pytest.mark.slow
def test_fit_local_stream_from_memmaps_equals_fit_local(problem, tmp_path) -> None:
    embeddings, inputs, _ = problem
    np.save(tmp_path / "embeddings.npy", embeddings)
    np.save(tmp_path / "inputs.npy", inputs)
    want = sj.fit_local(embeddings, inputs, k=7, block_size=32)
    got = fit_local_stream(
        tmp_path / "embeddings.npy", tmp_path / "inputs.npy", k=7, chunk_size=70, block_size=32
    )
    np.testing.assert_allclose(np.asarray(got.theta), np.asarray(want.theta), rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(got.route()), np.asarray(want.route()))

    write_decisions(tmp_path / "local.jsonl", got.weights, MODELS, chunk_size=100)
    lines = (tmp_path / "local.jsonl").read_text().splitlines()
    assert len(lines) == 300
    assert json.loads(lines[5])["model"] == MODELS[int(want.route()[5])]


def test_progress_bar_and_unnamed_models(problem, tmp_path, capsys) -> None:
    embeddings, inputs, queries = problem
    router = sj.fit_router(embeddings, inputs, k=3)
    route_stream(router, queries, tmp_path / "o.jsonl", chunk_size=100, progress=True)
    assert "routing" in capsys.readouterr().err
    line = json.loads((tmp_path / "o.jsonl").read_text().splitlines()[0])
    assert isinstance(line["model"], int) and len(line["weights"]) == 4

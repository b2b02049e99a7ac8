"""`smoothie-jax route-stream`: both regimes from .npy files, the same decisions as the
library's, written as the records of `route` (idx: the 0-based row)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import smoothie_jax as sj
from smoothie_jax.cli._exit import EXIT_ERROR, EXIT_OK
from smoothie_jax.cli._main import main

from .helpers import fails

MODELS = ("a", "b", "c", "d")
Problem = tuple[np.ndarray, np.ndarray, np.ndarray]  # embeddings, inputs, queries


@pytest.fixture(scope="module")
def problem() -> Problem:
    rng = np.random.default_rng(0)
    embeddings = rng.normal(size=(300, 4, 16)).astype(np.float32)
    inputs = rng.normal(size=(300, 8)).astype(np.float32)
    queries = rng.normal(size=(250, 8)).astype(np.float32)
    return embeddings, inputs, queries


@pytest.mark.slow
def test_train_time_from_a_saved_router(
    problem: Problem, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    embeddings, inputs, queries = problem
    router = sj.fit_router(embeddings, inputs, k=9, block_size=32, models=MODELS)
    sj.save_router(tmp_path / "r.smoothie", router)
    np.save(tmp_path / "q.npy", queries)
    argv = ["route-stream", "--router", str(tmp_path / "r.smoothie"), "--queries"]
    argv += [str(tmp_path / "q.npy"), "--chunk-size", "64"]
    assert main([*argv, "-o", str(tmp_path / "o.npy")]) == EXIT_OK
    weights = np.asarray(router.weights(queries))
    np.testing.assert_allclose(np.load(tmp_path / "o.npy"), weights, rtol=1e-6)
    assert main([*argv, "-o", str(tmp_path / "o.jsonl")]) == EXIT_OK
    printed = capsys.readouterr().out
    assert f"Routed 250 queries with the router {tmp_path / 'r.smoothie'}" in printed
    lines = [json.loads(line) for line in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert all(list(line) == ["idx", "model", "weights"] for line in lines)
    assert [line["idx"] for line in lines] == list(range(250))
    route = np.asarray(router.route(queries))
    assert [line["model"] for line in lines] == [MODELS[j] for j in route]


@pytest.mark.slow
def test_test_time_from_memmaps(
    problem: Problem, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    embeddings, inputs, _ = problem
    np.save(tmp_path / "e.npy", embeddings)
    np.save(tmp_path / "x.npy", inputs)
    argv = ["route-stream", "--embeddings", str(tmp_path / "e.npy"), "-k", "7"]
    out = tmp_path / "l.jsonl"
    assert main([*argv, "--inputs", str(tmp_path / "x.npy"), "-o", str(out)]) == EXIT_OK
    assert "Routed 300 inputs with Smoothie-Local (k=7)" in capsys.readouterr().out
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["idx"] for line in lines] == list(range(300))
    want = np.asarray(sj.fit_local(embeddings, inputs, k=7).route())
    assert [line["model"] for line in lines] == want.tolist()  # no names: indices


def test_missing_arguments_fail_before_work(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "o.jsonl"
    fails(["route-stream", "-o", str(out)], capsys, ["give --embeddings and --inputs"], [out])
    argv = ["route-stream", "--router", str(tmp_path / "r.eqx"), "-o", str(out)]
    fails(argv, capsys, ["give --queries with --router"], [out])
    argv = ["route-stream", "--embeddings", "e.npy", "-o", str(tmp_path)]
    fails(argv, capsys, ["is a folder"], code=EXIT_ERROR)

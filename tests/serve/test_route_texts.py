"""Batch routing of text with a saved router: the records, chunking, atomic output,
the embedder check, and bounded memory on 100,000 queries."""

from __future__ import annotations

import gzip
import json
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import smoothie_jax as sj

from .helpers import MODELS, TOPICS, fake_encode, fake_router

TEXTS = [f"{TOPICS[i % 4]} query {i}" for i in range(23)]


def write_queries(path: Path, texts: list[str]) -> Path:
    path.write_text("".join(json.dumps({"instruction": t}) + "\n" for t in texts))
    return path


def read_lines(path: Path) -> list[dict]:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt") as f:
        return [json.loads(line) for line in f]


def test_each_query_gets_one_decision(router, tmp_path: Path) -> None:
    queries = write_queries(tmp_path / "q.jsonl", TEXTS)
    n = sj.serve.route_texts(router, queries, tmp_path / "out.jsonl", encoder=fake_encode)
    assert n == len(TEXTS)
    records = read_lines(tmp_path / "out.jsonl")
    weights = np.asarray(router.weights(fake_encode(TEXTS)))
    for i, (record, row) in enumerate(zip(records, weights)):
        assert list(record) == ["idx", "instruction", "model", "score", "weights"]
        assert record["idx"] == i + 1 and record["instruction"] == TEXTS[i]
        assert record["model"] == MODELS[int(row.argmax())]
        assert record["score"] == record["weights"][record["model"]]
        np.testing.assert_allclose([record["weights"][m] for m in MODELS], row, atol=1e-6)


@pytest.mark.parametrize("chunk_size", [1, 5, 1000])
def test_chunking_does_not_change_the_decisions(router, tmp_path: Path, chunk_size: int) -> None:
    queries = write_queries(tmp_path / "q.jsonl", TEXTS)
    sj.serve.route_texts(router, queries, tmp_path / "all.jsonl", encoder=fake_encode)
    out = tmp_path / "chunked.jsonl.gz"
    sj.serve.route_texts(router, queries, out, encoder=fake_encode, chunk_size=chunk_size)
    assert read_lines(out) == read_lines(tmp_path / "all.jsonl")


def test_a_bad_file_fails_before_any_embedding_and_writes_nothing(router, tmp_path) -> None:
    queries = write_queries(tmp_path / "q.jsonl", TEXTS)
    with open(queries, "a") as f:
        f.write('{"no_instruction": 1}\n')
    out = tmp_path / "out.jsonl"
    out.write_text("previous\n")
    calls = []

    def encoder(texts: list[str]) -> np.ndarray:
        calls.append(texts)
        return fake_encode(texts)

    with pytest.raises(sj.data.DataError, match=":24: missing 'instruction'"):
        sj.serve.route_texts(router, queries, out, encoder=encoder)
    assert not calls and out.read_text() == "previous\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl", "q.jsonl"]


def test_embeddings_of_another_size_are_refused(router, tmp_path: Path) -> None:
    queries = write_queries(tmp_path / "q.jsonl", TEXTS)
    with pytest.raises(ValueError, match="router's embedder"):
        sj.serve.route_texts(
            router, queries, tmp_path / "o.jsonl", encoder=lambda t: np.ones((len(t), 5))
        )
    assert not (tmp_path / "o.jsonl").exists()


def test_without_an_encoder_the_routers_embedder_is_needed(tmp_path: Path) -> None:
    queries = write_queries(tmp_path / "q.jsonl", TEXTS)
    with pytest.raises(ValueError, match="saved without its embedder"):
        sj.serve.route_texts(fake_router(), queries, tmp_path / "o.jsonl")


def test_a_progress_bar_on_request(router, tmp_path: Path, capsys) -> None:
    queries = write_queries(tmp_path / "q.jsonl", TEXTS)
    sj.serve.route_texts(
        router, queries, tmp_path / "o.jsonl", encoder=fake_encode, chunk_size=8, progress=True
    )
    assert "routing" in capsys.readouterr().err


@pytest.mark.slow
def test_100000_queries_in_bounded_memory(router, tmp_path: Path) -> None:
    n = 100_000
    queries = tmp_path / "q.jsonl"
    with open(queries, "w") as f:
        for i in range(n):
            f.write(json.dumps({"instruction": f"{TOPICS[i % 4]} query number {i}"}) + "\n")
    out = tmp_path / "out.jsonl"
    tracemalloc.start()
    try:
        assert sj.serve.route_texts(router, queries, out, encoder=fake_encode) == n
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Python objects at the peak: one chunk of texts, embeddings and records (~1 MiB),
    # where holding every record would take hundreds of MB.
    assert peak < 32 * 2**20, f"peak {peak / 2**20:.1f} MiB"
    with open(out) as f:
        assert sum(1 for _ in f) == n

"""A router knows its embedder: the record (`_embedder.Embedder`) and its round trip
through save/load. Making one and checking a model against it: tests/text/test_encoder.py."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import numpy as np
import pytest

import smoothie_jax as sj
from smoothie_jax._embedder import Embedder

X = np.asarray(jax.random.normal(jax.random.key(0), (40, 3, 6)))
EMBEDDER = Embedder("minilm", "model-0123456789abcdef", 6, 256)


def test_the_record_round_trips_and_reads() -> None:
    assert Embedder.from_json(EMBEDDER.to_json()) == EMBEDDER
    assert EMBEDDER.describe() == "minilm (6-dim, first 256 word pieces)"
    assert Embedder("m", "f", 4, None, whole_text=True).describe() == "m (4-dim, whole texts)"
    assert hash(EMBEDDER) == hash(Embedder.from_json(EMBEDDER.to_json()))  # a static field


@pytest.mark.parametrize(
    "record",
    [
        None,
        {"name": "m", "dim": 3},
        {"name": "m", "fingerprint": "f", "dim": 0},
        {"name": "m", "fingerprint": "f", "dim": True},
        {"name": "m", "fingerprint": "f", "dim": 3, "max_seq_length": 0},
        pytest.param(
            {"name": "m", "fingerprint": "f", "dim": 3, "whole_text": "no"},
            marks=pytest.mark.unchecked,  # a str where the annotation says bool, on purpose
        ),
        {"name": "", "fingerprint": "f", "dim": 3},
        {"name": "m", "fingerprint": "f", "dim": 3, "colour": "red"},
    ],
)
def test_bad_records_are_refused(record: object) -> None:
    with pytest.raises(ValueError):
        Embedder.from_json(record)


def test_save_and_load_keep_the_embedder(tmp_path: Path) -> None:
    router = sj.fit_router(X, X[:, 0], k=5, models=["a", "b", "c"], embedder=EMBEDDER)
    sj.save_router(tmp_path / "r", router)
    with open(tmp_path / "r", "rb") as f:
        assert json.loads(f.readline())["embedder"] == EMBEDDER.to_json()
    loaded = sj.load_router(tmp_path / "r")
    assert loaded.embedder == EMBEDDER
    np.testing.assert_array_equal(loaded.weights(X[:4, 1]), router.weights(X[:4, 1]))


def test_a_router_saved_before_the_record_loads_without_it(tmp_path: Path) -> None:
    sj.save_router(tmp_path / "r", sj.fit_router(X, X[:, 0], k=5, embedder=EMBEDDER))
    header, body = (tmp_path / "r").read_bytes().split(b"\n", 1)
    old = json.loads(header)
    del old["embedder"]  # the header as routers were saved before
    (tmp_path / "old").write_bytes(json.dumps(old).encode() + b"\n" + body)
    assert sj.load_router(tmp_path / "old").embedder is None


def test_a_bad_saved_record_is_a_bad_header(tmp_path: Path) -> None:
    sj.save_router(tmp_path / "r", sj.fit_router(X, X[:, 0], k=5, embedder=EMBEDDER))
    header, body = (tmp_path / "r").read_bytes().split(b"\n", 1)
    bad = json.loads(header)
    bad["embedder"]["dim"] = "six"
    (tmp_path / "bad").write_bytes(json.dumps(bad).encode() + b"\n" + body)
    with pytest.raises(ValueError, match="bad smoothie_jax router header"):
        sj.load_router(tmp_path / "bad")


def test_an_embedder_of_another_dimension_is_refused() -> None:
    with pytest.raises(ValueError, match="384-dim embeddings; the inputs are 6-dim"):
        sj.fit_router(X, X[:, 0], k=5, embedder=Embedder("minilm", "f", 384, 256))

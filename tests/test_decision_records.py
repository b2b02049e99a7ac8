"""Decision records (`_decision_records`): one vocabulary for `route`, `route-stream`,
`route --router` and the gateway, fields in a fixed order, .npy or JSON lines (gzipped
on .gz), written atomically."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

import smoothie_jax as sj
from smoothie_jax._decision_records import (
    decision_record,
    decision_records,
    decision_writer,
    write_decisions,
)

MODELS = ("a", "b", "c")
WEIGHTS = np.array([[0.2, 0.5, 0.3], [0.6, 0.1, 0.3], [0.3, 0.3, 0.4]], np.float32)


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _decision() -> sj.Decision:
    choice = jnp.asarray([2, 0, 2], jnp.int32)  # not the argmax of row 0: a draw
    probabilities = jnp.asarray([[0.1, 0.2, 0.7], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    lower, upper = jnp.asarray(WEIGHTS) - 0.1, jnp.asarray(WEIGHTS) + 0.1
    return sj.Decision(
        choice=choice,
        probabilities=probabilities,
        weights=jnp.asarray(WEIGHTS),
        method="posterior",
        reason="a test",
        interval=(lower, upper),
    )


def test_records_without_ids_number_the_rows() -> None:
    records = decision_records(WEIGHTS, MODELS, start=10)
    assert [r["idx"] for r in records] == [10, 11, 12]
    assert [r["model"] for r in records] == ["b", "a", "c"]  # the argmax
    assert records[0] == {"idx": 10, "model": "b", "weights": {"a": 0.2, "b": 0.5, "c": 0.3}}
    unnamed = decision_records(WEIGHTS)
    assert unnamed[1] == {"idx": 1, "model": 0, "weights": [0.6, 0.1, 0.3]}


def test_one_record_without_an_id_and_with_a_score() -> None:
    record = decision_record(WEIGHTS[1], MODELS, score=0.6000001, method="m")
    assert record == {
        "model": "a",
        "score": 0.6,
        "weights": {"a": 0.6, "b": 0.1, "c": 0.3},
        "method": "m",
    }
    assert list(record) == ["model", "score", "weights", "method"]
    assert decision_record(WEIGHTS[0], choice=2, idx="q1") == {
        "idx": "q1",
        "model": 2,
        "weights": [0.2, 0.5, 0.3],
    }


def test_scores_are_written_before_the_weights(tmp_path: Path) -> None:
    out = tmp_path / "d.jsonl"
    with decision_writer(out, 3, 3, MODELS) as write:
        write(WEIGHTS, ids=[4, 5, 6], instructions=["x", "y", "z"], scores=WEIGHTS.max(axis=1))
    records = _lines(out)
    assert list(records[0]) == ["idx", "instruction", "model", "score", "weights"]
    assert [r["score"] for r in records] == [0.5, 0.6, 0.4]
    assert records[2] == decision_records(WEIGHTS, MODELS, ids=[4, 5, 6])[2] | {
        "instruction": "z",
        "score": 0.4,
    }


def test_a_decision_with_every_field(tmp_path: Path) -> None:
    out = tmp_path / "d.jsonl"
    outputs = [["x0", "y0", "z0"], ["x1", None, "z1"], ["x2", "y2", "z2"]]
    n = write_decisions(
        out,
        _decision(),
        MODELS,
        ids=["q7", "q8", "q9"],
        instructions=["i0", "i1", "i2"],
        outputs=outputs,
        level=0.8,
        chunk_size=2,  # two chunks: per-row fields are sliced with the weights
    )
    assert n == 3
    records = _lines(out)
    assert list(records[0]) == [
        "idx",
        "instruction",
        "model",
        "output",
        "weights",
        "method",
        "probabilities",
        "theta_interval_80",
    ]
    assert [r["idx"] for r in records] == ["q7", "q8", "q9"]
    assert [r["model"] for r in records] == ["c", "a", "c"]  # the decision's, not argmax
    assert [r["output"] for r in records] == ["z0", "x1", "z2"]
    assert records[2]["instruction"] == "i2" and records[2]["method"] == "posterior"
    assert records[0]["probabilities"] == {"a": 0.1, "b": 0.2, "c": 0.7}
    assert records[2]["theta_interval_80"]["c"] == [0.3, 0.5]


def test_plain_weights_route_to_their_argmax(tmp_path: Path) -> None:
    write_decisions(tmp_path / "w.jsonl", WEIGHTS, MODELS, chunk_size=1)
    assert _lines(tmp_path / "w.jsonl") == decision_records(WEIGHTS, MODELS)


def test_npy_holds_the_weights(tmp_path: Path) -> None:
    write_decisions(tmp_path / "w.npy", _decision(), MODELS, instructions=["a", "b", "c"])
    np.testing.assert_array_equal(np.load(tmp_path / "w.npy"), WEIGHTS)
    write_decisions(tmp_path / "forced.npy", WEIGHTS, npy=False)  # JSON lines anyway
    assert _lines(tmp_path / "forced.npy")[0]["idx"] == 0


def test_gz_is_gzipped_and_reproducible(tmp_path: Path) -> None:
    paths = [tmp_path / run / "d.jsonl.gz" for run in ("one", "two")]
    for path in paths:
        path.parent.mkdir()
        write_decisions(path, WEIGHTS, ["模型", "b", "c"])
    one, two = (path.read_bytes() for path in paths)
    assert one[:2] == b"\x1f\x8b" and one == two  # no timestamp, no temp file's name
    text = gzip.decompress(one).decode("utf-8")
    assert "模型" in text  # UTF-8, not \u escapes
    assert json.loads(text.splitlines()[1])["model"] == "模型"


def test_an_incomplete_write_leaves_no_file(tmp_path: Path) -> None:
    out = tmp_path / "d.jsonl"
    out.write_text("previous\n")
    with pytest.raises(RuntimeError, match="wrote 1 of 2 rows"):
        with decision_writer(out, 2, 3, MODELS) as write:
            write(WEIGHTS[:1])
    with pytest.raises(ValueError, match="not JSON compliant"):
        with decision_writer(out, 1, 3) as write:
            write(np.array([[np.nan, 0.5, 0.5]]))  # not valid JSON
    assert out.read_text() == "previous\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.jsonl"]  # no temp file
    with pytest.raises(ValueError, match="2 model names for 3 models"):
        with decision_writer(out, 1, 3, ("a", "b")):
            pass

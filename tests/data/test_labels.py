"""A person's labels (`data/_labels`): the file to fill, read back against the data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import smoothie_jax as sj
from smoothie_jax.data import label_records, read_labels

DATA = sj.data.RoutingData(
    ["q1", "q2", "q3"], ("a", "b", "c"), [["1", "2", "3"], ["4", "5", "6"], ["7", "8", "9"]],
    ids=["x", "y", "z"],
)  # fmt: skip


def test_records_hold_the_contenders_outputs_and_empty_scores() -> None:
    records = label_records(DATA, [2, 0], [2, 0])
    assert [r["idx"] for r in records] == ["z", "x"]
    assert records[0]["outputs"] == {"c": "9", "a": "7"}
    assert records[0]["scores"] == {"c": None, "a": None}
    with pytest.raises(ValueError, match="query file"):
        label_records(sj.data.RoutingData(["q"]), [0], [0])


def test_filled_lines_come_back_in_the_datas_order(tmp_path: Path) -> None:
    path = tmp_path / "filled.jsonl"
    lines = [
        {"idx": "z", "scores": {"c": 1, "a": 0.5}},
        {"idx": "x", "scores": {"a": None, "b": None}},  # not filled yet: skipped
        {"idx": "y", "scores": {"b": 2.0}},
    ]
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    rows, scores = read_labels(path, DATA)
    np.testing.assert_array_equal(rows, [2, 1])
    np.testing.assert_array_equal(np.isnan(scores), [[False, True, False], [True, False, True]])
    assert scores[0, 0] == 0.5 and scores[0, 2] == 1 and scores[1, 1] == 2


def test_every_bad_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    lines = [
        json.dumps({"idx": "x", "scores": {"a": True}}),
        json.dumps({"idx": "x", "scores": {"a": 1}}),
        json.dumps({"idx": "x", "scores": {"a": 1}}),  # twice
        "{not json",
    ]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(sj.data.DataError) as e:
        read_labels(path, DATA)
    message = str(e.value)
    assert "bad.jsonl:1: score of model 'a' must be a number" in message
    assert "bad.jsonl:3: idx 'x' was scored already on line 2" in message
    assert "bad.jsonl:4: bad JSON" in message
    with pytest.raises(FileNotFoundError):
        read_labels(tmp_path / "missing.jsonl", DATA)

"""The reference code's layout: an inputs jsonl plus one generations file per model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from routing_samples import assert_same, write_lines

from smoothie_jax.data import DataError, read_reference_layout, read_routing, write_routing


def _reference_layout(tmp_path: Path, n: int = 3, suffix: str = "") -> tuple[Path, Path]:
    inputs = write_lines(
        tmp_path / "inputs.jsonl",
        [
            {"embedding_input": f"question {i}", "reference": f"answer {i}", "idx": 100 + i}
            for i in range(n)
        ],
    )
    gens = tmp_path / "model_gens"
    gens.mkdir()
    for model in ("zeta", "alpha", "mid"):
        texts = [f"{model} says {i}" for i in range(n)]
        (gens / f"{model}{suffix}.json").write_text(json.dumps({"generations": texts}))
    return inputs, gens


def test_reference_layout(tmp_path: Path) -> None:
    inputs, gens = _reference_layout(tmp_path)
    data = read_reference_layout(inputs, gens)
    assert data.models == ("alpha", "mid", "zeta")  # discovered, sorted
    assert data.instructions == ["question 0", "question 1", "question 2"]
    assert data.outputs[1] == ["alpha says 1", "mid says 1", "zeta says 1"]
    assert data.scores is None
    assert data.ids == [100, 101, 102]
    assert data.extra[2] == {"reference": "answer 2"}
    ordered = read_reference_layout(inputs, gens, models=["zeta", "alpha", "mid"])
    assert ordered.outputs[0] == ["zeta says 0", "alpha says 0", "mid says 0"]
    # It writes out as an ordinary routing file.
    write_routing(tmp_path / "out.jsonl", data)
    assert_same(read_routing(tmp_path / "out.jsonl"), data)


def test_reference_layout_suffix_and_text_field(tmp_path: Path) -> None:
    inputs, gens = _reference_layout(tmp_path, suffix="_test")
    data = read_reference_layout(inputs, gens, suffix="_test")
    assert data.models == ("alpha", "mid", "zeta")
    by_reference = read_reference_layout(inputs, gens, suffix="_test", text_field="reference")
    assert by_reference.instructions[0] == "answer 0"
    assert by_reference.extra[0] == {"embedding_input": "question 0"}


def test_reference_layout_errors(tmp_path: Path) -> None:
    inputs, gens = _reference_layout(tmp_path)
    (gens / "mid.json").write_text(json.dumps({"generations": ["x", "y"]}))
    with pytest.raises(
        DataError, match=r"mid\.json: model 'mid' has 2 generations but .* 3 inputs"
    ):
        read_reference_layout(inputs, gens)

    (gens / "mid.json").write_text(json.dumps({"outputs": ["x", "y", "z"]}))
    with pytest.raises(DataError, match=r"mid\.json: expected an object with a 'generations'"):
        read_reference_layout(inputs, gens)

    (gens / "mid.json").write_text('{"generations": ["x", "y",')
    with pytest.raises(DataError, match=r"mid\.json:1: bad JSON"):
        read_reference_layout(inputs, gens)

    # An empty generation is an answer, null a model that did not answer: both read.
    (gens / "mid.json").write_text(json.dumps({"generations": ["x", " ", None]}))
    data = read_reference_layout(inputs, gens)
    assert [row[1] for row in data.outputs] == ["x", " ", None]
    assert data.observed[:, 1].tolist() == [True, True, False]
    (gens / "mid.json").write_text(json.dumps({"generations": ["x", 3, "z"]}))
    with pytest.raises(DataError, match=r"generations\[1\] \(input 101\) of model 'mid' must"):
        read_reference_layout(inputs, gens)

    (gens / "mid.json").write_text(json.dumps({"generations": [["x"], ["y"], ["z"]]}))
    with pytest.raises(DataError, match=r"generations\[0\] is a list"):
        read_reference_layout(inputs, gens)

    (gens / "mid.json").write_text(json.dumps({"generations": ["x", "y", "z"]}))
    assert read_reference_layout(inputs, gens).outputs[2][1] == "z"
    with pytest.raises(FileNotFoundError, match=r"nope\.json: no such file"):
        read_reference_layout(inputs, gens, models=["alpha", "mid", "nope"])
    with pytest.raises(DataError, match="2 models"):
        read_reference_layout(inputs, gens, models=["alpha", "mid"])
    with pytest.raises(FileNotFoundError, match="no such folder"):
        read_reference_layout(inputs, tmp_path / "missing")


def test_reference_layout_input_errors(tmp_path: Path) -> None:
    _, gens = _reference_layout(tmp_path)
    bad = write_lines(tmp_path / "bad.jsonl", [{"embedding_input": "q"}, {"input": "q"}])
    with pytest.raises(DataError, match=rf"^{bad}:2: missing 'embedding_input'"):
        read_reference_layout(bad, gens)
    none = write_lines(tmp_path / "none.jsonl", [{"text": "q"}])
    with pytest.raises(DataError, match=rf"^{none}:1: no input text field"):
        read_reference_layout(none, gens)
    clash = write_lines(tmp_path / "clash.jsonl", [{"input": "q", "outputs": 1}])
    with pytest.raises(DataError, match=rf"^{clash}:1: key 'outputs' beside the text field"):
        read_reference_layout(clash, gens)

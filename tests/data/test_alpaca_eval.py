"""The alpaca_eval converter: alignment by instruction, scores from preferences, and every
kind of misalignment refused before anything is written."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from smoothie_jax.data import DataError, convert_alpaca_eval, read_routing

INSTRUCTIONS = ["Write a haiku.", "Explain gravity.", "List three fruits.", "Say hello."]


def _results(tmp_path: Path, prefs: dict[str, list[float | None]] | None = None) -> Path:
    """A tiny alpaca_eval results/ folder; each model lists its items in its own order."""
    prefs = prefs or {
        "m1": [1.0, 2.0, 1.5, None],
        "m2": [1.2, 1.0, 2.0, 1.9],
        "m3": [2.0, 2.0, 1.0, 1.0],
    }
    results = tmp_path / "results"
    for shift, (model, values) in enumerate(prefs.items()):
        order = INSTRUCTIONS[shift:] + INSTRUCTIONS[:shift]
        outputs = [
            {"instruction": s, "output": f"{model}: {s}", "generator": model, "dataset": "d"}
            for s in order
        ]
        annotations = [
            {
                "instruction": s,
                "output_1": f"ref: {s}",
                "generator_1": "gpt4_turbo",
                "output_2": f"{model}: {s}",
                "generator_2": model,
                "preference": values[INSTRUCTIONS.index(s)],
            }
            for s in reversed(order)
        ]
        (results / model / "weighted_alpaca_eval_gpt4_turbo").mkdir(parents=True)
        (results / model / "model_outputs.json").write_text(json.dumps(outputs))
        (results / model / "weighted_alpaca_eval_gpt4_turbo/annotations.json").write_text(
            json.dumps(annotations)
        )
    (results / "not_a_model").mkdir()  # folders without model_outputs.json are ignored
    return results


def _edit(path: Path, change: Callable[[list[dict]], object]) -> None:
    items = json.loads(path.read_text())
    change(items)
    path.write_text(json.dumps(items))


@pytest.mark.parametrize("name", ["routing.jsonl", "routing.jsonl.gz"])
def test_convert_alpaca_eval(tmp_path: Path, name: str) -> None:
    results = _results(tmp_path)
    out = tmp_path / name
    assert convert_alpaca_eval(results, out) == 4
    data = read_routing(out)
    assert data.models == ("m1", "m2", "m3")
    assert data.instructions == INSTRUCTIONS  # the first model's order
    assert data.ids == [0, 1, 2, 3]
    for i, s in enumerate(INSTRUCTIONS):
        assert data.outputs[i] == [f"m1: {s}", f"m2: {s}", f"m3: {s}"]
        assert data.extra[i] == {
            "dataset": "d",
            "reference_output": f"ref: {s}",
            "reference_generator": "gpt4_turbo",
        }
    expected = np.array([[0.0, 1.0, 0.5, np.nan], [0.2, 0.0, 1.0, 0.9], [1.0, 1.0, 0.0, 0.0]]).T
    np.testing.assert_allclose(data.scores, expected)
    convert_alpaca_eval(results, out, models=["m3", "m1", "m2"])
    assert read_routing(out).models == ("m3", "m1", "m2")


def test_a_preference_of_0_is_a_draw(tmp_path: Path) -> None:
    """alpaca_eval codes a draw as 1.5 or 0 (older annotators write 0): both score 0.5."""
    prefs = {"m1": [0.0, 1.5, 1.0, 2.0], "m2": [1.0] * 4, "m3": [2.0] * 4}
    out = tmp_path / "routing.jsonl"
    convert_alpaca_eval(_results(tmp_path, prefs), out)
    np.testing.assert_allclose(read_routing(out).scores[:, 0], [0.5, 0.5, 0.0, 1.0])


def _misalign_missing(results: Path) -> None:
    def drop(items: list[dict]) -> None:
        items[:] = [item for item in items if item["instruction"] != "Explain gravity."]

    _edit(results / "m2/model_outputs.json", drop)


def _misalign_extra(results: Path) -> None:
    _edit(
        results / "m3/model_outputs.json",
        lambda items: items.append({"instruction": "An extra one.", "output": "x"}),
    )


def _misalign_duplicate(results: Path) -> None:
    _edit(results / "m2/model_outputs.json", lambda items: items.append(dict(items[0])))


def _misalign_output_2(results: Path) -> None:
    path = results / "m3/weighted_alpaca_eval_gpt4_turbo/annotations.json"
    _edit(path, lambda items: items[0].update(output_2="another run's text"))


def _misalign_annotation_missing(results: Path) -> None:
    path = results / "m1/weighted_alpaca_eval_gpt4_turbo/annotations.json"
    _edit(path, lambda items: items.pop())


def _bad_preference(results: Path) -> None:
    path = results / "m2/weighted_alpaca_eval_gpt4_turbo/annotations.json"
    _edit(path, lambda items: items[0].update(preference=3.0))


def _empty_output(results: Path) -> None:
    _edit(results / "m1/model_outputs.json", lambda items: items[2].update(output=""))


@pytest.mark.parametrize(
    ("damage", "pattern"),
    [
        (
            _misalign_missing,
            r"m2/model_outputs\.json: model 'm2' lacks 1 instruction\(s\) of "
            r"model 'm1', e\.g\. 'Explain gravity\.'",
        ),
        (
            _misalign_extra,
            r"m3/model_outputs\.json: model 'm3' has 1 instruction\(s\) not in "
            r"model 'm1', e\.g\. 'An extra one\.'",
        ),
        (_misalign_duplicate, r"model 'm2' has two entries for instruction"),
        (
            _misalign_output_2,
            r"m3/weighted_alpaca_eval_gpt4_turbo/annotations\.json: model "
            r"'m3': output_2 for instruction .* differs",
        ),
        (_misalign_annotation_missing, r"annotations\.json: model 'm1' lacks 1 instruction"),
        (_bad_preference, r"model 'm2': preference 3\.0 .* not a number in \[1, 2\]"),
    ],
)
def test_convert_alpaca_eval_misaligned(
    tmp_path: Path, damage: Callable[[Path], None], pattern: str
) -> None:
    results = _results(tmp_path)
    damage(results)
    out = tmp_path / "routing.jsonl"
    with pytest.raises(DataError, match=pattern):
        convert_alpaca_eval(results, out)
    assert not out.exists()


def test_convert_alpaca_eval_needs_three_models(tmp_path: Path) -> None:
    results = _results(tmp_path, {"m1": [1.0] * 4, "m2": [1.0] * 4})
    with pytest.raises(DataError, match="2 models"):
        convert_alpaca_eval(results, tmp_path / "out.jsonl")
    with pytest.raises(FileNotFoundError, match="no such folder"):
        convert_alpaca_eval(tmp_path / "nowhere", tmp_path / "out.jsonl")


def test_convert_alpaca_eval_keeps_an_empty_output(tmp_path: Path) -> None:
    results = _results(tmp_path)
    _empty_output(results)  # m1's answer to instruction 2 is ""
    path = results / "m1/weighted_alpaca_eval_gpt4_turbo/annotations.json"
    fruits = "List three fruits."

    def blank(items: list[dict]) -> None:
        next(item for item in items if item["instruction"] == fruits).update(output_2="")

    _edit(path, blank)
    out = tmp_path / "routing.jsonl"
    assert convert_alpaca_eval(results, out) == 4
    data = read_routing(out)
    assert data.outputs[data.instructions.index(fruits)][0] == ""

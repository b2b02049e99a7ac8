"""`smoothie-jax convert-alpaca-eval`: a results/ folder to a routing file, or an error
naming the problem and leaving the output as it was."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import smoothie_jax as sj
from smoothie_jax.cli._exit import EXIT_OK
from smoothie_jax.cli._main import main

from .helpers import fails

INSTRUCTIONS = ["Write a haiku.", "Explain gravity.", "Say hello."]


def _results(tmp_path: Path) -> Path:
    results = tmp_path / "results"
    for j, model in enumerate(("m1", "m2", "m3")):
        annotations = results / model / "weighted_alpaca_eval_gpt4_turbo"
        annotations.mkdir(parents=True)
        (results / model / "model_outputs.json").write_text(
            json.dumps([{"instruction": s, "output": f"{model}: {s}"} for s in INSTRUCTIONS])
        )
        (annotations / "annotations.json").write_text(
            json.dumps(
                [
                    {
                        "instruction": s,
                        "output_1": f"ref: {s}",
                        "output_2": f"{model}: {s}",
                        "preference": 1.0 + j / 2,
                    }
                    for s in INSTRUCTIONS
                ]
            )
        )
    return results


def test_convert_writes_a_routing_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "alpaca.jsonl.gz"
    argv = ["convert-alpaca-eval", str(_results(tmp_path)), "-o", str(out)]
    assert main([*argv, "--models", "m2", "m1", "m3"]) == EXIT_OK
    assert capsys.readouterr().out == f"Wrote 3 inputs to {out}.\n"
    data = sj.data.read_routing(out)
    assert data.models == ("m2", "m1", "m3") and list(data.instructions) == INSTRUCTIONS


def test_convert_errors_leave_the_output(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "alpaca.jsonl"
    results = _results(tmp_path)
    argv = ["convert-alpaca-eval", str(results), "-o", str(out), "--models", "m1", "nobody"]
    fails(argv, capsys, ["smoothie-jax convert-alpaca-eval: error:", "nobody"], [out])
    folder = tmp_path / "folder"
    folder.mkdir()
    fails(["convert-alpaca-eval", str(results), "-o", str(folder)], capsys, ["is a folder"])

"""The two alpaca_eval dev files rebuilt from tatsu-lab/alpaca_eval with `convert_alpaca_eval`.

The sources come from a local bare mirror of alpaca_eval, at pinned commits. What the
rebuild reproduces, established line by line:

- `alpaca_eval_dev` (annotator `weighted_alpaca_eval_gpt4_turbo`, alpaca_eval cd543a1):
  every line, once each score is rounded to 6 decimals (the dev file's rounding); the
  unrounded scores differ by at most 5e-7, everything else is identical.
- `alpaca_eval_v1_dev` (annotator `alpaca_eval_gpt4`, alpaca_eval bcc09d8, the parent of
  440b87e, which dropped llama-2-70b-chat-hf's one empty output from its
  model_outputs.json): every line, once the `dataset` field, which the dev file lacks, is
  removed. Its 20 draws coded as preference 0 score 0.5, as the dev file has them.
"""

from __future__ import annotations

import gzip
import json
import subprocess
from pathlib import Path

import pytest

from smoothie_jax.data import convert_alpaca_eval

MIRROR = Path("/work/.mirror/tatsu-lab+alpaca_eval/repo")
DEV_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"  # beside the clone

DEV_COMMIT = "cd543a149df89434d8a54582c0151c0b945c3d20"
DEV_MODELS = [
    "FuseChat-Gemma-2-9B-Instruct",
    "FuseChat-Qwen-2.5-7B-Instruct",
    "FuseChat-Llama-3.1-8B-Instruct",
    "FuseChat-Llama-3.2-3B-Instruct",
    "FuseChat-Llama-3.2-1B-Instruct",
    "claude-2",
    "claude",
    "claude-instant-1.2",
    "claude-2.1",
    "Mixtral-8x7B-Instruct-v0.1_concise",
]
V1_COMMIT = "bcc09d81c22088c80c116f3d0f5e1478ffcc7f30"
V1_MODELS = [
    "gpt4_0314",
    "claude-2",
    "Yi-34B-Chat",
    "tulu-2-dpo-70b",
    "llama-2-70b-chat-hf",
    "cohere",
    "zephyr-7b-beta",
    "gpt-3.5-turbo-1106",
    "vicuna-13b",
    "falcon-40b-instruct",
]


def _extract(commit: str, models: list[str], annotator: str, results: Path) -> None:
    """Writes results/<model>/{model_outputs.json, <annotator>/annotations.json} at `commit`."""
    for model in models:
        for name in ("model_outputs.json", f"{annotator}/annotations.json"):
            spec = f"{commit}:results/{model}/{name}"
            shown = subprocess.run(
                ["git", "-C", str(MIRROR), "show", spec], capture_output=True, check=False
            )
            if shown.returncode != 0:
                pytest.skip(f"the mirror lacks {spec}: {shown.stderr.decode().strip()}")
            path = results / model / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(shown.stdout)


def _lines(path: Path) -> list[str]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return f.read().splitlines()


def _rounded(record: dict) -> dict:
    scores = record["scores"]
    return {**record, "scores": {m: None if v is None else round(v, 6) for m, v in scores.items()}}


def _without_dataset(record: dict) -> dict:
    return {k: v for k, v in record.items() if k != "dataset"}


@pytest.mark.slow  # seconds of work: 40 JSON files, 80 MB, read from git and converted
def test_alpaca_eval_dev_files_rebuilt(tmp_path: Path) -> None:
    if not (MIRROR / "HEAD").is_file():
        pytest.skip(f"no alpaca_eval mirror at {MIRROR}")
    cases = [
        ("alpaca_eval_dev", DEV_COMMIT, DEV_MODELS, "weighted_alpaca_eval_gpt4_turbo"),
        ("alpaca_eval_v1_dev", V1_COMMIT, V1_MODELS, "alpaca_eval_gpt4"),
    ]
    for name, *_ in cases:
        if not (DEV_DATA / f"{name}.jsonl.gz").is_file():
            pytest.skip(f"no {name}.jsonl.gz in {DEV_DATA}")

    for name, commit, models, annotator in cases:
        results = tmp_path / name / "results"
        _extract(commit, models, annotator, results)
        out = tmp_path / f"{name}.jsonl.gz"
        assert convert_alpaca_eval(results, out, models=models, annotator=annotator) == 805
        rebuilt = [json.loads(line) for line in _lines(out)]
        dev_lines = _lines(DEV_DATA / f"{name}.jsonl.gz")
        assert len(rebuilt) == len(dev_lines) == 805
        for got, want_line in zip(rebuilt, dev_lines, strict=True):
            want = json.loads(want_line)
            assert list(got["outputs"]) == list(got["scores"]) == models
            if name == "alpaca_eval_dev":
                assert got.keys() == want.keys()
                assert {k: v for k, v in got.items() if k != "scores"} == {
                    k: v for k, v in want.items() if k != "scores"
                }
                for m in models:  # unrounded, but within rounding to 6 decimals
                    assert abs(got["scores"][m] - want["scores"][m]) <= 5e-7
                got = _rounded(got)
            else:
                assert set(got) - set(want) == {"dataset"}
                got = _without_dataset(got)
            # The very line, byte for byte once decompressed, as write_jsonl dumps it.
            assert json.dumps(got, ensure_ascii=False) == want_line

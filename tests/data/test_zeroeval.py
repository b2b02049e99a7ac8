"""The ZeroEval converter: alignment by id, answers extracted and judged as ZeroEval does,
every kind of bad input refused before anything is written, and (slow) the dev files
rebuilt from the public results."""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from smoothie_jax.cli import _convert_zeroeval
from smoothie_jax.data import DataError, convert_zeroeval, read_routing
from smoothie_jax.data._zeroeval import _judge_crux, _judge_math, extract_zeroeval_answer

LLAMA = "Meta-Llama-3.1-8B-Instruct"  # ZeroEval's \boxed{} fallback applies to Llama-3.1 only
PREVIOUS = b"previous output, must survive a failed run\n"

# id -> (question, gold answer) and model -> id -> reply; m2 lacks g3, so g3 is left out.
GSM = {
    "g0": ("Eggs?", "# 18"),
    "g1": ("Pay?", "# 1,200"),
    "g2": ("Cats?", "# 3"),
    "g3": ("?", "# 5"),
}
GSM_REPLIES = {
    LLAMA: {
        "g0": '{"reasoning": "16 - 7 = 9, 9 * 2", "answer": "18"}',
        "g1": "So she earns $\\boxed{1200}$",
        "g2": '```json\n{"reasoning": "none", "answer": "three"}\n```',
        "g3": '{"answer": "5"}',
    },
    "m2": {
        "g2": '{"reasoning": "6 halves", "answer": "6/2"}',
        "g1": '{"answer": "$1,200 a week"}',
        "g0": 'Here it is:\n```json\n{\n  "reasoning": "a\nb",\n  "answer": "$18.00"\n}\n```',
    },
    "m3@host": {
        "g1": "I think \\boxed{1200}",  # not a Llama-3.1 file: no answer
        "g3": '{"answer": "5"}',
        "g0": "The answer: 17 dollars",
        "g2": '{"reasoning": "r", "answer": 3}',
    },
}

CRUX = {"c0": ("f([1, 2])?", "[1, 2]"), "c1": ("f('abc')?", "'abc'"), "c2": ("f('')?", "''")}
CRUX_REPLIES = {
    "m1": {
        "c0": '{"reasoning": "r", "answer": [1, 2]}',  # a JSON list: compared as its repr
        "c1": '{"answer": "\'abc\'"}',
        "c2": '{"answer": ""}',  # empty on both sides: right
    },
    "m2": {
        "c0": '{"answer": "[1,2]"}',
        "c1": "no JSON and no answer",
        "c2": '"answer": "x\ny"',  # broken JSON: found by pattern, its line break escaped
    },
    "m3": {
        "c0": '{"answer": "[1, 2]"}',
        "c1": '{"answer": "abc"}',
        "c2": '{"reasoning": "x } y", "answer": "1"}',  # braces count even inside strings
    },
}


def _folder(tmp_path: Path, dataset: str, gold: dict, replies: dict[str, dict[str, str]]) -> Path:
    """A tiny ZeroEval task folder; each model lists its records in its own order."""
    folder = tmp_path / "result_dirs" / dataset
    folder.mkdir(parents=True)
    for model, by_id in replies.items():
        records = [
            {
                "session_id": key,
                "output": [reply],
                "generator": model,
                "dataset": dataset,
                "id": key,
                "question": gold[key][0],
                "answer": gold[key][1],
            }
            for key, reply in by_id.items()
        ]
        (folder / f"{model}.json").write_text(json.dumps(records))
    return folder


def _gsm(tmp_path: Path) -> Path:
    return _folder(tmp_path, "gsm", GSM, GSM_REPLIES)


def _lines(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def test_gsm_alignment_answers_and_scores(tmp_path: Path) -> None:
    out = tmp_path / "gsm.jsonl.gz"
    assert convert_zeroeval(_gsm(tmp_path), out) == 3  # g3 is missing from m2
    lines = _lines(out)
    assert [line["id"] for line in lines] == ["g0", "g1", "g2"]  # the first model's order
    assert [line["idx"] for line in lines] == [0, 1, 2]
    assert list(lines[0]) == [
        *("idx", "instruction", "outputs", "scores", "answers"),
        *("reference_output", "dataset", "id"),
    ]
    assert [line["instruction"] for line in lines] == ["Eggs?", "Pay?", "Cats?"]
    assert [line["reference_output"] for line in lines] == ["18", "1,200", "3"]
    assert {line["dataset"] for line in lines} == {"gsm"}
    assert lines[1]["outputs"]["m2"] == GSM_REPLIES["m2"]["g1"]
    answers = [list(line["answers"].values()) for line in lines]
    assert answers == [["18.0", "18.0", "17.0"], ["1200.0", "1200.0", None], [None, "3.0", "3.0"]]
    scores = [list(line["scores"].values()) for line in lines]
    assert scores == [[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 1.0, 1.0]]
    assert all(type(s) is float for line in lines for s in line["scores"].values())

    data = read_routing(out)
    assert data.models == (LLAMA, "m2", "m3@host")
    np.testing.assert_array_equal(data.scores, np.array(scores))


def test_models_choose_order_and_rename(tmp_path: Path) -> None:
    results, out = _gsm(tmp_path), tmp_path / "gsm.jsonl"
    assert convert_zeroeval(results, out, models={"m3@host": "m3", LLAMA: "llama", "m2": "m2"})
    assert read_routing(out).models == ("m3", "llama", "m2")
    assert read_routing(out).extra[0]["id"] == "g1"  # m3@host's order now
    convert_zeroeval(results, out, models=["m2", "m3@host", LLAMA])
    assert read_routing(out).models == ("m2", "m3@host", LLAMA)


def test_crux_answers_and_scores(tmp_path: Path) -> None:
    out = tmp_path / "crux.jsonl.gz"
    assert convert_zeroeval(_folder(tmp_path, "crux", CRUX, CRUX_REPLIES), out) == 3
    lines = _lines(out)
    assert [line["reference_output"] for line in lines] == ["[1, 2]", "'abc'", "''"]
    answers = [list(line["answers"].values()) for line in lines]
    assert answers == [["[1, 2]", "[1,2]", "[1, 2]"], ["abc", None, "abc"], ["", "x\\ny", "1"]]
    scores = [list(line["scores"].values()) for line in lines]
    assert scores == [[1.0, 0.0, 1.0], [1.0, 0.0, 1.0], [1.0, 0.0, 0.0]]


@pytest.mark.parametrize(
    ("reply", "model", "expected"),
    [
        ('{"answer": "42", "reasoning": "x"}', "m", "42"),
        ('{"answer": null}', "m", "None"),  # str() of the parsed value, as ZeroEval
        ('{"answer": 4.5}', "m", "4.5"),
        ('{"answer": "1"', "m", "1"),  # unbalanced: by pattern
        ('{"answer": 7, }', "m", "7"),  # invalid JSON: bare value by pattern
        ('{"answer": , "x": 1}', "m", ""),  # the pattern allows an empty value
        ("answer: 12 apples", "m", "12"),  # unquoted key
        ("The result is \\boxed{36}.", "Llama-3.1-405B-Inst@sambanova", "36"),
        ("The result is \\boxed{36}.", "gpt-4o", None),
        ("\\boxed{36} and then a long tail of more than thirty characters", "Llama-3.1-8B", None),
        ("nothing here", "m", None),
    ],
)
def test_extract_answer(reply: str, model: str, expected: str | None) -> None:
    assert extract_zeroeval_answer(reply, model) == expected


def test_math_judge_evaluates_fractions_without_running_code(tmp_path: Path) -> None:
    assert _judge_math("3/4", "0.75") == ("0.75", 1.0)
    assert _judge_math("(1+2)/4 cups", "0.75") == ("1.0", 0.0)  # not arithmetic: text kept
    assert _judge_math("1/0", "1") == ("1.0", 1.0)  # ZeroDivisionError: text kept
    assert _judge_math("-$2,000.50", "-2000.5") == ("-2000.5", 1.0)
    assert _judge_math("9**9**9/1", "1") == ("9.0", 0.0)  # refused, not computed for hours
    marker = tmp_path / "ran"
    attack = f"__import__('pathlib').Path({str(marker)!r}).touch() / 2"
    _judge_math(attack, "2")
    assert not marker.exists()  # ZeroEval would have run it: eval() on any text with "/"
    assert _judge_math(None, "18") == (None, 0.0)
    assert _judge_crux("'x'", "x") == ("x", 1.0)
    assert _judge_crux("", "1") == ("", 0.0)


def _edit(path: Path, change: Callable[[list[dict]], object]) -> None:
    records = json.loads(path.read_text())
    change(records)
    path.write_text(json.dumps(records))


def _set(key: str, value: object) -> Callable[[list[dict]], None]:
    def change(records: list[dict]) -> None:
        records[0][key] = value

    return change


BAD_INPUTS: list[tuple[Callable[[Path], object], str]] = [
    (lambda r: (r / "m2.json").unlink(), "m2.json: no such model file"),
    (lambda r: (r / "m2.json").write_text('[{"id": '), "m2.json:1: bad JSON"),
    (lambda r: (r / "m2.json").write_text("{}"), "non-empty JSON list"),
    (lambda r: _edit(r / "m2.json", _set("question", None)), "no string 'question'"),
    (lambda r: _edit(r / "m2.json", _set("output", "text")), "'output' is not a list"),
    (lambda r: _edit(r / "m2.json", _set("id", None)), "no string or int 'id'"),
    (lambda r: _edit(r / "m2.json", _set("id", "g0")), "two records have id 'g0'"),
    (lambda r: _edit(r / "m2.json", _set("answer", "# 19")), "gold answer differs"),
    (lambda r: _edit(r / "m2.json", _set("dataset", "crux")), "is 'crux', not 'gsm'"),
    (
        lambda r: _edit(r / f"{LLAMA}.json", lambda rs: [x.update(dataset="zebra") for x in rs]),
        "dataset 'zebra' is not supported",
    ),
    (
        lambda r: _edit(r / "m2.json", lambda rs: [x.update(id=x["id"] + "!") for x in rs]),
        "no id is common",
    ),
    (lambda r: (r / "m3@host.json").unlink(), "Smoothie needs at least 3"),
]


@pytest.mark.parametrize(("damage", "message"), BAD_INPUTS)
def test_bad_inputs_raise_and_leave_the_output(
    tmp_path: Path, damage: Callable[[Path], object], message: str
) -> None:
    results, out = _gsm(tmp_path), tmp_path / "out.jsonl"
    out.write_bytes(PREVIOUS)
    damage(results)
    models = None if "at least" in message else [LLAMA, "m2", "m3@host"]
    with pytest.raises(DataError, match=message.replace("(", r"\(")):
        convert_zeroeval(results, out, models=models)
    assert out.read_bytes() == PREVIOUS


def test_bad_folder_and_models(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    with pytest.raises(ValueError, match="nowhere: no such folder"):
        convert_zeroeval(tmp_path / "nowhere", out)
    results = _gsm(tmp_path)
    with pytest.raises(ValueError, match="named twice"):
        convert_zeroeval(results, out, models=["m2", "m2", LLAMA])
    with pytest.raises(ValueError, match="same column"):
        convert_zeroeval(results, out, models={"m2": "x", "m3@host": "x", LLAMA: "y"})
    with pytest.raises(ValueError, match="the string"):
        convert_zeroeval(results, out, models="m2")
    assert not out.exists()


def _cli(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="smoothie-jax")
    _convert_zeroeval.add_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    results, out = _gsm(tmp_path), tmp_path / "gsm.jsonl.gz"
    argv = ["convert-zeroeval", str(results), "-o", str(out), "--models", "m3@host=m3", "m2"]
    args = _cli([*argv, LLAMA])
    assert args.run(args) == 0
    assert "Wrote 3 inputs" in capsys.readouterr().out
    assert read_routing(out).models == ("m3", "m2", LLAMA)
    with pytest.raises(ValueError, match="named twice"):
        args = _cli([*argv, "m2=other"])
        args.run(args)
    for bad in ("=x", "m2="):
        with pytest.raises(SystemExit):
            _cli([*argv, bad])
        assert "expected FILE or FILE=COLUMN" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _cli(["convert-zeroeval", "--help"])
    assert (
        capsys.readouterr()
        .out.rstrip()
        .splitlines()[-1]
        .startswith("  smoothie-jax convert-zeroeval")
    )


# ---------------------------------------------------------------- the dev files

MIRROR = Path("/work/.mirror/WildEval+ZeroEval/repo")  # a bare clone of WildEval/ZeroEval
SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
COMMIT = "8c1485e"
# file name -> column name, in the dev files' column order; gsm's gemma-2-27b-it ran on
# together.ai and is filed as gemma-2-27b-it@together.
DEV_MODELS = {
    "Meta-Llama-3.1-8B-Instruct": "Meta-Llama-3.1-8B-Instruct",
    "Meta-Llama-3.1-70B-Instruct": "Meta-Llama-3.1-70B-Instruct",
    "Llama-3.1-405B-Inst@sambanova": "Meta-Llama-3.1-405B-Instruct",
    **{m: m for m in ("Qwen2-7B-Instruct", "Qwen2-72B-Instruct", "gemma-2-2b-it")},
    **{m: m for m in ("gemma-2-9b-it", "gemma-2-27b-it", "claude-3-haiku-20240307")},
    **{m: m for m in ("claude-3-5-sonnet-20240620", "gpt-4o-mini-2024-07-18")},
    **{m: m for m in ("gpt-4o-2024-08-06", "Phi-3.5-mini-instruct", "Mistral-Large-2")},
}


@pytest.mark.slow  # seconds: 28 files out of git, 2,119 x 14 answers judged
@pytest.mark.skipif(
    not (MIRROR.is_dir() and SHARED.is_dir()), reason="the ZeroEval mirror or shared data"
)
@pytest.mark.parametrize(
    ("task", "dev_file"), [("gsm", "zeroeval_gsm8k"), ("crux", "zeroeval_crux")]
)
def test_reproduces_the_dev_files(tmp_path: Path, task: str, dev_file: str) -> None:
    models = dict(DEV_MODELS)
    if task == "gsm":
        models = {
            ("gemma-2-27b-it@together" if f == "gemma-2-27b-it" else f): c
            for f, c in models.items()
        }
    folder = tmp_path / "result_dirs" / task
    folder.mkdir(parents=True)
    for stem in models:
        blob = f"{COMMIT}:result_dirs/{task}/{stem}.json"
        content = subprocess.run(
            ["git", "-C", str(MIRROR), "show", blob], check=True, capture_output=True
        ).stdout
        (folder / f"{stem}.json").write_bytes(content)
    out = tmp_path / f"{task}.jsonl.gz"
    convert_zeroeval(folder, out, models=models)

    with gzip.open(SHARED / f"{dev_file}.jsonl.gz", "rt", encoding="utf-8") as f:
        want = f.read().splitlines()
    got = _lines(out)
    assert len(got) == len(want) == {"gsm": 1319, "crux": 800}[task]
    for line, record in zip(want, got):
        assert json.loads(line) == record, record["id"]
        assert all(type(s) is float for s in record["scores"].values())
        # Byte for byte too, but for the escapes: the dev files were written ASCII-only.
        assert json.dumps(record) == line, record["id"]

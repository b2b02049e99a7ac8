"""The ZeroEval converter: one task's result folder (gsm or crux) -> one routing file.

ZeroEval (github.com/WildEval/ZeroEval, Apache-2.0) asks each model to reply as JSON with
"reasoning" and "answer" and keeps one `<model>.json` per model and task: a list of
records with `id`, `question`, the gold `answer`, `dataset` and `output` (a list whose
first item is the reply). Answers are extracted and judged here as ZeroEval's own
evaluation does (src/evaluation/eval_utils.py, math_eval.py, crux_eval.py), so each
model's mean score is its accuracy on ZeroEval's leaderboard.
"""

from __future__ import annotations

import ast
import json
import operator
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from .._validate import MIN_MODELS
from ._read import read_json
from ._schema import PathLike, data_error
from ._write import write_jsonl

_FIRST_NUMBER = re.compile(r"-?\d+(\.\d+)?")
_QUOTED_ANSWER = re.compile(r'"answer"\s*:\s*"([^"]*)"')  # "answer": "..." (may span lines)
_BARE_ANSWER = re.compile(r'"answer"\s*:\s*([^,\s]*)')  # "answer": 42
_UNQUOTED_KEY = re.compile(r"answer\s*:\s*([^,\s]*)")  # answer: 42
_BOXED = re.compile(r"\\boxed{([\w\d]+)}")


def _first_json_object(text: str) -> dict | None:
    """The first brace-balanced `{...}` of `text`, parsed with its newlines removed (so
    raw line breaks inside strings pass); None if there is none or it is not valid JSON.
    Braces are counted even inside strings, as ZeroEval counts them."""
    depth, start = 0, 0
    for i, char in enumerate(text):
        if char == "{":
            if depth == 0:
                start = i
            depth += 1
        elif char == "}" and depth > 0:
            depth -= 1
            if depth == 0:
                try:
                    value = json.loads(text[start : i + 1].replace("\n", ""))
                except (json.JSONDecodeError, RecursionError):
                    return None
                return value if isinstance(value, dict) else None
    return None


def extract_zeroeval_answer(reply: str, model_file: str) -> str | None:
    """A reply's "answer" as ZeroEval extracts it, as a string; None when it finds none.

    First the reply's first JSON object; failing that, the first `"answer": "..."`, then
    `"answer": value` and `answer: value` by pattern (the value may be empty); failing
    that, for Llama-3.1 files only (ZeroEval's exception, keyed on the file name), a
    `\\boxed{...}` answer when "boxed" appears in the last 30 characters.
    """
    parsed = _first_json_object(reply)
    if parsed is not None and "answer" in parsed:
        return str(parsed["answer"])  # str() as ZeroEval: a JSON list becomes its repr
    match = _QUOTED_ANSWER.search(reply) or _BARE_ANSWER.search(reply)
    match = match or _UNQUOTED_KEY.search(reply)
    if match:
        return match.group(1)
    if "Llama-3.1" in model_file and "boxed" in reply[-30:]:
        boxed = _BOXED.search(reply)
        if boxed:
            return boxed.group(1)
    return None


# ---------------------------------------------------------------- judging

_OPERATORS: dict[type, Callable[..., Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}


def _arithmetic(node: ast.AST) -> float:
    """Evaluates numbers and + - * / // % ** only; anything else raises ValueError.

    ZeroEval calls Python's eval() on answers holding "/"; model text must never be
    executed, and arithmetic is all a fraction such as "3/4" or "(1+2)/4" needs."""
    if isinstance(node, ast.Expression):
        return _arithmetic(node.body)
    if isinstance(node, ast.Constant) and type(node.value) in (int, float, bool):
        return node.value
    if isinstance(node, ast.UnaryOp) and type(node.op) in _OPERATORS:
        return _OPERATORS[type(node.op)](_arithmetic(node.operand))
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        left, right = _arithmetic(node.left), _arithmetic(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > 64:
            raise ValueError("exponent too large")  # 9**9**9 would never finish
        return _OPERATORS[type(node.op)](left, right)
    raise ValueError(f"not arithmetic: {type(node).__name__}")


def _sanitise_number(text: str) -> str:
    """ZeroEval's clean-up of maths answers: no "$", no ",", fractions as floats."""
    text = text.replace("$", "").strip().replace(",", "")
    if "/" in text:
        try:
            return str(float(_arithmetic(ast.parse(text, mode="eval"))))
        except (SyntaxError, ValueError, TypeError, ArithmeticError, RecursionError):
            pass  # not a fraction ZeroEval could evaluate: keep the text
    return text


def _judge_math(answer: str | None, gold: str) -> tuple[str | None, float]:
    """gsm: the first number of each side, equal as floats. The stored answer is that
    number as a float string ("18" -> "18.0"); None when the reply has no number."""
    if answer is None:
        return None, 0.0
    mine = _FIRST_NUMBER.search(_sanitise_number(answer))
    theirs = _FIRST_NUMBER.search(_sanitise_number(gold))
    if mine is None:
        return None, 0.0
    value = float(mine.group())
    return str(value), float(theirs is not None and value == float(theirs.group()))


def _judge_crux(answer: str | None, gold: str) -> tuple[str | None, float]:
    """crux: exact string equality once outer quotes are stripped and the answer's line
    breaks written as `\\n` (as ZeroEval compares them); an empty answer is kept."""
    if answer is None:
        return None, 0.0
    mine = answer.strip("'\"").replace("\n", "\\n")
    return mine, float(mine == gold.strip("'\""))


def _gsm_reference(gold: str) -> str:
    return gold.replace("#", "").strip()  # "# 18" -> "18"


# dataset -> (the judge, the reference_output kept from the gold answer)
_TASKS: dict[str, tuple[Callable[[str | None, str], tuple[str | None, float]], Callable]] = {
    "gsm": (_judge_math, _gsm_reference),
    "crux": (_judge_crux, str),
}


# ---------------------------------------------------------------- reading


def _records_by_id(path: Path) -> dict[Any, dict]:
    """One model's file: its records keyed by id, each checked for what is used."""
    if not path.is_file():
        raise data_error(path, None, "no such model file")
    content = read_json(path)  # malformed JSON: a DataError naming the file and line
    if not isinstance(content, list) or not content:
        raise data_error(path, None, "expected a non-empty JSON list of records")
    by_id: dict[Any, dict] = {}
    for i, item in enumerate(content):
        if not isinstance(item, dict):
            raise data_error(path, None, f"record {i} is not an object")
        for key in ("question", "answer", "dataset"):
            if not isinstance(item.get(key), str):
                raise data_error(path, None, f"record {i} has no string {key!r}")
        output = item.get("output")
        if not (isinstance(output, list) and output and isinstance(output[0], str)):
            raise data_error(path, None, f"record {i}: 'output' is not a list of texts")
        key = item.get("id")
        if not isinstance(key, (str, int)) or isinstance(key, bool):
            raise data_error(path, None, f"record {i} has no string or int 'id'")
        if key in by_id:
            raise data_error(path, None, f"two records have id {key!r}")
        by_id[key] = item
    return by_id


def _columns(results_dir: Path, models: Sequence[str] | Mapping[str, str] | None) -> dict:
    """File stem -> column name, in column order."""
    if models is None:
        models = sorted(p.stem for p in results_dir.glob("*.json"))
    if isinstance(models, str):
        raise ValueError(f"models: expected a list of names, got the string {models!r}")
    columns = dict(models) if isinstance(models, Mapping) else {m: m for m in models}
    if len(columns) != len(models):
        raise data_error(results_dir, None, f"a model is named twice in {list(models)}")
    if len(set(columns.values())) != len(columns):
        raise data_error(results_dir, None, f"two models get the same column in {columns}")
    if len(columns) < MIN_MODELS:
        raise data_error(
            results_dir,
            None,
            f"{len(columns)} models {list(columns)}; Smoothie needs at least {MIN_MODELS}",
        )
    return columns


def convert_zeroeval(
    results_dir: PathLike,
    out_path: PathLike,
    *,
    models: Sequence[str] | Mapping[str, str] | None = None,
) -> int:
    """Converts a ZeroEval result folder of one task (gsm or crux) to one routing file.

    Reads `<model>.json` for each model, aligns the records by `id` and keeps the inputs
    that every model has, in the first model's order. Each line holds the `question` as
    `instruction`, the replies as `outputs`, the extracted final `answers` (gsm: the
    answer's first number as a float string, e.g. "18.0"; crux: the answer text) or null
    where none was found, `scores` of 1.0 (right) or 0.0 (wrong or no answer) as
    ZeroEval judges them, the gold answer as `reference_output`, `dataset` and `id`.

    Args:
        results_dir: a ZeroEval `result_dirs/<task>` folder, one `<model>.json` a model.
        out_path: the routing file to write (gzipped if it ends in `.gz`), atomically.
        models: file names without `.json`, in column order, each column named as its
            file; or a mapping from file name to column name (e.g.
            `{"Llama-3.1-405B-Inst@sambanova": "Meta-Llama-3.1-405B-Instruct"}`). By
            default every `.json` file of the folder, sorted by name.

    Returns:
        The number of lines written.

    Raises:
        DataError: (a ValueError) a missing folder or model file, malformed JSON, a
            record lacking a field, two records with one id, an id whose question or gold
            answer differs between models, files of different or unsupported tasks, no
            input common to all models, or fewer than 3 models.
    """
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise data_error(results_dir, None, "no such folder")
    columns = _columns(results_dir, models)
    files = {stem: _records_by_id(results_dir / f"{stem}.json") for stem in columns}

    first_stem = next(iter(columns))
    first = files[first_stem]
    dataset = next(iter(first.values()))["dataset"]
    if dataset not in _TASKS:
        raise data_error(
            results_dir / f"{first_stem}.json",
            None,
            f"dataset {dataset!r} is not supported; expected one of {sorted(_TASKS)}",
        )
    judge, reference = _TASKS[dataset]
    for stem, records in files.items():
        path = results_dir / f"{stem}.json"
        for key, item in records.items():
            if item["dataset"] != dataset:
                raise data_error(path, None, f"id {key!r} is {item['dataset']!r}, not {dataset!r}")
            if key in first and (item["question"], item["answer"]) != (
                first[key]["question"],
                first[key]["answer"],
            ):
                raise data_error(
                    path,
                    None,
                    f"id {key!r}: question or gold answer differs from {first_stem}.json",
                )
    # An input some model lacks cannot be compared across models: it is left out.
    shared = [key for key in first if all(key in records for records in files.values())]
    if not shared:
        raise data_error(results_dir, None, f"no id is common to all models {list(columns)}")

    def records() -> Iterator[dict]:
        for idx, key in enumerate(shared):
            gold = first[key]["answer"]
            record: dict[str, Any] = {"idx": idx, "instruction": first[key]["question"]}
            record["outputs"], record["scores"], record["answers"] = {}, {}, {}
            for stem, column in columns.items():
                reply = files[stem][key]["output"][0]
                answer, score = judge(extract_zeroeval_answer(reply, stem), gold)
                record["outputs"][column] = reply
                record["scores"][column] = score
                record["answers"][column] = answer
            record["reference_output"] = reference(gold)
            record["dataset"] = dataset
            record["id"] = key
            yield record

    return write_jsonl(out_path, records())

"""Reading routing files: JSON lines (gzipped or not) checked line by line.

Every bad line is collected (see `_schema.Problems`) and reported at once, so a user
fixes a file in one pass; `read_routing` returns a checked `RoutingData`.
"""

from __future__ import annotations

import gzip
import io
import json
import math
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .._validate import MIN_MODELS, is_int, is_number
from ._schema import RESERVED, DataError, PathLike, Problems, RoutingData, data_error

_GZIP_MAGIC = b"\x1f\x8b"


class _DuplicateKey(ValueError):
    pass


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict:
    # json.loads keeps the last of repeated keys silently; a model listed twice is an error.
    obj: dict = {}
    for key, value in pairs:
        if key in obj:
            raise _DuplicateKey(key)
        obj[key] = value
    return obj


def _open_bytes(path: Path) -> io.BufferedIOBase:  # a file or a GzipFile
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    with open(path, "rb") as f:
        magic = f.read(2)
    # Magic bytes, not the name, decide: a misnamed file still reads.
    return gzip.open(path, "rb") if magic == _GZIP_MAGIC else open(path, "rb")


def iter_jsonl(path: Path, problems: Problems | None = None) -> Iterator[tuple[int, dict]]:
    """Yields (1-based line number, object) for each non-blank line.

    A malformed line raises `DataError`, or with `problems` is recorded there and skipped.
    """

    def bad(error: DataError) -> None:
        if problems is None:
            raise error
        problems.add(error)

    line = 0
    try:
        with _open_bytes(path) as f:
            for line, raw in enumerate(f, start=1):
                # Decoded line by line (not by a buffered text layer) so errors name the line.
                try:
                    text = raw.decode("utf-8-sig" if line == 1 else "utf-8")
                except UnicodeDecodeError as e:
                    bad(data_error(path, line, f"not UTF-8 text ({e.reason})"))
                    continue
                if not text.strip():
                    continue
                try:
                    record = json.loads(text, object_pairs_hook=_no_duplicate_keys)
                except _DuplicateKey as e:
                    bad(data_error(path, line, f"duplicate key {e.args[0]!r}"))
                    continue
                except json.JSONDecodeError as e:
                    bad(data_error(path, line, f"bad JSON: {e.msg} (column {e.colno})"))
                    continue
                if not isinstance(record, dict):
                    kind = type(record).__name__
                    bad(data_error(path, line, f"expected a JSON object, got {kind}"))
                    continue
                yield line, record
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:
        bad(data_error(path, None, f"corrupt gzip data after line {line} ({e})"))


def read_jsonl(path: PathLike) -> list[dict]:
    """Reads a JSON-lines file (gzipped or not) into a list of objects.

    Raises:
        DataError: bad JSON, a line that is not an object, or a repeated key; the
            message lists every such line.
        FileNotFoundError: no file at `path`.
    """
    problems = Problems(path)
    records = [record for _, record in iter_jsonl(Path(path), problems)]
    problems.raise_any()
    return records


def check_text(path: PathLike, line: int | None, value: object, what: str) -> str:
    """An input text: a string with something in it besides whitespace."""
    if not isinstance(value, str):
        raise data_error(path, line, f"{what} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise data_error(path, line, f"{what} is empty")
    return value


def check_answer(path: PathLike, line: int | None, value: object, what: str) -> str | None:
    """A model's output: any string (an empty one is a poor answer), or None (no answer)."""
    if value is None or isinstance(value, str):
        return value
    raise data_error(
        path,
        line,
        f"{what} must be a string, or null if it did not answer; got {type(value).__name__}",
    )


def check_id(path: PathLike, line: int, record: dict, seen: dict) -> int | str:
    """A line's `idx` (an int or a string, else its line number), unique in the file."""
    idx = record.get("idx", line)
    if not (is_int(idx) or isinstance(idx, str)):
        raise data_error(path, line, f"'idx' must be an int or a string, got {idx!r}")
    if idx in seen:
        raise data_error(path, line, f"'idx' {idx!r} repeats line {seen[idx]}")
    seen[idx] = line
    return idx


def _first_models(path: PathLike, line: int, outputs: object) -> tuple[str, ...]:
    if not isinstance(outputs, dict):
        raise data_error(path, line, f"'outputs' must be an object, got {type(outputs).__name__}")
    if len(outputs) < MIN_MODELS:
        raise data_error(
            path,
            line,
            f"'outputs' has {len(outputs)} models {list(outputs)}; "
            f"Smoothie needs at least {MIN_MODELS}",
        )
    if any(not name.strip() for name in outputs):
        raise data_error(path, line, "'outputs' has an empty model name")
    return tuple(outputs)


def _row_outputs(
    path: PathLike, line: int, outputs: object, models: tuple[str, ...], first: int
) -> list[str | None]:
    """One line's outputs in `models` order; None where a model is absent or null."""
    if not isinstance(outputs, dict):
        raise data_error(path, line, f"'outputs' must be an object, got {type(outputs).__name__}")
    unknown = [name for name in outputs if name not in models]
    if unknown:
        raise data_error(
            path,
            line,
            f"'outputs' has model {unknown[0]!r}, absent from line {first} (which fixes the "
            f"models: {list(models)})",
        )
    return [
        check_answer(path, line, outputs.get(name), f"output of model {name!r}") for name in models
    ]


def _row_scores(path: PathLike, line: int, scores: object, models: tuple[str, ...]) -> list[float]:
    if scores is None:
        return [math.nan] * len(models)
    if not isinstance(scores, dict):
        raise data_error(path, line, f"'scores' must be an object, got {type(scores).__name__}")
    unknown = [name for name in scores if name not in models]
    if unknown:
        raise data_error(path, line, f"'scores' has model {unknown[0]!r}, absent from 'outputs'")
    row = []
    for name in models:
        value = scores.get(name)
        if value is None:  # null or absent: unknown quality, not zero
            row.append(math.nan)
        elif not is_number(value):
            raise data_error(
                path, line, f"score of model {name!r} must be a number or null, got {value!r}"
            )
        elif not math.isfinite(value):
            raise data_error(path, line, f"score of model {name!r} is {value}; use null instead")
        else:
            row.append(float(value))
    return row


def _row_answers(path: PathLike, line: int, answers: object, models: tuple[str, ...]) -> list:
    if not isinstance(answers, dict):
        raise data_error(path, line, f"'answers' must be an object, got {type(answers).__name__}")
    unknown = [name for name in answers if name not in models]
    if unknown:
        raise data_error(path, line, f"'answers' has model {unknown[0]!r}, absent from 'outputs'")
    row = []
    for name in models:
        value = answers.get(name)
        if value is not None and not (isinstance(value, str) or is_number(value)):
            raise data_error(
                path, line, f"answer of model {name!r} must be a text, a number or null, got "
                f"{value!r}"
            )  # fmt: skip
        row.append(value)
    return row


def read_routing(path: PathLike, *, require_outputs: bool = True) -> RoutingData:
    """Reads and checks a routing file (JSON lines, gzipped or not).

    Args:
        path: the file; gzip is detected from its first bytes.
        require_outputs: if False, a file whose first line has no `outputs` reads as
            a query file (instructions only, `outputs` and `scores` None).

    Returns:
        The data, with models in the order of the first line's `outputs` keys; an output
        that is null or absent on a later line is None (`observed` False there). Lines'
        `answers` (optional, `{model: answer or null}`) are read normalised.

    Raises:
        DataError: a malformed file; the message names the file, the line and the
            problem, for every malformed line (the first `MAX_REPORTED`, then a count).
        FileNotFoundError: no file at `path`.

    >>> data = read_routing("examples/data/quiz.jsonl")  # doctest: +SKIP
    """
    path = Path(path)
    problems = Problems(path)
    instructions: list[str] = []
    outputs: list[list[str | None]] = []
    score_rows: list[list[float]] = []
    answer_rows: list[list] = []
    ids: list = []
    extra: list[dict] = []
    seen_ids: dict = {}
    models: tuple[str, ...] = ()
    first_line = 0  # the line that fixed the file's kind and models; 0 until one did
    has_outputs = has_scores = has_answers = False
    for line, record in iter_jsonl(path, problems):
        try:
            if "instruction" not in record:
                raise data_error(path, line, "missing 'instruction'")
            instruction = check_text(path, line, record["instruction"], "'instruction'")
            if not first_line:  # the first good line decides: routing or query file, models
                if "outputs" in record:
                    models = _first_models(path, line, record["outputs"])
                elif require_outputs:
                    raise data_error(
                        path,
                        line,
                        "missing 'outputs' (for a query file pass require_outputs=False)",
                    )
                has_outputs, first_line = "outputs" in record, line
            if has_outputs:
                if "outputs" not in record:
                    raise data_error(path, line, "missing 'outputs'")
                row = _row_outputs(path, line, record["outputs"], models, first_line)
                scores = _row_scores(path, line, record.get("scores"), models)
                answers = _row_answers(path, line, record.get("answers", {}), models)
            elif "outputs" in record:
                raise data_error(
                    path, line, f"has 'outputs' but line {first_line} has none (a query file)"
                )
            elif "scores" in record or "answers" in record:
                key = "scores" if "scores" in record else "answers"
                raise data_error(path, line, f"has {key!r} but no 'outputs'")
            idx = check_id(path, line, record, seen_ids)
        except DataError as e:
            problems.add(e)
            continue
        if has_outputs:
            outputs.append(row)
            has_scores = has_scores or "scores" in record
            score_rows.append(scores)
            has_answers = has_answers or "answers" in record
            answer_rows.append(answers)
        ids.append(idx)
        instructions.append(instruction)
        extra.append({k: v for k, v in record.items() if k not in RESERVED})
    problems.raise_any()
    if not instructions:
        raise data_error(path, None, "file is empty (no JSON lines)")
    return RoutingData(
        instructions=instructions,
        models=models,
        outputs=outputs if has_outputs else None,
        scores=np.array(score_rows, np.float64) if has_scores else None,
        answers=answer_rows if has_answers else None,
        ids=ids,
        extra=extra,
    )


def read_json(path: Path) -> object:
    """A whole JSON file (the reference layout's and alpaca_eval's), errors naming it."""
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise data_error(path, e.lineno, f"bad JSON: {e.msg} (column {e.colno})") from None
    except UnicodeDecodeError as e:
        raise data_error(path, None, f"not UTF-8 text ({e.reason})") from None

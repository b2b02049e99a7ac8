"""Routing data files: read and check them, write them atomically, convert other layouts.

The routing format is JSON lines, gzipped or not, one input per line:

    {"idx": 0, "instruction": "...", "outputs": {"model_a": "...", ...},
     "scores": {"model_a": 0.73, "model_b": null, ...}, "reference_output": "...", ...}

`outputs` holds each model's answer (the first line fixes the models and their order).
An empty or whitespace-only output is an answer (a poor one) and is kept. A `null` or
absent output means that model did not answer that input: `RoutingData.observed` is False
there and the output None. A later line may not name a model absent from line 1.
`scores` holds optional quality labels used only for evaluation, and any other key is
kept per line in `RoutingData.extra`. A query file has instructions only. Malformed files
raise `DataError` before any embedding work starts; its message lists every bad line (the
first `MAX_REPORTED`, then a count of the rest), one `file:line: problem` a line.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import math
import os
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np

from .._atomic import atomic_write
from .._validate import MIN_MODELS

_RESERVED = ("idx", "instruction", "outputs", "scores")
_GZIP_MAGIC = b"\x1f\x8b"
# Fields tried, in order, for the input text of the reference code's per-dataset jsonl.
_TEXT_FIELDS = ("instruction", "embedding_input", "input")
DEFAULT_ANNOTATOR = "weighted_alpaca_eval_gpt4_turbo"
MAX_REPORTED = 20  # malformed lines listed in one DataError; the rest are counted

PathLike = str | os.PathLike


class DataError(ValueError):
    """A data file is malformed. The message reads `file:line: problem`, one line per
    problem when a file has several (see `MAX_REPORTED`); `problems` holds them all."""

    def __init__(self, message: str, problems: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.problems = tuple(problems) or (message,)


class _Problems:
    """Collects the malformed lines of one file, so one pass reports them all."""

    def __init__(self, path: PathLike) -> None:
        self.path = path
        self.found: list[str] = []

    def add(self, error: DataError) -> None:
        self.found.extend(error.problems)

    def raise_any(self) -> None:
        if not self.found:
            return
        if len(self.found) == 1:
            raise DataError(self.found[0])
        shown = self.found[:MAX_REPORTED]
        lines = [f"{self.path}: {len(self.found)} problems; all of them, to fix in one pass:"]
        lines += shown
        if len(self.found) > len(shown):
            lines.append(f"... and {len(self.found) - len(shown)} more problems")
        raise DataError("\n".join(lines), self.found)


def _error(path: PathLike, line: int | None, problem: str) -> DataError:
    where = f"{path}:{line}" if line is not None else str(path)
    return DataError(f"{where}: {problem}")


def _short(text: str, limit: int = 80) -> str:
    """A one-line excerpt for error messages; instructions can be pages long."""
    return repr(text if len(text) <= limit else text[:limit] + "...")


@dataclasses.dataclass(frozen=True, eq=False)
class RoutingData:
    """Inputs, the models' outputs for them, and optional quality scores.

    Rows are inputs and columns follow `models`. After construction `ids` and `extra`
    are always lists of length n (filled with 1-based positions and empty dicts when
    not given), and `scores` is a read-only float64 copy.

    Attributes:
        instructions: the n input texts.
        models: the m model names; columns of `outputs` and `scores` follow this order.
        outputs: n rows of m output texts, or None for a query file (instructions only).
            An entry is None where that model did not answer that input (see `observed`).
        scores: (n, m) float64 quality labels, NaN where unknown, or None.
        ids: per-input identifiers (a line's `idx`, else its line number).
        extra: other keys of each line, e.g. `reference_output`, written back unchanged.

    >>> data = RoutingData(["2+2?"], ("a", "b", "c"), [["4", None, ""]])
    >>> data.lengths().tolist(), data.observed.tolist()
    ([[1, 0, 0]], [[True, False, True]])
    """

    instructions: list[str]
    models: tuple[str, ...] = ()
    outputs: list[list[str]] | None = None
    scores: np.ndarray | None = None
    ids: list | None = None
    extra: list[dict] | None = None

    def __post_init__(self) -> None:
        # Copies, so a caller mutating its own lists cannot break the checked invariants.
        if isinstance(self.instructions, str) or not all(
            isinstance(s, str) for s in self.instructions
        ):
            raise ValueError("instructions must be a list of strings")
        n = len(self.instructions)
        set_ = object.__setattr__  # frozen: normalise fields once, here
        set_(self, "instructions", list(self.instructions))
        set_(self, "models", tuple(self.models))
        if len(set(self.models)) != len(self.models):
            dup = sorted({m for m in self.models if self.models.count(m) > 1})
            raise ValueError(f"models must be distinct; repeated: {dup}")
        m = len(self.models)
        if self.outputs is not None:
            if m < MIN_MODELS:
                raise ValueError(f"outputs has {m} models; Smoothie needs at least {MIN_MODELS}")
            outputs = [list(row) for row in self.outputs]
            if len(outputs) != n or any(len(row) != m for row in outputs):
                raise ValueError(
                    f"outputs must be {n} rows of {m} texts (one per instruction and model)"
                )
            if not all(o is None or isinstance(o, str) for row in outputs for o in row):
                raise ValueError("outputs must be texts, or None where a model did not answer")
            set_(self, "outputs", outputs)
        if self.scores is not None:
            scores = np.array(self.scores, dtype=np.float64)
            if scores.shape != (n, m):
                raise ValueError(f"scores must have shape (n, m) = {(n, m)}, got {scores.shape}")
            scores.flags.writeable = False
            set_(self, "scores", scores)
        ids = list(range(1, n + 1)) if self.ids is None else list(self.ids)
        extra = [{} for _ in range(n)] if self.extra is None else [dict(e) for e in self.extra]
        if len(ids) != n or len(extra) != n:
            raise ValueError(f"ids and extra need one entry per instruction ({n})")
        for e in extra:
            clash = [k for k in _RESERVED if k in e]
            if clash:
                raise ValueError(f"extra keys {clash} clash with the format's own keys")
        set_(self, "ids", ids)
        set_(self, "extra", extra)

    def __len__(self) -> int:
        return len(self.instructions)

    @property
    def observed(self) -> np.ndarray | None:
        """(n, m) bool, read-only: True where model j answered input i (its output is not
        None); None for a query file."""
        if self.outputs is None:
            return None
        shape = (len(self), len(self.models))
        mask = np.array([[o is not None for o in row] for row in self.outputs], bool)
        mask = mask.reshape(shape)
        mask.flags.writeable = False
        return mask

    def lengths(self) -> np.ndarray:
        """Character lengths of the outputs, (n, m) int64: a cheap baseline router's input.
        0 where a model did not answer.

        Raises:
            ValueError: for a query file, which has no outputs.
        """
        if self.outputs is None:
            raise ValueError("this data has no outputs (a query file)")
        shape = (len(self), len(self.models))
        rows = [[0 if o is None else len(o) for o in row] for row in self.outputs]
        return np.array(rows, np.int64).reshape(shape)

    def subset(self, models: Sequence[str]) -> RoutingData:
        """The same inputs restricted to `models`, in the order given.

        Raises:
            ValueError: a name is unknown or repeated, or fewer than 3 models remain.
        """
        unknown = [name for name in models if name not in self.models]
        if unknown:
            raise ValueError(f"unknown models {unknown}; available: {list(self.models)}")
        cols = [self.models.index(name) for name in models]
        return dataclasses.replace(
            self,
            models=tuple(models),
            outputs=None if self.outputs is None else [[r[c] for c in cols] for r in self.outputs],
            scores=None if self.scores is None else self.scores[:, cols],
        )


# --- reading -------------------------------------------------------------------------


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


def _open_bytes(path: Path) -> IO[bytes]:
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    with open(path, "rb") as f:
        magic = f.read(2)
    # Magic bytes, not the name, decide: a misnamed file still reads.
    return gzip.open(path, "rb") if magic == _GZIP_MAGIC else open(path, "rb")


def _iter_jsonl(path: Path, problems: _Problems | None = None) -> Iterator[tuple[int, dict]]:
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
                    bad(_error(path, line, f"not UTF-8 text ({e.reason})"))
                    continue
                if not text.strip():
                    continue
                try:
                    record = json.loads(text, object_pairs_hook=_no_duplicate_keys)
                except _DuplicateKey as e:
                    bad(_error(path, line, f"duplicate key {e.args[0]!r}"))
                    continue
                except json.JSONDecodeError as e:
                    bad(_error(path, line, f"bad JSON: {e.msg} (column {e.colno})"))
                    continue
                if not isinstance(record, dict):
                    kind = type(record).__name__
                    bad(_error(path, line, f"expected a JSON object, got {kind}"))
                    continue
                yield line, record
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:
        bad(_error(path, None, f"corrupt gzip data after line {line} ({e})"))


def read_jsonl(path: PathLike) -> list[dict]:
    """Reads a JSON-lines file (gzipped or not) into a list of objects.

    Raises:
        DataError: bad JSON, a line that is not an object, or a repeated key; the
            message lists every such line.
        FileNotFoundError: no file at `path`.
    """
    problems = _Problems(path)
    records = [record for _, record in _iter_jsonl(Path(path), problems)]
    problems.raise_any()
    return records


def _text(path: PathLike, line: int | None, value: object, what: str) -> str:
    if not isinstance(value, str):
        raise _error(path, line, f"{what} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise _error(path, line, f"{what} is empty")
    return value


def _answer(path: PathLike, line: int | None, value: object, what: str) -> str | None:
    """A model's output: any string (an empty one is a poor answer), or None (no answer)."""
    if value is None or isinstance(value, str):
        return value
    raise _error(
        path,
        line,
        f"{what} must be a string, or null if it did not answer; got {type(value).__name__}",
    )


def _id(path: PathLike, line: int, record: dict, seen: dict) -> int | str:
    idx = record.get("idx", line)
    if isinstance(idx, bool) or not isinstance(idx, (int, str)):
        raise _error(path, line, f"'idx' must be an int or a string, got {idx!r}")
    if idx in seen:
        raise _error(path, line, f"'idx' {idx!r} repeats line {seen[idx]}")
    seen[idx] = line
    return idx


def _first_models(path: PathLike, line: int, outputs: object) -> tuple[str, ...]:
    if not isinstance(outputs, dict):
        raise _error(path, line, f"'outputs' must be an object, got {type(outputs).__name__}")
    if len(outputs) < MIN_MODELS:
        raise _error(
            path,
            line,
            f"'outputs' has {len(outputs)} models {list(outputs)}; "
            f"Smoothie needs at least {MIN_MODELS}",
        )
    if any(not name.strip() for name in outputs):
        raise _error(path, line, "'outputs' has an empty model name")
    return tuple(outputs)


def _row_outputs(
    path: PathLike, line: int, outputs: object, models: tuple[str, ...], first: int
) -> list[str | None]:
    """One line's outputs in `models` order; None where a model is absent or null."""
    if not isinstance(outputs, dict):
        raise _error(path, line, f"'outputs' must be an object, got {type(outputs).__name__}")
    unknown = [name for name in outputs if name not in models]
    if unknown:
        raise _error(
            path,
            line,
            f"'outputs' has model {unknown[0]!r}, absent from line {first} (which fixes the "
            f"models: {list(models)})",
        )
    return [_answer(path, line, outputs.get(name), f"output of model {name!r}") for name in models]


def _row_scores(path: PathLike, line: int, scores: object, models: tuple[str, ...]) -> list[float]:
    if scores is None:
        return [math.nan] * len(models)
    if not isinstance(scores, dict):
        raise _error(path, line, f"'scores' must be an object, got {type(scores).__name__}")
    unknown = [name for name in scores if name not in models]
    if unknown:
        raise _error(path, line, f"'scores' has model {unknown[0]!r}, absent from 'outputs'")
    row = []
    for name in models:
        value = scores.get(name)
        if value is None:  # null or absent: unknown quality, not zero
            row.append(math.nan)
        elif isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _error(
                path, line, f"score of model {name!r} must be a number or null, got {value!r}"
            )
        elif not math.isfinite(value):
            raise _error(path, line, f"score of model {name!r} is {value}; use null instead")
        else:
            row.append(float(value))
    return row


def read_routing(path: PathLike, *, require_outputs: bool = True) -> RoutingData:
    """Reads and checks a routing file (JSON lines, gzipped or not).

    Args:
        path: the file; gzip is detected from its first bytes.
        require_outputs: if False, a file whose first line has no `outputs` reads as
            a query file (instructions only, `outputs` and `scores` None).

    Returns:
        The data, with models in the order of the first line's `outputs` keys; an output
        that is null or absent on a later line is None (`observed` False there).

    Raises:
        DataError: a malformed file; the message names the file, the line and the
            problem, for every malformed line (the first `MAX_REPORTED`, then a count).
        FileNotFoundError: no file at `path`.

    >>> data = read_routing("examples/data/quiz.jsonl")  # doctest: +SKIP
    """
    path = Path(path)
    problems = _Problems(path)
    instructions: list[str] = []
    outputs: list[list[str | None]] = []
    score_rows: list[list[float]] = []
    ids: list = []
    extra: list[dict] = []
    seen_ids: dict = {}
    models: tuple[str, ...] = ()
    first_line = 0  # the line that fixed the file's kind and models; 0 until one did
    has_outputs = has_scores = False
    for line, record in _iter_jsonl(path, problems):
        try:
            if "instruction" not in record:
                raise _error(path, line, "missing 'instruction'")
            instruction = _text(path, line, record["instruction"], "'instruction'")
            if not first_line:  # the first good line decides: routing or query file, models
                if "outputs" in record:
                    models = _first_models(path, line, record["outputs"])
                elif require_outputs:
                    raise _error(
                        path,
                        line,
                        "missing 'outputs' (for a query file pass require_outputs=False)",
                    )
                has_outputs, first_line = "outputs" in record, line
            if has_outputs:
                if "outputs" not in record:
                    raise _error(path, line, "missing 'outputs'")
                row = _row_outputs(path, line, record["outputs"], models, first_line)
                scores = _row_scores(path, line, record.get("scores"), models)
            elif "outputs" in record:
                raise _error(
                    path, line, f"has 'outputs' but line {first_line} has none (a query file)"
                )
            elif "scores" in record:
                raise _error(path, line, "has 'scores' but no 'outputs'")
            idx = _id(path, line, record, seen_ids)
        except DataError as e:
            problems.add(e)
            continue
        if has_outputs:
            outputs.append(row)
            has_scores = has_scores or "scores" in record
            score_rows.append(scores)
        ids.append(idx)
        instructions.append(instruction)
        extra.append({k: v for k, v in record.items() if k not in _RESERVED})
    problems.raise_any()
    if not instructions:
        raise _error(path, None, "file is empty (no JSON lines)")
    return RoutingData(
        instructions=instructions,
        models=models,
        outputs=outputs if has_outputs else None,
        scores=np.array(score_rows, np.float64) if has_scores else None,
        ids=ids,
        extra=extra,
    )


def _read_json(path: Path) -> object:
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise _error(path, e.lineno, f"bad JSON: {e.msg} (column {e.colno})") from None
    except UnicodeDecodeError as e:
        raise _error(path, None, f"not UTF-8 text ({e.reason})") from None


def read_reference_layout(
    inputs_path: PathLike,
    outputs_dir: PathLike,
    *,
    models: Sequence[str] | None = None,
    text_field: str | None = None,
    suffix: str = "",
) -> RoutingData:
    """Reads the reference Smoothie code's layout: an inputs jsonl plus one file per model.

    The inputs file has one JSON object per line holding the input text under
    `text_field`; by default the first of `instruction`, `embedding_input` (the field
    the reference code embeds) or `input` present on line 1, then required on every
    line. Each model's outputs are in `outputs_dir/{model}{suffix}.json` as
    `{"generations": [text, ...]}`, aligned by position with the input lines.

    Args:
        inputs_path: the inputs jsonl (gzipped or not).
        outputs_dir: folder of per-model generation files.
        models: model names, in column order; by default every `*{suffix}.json` in
            `outputs_dir`, sorted by name.
        text_field: the inputs' text field; see above.
        suffix: file-name suffix, e.g. `"_test"` for the reference's `{model}_test.json`.

    Returns:
        Routing data without scores; the other keys of each input line go to `extra`.
        A null generation is a model that did not answer (None, `observed` False).

    Raises:
        DataError: a malformed inputs or generations file, generations not aligned
            with the inputs (a different count), or fewer than 3 models.
        FileNotFoundError: a missing file or folder.
    """
    inputs_path, outputs_dir = Path(inputs_path), Path(outputs_dir)
    if not outputs_dir.is_dir():
        raise FileNotFoundError(f"{outputs_dir}: no such folder")
    if models is None:
        ending = f"{suffix}.json"
        models = sorted(p.name[: -len(ending)] for p in outputs_dir.glob(f"*{ending}"))
    if len(models) < MIN_MODELS:
        raise _error(
            outputs_dir,
            None,
            f"{len(models)} models {list(models)}; "
            f"Smoothie needs at least {MIN_MODELS} ({{model}}{suffix}.json files)",
        )
    if len(set(models)) != len(models):
        raise ValueError(f"models must be distinct, got {list(models)}")

    instructions: list[str] = []
    ids: list = []
    extra: list[dict] = []
    seen_ids: dict = {}
    for line, record in _iter_jsonl(inputs_path):
        if text_field is None:
            text_field = next((f for f in _TEXT_FIELDS if f in record), None)
            if text_field is None:
                raise _error(inputs_path, line, f"no input text field (one of {_TEXT_FIELDS})")
        if text_field not in record:
            raise _error(inputs_path, line, f"missing {text_field!r}")
        instructions.append(_text(inputs_path, line, record[text_field], repr(text_field)))
        ids.append(_id(inputs_path, line, record, seen_ids))
        rest = {k: v for k, v in record.items() if k not in (text_field, "idx")}
        clash = [k for k in _RESERVED if k in rest]
        if clash:
            raise _error(
                inputs_path, line, f"key {clash[0]!r} beside the text field {text_field!r}"
            )
        extra.append(rest)
    if not instructions:
        raise _error(inputs_path, None, "file is empty (no JSON lines)")

    columns = []
    for name in models:
        path = outputs_dir / f"{name}{suffix}.json"
        content = _read_json(path)
        generations = content.get("generations") if isinstance(content, dict) else None
        if not isinstance(generations, list):
            raise _error(path, None, "expected an object with a 'generations' list")
        if len(generations) != len(instructions):
            raise _error(
                path,
                None,
                f"model {name!r} has {len(generations)} generations but "
                f"{inputs_path} has {len(instructions)} inputs; they must align line by line",
            )
        for i, text in enumerate(generations):
            if isinstance(text, list):
                raise _error(path, None, f"generations[{i}] is a list; one text per input only")
            # Name the input line too: that is where a reader will look. "" is an answer,
            # null means the model did not answer this input.
            _answer(path, None, text, f"generations[{i}] (input {ids[i]!r}) of model {name!r}")
        columns.append(generations)
    outputs = [list(row) for row in zip(*columns, strict=True)]
    return RoutingData(instructions, tuple(models), outputs, None, ids, extra)


# --- writing -------------------------------------------------------------------------


def write_jsonl(path: PathLike, records: Iterable[Mapping[str, Any]]) -> int:
    """Writes JSON lines atomically, gzipped when `path` ends in `.gz`.

    The file appears only once every record is written: an error part-way leaves any
    previous file untouched. Gzip output is reproducible (no timestamp in the header).

    Args:
        path: the destination.
        records: JSON-serialisable mappings, one per line.

    Returns:
        The number of lines written.

    Raises:
        TypeError: a record is not a mapping or holds a value JSON cannot encode.
        ValueError: a record holds NaN or inf (not valid JSON; use null).

    >>> write_jsonl("/tmp/rows.jsonl", [{"a": 1}])  # doctest: +SKIP
    1
    """
    path = Path(path)
    count = 0
    with atomic_write(path, "wb") as raw:
        out: IO[bytes] = raw
        if path.name.endswith(".gz"):
            # mtime=0 and an explicit name keep the temp file's name and the clock out.
            out = gzip.GzipFile(filename=path.name[:-3], mode="wb", fileobj=raw, mtime=0)
        try:
            for record in records:
                if not isinstance(record, Mapping):
                    raise TypeError(f"record {count}: expected a mapping, got {type(record)}")
                try:
                    text = json.dumps(dict(record), ensure_ascii=False, allow_nan=False)
                except (TypeError, ValueError) as e:
                    raise type(e)(f"record {count}: {e}") from e
                out.write(text.encode("utf-8") + b"\n")
                count += 1
        finally:
            if out is not raw:
                out.close()  # flushes the gzip trailer; leaves `raw` open for atomic_write
    return count


def write_routing(path: PathLike, data: RoutingData) -> int:
    """Writes `data` in the routing format (see the module docstring), atomically.

    NaN scores and None outputs (a model that did not answer) are written as null;
    `read_routing` reads the file back unchanged.

    Returns:
        The number of lines written.
    """

    def records() -> Iterator[dict]:
        for i, instruction in enumerate(data.instructions):
            record: dict[str, Any] = {"idx": data.ids[i], "instruction": instruction}
            if data.outputs is not None:
                record["outputs"] = dict(zip(data.models, data.outputs[i], strict=True))
            if data.scores is not None:
                record["scores"] = dict(
                    zip(data.models, map(_nullable, data.scores[i].tolist()), strict=True)
                )
            record.update(data.extra[i])
            yield record

    return write_jsonl(path, records())


# --- alpaca_eval ---------------------------------------------------------------------


def _records_by_instruction(path: Path, model: str, required: Sequence[str]) -> dict[str, dict]:
    """Loads a JSON list of objects keyed by instruction, one object per instruction."""
    content = _read_json(path)
    if not isinstance(content, list):
        raise _error(path, None, f"expected a JSON list, got {type(content).__name__}")
    by_instruction: dict[str, dict] = {}
    for i, item in enumerate(content):
        if not isinstance(item, dict):
            raise _error(path, None, f"item {i} is not an object")
        for key in required:
            if not isinstance(item.get(key), str):
                raise _error(path, None, f"item {i} has no string {key!r}")
        instruction = item["instruction"]
        if instruction in by_instruction:
            raise _error(
                path,
                None,
                f"model {model!r} has two entries for instruction "
                f"{_short(instruction)}; alignment by instruction needs exactly one",
            )
        by_instruction[instruction] = item
    if not by_instruction:
        raise _error(path, None, "empty list")
    return by_instruction


def _check_same_instructions(
    path: Path, model: str, have: Mapping[str, Any], want: Sequence[str], against: str
) -> None:
    missing = [s for s in want if s not in have]
    if missing:
        raise _error(
            path,
            None,
            f"model {model!r} lacks {len(missing)} instruction(s) of {against}, "
            f"e.g. {_short(missing[0])}",
        )
    wanted = set(want)
    extra = [s for s in have if s not in wanted]
    if extra:
        raise _error(
            path,
            None,
            f"model {model!r} has {len(extra)} instruction(s) not in {against}, "
            f"e.g. {_short(extra[0])}",
        )


def _nullable(score: float) -> float | None:
    return score if math.isfinite(score) else None


def convert_alpaca_eval(
    results_dir: PathLike,
    out_path: PathLike,
    *,
    models: Sequence[str] | None = None,
    annotator: str = DEFAULT_ANNOTATOR,
) -> int:
    """Converts an alpaca_eval `results/` folder to one routing file.

    Reads `results/<model>/model_outputs.json` and
    `results/<model>/<annotator>/annotations.json` for each model and aligns them by
    instruction text, not position. A model's score is the annotator's preference minus 1
    (preference in [1, 2], `output_2` being the model's output; null stays null). Each line
    also keeps `dataset`, and the baseline's `output_1` and `generator_1` as
    `reference_output` and `reference_generator`. Rows follow the first model's order.

    Args:
        results_dir: the alpaca_eval `results` folder.
        out_path: the routing file to write (gzipped if it ends in `.gz`), atomically.
        models: model folder names, in column order; by default every folder holding a
            `model_outputs.json`, sorted by name.
        annotator: the annotations' sub-folder.

    Returns:
        The number of lines written.

    Raises:
        DataError: a file is malformed, a model has no entry or two entries for an
            instruction, instruction sets differ between models or between a model's
            outputs and its annotations, an annotation's `output_2` differs from the
            model's output, a preference lies outside [1, 2], or fewer than 3 models.
        FileNotFoundError: a missing folder or file.
    """
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise FileNotFoundError(f"{results_dir}: no such folder")
    if models is None:
        models = sorted(p.parent.name for p in results_dir.glob("*/model_outputs.json"))
    if len(models) < MIN_MODELS:
        raise _error(
            results_dir,
            None,
            f"{len(models)} models {list(models)}; Smoothie needs at least {MIN_MODELS}",
        )

    order: list[str] = []  # instructions, in the first model's order
    outputs: dict[str, dict[str, str]] = {}
    scores: dict[str, dict[str, float]] = {}
    first_items: dict[str, dict] = {}
    references: dict[str, dict] = {}
    for name in models:
        out_file = results_dir / name / "model_outputs.json"
        items = _records_by_instruction(out_file, name, ("instruction", "output"))
        if not order:
            order, first_items = list(items), items
            empty = [s for s in order if not s.strip()]
            if empty:
                raise _error(out_file, None, f"model {name!r} has an empty instruction")
        else:
            _check_same_instructions(out_file, name, items, order, f"model {models[0]!r}")
        ann_file = results_dir / name / annotator / "annotations.json"
        annotations = _records_by_instruction(
            ann_file, name, ("instruction", "output_1", "output_2")
        )
        _check_same_instructions(ann_file, name, annotations, order, "its model_outputs.json")
        outputs[name], scores[name] = {}, {}
        for instruction in order:
            # An empty output is an answer (a poor one): it is kept, not refused.
            text, ann = items[instruction]["output"], annotations[instruction]
            if ann["output_2"] != text:
                raise _error(
                    ann_file,
                    None,
                    f"model {name!r}: output_2 for instruction "
                    f"{_short(instruction)} differs from model_outputs.json",
                )
            pref = ann.get("preference")
            if pref is not None and (
                isinstance(pref, bool) or not isinstance(pref, (int, float)) or not 1 <= pref <= 2
            ):
                raise _error(
                    ann_file,
                    None,
                    f"model {name!r}: preference {pref!r} for instruction "
                    f"{_short(instruction)} is not a number in [1, 2]",
                )
            outputs[name][instruction] = text
            scores[name][instruction] = math.nan if pref is None else float(pref) - 1.0
            references.setdefault(instruction, ann)

    def records() -> Iterator[dict]:
        for idx, instruction in enumerate(order):
            ann = references[instruction]
            record: dict[str, Any] = {"idx": idx, "instruction": instruction}
            if "dataset" in first_items[instruction]:
                record["dataset"] = first_items[instruction]["dataset"]
            record["outputs"] = {name: outputs[name][instruction] for name in models}
            record["scores"] = {name: _nullable(scores[name][instruction]) for name in models}
            record["reference_output"] = ann["output_1"]
            if "generator_1" in ann:
                record["reference_generator"] = ann["generator_1"]
            yield record

    return write_jsonl(out_path, records())

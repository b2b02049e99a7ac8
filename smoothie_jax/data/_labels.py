"""A person's labels: the file `smoothie-jax label` writes, filled in, read back.

`label_records` writes one JSON line per chosen input: its `idx`, instruction, the
outputs of the models still in contention and `"scores": {model: null}` for a person to
fill with numbers (any scale: only differences within a line matter). `read_labels`
reads the file back against the routing data: lines are matched by `idx`, a line with no
number yet is skipped (a partly filled file is fine), and anything malformed (an unknown
idx or model, a score that is not a number or null) is refused naming the file and line.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .._validate import is_number
from ._read import iter_jsonl
from ._schema import DataError, PathLike, Problems, RoutingData, data_error


def label_records(data: RoutingData, rows: Sequence[int], contenders: Sequence[int]) -> list[dict]:
    """The records to label: chosen rows, the contenders' outputs, empty scores."""
    if data.outputs is None:
        raise ValueError("labels need the models' outputs: DATA is a query file")
    names = [data.models[j] for j in contenders]
    return [
        {
            "idx": data.ids[i],
            "instruction": data.instructions[i],
            "outputs": {name: data.outputs[i][j] for name, j in zip(names, contenders)},
            "scores": dict.fromkeys(names),
        }
        for i in rows
    ]


def read_labels(path: PathLike, data: RoutingData) -> tuple[np.ndarray, np.ndarray]:
    """The filled lines of a labels file, as (rows, scores) for `sj.route(labels=...)`.

    Args:
        path: JSON lines with `idx` and `scores` ({model: number or null}), as written by
            `smoothie-jax label` and filled in by a person.
        data: the routing data the labels belong to (its `ids` and `models`).

    Returns:
        rows (n_labels,) int64 into `data`, scores (n_labels, n_models) float64, NaN
        where a model was not scored; lines without any number are left out.

    Raises:
        DataError: every malformed line, named by file and line.
        FileNotFoundError: no file at `path`.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    where = {idx: i for i, idx in enumerate(data.ids)}
    problems = Problems(path)
    rows: list[int] = []
    filled: list[list[float]] = []
    seen: dict = {}
    for line, record in iter_jsonl(path, problems):
        try:
            row = _row(path, line, record, data, where, seen)
        except DataError as e:
            problems.add(e)
            continue
        if row is not None:
            rows.append(where[record["idx"]])
            filled.append(row)
    problems.raise_any()
    m = len(data.models)
    return np.array(rows, np.int64), np.array(filled, np.float64).reshape(len(rows), m)


def _row(
    path: Path, line: int, record: dict, data: RoutingData, where: dict, seen: dict
) -> list[float] | None:
    """One line's scores in the data's model order (NaN: unscored); None if none is set."""
    if "idx" not in record:
        raise data_error(path, line, "missing 'idx' (which input of DATA this line scores)")
    idx = record["idx"]
    if not isinstance(idx, (int, str)) or isinstance(idx, bool) or idx not in where:
        raise data_error(path, line, f"idx {idx!r} is not an input of the routing data")
    if idx in seen:
        raise data_error(path, line, f"idx {idx!r} was scored already on line {seen[idx]}")
    scores = record.get("scores")
    if not isinstance(scores, dict):
        raise data_error(path, line, "'scores' must be an object {model: number or null}")
    unknown = [name for name in scores if name not in data.models]
    if unknown:
        raise data_error(path, line, f"'scores' names model {unknown[0]!r}, not in the data")
    row = []
    for name in data.models:
        value = scores.get(name)
        if value is None:
            row.append(math.nan)
        elif not is_number(value) or not math.isfinite(value):
            raise data_error(
                path, line, f"score of model {name!r} must be a number or null, got {value!r}"
            )
        else:
            row.append(float(value))
    seen[idx] = line  # a well-formed line: a later one with its idx is a duplicate
    return None if all(math.isnan(v) for v in row) else row

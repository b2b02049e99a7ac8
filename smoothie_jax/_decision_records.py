"""Decision records: the one format of every routing output, files and gateway alike.

`smoothie-jax route` (with or without `--router`) and `route-stream` write them, and the
gateway's `POST /v1/route` answers one (with its own ranking, reason and net fields).

A JSON-lines file holds one record per input, its fields in this order (the bracketed
ones only where known or asked for):

    {"idx", ["instruction"], "model", ["output"], ["score"], "weights", ["method"],
     ["note"], ["probabilities"], ["theta_interval_NN"]}

- `idx`: the input's id from the data file; where the inputs have no ids (the rows of a
  `.npy` file, as `route-stream` reads), the 0-based row number. The gateway's answer,
  one query with no id, has none.
- `model`: the chosen model's name, or its index where no names are given.
- `score`: what the choice maximised for the chosen model: its weight (`route --router`,
  the gateway), or its weight net of cost (the gateway with costs).
- `weights`, `probabilities`: {model: number} (a list where no names are given), rounded
  to 6 decimals.
- `note`: why this input went elsewhere than the model the route calls best overall,
  where it did (`smoothie-jax route` writes one where that model's P(best) >= 0.8).
- `theta_interval_NN`: with a posterior, each model's credible [lower, upper] bounds of
  theta at level NN %.

A `.npy` file holds only the (n, n_models) float32 weights; the route is their argmax.
Either file is written atomically (a temporary file renamed over the path once the last
row is in: a failed run leaves no partial output), and a JSON-lines name ending in `.gz`
is gzipped reproducibly (no timestamp in the header).
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np
from jaxtyping import Array, Float, Int

from ._atomic import atomic_write
from ._decision import Decision
from ._validate import ArrayLike

DEFAULT_CHUNK_SIZE = 65536  # rows in memory at once
PathLike = str | os.PathLike


def _per_model(models: Sequence[str], row: np.ndarray) -> dict[str, float] | list[float]:
    values = [round(float(x), 6) for x in row]
    return dict(zip(models, values)) if models else values


def decision_record(
    weights: Float[ArrayLike, " n_models"],
    models: Sequence[str] = (),
    *,
    choice: int | None = None,
    idx: int | str | None = None,
    instruction: str | None = None,
    outputs: Sequence[str | None] | None = None,
    score: float | None = None,
    method: str | None = None,
    probabilities: Float[ArrayLike, " n_models"] | None = None,
    interval: tuple[Float[ArrayLike, " n_models"], Float[ArrayLike, " n_models"]] | None = None,
    level: float = 0.9,
) -> dict[str, Any]:
    """One input's decision as a record (the module docstring gives the fields).

    Args:
        weights: the input's normalised quality of each model.
        models: model names; without them, models are named by their index.
        choice: the chosen model; default the argmax of `weights`.
        idx: the input's id, or None for a record without one.
        instruction: the input's instruction.
        outputs: the input's output per model; the chosen one is written as "output".
        score: what the choice maximised for the chosen model (see "score").
        method: the method that decided.
        probabilities: the probability of routing the input to each model.
        interval: (lower, upper) credible bounds of each model's theta, at `level`.
        level: the credible level of `interval`, for the field's name.

    Returns:
        A dict ready for `json.dumps`, its keys in the format's order.

    >>> decision_record(np.array([0.2, 0.5, 0.3]), ["a", "b", "c"], score=0.5)
    {'model': 'b', 'score': 0.5, 'weights': {'a': 0.2, 'b': 0.5, 'c': 0.3}}
    """
    weights = np.asarray(weights)
    return _record(
        weights,
        models,
        int(weights.argmax()) if choice is None else int(choice),
        idx=idx,
        instruction=instruction,
        outputs=outputs,
        score=score,
        method=method,
        probabilities=None if probabilities is None else np.asarray(probabilities),
        interval=None if interval is None else (np.asarray(interval[0]), np.asarray(interval[1])),
        level=level,
    )


def _record(
    weights: np.ndarray,
    models: Sequence[str],
    best: int,
    *,
    idx: object = None,
    instruction: str | None = None,
    outputs: Sequence[str | None] | None = None,
    score: float | None = None,
    method: str | None = None,
    note: str | None = None,
    probabilities: np.ndarray | None = None,
    interval: tuple[np.ndarray, np.ndarray] | None = None,
    level: float = 0.9,
) -> dict[str, Any]:
    # `decision_record` without its array annotations: `decision_records` calls it per
    # row, where checking each row's shapes (the test suite does) would dominate.
    record: dict[str, Any] = {} if idx is None else {"idx": idx}
    if instruction is not None:
        record["instruction"] = instruction
    record["model"] = models[best] if models else best
    if outputs is not None:
        record["output"] = outputs[best]
    if score is not None:
        record["score"] = round(float(score), 6)
    record["weights"] = _per_model(models, weights)
    if method is not None:
        record["method"] = method
    if note is not None:
        record["note"] = note
    if probabilities is not None:
        record["probabilities"] = _per_model(models, probabilities)
    if interval is not None:
        bounds = [[round(float(lo), 6), round(float(hi), 6)] for lo, hi in zip(*interval)]
        name = f"theta_interval_{round(100 * level)}"
        record[name] = dict(zip(models, bounds)) if models else bounds
    return record


def decision_records(
    weights: Float[Array, "n_rows n_models"] | np.ndarray,
    models: Sequence[str] = (),
    *,
    choice: Int[Array, " n_rows"] | np.ndarray | None = None,
    start: int = 0,
    ids: Sequence[Any] | None = None,
    instructions: Sequence[str] | None = None,
    outputs: Sequence[Sequence[str | None]] | None = None,
    scores: Float[ArrayLike, " n_rows"] | None = None,
    method: str | None = None,
    notes: Sequence[str | None] | None = None,
    probabilities: Float[Array, "n_rows n_models"] | np.ndarray | None = None,
    interval: tuple[np.ndarray, np.ndarray] | None = None,
    level: float = 0.9,
) -> list[dict[str, Any]]:
    """One chunk of decisions as records (`decision_record` per row).

    Args:
        weights: each row's normalised quality of each model.
        models: model names; without them, models are named by their index.
        choice: the chosen model of each row; default the argmax of `weights`.
        start: the row number of the chunk's first row (its `idx` where `ids` is None).
        ids: each row's id from the data file.
        instructions: each row's instruction, written as "instruction".
        outputs: each row's outputs per model; the chosen one is written as "output".
        scores: each row's score of its chosen model, written as "score".
        method: the method that decided, written on every record.
        notes: each row's note (None: no note for that row).
        probabilities: each row's probability of routing to each model.
        interval: (lower, upper) credible bounds of theta per row, at `level`.
        level: the credible level of `interval`, for the field's name.

    Returns:
        One dict per row, ready for `json.dumps`.

    >>> decision_records(np.array([[0.2, 0.5, 0.3]]), ["a", "b", "c"], start=7)
    [{'idx': 7, 'model': 'b', 'weights': {'a': 0.2, 'b': 0.5, 'c': 0.3}}]
    """
    weights = np.asarray(weights, np.float32)
    n = len(weights)
    choice = weights.argmax(axis=1) if choice is None else np.broadcast_to(choice, (n,))
    per_row = {
        "instruction": instructions,
        "outputs": outputs,
        "score": None if scores is None else np.asarray(scores),
        "note": notes,
        "probabilities": None if probabilities is None else np.asarray(probabilities),
    }
    if interval is not None:
        lower, upper = np.asarray(interval[0]), np.asarray(interval[1])
    return [
        _record(
            weights[i],
            models,
            int(choice[i]),
            idx=start + i if ids is None else ids[i],
            method=method,
            interval=None if interval is None else (lower[i], upper[i]),
            level=level,
            **{name: rows[i] for name, rows in per_row.items() if rows is not None},
        )
        for i in range(n)
    ]


@contextlib.contextmanager
def decision_writer(
    out_path: PathLike,
    n_rows: int,
    n_models: int,
    models: Sequence[str] = (),
    *,
    npy: bool | None = None,
) -> Iterator[Callable[..., None]]:
    """Yields `write(weights_chunk, **fields)`; the file appears once all n_rows are in.

    Each call writes the next rows: `fields` are `decision_records`' keywords for those
    rows (a chunk's `idx` continues from the rows already written where there are no
    ids). A `.npy` file keeps only the weights.

    Args:
        out_path: where to write.
        n_rows: the rows that will be written; fewer is an error (and no file).
        n_models: columns of the weights.
        models: model names (their number must be n_models), or () for indices.
        npy: write a `.npy` of weights (True) or JSON lines (False); default from the
            path's suffix.

    Raises:
        ValueError: `models` does not name n_models models.
        RuntimeError: fewer or more than n_rows rows were written.

    >>> with decision_writer("/tmp/d.jsonl", 2, 3) as write:
    ...     write(np.array([[0.2, 0.5, 0.3]]))
    ...     write(np.array([[0.6, 0.1, 0.3]]))
    >>> Path("/tmp/d.jsonl").read_text().splitlines()[1]
    '{"idx": 1, "model": 0, "weights": [0.6, 0.1, 0.3]}'
    """
    if models and len(models) != n_models:
        raise ValueError(f"{len(models)} model names for {n_models} models")
    path = Path(out_path)
    npy = path.suffix == ".npy" if npy is None else npy
    written = 0
    with atomic_write(path, "wb") as raw:
        out: IO[bytes] = raw
        if npy:
            header = {"descr": "<f4", "fortran_order": False, "shape": (n_rows, n_models)}
            np.lib.format.write_array_header_1_0(raw, header)
        elif path.name.endswith(".gz"):
            # mtime=0 and an explicit name keep the temp file's name and the clock out.
            out = gzip.GzipFile(filename=path.name[:-3], mode="wb", fileobj=raw, mtime=0)

        def write(weights: np.ndarray | Array, **fields: Any) -> None:
            nonlocal written
            weights = np.asarray(weights, np.float32)
            if npy:
                out.write(np.ascontiguousarray(weights, "<f4").tobytes())
            else:
                records = decision_records(weights, models, start=written, **fields)
                lines = (json.dumps(r, ensure_ascii=False, allow_nan=False) for r in records)
                out.write("".join(line + "\n" for line in lines).encode("utf-8"))
            written += len(weights)

        try:
            yield write
        finally:
            if out is not raw:
                out.close()  # flushes the gzip trailer; leaves `raw` open for atomic_write
        if written != n_rows:
            raise RuntimeError(f"wrote {written} of {n_rows} rows to {out_path}")


def write_decisions(
    out_path: PathLike,
    decisions: Decision | Float[Array, "n_rows n_models"] | np.ndarray,
    models: Sequence[str] = (),
    *,
    ids: Sequence[Any] | None = None,
    instructions: Sequence[str] | None = None,
    outputs: Sequence[Sequence[str | None]] | None = None,
    notes: Sequence[str | None] | None = None,
    level: float = 0.9,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    npy: bool | None = None,
) -> int:
    """Writes decisions, or per-row weights, as decision records, atomically.

    Args:
        out_path: `.npy` for the weights alone, anything else for JSON lines (the
            module docstring gives the fields; `.gz` is gzipped).
        decisions: a `Decision` (its choice, weights, method, probabilities and interval
            are written), or (n_rows, n_models) weights (the route is their argmax).
        models: model names, or () for indices.
        ids: each row's id; default the 0-based row number.
        instructions: each row's instruction, to write alongside.
        outputs: each row's outputs per model; the chosen one is written.
        notes: each row's note, or None for none (see "note").
        level: the credible level of a posterior Decision's interval.
        chunk_size: rows turned into records at once.
        npy: force the format: True for `.npy`, False for JSON lines whatever the suffix.

    Returns:
        The number of rows written.

    >>> write_decisions("/tmp/d.jsonl", np.array([[0.2, 0.5, 0.3]]), ["a", "b", "c"])
    1
    """
    fields: dict[str, Any] = {}
    if isinstance(decisions, Decision):
        weights = np.asarray(decisions.weights)
        fields = {
            "choice": np.asarray(decisions.choice),
            "method": decisions.method,
            "probabilities": np.asarray(decisions.probabilities),
        }
        if decisions.interval is not None:
            fields["interval"] = tuple(np.asarray(b) for b in decisions.interval)
            fields["level"] = level
    else:
        weights = np.asarray(decisions)
    per_row = {"ids": ids, "instructions": instructions, "outputs": outputs, "notes": notes}
    fields.update({name: rows for name, rows in per_row.items() if rows is not None})
    n = len(weights)
    with decision_writer(out_path, n, weights.shape[1], models, npy=npy) as write:
        for start in range(0, n, chunk_size):
            stop = min(start + chunk_size, n)
            write(weights[start:stop], **_rows(fields, start, stop))
    return n


def _rows(fields: dict[str, Any], start: int, stop: int) -> dict[str, Any]:
    """Rows [start, stop) of each per-row field; a scalar field (the method) as it is."""
    chunk: dict[str, Any] = {}
    for name, value in fields.items():
        if name in ("method", "level"):
            chunk[name] = value
        elif name == "interval":
            chunk[name] = (value[0][start:stop], value[1][start:stop])
        else:
            chunk[name] = value[start:stop]
    return chunk

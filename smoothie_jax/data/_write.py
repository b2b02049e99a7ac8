"""Writing JSON lines and routing files, atomically and reproducibly."""

from __future__ import annotations

import gzip
import json
import math
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from .._atomic import atomic_write
from ._schema import PathLike, RoutingData


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
    """Writes `data` in the routing format (described in `_schema`), atomically.

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
                    zip(data.models, map(nullable, data.scores[i].tolist()), strict=True)
                )
            if data.answers is not None:
                record["answers"] = dict(zip(data.models, data.answers[i], strict=True))
            record.update(data.extra[i])
            yield record

    return write_jsonl(path, records())


def nullable(score: float) -> float | None:
    """A score as JSON writes it: NaN (unknown) becomes None, written as null."""
    return score if math.isfinite(score) else None

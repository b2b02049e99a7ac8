"""Query files read as a stream: one instruction a line, checked whole before any work.

`route --router` and `serve.route_texts` route such files with a saved router.

A query file is a routing file without outputs (`{"instruction": ..., "idx": ...}`,
gzipped or not); outputs, scores and other keys on a line are allowed and ignored.
`check_queries` reads it once, reporting every malformed line at once, so a bad line
near the end fails before anything is embedded; `iter_query_chunks` then reads it again
a chunk at a time. Memory is one chunk, whatever the file's length (ids are not checked
for repeats, which would need them all: an `idx` is copied through as given).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from .._validate import is_int
from ._read import check_text, iter_jsonl
from ._schema import DataError, PathLike, Problems, data_error

Query = tuple[int | str, str]  # (idx, instruction)


def _query(path: Path, line: int, record: dict) -> Query:
    if "instruction" not in record:
        raise data_error(path, line, "missing 'instruction'")
    instruction = check_text(path, line, record["instruction"], "'instruction'")
    idx = record.get("idx", line)
    if not (is_int(idx) or isinstance(idx, str)):
        raise data_error(path, line, f"'idx' must be an int or a string, got {idx!r}")
    return idx, instruction


def check_queries(path: PathLike) -> int:
    """Reads a query file once and returns its number of queries.

    Raises:
        DataError: malformed lines (all of them, one per line of the message), or an
            empty file.
        FileNotFoundError: no file at `path`.
    """
    path = Path(path)
    problems = Problems(path)
    n = 0
    for line, record in iter_jsonl(path, problems):
        try:
            _query(path, line, record)
        except DataError as e:
            problems.add(e)
            continue
        n += 1
    problems.raise_any()
    if n == 0:
        raise data_error(path, None, "file is empty (no JSON lines)")
    return n


def iter_query_chunks(path: PathLike, size: int) -> Iterator[list[Query]]:
    """Yields the queries of a file `check_queries` accepted, `size` at a time.

    >>> import json, tempfile
    >>> f = tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False)
    >>> _ = f.write('{"instruction": "a"}\\n{"instruction": "b", "idx": "q2"}\\n'); f.close()
    >>> list(iter_query_chunks(f.name, 1))
    [[(1, 'a')], [('q2', 'b')]]
    """
    path = Path(path)
    chunk: list[Query] = []
    for line, record in iter_jsonl(path):
        chunk.append(_query(path, line, record))
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk

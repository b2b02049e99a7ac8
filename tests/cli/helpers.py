"""Helpers of the command-line tests (not a test module): the shipped files, generated
routing files, and the check every failing run must pass."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from smoothie_jax.cli._exit import EXIT_ERROR, EXIT_USAGE
from smoothie_jax.cli._main import main

ROOT = Path(__file__).resolve().parents[2]
QUIZ = ROOT / "examples" / "data" / "quiz.jsonl"
QUIZ_TRAIN = ROOT / "examples" / "data" / "quiz_train.jsonl"
QUIZ_QUERIES = ROOT / "examples" / "data" / "quiz_queries.jsonl"
SHARED = ROOT.parent / "shared" / "data" / "alpaca_eval_dev.jsonl.gz"

PREVIOUS = b"previous output, must survive a failed run\n"
TOPICS = ("rivers", "bread", "planets", "violins", "tax law", "glaciers", "chess", "moths")


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def answer(i: int, j: int) -> str:
    return f"Model {j} on {TOPICS[i % len(TOPICS)]}: point {i % 5} of {(i * 7 + j) % 11}."


def make_rows(
    n: int, models: tuple[str, ...] = ("a", "b", "c", "d"), scored: bool = True
) -> list[dict]:
    """n routing lines with short distinct outputs, scored unless asked not to be."""
    rows = []
    for i in range(n):
        row: dict = {
            "idx": i,
            "instruction": f"Tell me about {TOPICS[i % len(TOPICS)]}, part {i}.",
            "outputs": {name: answer(i, j) for j, name in enumerate(models)},
        }
        if scored:
            row["scores"] = {name: ((i + 3 * j) % 7) / 6 for j, name in enumerate(models)}
        rows.append(row)
    return rows


def write_rows(path: Path, rows: Sequence[dict | str]) -> Path:
    """One line per row: a dict as JSON, a string as it is (a malformed line)."""
    path.write_text(
        "".join(
            (r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in rows
        ),
        encoding="utf-8",
    )
    return path


def fails(
    argv: list[str],
    capsys: pytest.CaptureFixture,
    fragments: Sequence[str],
    keep: Sequence[Path] = (),
    code: int = EXIT_ERROR,
) -> str:
    """Runs a command that must fail: exit code, message, no traceback, files untouched."""
    for path in keep:
        if not path.is_dir():
            path.write_bytes(PREVIOUS)
    if code == EXIT_USAGE:
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == EXIT_USAGE
    else:
        assert main(argv) == code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, err
    for path in keep:
        if not path.is_dir():
            assert path.read_bytes() == PREVIOUS
    return err


def never_embedded(cache_dir: Path) -> None:
    """The run failed before any embedding: its own cache was never even created."""
    assert not cache_dir.exists()

"""`smoothie-jax examples DIR`: the shipped example files, copied out, never overwritten."""

from __future__ import annotations

from pathlib import Path

import pytest

from smoothie_jax.cli._examples import FILES, example_file
from smoothie_jax.cli._exit import EXIT_OK
from smoothie_jax.cli._main import main


def test_examples_are_copied_and_kept(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    where = tmp_path / "try"
    assert main(["examples", str(where)]) == EXIT_OK
    for name in FILES:
        assert (where / name).read_bytes() == example_file(name).read_bytes()
    (where / "quiz.jsonl").write_text("mine\n")
    assert main(["examples", str(where)]) == EXIT_OK
    assert (where / "quiz.jsonl").read_text() == "mine\n"  # an existing file is kept
    out = capsys.readouterr().out
    assert "kept" in out and f"smoothie-jax route {where / 'quiz.jsonl'}" in out

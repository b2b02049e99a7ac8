"""`smoothie-jax prepare-mpnet`: one call of `sj.text.prepare_mpnet`, printing the folder
(the fetch itself is tested in tests/text/test_mpnet.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

import smoothie_jax as sj
from smoothie_jax.cli._exit import EXIT_OK
from smoothie_jax.cli._main import main


def test_prepare_mpnet_prints_where_the_model_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    calls = []

    def prepare(target: str | None) -> Path:
        calls.append(target)
        return tmp_path / "mpnet"

    monkeypatch.setattr(sj.text, "prepare_mpnet", prepare)
    assert main(["prepare-mpnet", "--target", str(tmp_path / "mpnet")]) == EXIT_OK
    assert calls == [str(tmp_path / "mpnet")]
    assert capsys.readouterr().out == f"{tmp_path / 'mpnet'}\n"

"""`smoothie-jax demo`: simulated data, recovered against true quality."""

from __future__ import annotations

import pytest

from smoothie_jax.cli._exit import EXIT_OK
from smoothie_jax.cli._main import main


@pytest.mark.slow
def test_demo_prints_recovered_quality(capsys: pytest.CaptureFixture) -> None:
    assert main(["demo", "-n", "600", "--dim", "16"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "Smoothie-Global" in out and "picked the true best model" in out

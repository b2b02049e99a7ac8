"""The smoothie-jax command: runs on the shipped example and on files the tests write."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from smoothie_jax.cli._main import EXIT_ERROR, EXIT_OK, EXIT_USAGE, main

ROOT = Path(__file__).resolve().parents[1]
QUIZ = ROOT / "examples" / "data" / "quiz.jsonl"
QUIZ_TRAIN = ROOT / "examples" / "data" / "quiz_train.jsonl"
QUIZ_QUERIES = ROOT / "examples" / "data" / "quiz_queries.jsonl"
SHARED = ROOT.parent / "shared" / "data" / "alpaca_eval_dev.jsonl.gz"


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.slow
def test_demo_prints_recovered_quality(capsys: pytest.CaptureFixture) -> None:
    assert main(["demo", "-n", "600", "--dim", "16"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "Smoothie-Global" in out and "picked the true best model" in out


@pytest.mark.slow
@pytest.mark.parametrize("method", ["global", "local"])
def test_route_shipped_example(tmp_path: Path, capsys: pytest.CaptureFixture, method: str) -> None:
    out = tmp_path / "routes.jsonl"
    argv = ["route", str(QUIZ), "-o", str(out), "--method", method, "--no-family-check"]
    assert main(argv) == EXIT_OK
    rows = read_lines(out)
    source = read_lines(QUIZ)
    assert len(rows) == len(source)
    for row, src in zip(rows, source):
        assert row["idx"] == src["idx"]
        assert row["output"] == src["outputs"][row["model"]]
        assert set(row["weights"]) == set(src["outputs"])
        assert abs(sum(row["weights"].values()) - 1) < 1e-4
        assert row["model"] == max(row["weights"], key=row["weights"].get)
    if method == "global":
        assert len({row["model"] for row in rows}) == 1
    printed = capsys.readouterr().out
    assert "Smoothie (routed answers)" in printed and "random choice" in printed


def test_route_global_checks_independence(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import smoothie_jax as sj

    out = tmp_path / "routes.jsonl"
    argv = ["route", str(QUIZ), "-o", str(out), "--method", "global", "--default-model", "decent"]
    assert main(argv) == EXIT_OK
    printed = capsys.readouterr().out
    assert "Independence test" in printed and "REJECTED" in printed
    # The command must route exactly as the library's family-checked Global route does.
    data = sj.read_routing(QUIZ)
    n, m = len(data), len(data.models)
    outputs = sj.embed([t for row in data.outputs for t in row]).reshape(n, m, -1)
    expected = sj.route_families(outputs, models=data.models, default="decent")
    rows = read_lines(out)
    assert {row["method"] for row in rows} == {f"smoothie-global ({expected.method})"}
    assert expected.choice is not None  # with a default, the route is deterministic
    assert {row["model"] for row in rows} == {data.models[expected.choice]}
    assert f"Route (smoothie-global ({expected.method})): {expected.reason}" in printed


@pytest.mark.slow
def test_route_posterior_adds_probabilities(tmp_path: Path) -> None:
    out = tmp_path / "routes.jsonl"
    assert main(["route", str(QUIZ), "-o", str(out), "--posterior", "-k", "20"]) == EXIT_OK
    row = read_lines(out)[0]
    assert abs(sum(row["probabilities"].values()) - 1) < 1e-4
    assert row["model"] == max(row["probabilities"], key=row["probabilities"].get)
    lower, upper = zip(*row["theta_interval_90"].values())
    assert all(lo <= hi for lo, hi in zip(lower, upper))


@pytest.mark.slow
def test_route_train_time_with_saved_router(tmp_path: Path) -> None:
    out, saved = tmp_path / "routes.jsonl", tmp_path / "router.eqx"
    argv = [
        "route",
        str(QUIZ_QUERIES),
        "--train",
        str(QUIZ_TRAIN),
        "-o",
        str(out),
        "--save-router",
        str(saved),
    ]
    assert main(argv) == EXIT_OK
    rows = read_lines(out)
    assert len(rows) == len(read_lines(QUIZ_QUERIES))
    models = set(read_lines(QUIZ_TRAIN)[0]["outputs"])
    assert all(row["model"] in models and "output" not in row for row in rows)
    assert saved.exists()


def write_routing(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_malformed_file_exit_code_and_no_output(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    bad = write_routing(
        tmp_path / "bad.jsonl",
        [
            {"instruction": "a", "outputs": {"x": "1", "y": "2", "z": "3"}},
            # A model left out is masked (it did not answer); one never seen is an error.
            {"instruction": "b", "outputs": {"x": "1", "y": "2", "w": "3"}},
        ],
    )
    out = tmp_path / "routes.jsonl"
    assert main(["route", str(bad), "-o", str(out)]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "bad.jsonl:2" in err and "'w'" in err
    assert not out.exists() and list(tmp_path.iterdir()) == [bad]


def test_failed_run_keeps_previous_output(tmp_path: Path) -> None:
    out = tmp_path / "routes.jsonl"
    out.write_text("previous\n")
    missing = tmp_path / "missing.jsonl"
    assert main(["route", str(missing), "-o", str(out)]) == EXIT_ERROR
    assert out.read_text() == "previous\n"


def test_bad_usage_exits_2() -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["route"])
    assert exit_info.value.code == EXIT_USAGE
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", "x.jsonl", "--ks", "0,5"])
    assert exit_info.value.code == EXIT_USAGE


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--ensembles", "0", "--ensembles: must be >= 1, got 0"),
        ("--ensembles", "x", "--ensembles: expected an int, got 'x'"),
        ("--seed", "-1", "--seed: must be >= 0, got -1"),
    ],
)
def test_bad_counts_are_named(
    capsys: pytest.CaptureFixture, flag: str, value: str, message: str
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", "x.jsonl", flag, value])
    assert exit_info.value.code == EXIT_USAGE
    assert message in capsys.readouterr().err


def test_help_mentions_every_command(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("route", "evaluate", "convert-alpaca-eval", "prepare-mpnet", "demo"):
        assert command in out


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
    unscored = write_routing(
        tmp_path / "u.jsonl",
        [
            {"instruction": f"q{i}", "outputs": {"x": f"a{i}", "y": f"b{i}", "z": f"c{i}"}}
            for i in range(60)
        ],
    )
    assert main(["evaluate", str(unscored), "--out", str(tmp_path / "o")]) == EXIT_ERROR
    assert "no scores" in capsys.readouterr().err


@pytest.mark.skipif(not SHARED.exists(), reason=f"shared data not found at {SHARED}")
@pytest.mark.slow
def test_evaluate_on_shared_data_subset(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """The shared AlpacaEval file, first 120 inputs: the pipeline runs on real outputs."""
    with gzip.open(SHARED, "rt") as f:
        rows = [json.loads(line) for _, line in zip(range(120), f)]
    subset = write_routing(tmp_path / "dev120.jsonl", rows)
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

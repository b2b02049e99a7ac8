"""`run_evaluation`: every analysis on one set of splits, the files, and the report.

The run must be exactly its parts: `evaluate` with the family rows added, the
independence test on the inputs every model answered, and with `posterior` the
posterior policies and the label-budget curve; the files hold what the run returns.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import smoothie_jax as sj
from smoothie_jax.eval import EvaluationResult, EvaluationRun, evaluate, run_evaluation

from .tasks import SIM_NAMES, Data

SETTINGS = {"ensembles": 2, "size": 4, "ks": (20,), "n_labelled": 20}


def run(data: Data, out: Path, **kwargs: object) -> EvaluationRun:
    return run_evaluation(*data, SIM_NAMES, out, **{**SETTINGS, **kwargs})


@pytest.mark.slow
def test_the_run_is_its_parts(sim_data: Data, sim_result: EvaluationResult, tmp_path: Path) -> None:
    families = {"a": "x", "b": "x"}
    got = run(sim_data, tmp_path / "out", families=families)
    outputs, _, scores, _ = sim_data
    rows, detail = sj.eval.evaluate_families(
        outputs, scores, SIM_NAMES, splits=sim_result.splits, families=families
    )
    assert got.result.to_json() == sim_result.with_rows(rows).to_json()
    assert list(got.families) == detail
    want = sj.families.diagnose(outputs, families=families, models=SIM_NAMES)
    assert got.diagnosis is not None and got.diagnosis_error == ""
    assert got.diagnosis.p_value == want.p_value
    assert got.uncertainty is None and got.label_budget is None

    out = tmp_path / "out"
    assert got.written == (out / "evaluation.json", out / "evaluation.png", out / "families.jsonl")
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in got.written)
    saved = json.loads((out / "evaluation.json").read_text())
    assert saved == sj.eval.json_safe(got.result.to_json())
    lines = [json.loads(line) for line in (out / "families.jsonl").read_text().splitlines()]
    assert lines == sj.eval.json_safe(detail)

    assert got.to_text() == "\n".join(
        [got.result.to_text(), "\nAll models together:\n" + want.to_text(SIM_NAMES)]
    )
    assert str(got) == got.to_text()


@pytest.mark.slow
def test_unanswered_outputs_are_missing_scores(sim_data: Data, tmp_path: Path) -> None:
    outputs, inputs, scores, lengths = sim_data
    observed = np.ones(scores.shape, bool)
    observed[:10, 0] = False  # model a did not answer the first ten inputs
    got = run(sim_data, tmp_path, observed=observed)
    want = evaluate(*sim_data, SIM_NAMES, observed=observed, **SETTINGS)
    for row in want.methods:  # the family rows come after these
        assert got.result.method(row.name, row.regime).per_ensemble == row.per_ensemble
    # The independence test reads only the inputs every model answered.
    assert got.diagnosis.n_samples == len(scores) - 10
    assert got.diagnosis.p_value == sj.families.diagnose(outputs[10:]).p_value


@pytest.mark.unchecked  # a stand-in for the EvaluationResult
def test_a_failed_independence_test_is_reported() -> None:
    class Table:  # the table's text and models are all the report reads of the result
        models = SIM_NAMES

        def to_text(self) -> str:
            return "TABLE"

    got = EvaluationRun(
        result=Table(),  # type: ignore[arg-type]
        families=(),
        diagnosis=None,
        diagnosis_error="too few inputs",
        uncertainty=None,
        label_budget=None,
        written=(),
    )
    assert got.to_text() == "TABLE\n\nAll models together: no independence test (too few inputs)."


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"costs": {"a": 1.0}}, r"costs has no entry for models \['b', 'c', 'd', 'e'\]"),
        pytest.param(
            {"posterior_model": "gaussian"},
            "posterior_model must be one of",
            marks=pytest.mark.unchecked,  # not one of the annotation's Literal values
        ),
        ({"posterior_k": 0}, "posterior_k must be >= 1"),
        ({"size": 2}, "size must be in"),
    ],
)
def test_bad_arguments_raise_before_any_file(
    sim_data: Data, tmp_path: Path, change: dict, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        run(sim_data, tmp_path / "out", **change)
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_posterior_adds_two_analyses_and_four_files(sim_data: Data, tmp_path: Path) -> None:
    said: list[str] = []
    costs = dict(zip(SIM_NAMES, (1.0, 2.0, 0.5, 4.0, 0.1)))
    got = run(sim_data, tmp_path, posterior=True, costs=costs, log=said.append)
    assert [line.split()[0] for line in said] == ["Fitting", "Label-budget"]
    assert got.uncertainty is not None and got.label_budget is not None
    assert got.uncertainty.costs == tuple(costs.values())
    assert got.label_budget.budgets == (0, 5, 10, 20)  # up to n_labelled
    assert [p.name for p in got.written] == [
        "evaluation.json",
        "evaluation.png",
        "families.jsonl",
        "uncertainty.json",
        "uncertainty.png",
        "label_budget.json",
        "label_budget.png",
    ]
    assert all(p.exists() for p in got.written)
    assert [t for t, _, _ in got.result.frontier][0] == 0.0  # costs: the train-time frontier
    text = got.to_text()
    assert text.endswith(got.label_budget.to_text())
    assert "\nRouting under uncertainty (same ensembles and held-out inputs):\n\n" in text

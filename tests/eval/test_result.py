"""`EvaluationResult` and `MethodResult`: the table, the gap closure, the JSON, added rows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import smoothie_jax as sj
from smoothie_jax.eval import REGIMES, TEST_TIME, TRAIN_TIME, EvaluationResult, MethodResult
from smoothie_jax.eval._names import BEST_SINGLE, GLOBAL, LABEL_FREE, RANDOM


def test_method_result_statistics() -> None:
    row = MethodResult("m", LABEL_FREE, (1.0, 3.0))
    assert row.mean == 2.0 and row.std == pytest.approx(np.sqrt(2.0))
    assert row.regime == TEST_TIME
    assert MethodResult("one", LABEL_FREE, (5.0,)).std == 0.0


@pytest.mark.slow
def test_gap_closure_and_below_random(result: EvaluationResult) -> None:
    for regime in REGIMES:
        low = np.array(result.method(RANDOM, regime).per_ensemble)
        high = np.array(result.method(BEST_SINGLE, regime).per_ensemble)
        for row in result.methods:
            if row.regime != regime:
                continue
            score = np.array(row.per_ensemble)
            np.testing.assert_allclose(
                result.gap_closure(row.name, regime), (score - low) / (high - low)
            )
            assert result.below_random(row.name, regime) == int(np.sum(score < low - 1e-9))
        assert result.gap_closure(RANDOM, regime) == pytest.approx((0.0,) * 5)
        assert result.gap_closure(BEST_SINGLE, regime) == pytest.approx((1.0,) * 5)
    assert "G" in result.to_text() and "train-time" in result.to_text()


@pytest.mark.slow
def test_with_rows_adds_rows_in_their_regime(result: EvaluationResult) -> None:
    extra = MethodResult("mine", LABEL_FREE, (1.0,) * 5, TEST_TIME)
    late = MethodResult("mine later", LABEL_FREE, (2.0,) * 5, TRAIN_TIME)
    more = result.with_rows([late, extra])
    test_rows = [r.name for r in more.methods if r.regime == TEST_TIME]
    assert test_rows[-1] == "mine" and more.method("mine later", TRAIN_TIME).mean == 2.0
    assert more.methods.index(more.method("mine")) < more.methods.index(
        more.method(RANDOM, TRAIN_TIME)
    )
    with pytest.raises(ValueError, match="values for 5 ensembles"):
        result.with_rows([MethodResult("short", LABEL_FREE, (1.0,))])
    with pytest.raises(ValueError, match="unknown regime"):
        result.with_rows([MethodResult("when", LABEL_FREE, (1.0,) * 5, "someday")])


@pytest.mark.slow
def test_method_names_its_rows_when_missing(result: EvaluationResult) -> None:
    assert result.method(GLOBAL, TRAIN_TIME).regime == TRAIN_TIME
    with pytest.raises(KeyError, match="no method 'nothing' at test-time"):
        result.method("nothing")


@pytest.mark.slow
def test_table_and_json(result: EvaluationResult, tmp_path: Path) -> None:
    text = result.to_text(per_ensemble=True)
    assert all(r.name in text for r in result.methods) and "e4" in text
    assert f"picked the ensemble's best model in {result.picked_best} of 5" in str(result)

    out = tmp_path / "nested" / "result.json"
    sj.eval.write_json(result, out)

    def no_nan(constant: str) -> None:
        raise AssertionError(f"non-standard JSON constant {constant}")

    loaded = json.loads(out.read_text(), parse_constant=no_nan)
    assert [m["name"] for m in loaded["methods"]] == [r.name for r in result.methods]
    for row, saved in zip(result.methods, loaded["methods"]):
        gap = result.gap_closure(row.name, row.regime)
        assert saved["gap_closure_per_ensemble"] == pytest.approx(gap)
        assert saved["below_random"] == result.below_random(row.name, row.regime)
    assert loaded["ensembles"][0]["evaluated"] == list(result.evaluated[0])
    assert loaded["score_scale"] == 100.0 and loaded["train_time_cost_frontier"] == []

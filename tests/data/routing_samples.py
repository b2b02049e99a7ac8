"""Small routing data and files shared by the tests of `smoothie_jax.data` (not a test module)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from smoothie_jax.data import RoutingData

MODELS = ("a", "b", "c")


def sample_data(**overrides: object) -> RoutingData:
    """Two scored inputs, three models (one score unknown), ids and extra keys."""
    fields: dict = dict(
        instructions=["What is 2+2?", "Capital of France?"],
        models=MODELS,
        outputs=[["4", "5", "four"], ["Paris", "Lyon", "Paris, France"]],
        scores=np.array([[1.0, 0.0, math.nan], [1.0, 0.0, 0.5]]),
        ids=[10, "q2"],
        extra=[{"reference_output": "4"}, {"reference_output": "Paris", "task": "geo"}],
    )
    fields.update(overrides)
    return RoutingData(**fields)


def sample_line(**overrides: object) -> dict:
    """One routing-file line as a dict; `overrides` replace or add keys (to break it)."""
    record: dict = {"instruction": "Say hi.", "outputs": {"a": "hi", "b": "hello", "c": "hey"}}
    record.update(overrides)
    return record


def write_lines(path: Path, lines: list[object]) -> Path:
    """Test input, written raw so that malformed lines stay malformed."""
    text = "".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines)
    path.write_text(text, encoding="utf-8")
    return path


def assert_same(a: RoutingData, b: RoutingData) -> None:
    """Every field equal (NaN scores included)."""
    assert a.instructions == b.instructions
    assert a.models == b.models
    assert a.outputs == b.outputs
    if a.scores is None:
        assert b.scores is None
    else:
        np.testing.assert_array_equal(a.scores, b.scores)  # NaNs compare equal here
    assert a.ids == b.ids
    assert a.extra == b.extra


GOOD = sample_line()  # a well-formed routing line

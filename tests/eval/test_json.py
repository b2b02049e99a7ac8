"""The strict-JSON writer: NaN and inf become null, numpy becomes Python, writes are atomic."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from smoothie_jax.eval import json_safe, write_json


class _Result:
    def __init__(self, payload: dict[str, Any]) -> None:
        self.payload = payload

    def to_json(self) -> dict[str, Any]:
        return self.payload


def test_json_safe_converts_numpy_and_non_finite() -> None:
    got = json_safe(
        {"a": (np.float32(0.5), np.int64(3), math.nan), "b": np.array([[1.0, -math.inf]])}
    )
    assert got == {"a": [0.5, 3, None], "b": [[1.0, None]]}
    assert type(got["a"][1]) is int


def test_write_json_is_strict_and_atomic(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "r.json"
    write_json(_Result({"x": [math.nan, 1.0], "n": np.int32(2)}), path)

    def reject(constant: str) -> None:
        raise ValueError(f"non-standard JSON constant {constant}")

    assert json.loads(path.read_text(), parse_constant=reject) == {"x": [None, 1.0], "n": 2}
    assert path.read_text().endswith("}\n")
    # A result that cannot be written leaves the old file as it was, and no temporary.
    with pytest.raises(TypeError):
        write_json(_Result({"x": object()}), path)
    assert json.loads(path.read_text())["n"] == 2
    assert sorted(p.name for p in path.parent.iterdir()) == ["r.json"]

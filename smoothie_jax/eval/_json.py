"""One strict-JSON writer for every result of the evaluation.

Results say what they hold with `to_json()`; `write_json` turns NaN and inf into null
(strict JSON has neither) and writes the file atomically, so a failed run never leaves
half a file.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .._atomic import atomic_write


@runtime_checkable
class _HasJson(Protocol):
    """A result that can say what it holds as a JSON-ready dict."""

    def to_json(self) -> dict[str, Any]: ...


def json_safe(x: Any) -> Any:
    """NaN/inf -> None and numpy scalars -> Python, so `json.dump(allow_nan=False)` works.

    >>> json_safe({"a": [float("nan"), np.float32(1.5), float("inf")]})
    {'a': [None, 1.5, None]}
    """
    if isinstance(x, dict):
        return {k: json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_safe(v) for v in x]
    if isinstance(x, (float, np.floating)):
        return float(x) if math.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.ndarray):
        return json_safe(x.tolist())
    return x


def write_json(result: _HasJson, path: str | os.PathLike) -> None:
    """Writes `result.to_json()` atomically as strict JSON (NaN and inf as null)."""
    text = json.dumps(json_safe(result.to_json()), indent=2, allow_nan=False)
    with atomic_write(path) as f:
        f.write(text + "\n")

"""The summary table `route` prints: the first decisions and the count per model.

Cells are padded by terminal columns, not characters: a wide (CJK) character takes two,
a combining mark none, and control characters are escaped, so every row of the table
ends at the same column whatever the model names hold.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Sequence

import numpy as np

from ..data import RoutingData


def width(text: str) -> int:
    """Columns `text` takes in a terminal: wide (CJK) characters take two, marks none.

    >>> width("模型"), width("e\\u0301")
    (4, 1)
    """
    return sum(
        0
        if unicodedata.combining(ch)
        else 2
        if unicodedata.east_asian_width(ch) in ("W", "F")
        else 1
        for ch in text
    )


def printable(text: str) -> str:
    """Control characters (tabs, newlines, escapes) escaped, so a cell stays one cell.

    >>> printable("tab\\there")
    'tab\\\\there'
    """
    return "".join(
        ch.encode("unicode_escape").decode("ascii")
        if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp")
        else ch
        for ch in text
    )


def cell(text: str, columns: int, *, cut: bool = False) -> str:
    """`text` escaped and padded to `columns` terminal columns (cut with '...' if asked)."""
    text = printable(text)
    if cut and width(text) > columns:
        while width(text) > columns - 3:
            text = text[:-1]
        text += "..."
    return text + " " * max(0, columns - width(text))


def _mean(values: np.ndarray) -> float:
    """nanmean without the warning: NaN when no value is known."""
    known = values[np.isfinite(values)]
    return float(known.mean()) if known.size else math.nan


def _score(value: float, columns: int = 10) -> str:
    return f"{value:{columns}.3f}" if math.isfinite(value) else f"{'unscored':>{columns}s}"


def random_mean(scores: np.ndarray) -> float:
    """Expected score of a uniform choice among the answers each input has, averaged.

    >>> random_mean(np.array([[1.0, 0.0], [np.nan, 0.5]]))
    0.5
    """
    known = np.isfinite(scores)
    rows = known.any(axis=1)
    if not rows.any():
        return math.nan
    per_input = np.where(known, scores, 0.0).sum(axis=1)[rows] / known.sum(axis=1)[rows]
    return float(per_input.mean())


def print_summary(
    data: RoutingData, models: Sequence[str], choice: np.ndarray, *, show: int, output: str
) -> None:
    """Prints the first decisions (all of them when there are at most `show`), then each
    model's count and, where DATA is scored, its mean score against the routed answers'."""
    scores = None
    if data.scores is not None and data.outputs is not None:
        scores = np.where(data.observed, data.scores, np.nan)  # no answer, no score
    shown = len(data) if len(data) <= show else min(10, show)
    name_width = max(34, *(width(printable(name)) for name in models))
    for i in range(shown):
        text = cell(" ".join(data.instructions[i].split()), 48, cut=True)
        score = ""
        if scores is not None:
            value = scores[i, choice[i]]
            score = f"  score {value:.2f}" if math.isfinite(value) else "  unscored"
        print(f"  {text} -> {printable(models[choice[i]])}{score}")
    if shown < len(data):
        print(f"  ... {len(data) - shown} more in {output}")
    counts = np.bincount(choice, minlength=len(models))
    header = f"\n  {cell('model', name_width)} {'routed to':>9s}"
    print(header + ("  mean score" if scores is not None else ""))
    for j, name in enumerate(models):
        line = f"  {cell(name, name_width)} {counts[j]:>9d}"
        if scores is not None:
            line += f"  {_score(_mean(scores[:, j]))}"
        print(line)
    if scores is not None:
        routed = scores[np.arange(len(data)), choice]
        label = cell("Smoothie (routed answers)", name_width)
        print(f"  {label} {len(data):>9d}  {_score(_mean(routed))}")
        label = cell("random choice (expected)", name_width)
        print(f"  {label} {'':>9s}  {_score(random_mean(scores))}")

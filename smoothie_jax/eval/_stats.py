"""Small statistics of the evaluation: routed scores, rank correlation, NaN-aware means.

>>> nanmean([1.0, float("nan"), 2.0])
1.5
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from jaxtyping import Real

from .._validate import ArrayLike
from ._names import SCALE


def chosen_mean(scores: np.ndarray, route: np.ndarray) -> float:
    """SCALE x mean over inputs of the score of the routed model.

    Args:
        scores: (n_inputs, n_models) judge scores.
        route: (n_inputs,) the column chosen for each input.

    >>> chosen_mean(np.array([[0.0, 1.0], [1.0, 0.0]]), np.array([1, 1]))
    50.0
    """
    return SCALE * float(np.mean(np.take_along_axis(scores, route[:, None], axis=1)))


def nanmean(x: Sequence[float]) -> float:
    """Mean of the finite values; NaN (no warning) when there are none."""
    finite = [v for v in x if math.isfinite(v)]
    return float(np.mean(finite)) if finite else math.nan


def nanmin(x: Sequence[float]) -> float:
    """Minimum of the finite values; NaN (no warning) when there are none."""
    finite = [v for v in x if math.isfinite(v)]
    return float(np.min(finite)) if finite else math.nan


def _ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties given their average rank (as scipy.stats.rankdata does)."""
    order = np.argsort(x, kind="stable")
    sorted_x = x[order]
    starts_group = np.concatenate([[True], sorted_x[1:] != sorted_x[:-1]])
    group = np.cumsum(starts_group) - 1
    starts = np.flatnonzero(starts_group)
    ends = np.append(starts[1:], x.size)
    ranks = np.empty(x.size)
    ranks[order] = ((starts + ends - 1) / 2 + 1)[group]
    return ranks


def spearman(
    x: Sequence[float] | Real[ArrayLike, " n"], y: Sequence[float] | Real[ArrayLike, " n"]
) -> float:
    """Spearman rank correlation (ties: average ranks); NaN if either input is constant.

    >>> spearman([1.0, 2.0, 3.0], [10.0, 30.0, 20.0])
    0.5
    """
    rx = _ranks(np.asarray(x, dtype=np.float64))
    ry = _ranks(np.asarray(y, dtype=np.float64))
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denom = math.sqrt(float(np.sum(rx * rx) * np.sum(ry * ry)))
    return float(np.sum(rx * ry) / denom) if denom > 0 else math.nan

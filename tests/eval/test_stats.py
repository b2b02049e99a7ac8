"""Small statistics: routed scores, NaN-aware means, Spearman against scipy."""

from __future__ import annotations

import math

import numpy as np
import pytest

from smoothie_jax.eval import spearman
from smoothie_jax.eval._stats import chosen_mean, nanmean, nanmin


def test_spearman_matches_scipy_with_ties() -> None:
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    for _ in range(20):
        x, y = rng.integers(0, 4, 7).astype(float), rng.normal(size=7)
        expected = stats.spearmanr(x, y).statistic if np.ptp(x) else math.nan
        np.testing.assert_allclose(spearman(x, y), expected)
    assert math.isnan(spearman([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]))


def test_chosen_mean_is_the_mean_routed_score_x100() -> None:
    rng = np.random.default_rng(1)
    scores = rng.uniform(size=(30, 4))
    route = rng.integers(0, 4, 30)
    want = 100 * np.mean([scores[i, route[i]] for i in range(30)])
    assert chosen_mean(scores, route) == pytest.approx(want, rel=1e-12)


def test_nan_aware_mean_and_min() -> None:
    assert nanmean([1.0, math.nan, 3.0, math.inf]) == 2.0
    assert nanmin([math.nan, 3.0, -1.0]) == -1.0
    assert math.isnan(nanmean([math.nan])) and math.isnan(nanmin([]))

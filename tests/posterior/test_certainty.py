"""How sure (`posterior/_certainty`): P(best) per model and the 90% set, for a person."""

from __future__ import annotations

import jax
import numpy as np
import pytest

import smoothie_jax as sj

N, M = 200, 4


@pytest.mark.slow  # seconds of work: a posterior fit
def test_the_set_holds_the_best_and_the_text_says_how_to_narrow_it() -> None:
    theta = jax.numpy.array([4.0, 3.9, 1.0, 0.5])
    x, _, _ = sj.simulate_tasks(jax.random.key(0), theta[None], n_samples=N, dim=16, input_dim=4)
    sure = sj.posterior.certainty(x, key=jax.random.key(1))
    assert sure.prob_best.sum() == pytest.approx(1.0, abs=1e-6)
    assert set(sure.contenders) >= {0} and 3 not in sure.contenders
    assert sure.prob_best[list(sure.contenders)].sum() >= 0.9 - 1e-6
    text = sure.to_text(["a", "b", "c", "d"], "data.jsonl", "seen.jsonl")
    assert text.startswith("How sure: P(best)") and "90% set" in text
    if len(sure.contenders) > 1:
        assert "smoothie-jax label data.jsonl --labels seen.jsonl" in text


def test_answers_bootstrap_their_accuracies() -> None:
    rng = np.random.default_rng(0)
    right = rng.random((N, M)) < np.array([0.95, 0.6, 0.55, 0.5])
    codes = np.where(right, 0, 1 + np.arange(M)).astype(np.int32)
    x = rng.normal(size=(N, M, 8)).astype(np.float32)
    sure = sj.posterior.certainty(x, key=jax.random.key(0), answers=codes)
    assert sure.contenders == (0,) and sure.prob_best[0] > 0.9
    assert "resamples" in sure.source
    with pytest.raises(ValueError, match="level"):
        sj.posterior.certainty(x, key=jax.random.key(0), level=1.0)

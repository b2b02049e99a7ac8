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


@pytest.mark.slow  # seconds of work: 60 least-squares fits
def test_the_fast_bootstrap_agrees_with_refitting_each_resample() -> None:
    """Two close models: the damped Gauss-Newton refit of each resample (from the full
    fit) gives about the share that refitting every resample from scratch gives."""
    from smoothie_jax._agreement import answer_prob_best, fit_answers

    rng = np.random.default_rng(1)
    right = rng.random((400, M)) < np.array([0.8, 0.78, 0.6, 0.5])
    codes = np.where(right, 0, 1 + rng.integers(0, 3, (400, M))).astype(np.int32)
    fast = answer_prob_best(codes, jax.random.key(0), resamples=200)
    picks = rng.integers(0, 400, (60, 400))
    slow = np.bincount(
        [int(np.argmax(fit_answers(codes[rows]).accuracy)) for rows in picks], minlength=M
    ) / len(picks)
    assert fast[:2].sum() > 0.95 and slow[:2].sum() > 0.95
    assert abs(fast[0] - slow[0]) < 0.2, (fast, slow)


def test_with_labels_it_is_the_labels_posterior() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(N, M, 8)).astype(np.float32)
    rows = np.arange(30)
    scores = np.array([0.2, 0.9, 0.1, 0.0]) + 0.1 * rng.normal(size=(30, M))
    sure = sj.posterior.certainty(x, key=jax.random.key(0), labels=(rows, scores))
    assert sure.contenders == (1,) and sure.source == "labels, 30 labelled inputs"


def test_the_bootstrap_reads_the_inputs_a_chunk_at_a_time(monkeypatch) -> None:
    """Memory stays flat: the weighted agreement is summed chunk by chunk, and the chunk
    size changes the draws only (the leading model keeps its share)."""
    from smoothie_jax import _agreement

    rng = np.random.default_rng(5)
    right = rng.random((3000, M)) < np.array([0.9, 0.6, 0.55, 0.5])
    codes = np.where(right, 0, 1 + rng.integers(0, 40, (3000, M))).astype(np.int32)
    whole = _agreement.answer_prob_best(codes, jax.random.key(0))
    monkeypatch.setattr(_agreement, "_CHUNK", 700)
    chunked = _agreement.answer_prob_best(codes, jax.random.key(0))
    assert whole[0] > 0.95 and chunked[0] > 0.95
    np.testing.assert_allclose(chunked.sum(), 1.0)

"""`Split`: the rows of each ensemble, drawn once and shared by every evaluation."""

from __future__ import annotations

import numpy as np
import pytest

from smoothie_jax.eval import (
    TEST_TIME,
    TRAIN_TIME,
    EvaluationResult,
    draw_ensembles,
    draw_splits,
    split_ensemble,
)

from .tasks import M, N


@pytest.mark.slow
def test_split_structure(result: EvaluationResult) -> None:
    assert len(result.ensembles) == 5
    for ens, lab, held in zip(result.ensembles, result.labelled, result.evaluated, strict=True):
        assert len(ens) == len(set(ens)) == 5 and list(ens) == sorted(ens)
        assert all(0 <= j < M for j in ens)
        assert len(lab) == 50 and not set(lab) & set(held)
        assert sorted(lab + held) == list(range(N))  # no NaN: every input is kept
    for split in result.splits:  # train-time: past and new partition the kept inputs
        past, new = set(split.past.tolist()), set(split.new.tolist())
        assert not past & new and sorted(past | new) == list(range(N))
        assert len(past) == N // 2 and set(split.past_labelled.tolist()) <= past
        assert len(split.past_labelled) == 50


@pytest.mark.slow
def test_evaluate_draws_the_ensembles_of_draw_ensembles(result: EvaluationResult) -> None:
    # Earlier draws do not depend on how many ensembles are drawn.
    assert draw_ensembles(M, ensembles=2, size=5, seed=0) == result.ensembles[:2]


def test_splits_are_reproducible_one_by_one() -> None:
    scores = np.random.default_rng(0).uniform(size=(40, 5))
    scores[:4, 2] = np.nan  # model 2 missed the first four inputs
    splits = draw_splits(scores, ensembles=3, size=3, seed=1, n_labelled=5)
    for e, split in enumerate(splits):
        again = split_ensemble(scores, split.models, e=e, seed=1, n_labelled=5)
        for regime in (TEST_TIME, TRAIN_TIME):
            for mine, theirs in zip(split.rows(regime), again.rows(regime), strict=True):
                np.testing.assert_array_equal(mine, theirs)
        dropped = 2 in split.models
        assert split.kept.tolist() == list(range(4 if dropped else 0, 40))
        assert len(split.labelled) == 5 and len(split.past_labelled) == 5
    assert draw_ensembles(5, ensembles=3, size=5, seed=0) == ((0, 1, 2, 3, 4),)


def test_too_few_inputs_for_the_labelled_set_raises() -> None:
    scores = np.ones((10, 3))
    with pytest.raises(ValueError, match="ensemble 0 keeps 10 inputs"):
        split_ensemble(scores, (0, 1, 2), e=0, seed=0, n_labelled=5)
    with pytest.raises(ValueError, match="regime must be"):
        split_ensemble(scores, (0, 1, 2), e=0, seed=0, n_labelled=1).rows("someday")

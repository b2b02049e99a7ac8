"""Answer-level consensus (`_agreement`): accuracies from answer agreement, families that
share wrong answers found and counted once, and the answers in the recommended router."""

from __future__ import annotations

import numpy as np
import pytest

import smoothie_jax as sj
from smoothie_jax import _agreement as ag

N = 600
ACCURACY = np.array([0.9, 0.8, 0.7, 0.6, 0.55])


def answers(seed: int, accuracy: np.ndarray = ACCURACY, copy: tuple | None = None) -> tuple:
    """Each model right with its accuracy, every wrong answer its own; with `copy=(a, b)`,
    b repeats a's wrong answers (a family sharing its mistakes). Returns codes, scores."""
    rng = np.random.default_rng(seed)
    right = rng.random((N, len(accuracy))) < accuracy
    codes = np.where(right, 0, 1 + np.arange(len(accuracy)) + rng.integers(0, 50, (N, 1)) * 10)
    if copy is not None:
        a, b = copy
        codes[:, b] = np.where(right[:, a], codes[:, b], codes[:, a])
        right[:, b] = np.where(right[:, a], right[:, b], False)
    return codes.astype(np.int32), right.astype(float)


def test_accuracies_come_back_from_agreement_alone() -> None:
    codes, _ = answers(0)
    np.testing.assert_allclose(ag.answer_accuracy(codes), ACCURACY, atol=0.04)


def test_independent_models_form_no_family() -> None:
    codes, _ = answers(1)
    assert len(set(ag.answer_families(codes).tolist())) == len(ACCURACY)


def test_a_family_that_shares_wrong_answers_is_found_and_counted_once() -> None:
    # Models 3 and 4 share their mistakes: each vouches for the other.
    weak = np.array([0.75, 0.55, 0.5, 0.6, 0.6])
    codes, right = answers(2, weak, copy=(3, 4))
    labels = ag.answer_families(codes)
    assert labels[3] == labels[4] and len(set(labels.tolist())) == 4
    naive = ag.answer_accuracy(codes)
    fair = ag.answer_accuracy(codes, labels)
    assert np.argmax(naive) == 3  # the family would win the train-time route...
    assert np.argmax(fair) == 0  # ...until its pair leaves the fit
    np.testing.assert_allclose(fair, right.mean(0), atol=0.05)
    model = ag.fit_answers(codes)
    assert model.families[3] == model.families[4]
    choice, _ = ag.answer_posterior(codes, model)
    routed = right[np.arange(N), np.asarray(choice)].mean()
    assert routed > right.mean(0).max() - 0.05  # close to the best model, far above random


def test_the_posterior_picks_the_most_accurate_supporter_and_skips_missing_answers() -> None:
    codes = np.array([[0, 0, 1, -1], [-1, 2, 2, 3], [-1, -1, -1, -1]], np.int32)
    model = ag.AnswerModel(np.array([0.6, 0.9, 0.8, 0.95]), 0.1, np.arange(4))
    choice, support = ag.answer_posterior(codes, model)
    np.testing.assert_array_equal(choice, [1, 1, -1])  # -1: nobody answered
    support = np.asarray(support)
    assert np.isneginf(support[0, 3]) and np.isneginf(support[1, 0])
    assert support[0, 0] == support[0, 1] > support[0, 2]  # one answer, one support


def hard_task(seed: int, accuracy: np.ndarray, coincide: float) -> tuple:
    """Wrong answers that coincide with probability `coincide` (one common wrong answer,
    else each model its own): a hard task's popular mistake."""
    rng = np.random.default_rng(seed)
    right = rng.random((N * 4, len(accuracy))) < accuracy
    popular = rng.random(right.shape) < coincide
    own = 2 + np.arange(len(accuracy)) + 10 * rng.integers(0, 100, (N * 4, 1))
    codes = np.where(right, 0, np.where(popular, 1, own))
    return codes.astype(np.int32), right.astype(float)


def test_coincidence_comes_back_from_agreement() -> None:
    # On hard tasks the fit is weakly identified (p p' + c q q' is a rank-2 form), so this
    # asks for the coincidence and the most accurate model, not every accuracy.
    codes, _ = hard_task(4, np.array([0.85, 0.5, 0.45, 0.4, 0.4]), coincide=0.8)
    model = ag.fit_answers(codes)
    assert model.coincidence == pytest.approx(0.64, abs=0.08)  # 0.8^2: both take the popular
    assert np.argmax(model.accuracy) == 0


def test_where_mistakes_coincide_the_posterior_beats_a_weak_majority() -> None:
    # Four weak models often share the popular wrong answer: majority vote follows them;
    # the posterior knows agreement means less here and leans on the accuracies.
    posterior, majority = [], []
    for seed in (4, 5, 6):
        codes, right = hard_task(seed, np.array([0.85, 0.5, 0.45, 0.4, 0.4]), coincide=0.8)
        choice, _ = ag.answer_posterior(codes, ag.fit_answers(codes))
        rows = np.arange(len(codes))
        posterior.append(right[rows, np.asarray(choice)].mean())
        voted = np.argmax(np.asarray(ag.agreements(codes)).sum(-1), axis=1)
        majority.append(right[rows, voted].mean())
    assert np.mean(posterior) > np.mean(majority) + 0.03


def test_where_mistakes_are_rare_the_vote_beats_the_best_model() -> None:
    codes, right = answers(6, np.array([0.75, 0.7, 0.7, 0.65, 0.65]))
    choice, _ = ag.answer_posterior(codes, ag.fit_answers(codes))
    assert right[np.arange(N), np.asarray(choice)].mean() > right[:, 0].mean() + 0.1


@pytest.mark.slow  # seconds of work: both regimes compiled
def test_route_and_router_take_answers() -> None:
    codes, right = answers(3)
    rng = np.random.default_rng(3)
    x = rng.normal(size=(N, len(ACCURACY), 8)).astype(np.float32)  # embeddings say nothing
    inputs = rng.normal(size=(N, 4)).astype(np.float32)
    decision = sj.route(x, inputs, lengths=np.ones((N, 5)), answers=codes)
    assert decision.method == "answer vote"
    assert right[np.arange(N), np.asarray(decision.choice)].mean() > 0.95
    router = sj.fit_router(x, inputs, k=10, method="auto", answers=codes)
    assert set(np.asarray(router.route(inputs[:20])).tolist()) == {0}  # the most accurate
    assert router.decide(inputs[:2]).method == "answer accuracy, train-time"


@pytest.mark.unchecked  # the wrong shapes and dtypes break the annotations on purpose
@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (np.zeros((N, 4), np.int32), "answers must have shape"),
        (np.zeros((N, 5), np.float32), "integer codes"),
        (np.full((N, 5), -2, np.int32), ">= -1"),
    ],
)
def test_bad_answers_are_refused(bad: np.ndarray, match: str) -> None:
    x = np.zeros((N, 5, 4), np.float32)
    with pytest.raises(ValueError, match=match):
        sj.route(x, answers=bad)

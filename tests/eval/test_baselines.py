"""The labelled baselines: Best-on-Val and labelled kNN, with ties split evenly."""

from __future__ import annotations

import numpy as np
import pytest

from smoothie_jax.eval._baselines import labelled_scores, tied_best


def test_tied_best_splits_ties_evenly() -> None:
    np.testing.assert_allclose(
        tied_best(np.array([[2.0, 2.0, 1.0], [0.0, 1.0, 1.0]])),
        [[0.5, 0.5, 0.0], [0.0, 0.5, 0.5]],
    )
    np.testing.assert_allclose(tied_best(np.array([0.0, 3.0, 1.0])), [0.0, 1.0, 0.0])


def test_labelled_scores_read_only_the_labelled_rows() -> None:
    """Two clusters: model 0 is right on the first, model 1 on the second."""
    rng = np.random.default_rng(0)
    cluster = np.arange(40) % 2
    x = (10.0 * cluster[:, None] + rng.normal(size=(40, 3))).astype(np.float32)
    scores = np.zeros((40, 3))
    scores[cluster == 0, 0] = 1.0
    scores[cluster == 1, 1] = 1.0
    lab, held = np.arange(10), np.arange(10, 40)
    best_on_val, local = labelled_scores(x[lab], x[held], scores[lab], scores[held], knn_k=3)
    assert local == 100.0  # the neighbours' best is each input's best
    # Best-on-Val: models 0 and 1 tie on the labels, each right on half the held-out rows.
    assert best_on_val == pytest.approx(50.0)
    # The held-out scores only grade: flipped, the same choices score what they now get.
    flipped = 1.0 - scores[held]
    again = labelled_scores(x[lab], x[held], scores[lab], flipped, knn_k=3)
    assert again == pytest.approx((50.0, 0.0))

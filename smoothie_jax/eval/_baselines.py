"""The labelled baselines: routers that choose from a few scored inputs.

Best-on-Val picks the model with the best mean over the labelled inputs; labelled kNN
picks, per scored input, the model with the best mean over its nearest labelled inputs.
Both score a tie of label means as a uniformly random pick among the tied
(`tied_best`). `evaluate` and `label_budget` score them with the same function, so
their numbers agree on the same rows.
"""

from __future__ import annotations

import numpy as np
from jaxtyping import Float

from .._neighbours import knn
from .._validate import ArrayLike
from ._names import SCALE


def tied_best(values: np.ndarray) -> np.ndarray:
    """Weights of a pick of the maximum along the last axis, split evenly over ties.

    A labelled baseline whose label means tie (frequent with a few 0 / 0.5 / 1 verdicts)
    is scored as a uniformly random pick among the tied, in expectation. argmax's
    first-column rule would read the file's column order instead, and published results
    often list models by rank (both AlpacaEval dev files nearly do).

    >>> tied_best(np.array([2.0, 2.0, 1.0])).tolist()
    [0.5, 0.5, 0.0]
    """
    top = values >= np.max(values, axis=-1, keepdims=True)
    return top / np.sum(top, axis=-1, keepdims=True)


def labelled_scores(
    x_lab: Float[ArrayLike, "n_labelled input_dim"],
    x_scored: Float[ArrayLike, "n_scored input_dim"],
    lab_scores: Float[np.ndarray, "n_labelled n_models"],
    scored: Float[np.ndarray, "n_scored n_models"],
    knn_k: int,
) -> tuple[float, float]:
    """SCALE x the held-out score of Best-on-Val and of labelled kNN (ties split evenly).

    Args:
        x_lab: (n_labelled, input_dim) embeddings of the labelled inputs.
        x_scored: (n_scored, input_dim) embeddings of the inputs scored.
        lab_scores: (n_labelled, n_models) the labelled inputs' scores: all a baseline reads.
        scored: (n_scored, n_models) the scored inputs' scores: they only grade.
        knn_k: labelled neighbours per scored input (clipped to n_labelled).

    Returns:
        (Best-on-Val, labelled kNN), each SCALE x the mean score of its choices.
    """
    best_on_val = float(tied_best(lab_scores.mean(axis=0)) @ scored.mean(axis=0))
    neighbours = np.asarray(knn(x_scored, x_lab, min(knn_k, len(lab_scores))))
    local = tied_best(lab_scores[neighbours].mean(axis=1))
    return SCALE * best_on_val, SCALE * float(np.mean(np.sum(local * scored, axis=1)))

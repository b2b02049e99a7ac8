"""The rows of one ensemble: which inputs are kept, labelled, held out, past and new.

Every evaluation (the routing table, the family rows, the posteriors, the label-budget
curve) takes its rows from one `Split` per ensemble, so their numbers are comparable.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

PAST_FRACTION = 0.5  # train-time: share of the kept inputs that is past traffic


@dataclasses.dataclass(frozen=True)
class Split:
    """One ensemble's models and rows; every row array is sorted input indices.

    Test-time (every model answered every input): label-free methods see `kept` without
    scores; labelled methods read the scores of `labelled`; all are scored on `held_out`.
    Train-time (route a new query before any model answers it): routers are fitted on
    `past` (outputs known, no scores), choose one model per `new` query from its input
    alone and are scored on `new`; labelled baselines read `past_labelled` only.

    Attributes:
        models: the ensemble's model indices (columns), sorted.
        kept: inputs with every score of the ensemble present.
        labelled: test-time labelled inputs, drawn from `kept`.
        held_out: `kept` minus `labelled`.
        past: train-time past traffic, drawn from `kept`.
        new: `kept` minus `past`.
        past_labelled: train-time labelled inputs, drawn from `past`.
    """

    models: tuple[int, ...]
    kept: np.ndarray
    labelled: np.ndarray
    held_out: np.ndarray
    past: np.ndarray
    new: np.ndarray
    past_labelled: np.ndarray

    def rows(self, regime: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(fit rows, labelled rows, scored rows) of "test-time" or "train-time"."""
        if regime == TEST_TIME:
            return self.kept, self.labelled, self.held_out
        if regime == TRAIN_TIME:
            return self.past, self.past_labelled, self.new
        raise ValueError(f"regime must be {TEST_TIME!r} or {TRAIN_TIME!r}, got {regime!r}")


TEST_TIME, TRAIN_TIME = "test-time", "train-time"
REGIMES = (TEST_TIME, TRAIN_TIME)


def draw_ensembles(
    n_models: int, *, ensembles: int, size: int, seed: int
) -> tuple[tuple[int, ...], ...]:
    """`ensembles` independent draws of `size` distinct models (the paper's protocol).

    Draws come from `numpy.random.default_rng(seed)` one after another, so the first e
    ensembles do not depend on how many are drawn; two draws may coincide. With size ==
    n_models there is one ensemble, the full set.

    >>> draw_ensembles(6, ensembles=2, size=6, seed=0)
    ((0, 1, 2, 3, 4, 5),)
    """
    if size == n_models:
        return (tuple(range(n_models)),)
    rng = np.random.default_rng(seed)
    return tuple(
        tuple(sorted(int(i) for i in rng.choice(n_models, size=size, replace=False)))
        for _ in range(ensembles)
    )


def _sorted(x: np.ndarray) -> np.ndarray:
    return np.sort(np.asarray(x, dtype=np.int64))


def split_ensemble(
    scores: np.ndarray, models: tuple[int, ...], *, e: int, seed: int, n_labelled: int
) -> Split:
    """The rows of ensemble number `e`, seeded by (seed, e): reproducible one by one.

    Test-time rows are drawn exactly as the paper's protocol runs here (a permutation of
    the kept rows from `default_rng((seed, e))`: the first `n_labelled` are labelled);
    train-time rows from `default_rng((seed, e, 1))` (the first half are past traffic,
    and the first `n_labelled` of those are its labels).

    Raises:
        ValueError: when the ensemble keeps too few inputs for the labelled set and a
            held-out set (the message says how many it kept).
    """
    ens = np.asarray(models)
    kept = np.flatnonzero(~np.isnan(scores[:, ens]).any(axis=1))
    n_past = math.ceil(PAST_FRACTION * kept.size)
    if kept.size < 2 or n_past <= n_labelled or kept.size - n_past < 1:
        raise ValueError(
            f"ensemble {e} keeps {kept.size} inputs with every score present; it needs more "
            f"than max(2 x n_labelled, 1) = {max(2 * n_labelled, 1)} (labelled inputs, and "
            "past traffic larger than them): lower n_labelled (--n-labelled)"
        )
    order = np.random.default_rng((seed, e)).permutation(kept.size)
    past_order = np.random.default_rng((seed, e, 1)).permutation(kept.size)
    past = kept[past_order[:n_past]]
    return Split(
        models=tuple(int(i) for i in ens),
        kept=kept,
        labelled=_sorted(kept[order[:n_labelled]]),
        held_out=_sorted(kept[order[n_labelled:]]),
        past=_sorted(past),
        new=_sorted(kept[past_order[n_past:]]),
        past_labelled=_sorted(past[:n_labelled]),
    )


def draw_splits(
    scores: np.ndarray, *, ensembles: int, size: int, seed: int, n_labelled: int
) -> tuple[Split, ...]:
    """`split_ensemble` for each of the `draw_ensembles` ensembles."""
    drawn = draw_ensembles(scores.shape[1], ensembles=ensembles, size=size, seed=seed)
    return tuple(
        split_ensemble(scores, ens, e=e, seed=seed, n_labelled=n_labelled)
        for e, ens in enumerate(drawn)
    )

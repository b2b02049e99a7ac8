"""One validated batch: what every router reads, checked once at the public boundary.

A public entry point (`route`, `fit_global`, `fit_local`, `fit_router`, ...) calls
`make_batch` once; every function below it takes the `Batch` and trusts it (shapes agree,
values are finite, lengths are >= 0, the mask leaves every model a triplet). The
per-sample distance statistic D is computed here, once and jitted, and carried: no layer
re-derives it.
"""

from __future__ import annotations

from typing import final

import equinox as eqx
import jax
from jaxtyping import Array, Bool, Float, Int, Real

from . import _validate
from ._distances import pair_mask, sample_distances

_distances = jax.jit(sample_distances)


@final
class Batch(eqx.Module):
    """Every model's outputs for a batch of inputs, validated, with their statistic D.

    Attributes:
        embeddings: embedding of each model's output for each input.
        distances: per-input squared distances between the models' outputs (D), 0 for a
            pair where a model did not answer.
        observed: True where model j answered input i; None where every model answered
            every input (the fast path: no mask anywhere below).
        pairs: the pair mask of `observed` (`pair_mask`: 1 where both models of a pair
            answered), or None with it.
        inputs: embedding of each input (the neighbours of Smoothie-Local), or None.
        lengths: length of each output in characters (>= 0), or None.
        answers: integer codes of each output's final answer (-1: none), or None.
    """

    embeddings: Float[Array, "n_samples n_models dim"]
    distances: Float[Array, "n_samples n_models n_models"]
    observed: Bool[Array, "n_samples n_models"] | None = None
    pairs: Float[Array, "n_samples n_models n_models"] | None = None
    inputs: Float[Array, "n_samples input_dim"] | None = None
    lengths: Real[Array, "n_samples n_models"] | None = None
    answers: Int[Array, "n_samples n_models"] | None = None

    @property
    def n_samples(self) -> int:
        return self.embeddings.shape[0]

    @property
    def n_models(self) -> int:
        return self.embeddings.shape[1]

    @property
    def dim(self) -> int:
        """Dimension of the output embeddings (theta is per axis)."""
        return self.embeddings.shape[2]


def make_batch(
    embeddings: Float[_validate.ArrayLike, "n_samples n_models dim"],
    inputs: Float[_validate.ArrayLike, "n_samples input_dim"] | None = None,
    *,
    lengths: Real[_validate.ArrayLike, "n_samples n_models"] | None = None,
    answers: Int[_validate.ArrayLike, "n_samples n_models"] | None = None,
    observed: Bool[_validate.ArrayLike, "n_samples n_models"] | None = None,
) -> Batch:
    """Validates a batch once (ValueError naming what is wrong) and computes its D.

    Args:
        embeddings: embedding of each model's output for each input (>= 3 models).
        inputs: embedding of each input, aligned with `embeddings`.
        lengths: length of each output in characters (finite, >= 0).
        answers: integer answer codes, equal in a row for the same answer (-1: none).
        observed: True where model j answered input i (the embedding elsewhere is
            ignored); all True is the same as None.

    >>> make_batch(jax.numpy.zeros((4, 3, 2))).distances.shape
    (4, 3, 3)
    """
    embeddings = _validate.check_embeddings(embeddings)
    n, m, _ = embeddings.shape
    if inputs is not None:
        inputs = _validate.check_inputs(inputs, n)
    if lengths is not None:
        lengths = _validate.check_lengths(lengths, (n, m))
    if answers is not None:
        answers = _validate.check_answers(answers, (n, m))
    pairs = None
    if observed is not None:
        observed = _validate.check_observed(observed, (n, m))
        if bool(observed.all()):
            observed = None
        else:
            pairs = pair_mask(observed)
    distances = _distances(embeddings)
    if pairs is not None:
        distances = distances * pairs  # an unanswered output's distances never enter a mean
    return Batch(
        embeddings=embeddings,
        distances=distances,
        observed=observed,
        pairs=pairs,
        inputs=inputs,
        lengths=lengths,
        answers=answers,
    )

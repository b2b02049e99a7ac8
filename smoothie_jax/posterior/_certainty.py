"""How sure the router is, for a person: each model's probability of being the best, and
the models that could be (the 90% set), from the calibrated label-free posterior.

Without answers it is the additive Global posterior (`fit_posterior`; its 90% set held
the truly best model in 80-95% of 40 ensembles on each dev set, its one constant chosen
leave-one-set-out). With final answers it is a bootstrap over the inputs of the answer
accuracies (`_agreement`), the family search redone in each resample, so a family that
shares answers widens it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import jax
import numpy as np
from jaxtyping import Float, Int, PRNGKeyArray, Real

from .. import _validate
from .._agreement import fit_answers
from .._validate import ArrayLike
from ._fit_posterior import fit_posterior

LEVEL = 0.9
BOOTSTRAP = 200  # resamples of the inputs behind the answers' prob_best


@dataclasses.dataclass(frozen=True)
class Certainty:
    """Each model's probability of being the best and the smallest set reaching `level`.

    Attributes:
        prob_best: (n_models,) probabilities, summing to 1.
        contenders: model indices of the credible set, most probable first.
        level: the set's probability.
        source: what the probabilities come from.
    """

    prob_best: np.ndarray
    contenders: tuple[int, ...]
    level: float
    source: str

    def to_text(self, models: Sequence[str], data: str = "DATA", labels: str | None = None) -> str:
        """One paragraph: P(best) per model, the set, and how to narrow it."""
        order = np.argsort(-self.prob_best)
        probs = ", ".join(f"{models[i]} {self.prob_best[i]:.2f}" for i in order)
        names = ", ".join(models[i] for i in self.contenders)
        text = f"How sure: P(best) {probs} ({self.source}). {self.level:.0%} set: {names}"
        if len(self.contenders) == 1:
            return text + "."
        more = "" if labels is None else f" --labels {labels}"
        return (
            f"{text}: {len(self.contenders)} models could each be the best. To tell them "
            f"apart, score a few (more) inputs: smoothie-jax label {data}{more} --budget 10 "
            "-o to_label.jsonl"
        )


def certainty(
    embeddings: Float[ArrayLike, "n_samples n_models dim"],
    *,
    key: PRNGKeyArray,
    answers: Int[ArrayLike, "n_samples n_models"] | None = None,
    labels: tuple[object, object] | None = None,
    lengths: Real[ArrayLike, "n_samples n_models"] | None = None,
    level: float = LEVEL,
) -> Certainty:
    """How sure: P(best) per model and the credible set (see the module docstring).

    With `labels` (and the `lengths` the router read) it is the label model's posterior
    instead: in each draw, the model with the best mean quality over the inputs.

    >>> x = jax.random.normal(jax.random.key(0), (100, 3, 8))
    >>> len(certainty(x, key=jax.random.key(1)).prob_best)
    3
    """
    embeddings = _validate.check_embeddings(embeddings)
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if labels is not None:
        draws = fit_posterior(
            embeddings, key=key, labels=labels, lengths=lengths, answers=answers
        ).theta_samples
        best = np.argmax(np.mean(np.log(np.maximum(np.asarray(draws), 1e-30)), axis=1), axis=1)
        prob = np.bincount(best, minlength=embeddings.shape[1]) / best.size
        source = f"label model, {np.asarray(labels[0]).size} labelled inputs"
    elif answers is None:
        prob = np.asarray(fit_posterior(embeddings, key=key).prob_best, np.float64)
        source = "Global posterior"
    else:
        codes = np.asarray(_validate.check_answers(answers, embeddings.shape[:2]))
        n, m = codes.shape
        picks = jax.random.randint(key, (BOOTSTRAP, n), 0, n)
        best = [int(np.argmax(fit_answers(codes[rows]).accuracy)) for rows in np.asarray(picks)]
        prob = np.bincount(best, minlength=m) / BOOTSTRAP
        source = f"answer accuracies over {BOOTSTRAP} resamples of the inputs"
    order = np.argsort(-prob)
    size = int(np.searchsorted(np.cumsum(prob[order]), level - 1e-9) + 1)
    return Certainty(prob, tuple(int(i) for i in order[:size]), level, source)

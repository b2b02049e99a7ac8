"""How sure the router is, for a person: each model's probability of being the best, and
the models that could be (the 90% set), from the calibrated label-free posterior.

Without answers it is the additive Global posterior (`fit_posterior`). With final
answers it is a bootstrap over the inputs of the answer accuracies (`_agreement`): in each
resample the accuracies are refitted to the resampled agreement rates (the families and
the coincidence c of the full fit kept, its accuracies the start), and the most accurate
model counted. With labels it is
the labels' posterior (`fit_posterior(labels=)`).

Measured (`benchmarks/uncertainty_dev.py`, 40 ensembles of 5 per dev set, the truly best
model the best held-out mean): docs/results/uncertainty.md gives how often each set's 90%
set held it, with and without answers, the misfit scale chosen leave-one-set-out.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
from jaxtyping import Float, Int, PRNGKeyArray, Real

from .. import _validate
from .._agreement import RESAMPLES
from .._label_model import router_prob_best
from .._validate import ArrayLike
from ._fit_posterior import fit_posterior

LEVEL = 0.9


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

    With `labels` it is the labels' posterior instead (`fit_posterior(labels=)`): each
    model's probability of the best mean score relative to the others on the labelled
    inputs; `lengths` is no longer read (kept for the signature).

    >>> import jax
    >>> x = jax.random.normal(jax.random.key(0), (100, 3, 8))
    >>> len(certainty(x, key=jax.random.key(1)).prob_best)
    3
    """
    embeddings = _validate.check_embeddings(embeddings)
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if labels is not None:
        prob = np.asarray(fit_posterior(embeddings, key=key, labels=labels).prob_best, np.float64)
        source = f"labels, {np.asarray(labels[0]).size} labelled inputs"
    else:  # the label-free router's: the Global posterior, or the answers' bootstrap
        codes = None if answers is None else _validate.check_answers(answers, embeddings.shape[:2])
        prob = router_prob_best(embeddings, codes, key)
        source = (
            "Global posterior"
            if answers is None
            else f"answer accuracies over {RESAMPLES} resamples of the inputs"
        )
    order = np.argsort(-prob)
    size = int(np.searchsorted(np.cumsum(prob[order]), level - 1e-9) + 1)
    return Certainty(prob, tuple(int(i) for i in order[:size]), level, source)

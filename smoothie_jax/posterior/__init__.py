"""Posterior uncertainty on quality scores (NumPyro), and policies that route under it.

`fit_posterior` gives draws of each model's theta (the additive posterior by default,
`fit_wishart` for the paper's story taken as true); the policies turn draws into choices
(the most probably best model, Thompson sampling, abstention, cost-aware trade-offs).
"""

import warnings

from ._certainty import Certainty as Certainty
from ._certainty import certainty as certainty
from ._fit_posterior import fit_posterior as fit_posterior
from ._policies import abstain as abstain
from ._policies import cost_aware as cost_aware
from ._policies import expected_quality as expected_quality
from ._policies import highest_mean as highest_mean
from ._policies import most_probable as most_probable
from ._policies import thompson as thompson
from ._policies import tradeoff_sweep as tradeoff_sweep
from ._posterior import Posterior as Posterior
from ._route import route_posterior as route_posterior
from ._suggest import suggest_labels as suggest_labels
from ._wishart import dispersion_dim as dispersion_dim
from ._wishart import effective_dim as effective_dim
from ._wishart import fit_wishart as fit_wishart
from ._wishart import nuts_sampler as nuts_sampler
from ._wishart import smoothie_model as smoothie_model

__all__ = [
    "Certainty",
    "Posterior",
    "abstain",
    "certainty",
    "cost_aware",
    "dispersion_dim",
    "effective_dim",
    "expected_quality",
    "fit_posterior",
    "fit_wishart",
    "highest_mean",
    "most_probable",
    "nuts_sampler",
    "route_posterior",
    "smoothie_model",
    "suggest_labels",
    "thompson",
    "tradeoff_sweep",
]


def __getattr__(name: str) -> object:
    # posterior_mean, renamed highest_mean (it returns an argmax, not a mean): importable,
    # with a warning, for one more release.
    if name == "posterior_mean":
        warnings.warn(
            "smoothie_jax.posterior.posterior_mean is highest_mean since smoothie_jax 0.4 "
            "(it returns a model index, not a mean); the old name goes in 0.5",
            DeprecationWarning,
            stacklevel=2,
        )
        return highest_mean
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

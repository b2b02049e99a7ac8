"""`fit_posterior`: one entry point for every posterior of the quality scores.

The additive posterior with lack of fit (`_additive`, the default) and the Wishart of the
paper's story (`_wishart`, `model="wishart"`); with labels, the labels' own posterior of
each model's quality (`_label_model`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import jax
import numpy as np
from jaxtyping import Float, PRNGKeyArray

from .. import _validate
from .._additive import MISFIT_SCALE, additive_theta_draws
from .._knn import DEFAULT_BLOCK_SIZE
from .._label_model import check_labels, label_evidence, quality_draws
from ._posterior import Posterior
from ._wishart import DEFAULT_NUM_WARMUP, DEFAULT_PRIOR_SCALE, fit_wishart

# Imported lazily (heavy): the suite's runtime checks skip annotations that name it.
if TYPE_CHECKING:
    from numpyro.infer import MCMC


def fit_posterior(
    embeddings: Float[_validate.ArrayLike, "n_samples n_models dim"],
    *,
    key: PRNGKeyArray,
    inputs: Float[_validate.ArrayLike, "n_samples input_dim"] | None = None,
    k: int | None = None,
    num_samples: int = 1000,
    model: Literal["additive", "wishart"] = "additive",
    labels: tuple[Any, Any] | None = None,
    misfit_scale: float = MISFIT_SCALE,
    block_size: int = DEFAULT_BLOCK_SIZE,
    method: Literal["nuts", "laplace"] | None = None,
    pool: float | Literal["auto"] | None = None,
    n_eff_per_sample: float | Literal["dispersion", "participation"] | None = None,
    prior_scale: float | None = None,
    num_warmup: int | None = None,
    sampler: MCMC | None = None,
) -> Posterior:
    """Posterior over each model's quality: Global, or per input (Local).

    `model="additive"` (default): the mean pair distances D̄_ij = a_i + a_j + e_ij, with
    a lack-of-fit term e_ij ~ N(0, tau^2), tau learned (log-uniform prior), and the
    covariance of D̄ over inputs as its sampling noise; each model's quality is a_i plus
    an own error of sd `misfit_scale` x tau (`additive_model`). Where families make D
    non-additive the posterior widens; where the story fits it stays tight. Exact (tau on
    a grid, Gaussian given tau), jitted; Local fits it per neighbourhood of k inputs.
    `model="wishart"`: the earlier posterior of the paper's story taken as true
    (`fit_wishart`, `smoothie_model`); the keywords from `method` on apply to it only.

    With `labels=(rows, scores)`: the labels' posterior of each model's quality, eta_i,
    its mean score relative to the other models on the same labelled inputs
    (`_label_model.quality_draws`: score_ri = c_r + eta_i + noise, eta_i ~ N(0, tau^2)
    with the models' spread tau mixed over a grid by its evidence); theta_samples are
    exp(eta), one Global draw per sample. It is what `sj.route(..., labels=)` reads to
    drop models, and the "how sure" that `route --labels` prints.

    Args:
        embeddings: embedding of each model's output for each sample.
        key: PRNG key for the draws.
        inputs: input embeddings; with `k`, a posterior per input from its k nearest
            inputs (itself included).
        k: neighbourhood size for Local.
        num_samples: posterior draws.
        model: "additive" (default) or "wishart".
        labels: (rows, scores): rows (n_labels,) int indices of samples, scores
            (n_labels, n_models) judge scores, NaN where unjudged. Additive only.
        misfit_scale: sd of each model's own error in units of the pair misfit tau.
            Additive only (ignored by the Wishart).
        block_size: queries per block of the neighbour search.
        method: Wishart only: "nuts" (default for Global) or "laplace" (default, and the
            only choice, for Local).
        pool: Wishart Local only: sd of the hierarchical prior centred on the global
            posterior, "auto" to estimate it, or None (default) for no pooling.
        n_eff_per_sample: Wishart only: independent columns each sample contributes,
            "dispersion", "participation" or a number; None means "dispersion".
        prior_scale: Wishart only: sd of the weak prior on log sigma^2; None means
            `DEFAULT_PRIOR_SCALE` (2.0).
        num_warmup: Wishart only: NUTS warm-up steps; None means 500.
        sampler: Wishart Global NUTS only: a `nuts_sampler(num_samples, num_warmup)` to
            reuse across calls; None (default) builds a fresh one.

    Returns:
        A `Posterior`: theta_samples (num_samples, n_models) Global (with labels too), or
        (num_samples, n_samples, n_models) with inputs and k.

    Raises:
        ValueError: on bad arguments or labels (the message names the problem), and when
            a Wishart-only keyword (`method` to `sampler`) is given with the additive model.

    >>> x = jax.random.normal(jax.random.key(0), (200, 3, 8))
    >>> fit_posterior(x, key=jax.random.key(1), num_samples=100).theta_samples.shape
    (100, 3)
    """
    if model == "wishart" and labels is not None:
        raise ValueError("labels need model='additive'")
    if model == "wishart":
        return fit_wishart(
            embeddings,
            key=key,
            inputs=inputs,
            k=k,
            num_samples=num_samples,
            method=method,
            pool=pool,
            n_eff_per_sample="dispersion" if n_eff_per_sample is None else n_eff_per_sample,
            prior_scale=DEFAULT_PRIOR_SCALE if prior_scale is None else prior_scale,
            num_warmup=DEFAULT_NUM_WARMUP if num_warmup is None else num_warmup,
            block_size=block_size,
            sampler=sampler,
        )
    if model != "additive":
        raise ValueError(f"model must be 'additive' or 'wishart', got {model!r}")
    wishart_only = {
        "method": method,
        "n_eff_per_sample": n_eff_per_sample,
        "num_warmup": num_warmup,
        "pool": pool,
        "prior_scale": prior_scale,
        "sampler": sampler,
    }
    given = sorted(name for name, value in wishart_only.items() if value is not None)
    if given:
        raise ValueError(f"{given} apply to model='wishart' only (the additive posterior is exact)")
    embeddings = _validate.check_embeddings(embeddings)
    n, m, _ = embeddings.shape
    misfit_scale = float(misfit_scale)
    if not misfit_scale >= 0:
        raise ValueError(f"misfit_scale must be >= 0, got {misfit_scale}")
    if labels is not None:
        labels = check_labels(labels, n, m)
    key_theta, key_labels = jax.random.split(key)
    if labels is not None:
        eta = quality_draws(key_labels, label_evidence(np.asarray(labels[1])), num_samples)
        return Posterior(jax.numpy.exp(eta - jax.numpy.max(eta, axis=-1, keepdims=True)))
    return Posterior(
        additive_theta_draws(
            key_theta,
            embeddings,
            inputs=inputs,
            k=k,
            num_samples=num_samples,
            misfit_scale=misfit_scale,
            block_size=block_size,
        )
    )

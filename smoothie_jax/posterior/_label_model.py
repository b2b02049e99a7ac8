"""Labels and output lengths in the posterior: the label model and its exact posterior.

Per-input quality q_ni = w_len z(len)_ni + w_cons z(log theta)_ni + b_i: the recommended
label-free router's two signals (`_signals`, LenCons) plus a bias per model that only
labels can see. A judge score is score_ni = c_n + q_ni + noise (c_n: how hard input n
is; removed by centring each labelled row over its judged models). Conjugate
normal-inverse-gamma, so the posterior is exact and cheap: without labels it is the
prior, centred on the recommended router (LenCons where families confound the
consensus, the consensus alone where they do not); labels move w and b.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int, PRNGKeyArray

from .. import _validate
from ._linalg import cholesky, spd_inv

LABEL_PRIOR_SIGNAL = 0.25  # prior mean of the leading signal's weight, in noise sds per z
LABEL_PRIOR_SD = 0.1  # prior sd of w_len and w_cons, in noise sds: a few labels refine the
# label-free router rather than overturn it
BIAS_PRIOR_SD = 0.25  # prior sd of each model's bias b_i, in noise sds, where families
# confound the consensus (the labels must be able to overturn it)
TRUSTED_BIAS_PRIOR_SD = 0.1  # the same where the gate trusts the consensus: a few noisy
# verdicts refine it rather than overturn it
NOISE_SHAPE = 2.0  # inverse-gamma shape of the noise variance (mean = the labels' spread)


def check_labels(
    labels: object, n: int, m: int
) -> tuple[Int[Array, " n_labels"], Float[Array, "n_labels n_models"]]:
    """(rows, scores) validated: rows ints in [0, n), scores (n_labels, m), finite or NaN."""
    if not isinstance(labels, (tuple, list)) or len(labels) != 2:
        raise ValueError("labels must be a pair (rows, scores)")
    rows, scores = np.asarray(labels[0]), np.asarray(labels[1], dtype=np.float64)
    if rows.ndim != 1 or not (np.issubdtype(rows.dtype, np.integer) or rows.size == 0):
        raise ValueError(
            f"labels rows must be a 1-d array of ints, got shape {rows.shape}, dtype {rows.dtype}"
        )
    if scores.ndim != 2 or scores.shape[1] != m:
        raise ValueError(
            f"labels scores must have shape (n_labels, n_models) = ({rows.size}, {m}), "
            f"got {scores.shape}"
        )
    if scores.shape[0] != rows.size:
        raise ValueError(
            f"labels rows and scores differ in length: {rows.size} rows, {scores.shape[0]} "
            "score rows"
        )
    if rows.size and (rows.min() < 0 or rows.max() >= n):
        bad = rows[(rows < 0) | (rows >= n)]
        raise ValueError(f"labels rows must be in [0, {n}) (the samples), got {bad[:5].tolist()}")
    if np.isinf(scores).any():
        raise ValueError(
            f"labels scores contain inf (at {np.argwhere(np.isinf(scores))[0].tolist()})"
        )
    judged = np.sum(~np.isnan(scores), axis=1)
    if rows.size and not (judged >= 2).any():
        raise ValueError(
            "labels scores: no labelled row has two or more judged models (NaN = unjudged); "
            "a row's scores only inform quality relative to the other models on that row"
        )
    return jnp.asarray(rows.astype(np.int32)), jnp.asarray(scores)


def _standardise_rows(x: Array) -> Array:
    """Centre each row over models; one scale for all (the `_signals` z())."""
    c = x - jnp.mean(x, axis=-1, keepdims=True)
    sd = jnp.sqrt(jnp.mean(c * c))
    return c / jnp.where(sd > 0, sd, 1.0)


def length_signal(lengths: object, shape: tuple[int, int]) -> Float[Array, "n_samples n_models"]:
    """Checked output lengths as the length feature z(log(1 + len)), shape (n, m)."""
    return _standardise_rows(jnp.log1p(_validate.check_lengths(lengths, shape)))


def _features(theta: Array, length_z: Array | None) -> Array:
    """(..., m, n_features): [z(len)], z(log theta), one-hot bias; z per draw."""
    log_theta = jnp.log(theta)
    cons = _standardise_rows(log_theta.reshape(-1, log_theta.shape[-1])).reshape(theta.shape)
    m = theta.shape[-1]
    eye = jnp.broadcast_to(jnp.eye(m, dtype=theta.dtype), (*theta.shape[:-1], m, m))
    parts = [cons[..., None], eye]
    if length_z is not None:
        parts.insert(0, jnp.broadcast_to(length_z, theta.shape)[..., None])
    return jnp.concatenate(parts, axis=-1)


def label_model(
    features: Float[Array, "n_labels n_models n_features"],
    scores: Float[Array, "n_labels n_models"],
    prior_mean: Float[Array, " n_features"],
    prior_sd: Float[Array, " n_features"],
    noise_scale: Float[Array, ""],
) -> None:
    """NumPyro model linking latent quality to judge scores (documentation and tests).

    score_ri = c_r + features_ri . w + eps, eps ~ N(0, sigma^2); centring each row over
    its judged models removes c_r. w ~ N(prior_mean s, (prior_sd sigma)^2) with s =
    noise_scale (the labels' centred spread),
    sigma^2 ~ InverseGamma(NOISE_SHAPE, (NOISE_SHAPE - 1) noise_scale^2). NaN scores are
    unjudged and masked out. `fit_posterior(..., labels=...)` draws from its exact
    conjugate posterior rather than running MCMC.
    """
    import numpyro
    import numpyro.distributions as dist

    var = numpyro.sample(
        "noise_var", dist.InverseGamma(NOISE_SHAPE, (NOISE_SHAPE - 1) * noise_scale**2)
    )
    sd = jnp.sqrt(var)
    w = numpyro.sample("w", dist.Normal(prior_mean * noise_scale, prior_sd * sd).to_event(1))
    judged = ~jnp.isnan(scores)
    x, y = _centre_judged(features, scores, judged)
    with numpyro.handlers.mask(mask=judged):
        numpyro.sample("scores", dist.Normal(x @ w, sd), obs=y)


def _centre_judged(features: Array, scores: Array, judged: Array) -> tuple[Array, Array]:
    """Features and scores minus their row means over the judged models; 0 elsewhere."""
    count = jnp.maximum(jnp.sum(judged, axis=-1, keepdims=True), 1)
    y = jnp.where(judged, scores, 0.0)
    y = jnp.where(judged, y - jnp.sum(y, -1, keepdims=True) / count, 0.0)
    w = judged[..., None]
    x_mean = jnp.sum(jnp.where(w, features, 0.0), axis=-2, keepdims=True) / count[..., None]
    return jnp.where(w, features - x_mean, 0.0), y


def _label_prior(
    n_features: int, with_lengths: bool, m: int, confounded: bool
) -> tuple[Array, Array]:
    """Prior mean and sd of w = [w_len], w_cons, b: the recommended router's signals.

    Where families confound the consensus, LenCons (w_len : w_cons = 2 : 1) and biases
    free enough for labels to overturn it; where the consensus is trusted, the consensus
    alone (w_len centred on 0, still learnable from labels) and tighter biases, as
    `sj.route(method="auto")` routes without labels.
    """
    len_mean, cons_mean = (
        (LABEL_PRIOR_SIGNAL, LABEL_PRIOR_SIGNAL / 2) if confounded else (0.0, LABEL_PRIOR_SIGNAL)
    )
    signal = [len_mean] if with_lengths else []
    mean = jnp.array([*signal, cons_mean, *([0.0] * m)])
    bias_sd = BIAS_PRIOR_SD if confounded else TRUSTED_BIAS_PRIOR_SD
    sd = jnp.array([*([LABEL_PRIOR_SD] * (len(signal) + 1)), *([bias_sd] * m)])
    assert mean.shape[0] == n_features
    return mean, sd


def _label_draws(
    key: PRNGKeyArray,
    features: Array,
    scores: Array,
    prior_mean: Array,
    prior_sd: Array,
    num_samples: int,
) -> Array:
    """Exact normal-inverse-gamma posterior draws of w: (num_samples, n_features)."""
    judged = ~jnp.isnan(scores)
    x, y = _centre_judged(features, scores, judged)
    x, y = x.reshape(-1, x.shape[-1]), y.reshape(-1)
    n_obs = jnp.sum(judged) - jnp.sum(jnp.any(judged, axis=-1))  # a centred row loses 1
    spread = jnp.sqrt(jnp.sum(y * y) / jnp.maximum(n_obs, 1))
    scale = jnp.where(spread > 0, spread, 1.0)  # the noise prior's scale, in score units
    # Prior w | sigma^2 ~ N(mu0 sigma, diag(sd0 sigma)^2): in units of sigma, w / sigma.
    # Written for u = w: prior mean mu0 s, covariance sigma^2 diag(sd0^2) with s = scale.
    mu0 = prior_mean * scale
    prec0 = jnp.diag(1 / prior_sd**2)
    prec = prec0 + x.T @ x
    cov = spd_inv(prec)
    mean = cov @ (prec0 @ mu0 + x.T @ y)
    a = NOISE_SHAPE + n_obs / 2
    b = (NOISE_SHAPE - 1) * scale**2 + 0.5 * (y @ y + mu0 @ prec0 @ mu0 - mean @ prec @ mean)
    key_var, key_w = jax.random.split(key)
    var = b / jax.random.gamma(key_var, a, (num_samples,))
    chol = cholesky(cov)
    z = jax.random.normal(key_w, (num_samples, mean.shape[0]))
    return mean[None, :] + jnp.sqrt(var)[:, None] * (z @ chol.T)


def quality_with_labels(
    key: PRNGKeyArray,
    theta: Array,
    length_z: Array | None,
    labels: tuple[Array, Array] | None,
    m: int,
    confounded: bool,
) -> Array:
    """Per-draw quality exp(q) from consensus draws, lengths and labels.

    theta: (S, m) Global or (S, n, m) per input; length_z: (n, m) or None. Returns draws
    shaped (S, m) when both are Global, else (S, n, m).
    """
    if length_z is not None and theta.ndim == 2:
        theta = jnp.broadcast_to(theta[:, None, :], (theta.shape[0], length_z.shape[0], m))
    feats = _features(theta, length_z)  # (S, [n,] m, F)
    prior_mean, prior_sd = _label_prior(feats.shape[-1], length_z is not None, m, confounded)
    # The regression is fitted at the posterior mean of the consensus feature.
    mean_feats = jnp.mean(feats, axis=0)
    if labels is None or labels[0].shape[0] == 0:
        rows = jnp.zeros((0,), jnp.int32)
        lab_feats = jnp.zeros((0, m, feats.shape[-1]))
        lab_scores = jnp.zeros((0, m))
    else:
        rows, lab_scores = labels
        lab_feats = (
            mean_feats[rows]
            if mean_feats.ndim == 3
            else jnp.broadcast_to(mean_feats, (rows.shape[0], *mean_feats.shape))
        )
    w = _label_draws(
        key, lab_feats, lab_scores.astype(feats.dtype), prior_mean, prior_sd, theta.shape[0]
    )
    q = jnp.einsum("s...f,sf->s...", feats, w.astype(feats.dtype))
    return jnp.exp(q - jnp.max(q, axis=-1, keepdims=True))

"""Labels in the posterior: a label model whose labels can overturn its prior.

Per-input quality q_ni = beta r_ni + b_i: the recommended label-free router's score r
(`_signals.recommended_score`) plus a bias per model that only labels can see. A judge
score is score_ni = c_n + q_ni + noise (c_n: how hard input n is; removed by centring each
labelled row over its judged models). Conjugate normal-inverse-gamma given the prior's
two sds; the sds themselves are averaged over a log grid by the labels' own evidence
(empirical Bayes), so where a few labels show that the router is wrong, the biases win.
Without labels the posterior mean routes exactly as the router does.

Measured (`benchmarks/uncertainty_dev.py`, 40 ensembles per dev set): at or above
Best-on-Val at every budget n >= 5 on the three dev sets, where fixed prior sds of 0.1
noise sds (the earlier model) trail it on `alpaca_eval_dev` (0.75 against 0.88 at n = 5).
The grids were fixed before measuring, not tuned per set.
"""

from __future__ import annotations

import itertools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int, PRNGKeyArray

from ._linalg import cholesky, spd_inv
from ._validate import ArrayLike

BETA_PRIOR = 0.25  # prior mean of the router's weight beta, in noise sds per z unit
NOISE_SHAPE = 2.0  # inverse-gamma shape of the noise variance (mean = the labels' spread)
BETA_SDS = (0.05, 0.2, 0.8)  # grid of the prior sd of beta, in noise sds
BIAS_SDS = (0.05, 0.1, 0.2, 0.4, 0.8, 1.6)  # grid of the prior sd of each model's bias
GRID = tuple(itertools.product(BETA_SDS, BIAS_SDS))


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
    return jnp.asarray(rows.astype(np.int32)), jnp.asarray(scores, jnp.float32)


class LabelFit(eqx.Module):
    """The exact posterior of w = (beta, b_1..b_m), a mixture over the prior-sd grid.

    Attributes:
        weights: (G,) posterior weight of each grid point (its evidence, normalised).
        mean: (G, 1 + m) posterior mean of w per grid point.
        cov: (G, 1 + m, 1 + m) posterior covariance of w / sigma per grid point.
        shape, rate: (G,) inverse-gamma posterior of the noise variance sigma^2.
    """

    weights: Array
    mean: Array
    cov: Array
    shape: Array
    rate: Array

    @property
    def posterior_mean(self) -> Float[Array, " n_weights"]:
        """E[w], averaged over the grid."""
        return self.weights @ self.mean


def _design(r: Array, scores: Array) -> tuple[Array, Array, Array]:
    """Rows of (centred router score, centred one-hot) and centred scores over the judged
    models of each labelled row; 0 where unjudged. Returns X (R m, 1 + m), y, judged."""
    judged = ~jnp.isnan(scores)
    count = jnp.maximum(jnp.sum(judged, axis=-1, keepdims=True), 1)
    m = scores.shape[-1]
    features = jnp.concatenate(
        [r[..., None], jnp.broadcast_to(jnp.eye(m), (*r.shape, m))], axis=-1
    )  # (R, m, 1 + m)
    w = judged[..., None]
    x_mean = jnp.sum(jnp.where(w, features, 0.0), axis=-2, keepdims=True) / count[..., None]
    x = jnp.where(w, features - x_mean, 0.0)
    y = jnp.where(judged, scores, 0.0)
    y = jnp.where(judged, y - jnp.sum(y, -1, keepdims=True) / count, 0.0)
    return x.reshape(-1, 1 + m), y.reshape(-1), judged


@jax.jit
def fit_labelled_rows(
    r: Float[Array, "n_labels n_models"], scores: Float[Array, "n_labels n_models"]
) -> LabelFit:
    """The label model's exact posterior given the labelled rows' router scores and judge
    scores (NaN: unjudged); with no rows, the prior."""
    x, y, judged = _design(r, scores)
    m = scores.shape[-1]
    n_obs = jnp.sum(judged) - jnp.sum(jnp.any(judged, axis=-1))  # a centred row loses 1
    spread2 = jnp.sum(y * y) / jnp.maximum(n_obs, 1)
    scale2 = jnp.where(spread2 > 0, spread2, 1.0)  # the noise prior's scale, score units
    mu0 = jnp.zeros(1 + m).at[0].set(BETA_PRIOR * jnp.sqrt(scale2))
    xtx, xty = x.T @ x, x.T @ y

    def one(sds: Array) -> tuple[Array, ...]:
        prec0 = jnp.diag(1 / jnp.concatenate([sds[:1], jnp.full(m, sds[1])]) ** 2)
        prec = prec0 + xtx
        cov = spd_inv(prec)
        mean = cov @ (prec0 @ mu0 + xty)
        a = NOISE_SHAPE + n_obs / 2
        b = (NOISE_SHAPE - 1) * scale2 + 0.5 * (y @ y + mu0 @ prec0 @ mu0 - mean @ prec @ mean)
        b = jnp.maximum(b, 1e-30)
        logdet = 2 * jnp.sum(jnp.log(jnp.diag(cholesky(prec))))
        logml = (
            0.5 * jnp.sum(jnp.log(jnp.diag(prec0)))
            - 0.5 * logdet
            + NOISE_SHAPE * jnp.log((NOISE_SHAPE - 1) * scale2)
            - a * jnp.log(b)
        )
        return logml, mean, cov, a, b

    logml, mean, cov, shape, rate = jax.vmap(one)(jnp.asarray(GRID, jnp.float32))
    return LabelFit(jax.nn.softmax(logml), mean, cov, shape, rate)


def fit_label_model(
    r: Float[Array, "n_samples n_models"], labels: tuple[ArrayLike, ArrayLike] | None
) -> LabelFit:
    """`fit_labelled_rows` on the labelled rows of the router's score r (an output whose
    score is -inf, a model that did not answer, counts as unjudged)."""
    m = r.shape[-1]
    if labels is None or labels[0].shape[0] == 0:
        return fit_labelled_rows(jnp.zeros((0, m)), jnp.zeros((0, m)))
    rows, scores = jnp.asarray(labels[0]), jnp.asarray(labels[1])
    r_rows = r[rows]
    scores = jnp.where(jnp.isfinite(r_rows), scores, jnp.nan)
    return fit_labelled_rows(jnp.where(jnp.isfinite(r_rows), r_rows, 0.0), scores)


def quality_mean(
    r: Float[Array, "n_samples n_models"], fit: LabelFit
) -> Float[Array, "n_samples n_models"]:
    """Posterior mean quality E[beta] r + E[b] (-inf where r is)."""
    w = fit.posterior_mean
    return w[0] * r + w[1:][None, :]


def quality_draws(
    key: PRNGKeyArray, r: Float[Array, "n_samples n_models"], fit: LabelFit, num_samples: int
) -> Float[Array, "num_samples n_samples n_models"]:
    """Draws of exp(q - max q), q = beta r + b, from the mixture posterior."""
    key_grid, key_var, key_w = jax.random.split(key, 3)
    g = jax.random.categorical(key_grid, jnp.log(fit.weights), shape=(num_samples,))
    var = fit.rate[g] / jax.random.gamma(key_var, fit.shape[g])
    chol = jax.vmap(cholesky)(fit.cov)[g]
    z = jax.random.normal(key_w, (num_samples, fit.mean.shape[-1]))
    w = fit.mean[g] + jnp.sqrt(var)[:, None] * jnp.einsum("sij,sj->si", chol, z)
    q = w[:, None, None, 0] * r[None] + w[:, None, 1:]
    q = jnp.where(jnp.isfinite(q), q, -jnp.inf)
    return jnp.exp(q - jnp.max(q, axis=-1, keepdims=True))


def label_model(
    r: Float[Array, "n_labels n_models"],
    scores: Float[Array, "n_labels n_models"],
    beta_sd: float,
    bias_sd: float,
    noise_scale: Float[Array, ""],
) -> None:
    """NumPyro model of one grid point (documentation and tests): score_ri = c_r +
    beta r_ri + b_i + eps, eps ~ N(0, sigma^2); centring each row over its judged models
    removes c_r; (beta, b) ~ N((BETA_PRIOR s, 0), sigma^2 diag(beta_sd^2, bias_sd^2)) with
    s = noise_scale, sigma^2 ~ InverseGamma(NOISE_SHAPE, (NOISE_SHAPE - 1) s^2). NaN
    scores are unjudged and masked out. `fit_labelled_rows` is its exact posterior."""
    import numpyro
    import numpyro.distributions as dist

    var = numpyro.sample(
        "noise_var", dist.InverseGamma(NOISE_SHAPE, (NOISE_SHAPE - 1) * noise_scale**2)
    )
    sd = jnp.sqrt(var)
    m = scores.shape[-1]
    prior_mean = jnp.zeros(1 + m).at[0].set(BETA_PRIOR * noise_scale)
    prior_sd = jnp.concatenate([jnp.array([beta_sd]), jnp.full(m, bias_sd)]) * sd
    w = numpyro.sample("w", dist.Normal(prior_mean, prior_sd).to_event(1))
    x, y, judged = _design(r, scores)
    with numpyro.handlers.mask(mask=judged.reshape(-1)):
        numpyro.sample("scores", dist.Normal(x @ w, sd), obs=y)

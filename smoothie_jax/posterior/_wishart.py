"""Posterior uncertainty on Smoothie's quality scores: NumPyro models and exact posteriors.

Default (`fit_posterior(model="additive")`, bottom of this file): the mean pair distances
are additive in each model's error plus a lack-of-fit term learned from the data, so the
posterior widens where families of models share errors and stays tight where the story
fits; labels (and output lengths) enter the same posterior as observations of quality.
The earlier model (`model="wishart"`), the paper's story taken as true, follows first:

lambda_i = y + e_i, e_i ~ N(0, sigma_i^2 I). Contrasts between models remove the unknown
y exactly: with a Helmert matrix C (C 1 = 0, orthonormal rows), each embedding axis of
C lambda is N(0, Sigma) with Sigma = C diag(sigma^2) C^T. Their scatter over samples and
axes is -1/2 C D C^T, so the likelihood is a Wishart in the same mean squared-distance
matrix D that the closed form uses, and costs O(m^3) whatever the number of samples.

Assumption made visible: the Wishart treats every sample-axis as an independent column.
Embedding axes are correlated, and inputs are unequally hard, so counting n x dim columns
makes the posterior far too sure. `fit_posterior` counts fewer columns per sample:
`dispersion_dim` (default; matches the observed spread of the per-sample statistic, and
so the bootstrap spread of the closed form) or `effective_dim` (the participation ratio
of the axis covariance, which corrects for correlated axes only). On the shared
AlpacaEval data with MiniLM they are about 11 and 191 of 384 axes: the participation
ratio alone leaves the posterior about 5x narrower than the bootstrap.

Inference: NUTS for Global (m parameters, cheap); a Laplace approximation per input for
Local (MAP by L-BFGS in optax, Gaussian from the Hessian, vmapped over inputs).
"""

from __future__ import annotations

from typing import Any, Literal, final

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from .. import _validate
from .._distances import sample_distances
from .._estimator import DEFAULT_EPS, triplet_delta
from .._neighbours import DEFAULT_BLOCK_SIZE, knn, local_distances
from ..families import confounded as families_confound

DEFAULT_PRIOR_SCALE = 2.0  # sd of log sigma^2: a factor e^2 ~ 7 either way at one sd


def helmert(m: int) -> Float[Array, "m-1 m"]:
    """Helmert contrasts: orthonormal rows, each orthogonal to the all-ones vector."""
    rows = []
    for i in range(1, m):
        row = jnp.concatenate([jnp.ones(i), jnp.array([-float(i)]), jnp.zeros(m - i - 1)])
        rows.append(row / jnp.sqrt(i * (i + 1.0)))
    return jnp.stack(rows)


def contrast_scatter(
    distances: Float[Array, "n_models n_models"], dim: int
) -> Float[Array, "n_models-1 n_models-1"]:
    """Mean per-axis scatter of the contrasts C lambda, from D alone: -1/2 C D C^T / dim."""
    c = helmert(distances.shape[-1])
    return -0.5 * c @ distances @ c.T / dim


def effective_dim(embeddings: Float[Array, "n_samples n_models dim"]) -> Float[Array, ""]:
    """Effective number of independent embedding axes: the participation ratio.

    With A the axis covariance of the models' deviations from their per-sample mean
    (those carry all the information about sigma), tr(A)^2 / tr(A^2) equals dim when
    the axes are independent with equal variance and 1 when one direction dominates.
    """
    centred = embeddings - jnp.mean(embeddings, axis=1, keepdims=True)
    flat = centred.reshape(-1, centred.shape[-1])
    axis_cov = jnp.matmul(flat.T, flat, precision=jax.lax.Precision.HIGHEST)
    return jnp.trace(axis_cov) ** 2 / jnp.sum(axis_cov * axis_cov)


def dispersion_dim(embeddings: Float[Array, "n_samples n_models dim"]) -> Float[Array, ""]:
    """Independent columns per sample that match the observed spread across samples.

    Under the model each sample's contrast scatter S_n is Wishart with nu columns, so
    Var(S_n[a, b]) = (Sigma_ab^2 + Sigma_aa Sigma_bb) / nu. Solving for nu with the
    sample mean and variance of S_n (pooled over entries) counts correlated axes, and any
    extra spread from inputs being unequally hard, as fewer independent columns: the
    posterior then matches the bootstrap spread of the closed form over inputs.
    """
    dim = embeddings.shape[-1]
    per_sample = jax.vmap(lambda d: contrast_scatter(d, dim))(sample_distances(embeddings))
    mean = jnp.mean(per_sample, axis=0)
    var = jnp.var(per_sample, axis=0, ddof=1)
    diag = jnp.diag(mean)
    return jnp.sum(mean * mean + diag[:, None] * diag[None, :]) / jnp.sum(var)


def smoothie_model(
    scatter: Float[Array, "n_models-1 n_models-1"],
    n_eff: Float[Array, ""],
    prior_loc: Float[Array, " n_models"],
    prior_scale: Float[Array, " n_models"] | float = DEFAULT_PRIOR_SCALE,
) -> None:
    """NumPyro model of Smoothie's generative story, observed through contrast scatter.

    Args:
        scatter: mean per-axis contrast scatter, `contrast_scatter(D, dim)`.
        n_eff: independent columns behind `scatter` (samples x effective axes).
        prior_loc: prior mean of log sigma_i^2. `fit_posterior` centres it on the data's
            scale (half the mean squared distance per axis), or on the global posterior
            when pooling; the prior is then weak and invariant to the embedding scale.
        prior_scale: prior sd of log sigma_i^2.
    """
    import numpyro
    import numpyro.distributions as dist

    m = prior_loc.shape[-1]
    log_var = numpyro.sample("log_var", dist.Normal(prior_loc, prior_scale).expand([m]).to_event(1))
    variance = jnp.exp(log_var)
    numpyro.deterministic("theta", 1 / (2 * variance))
    c = helmert(m)
    cov = c @ (variance[:, None] * c.T)
    # The summed scatter of n_eff columns is Wishart(n_eff, cov); the mean is that / n_eff.
    numpyro.sample("scatter", dist.Wishart(n_eff, scale_matrix=cov / n_eff), obs=scatter)


@final
class Posterior(eqx.Module):
    """Posterior draws of theta. Global: (num_samples, n_models); Local: (num_samples,
    n_inputs, n_models)."""

    theta_samples: Float[Array, "num_samples *batch n_models"]

    @property
    def mean(self) -> Float[Array, "*batch n_models"]:
        """Posterior mean of theta."""
        return jnp.mean(self.theta_samples, axis=0)

    @property
    def prob_best(self) -> Float[Array, "*batch n_models"]:
        """Posterior probability that each model has the highest theta; sums to 1."""
        best = jnp.argmax(self.theta_samples, axis=-1)
        return jnp.mean(jax.nn.one_hot(best, self.theta_samples.shape[-1]), axis=0)

    def interval(self, level: float = 0.9) -> tuple[Array, Array]:
        """Equal-tailed credible interval (lower, upper), each shaped like one draw."""
        if not 0 < level < 1:
            raise ValueError(f"level must be in (0, 1), got {level}")
        tail = (1 - level) / 2
        lower, upper = jnp.quantile(self.theta_samples, jnp.array([tail, 1 - tail]), axis=0)
        return lower, upper

    def route(self) -> Array:
        """The most probably best model (per input where the posterior is local)."""
        return jnp.argmax(self.prob_best, axis=-1)


def _log_var_start(distances: Array, dim: int) -> Array:
    """The closed form's log sigma^2, floored like the closed form: a start and a centre."""
    return jnp.log(jnp.maximum(triplet_delta(distances), DEFAULT_EPS) / dim)


def _data_scale(distances: Array, dim: int) -> Array:
    """log of half the mean squared distance per axis: the scale of a typical sigma^2."""
    m = distances.shape[-1]
    return jnp.log(jnp.sum(distances) / (m * (m - 1)) / (2 * dim))


def _nuts(
    key: PRNGKeyArray,
    scatter: Array,
    n_eff: Array,
    prior_loc: Array,
    prior_scale: float,
    start: Array,
    mcmc: Any,
) -> Array:
    args = (scatter, n_eff, prior_loc, jnp.asarray(prior_scale, scatter.dtype))
    # log_var is unconstrained, so the closed form is a valid initial point as it is.
    mcmc.run(key, *args, init_params={"log_var": start})
    return mcmc.get_samples()["theta"]


def nuts_sampler(num_samples: int = 1000, num_warmup: int = 500) -> Any:
    """A NumPyro NUTS sampler of `smoothie_model` that compiles once for its sizes.

    Pass it to `fit_posterior(..., sampler=...)` to fit many data sets (ensembles, say)
    without recompiling: the data are arguments of the compiled model (jit_model_args).
    The caller holds it; nothing is cached in the library.
    """
    from numpyro.infer import MCMC, NUTS

    return MCMC(
        NUTS(smoothie_model),
        num_warmup=num_warmup,
        num_samples=num_samples,
        progress_bar=False,
        jit_model_args=True,
    )


def _laplace(
    key: PRNGKeyArray,
    scatter: Array,
    n_eff: Array,
    prior_loc: Array,
    prior_scale: float,
    start: Array,
    num_samples: int,
    steps: int = 50,
) -> tuple[Array, Array, Array]:
    """Laplace approximation in log sigma^2: (theta draws, mode, covariance)."""
    import optax
    from numpyro.infer.util import log_density

    def loss(log_var: Array) -> Array:
        args = (scatter, n_eff, prior_loc, prior_scale)
        return -log_density(smoothie_model, args, {}, {"log_var": log_var})[0]

    solver = optax.lbfgs()
    value_and_grad = optax.value_and_grad_from_state(loss)

    def step(carry: tuple, _: None) -> tuple:
        params, state = carry
        value, grad = value_and_grad(params, state=state)
        updates, state = solver.update(grad, state, params, value=value, grad=grad, value_fn=loss)
        return (optax.apply_updates(params, updates), state), None

    (mode, _), _ = jax.lax.scan(step, (start, solver.init(start)), None, length=steps)
    precision = jax.hessian(loss)(mode)
    # Symmetrise, and keep it positive definite where the mode sits on a flat ridge.
    precision = 0.5 * (precision + precision.T) + 1e-6 * jnp.eye(mode.shape[0])
    cov = jnp.linalg.inv(precision)
    draws = jax.random.multivariate_normal(key, mode, cov, (num_samples,))
    return 1 / (2 * jnp.exp(draws)), mode, cov


_laplace_one = jax.jit(_laplace, static_argnames=("num_samples", "steps"))
# One Laplace fit per input: keys, scatter and start vary; the prior is shared.
_laplace_many = jax.jit(
    jax.vmap(_laplace, in_axes=(0, 0, None, None, None, 0, None, None)),
    static_argnames=("num_samples", "steps"),
)


def _fit_wishart(
    embeddings: Float[Array, "n_samples n_models dim"],
    *,
    key: PRNGKeyArray,
    inputs: Float[Array, "n_samples input_dim"] | None = None,
    k: int | None = None,
    num_samples: int = 1000,
    method: Literal["nuts", "laplace"] | None = None,
    pool: float | Literal["auto"] | None = None,
    n_eff_per_sample: float | Literal["dispersion", "participation"] = "dispersion",
    prior_scale: float = DEFAULT_PRIOR_SCALE,
    num_warmup: int = 500,
    block_size: int = DEFAULT_BLOCK_SIZE,
    sampler: Any | None = None,
) -> Posterior:
    """The Wishart posterior (`model="wishart"` of `fit_posterior`): the paper's story
    taken as true, Global or Local.

    Args:
        embeddings: embedding of each model's output for each sample.
        key: PRNG key for the draws.
        inputs: input embeddings; with `k`, a posterior per input from its k nearest
            inputs (itself included), as `fit_local`.
        k: neighbourhood size for Local.
        num_samples: posterior draws.
        method: "nuts" (default for Global) or "laplace" (default, and the only choice,
            for Local: one NUTS run per input is too slow for thousands of inputs).
        pool: Local only. Hierarchical pooling: each input's log sigma^2 gets a prior
            centred on the global posterior mean with this sd, so small neighbourhoods
            borrow strength. "auto" estimates the sd from the spread of the local modes
            (method of moments); None uses the weak prior of Global.
        n_eff_per_sample: independent columns each sample contributes: "dispersion"
            (default, `dispersion_dim`), "participation" (`effective_dim`) or a number.
            Passing `dim` assumes independent axes (far too confident on real data).
        prior_scale: sd of the weak prior on log sigma^2.
        num_warmup: NUTS warm-up steps.
        sampler: a `nuts_sampler(num_samples, num_warmup)` to reuse across calls
            (Global NUTS only); default a fresh one.
        block_size: queries per block of the neighbour search.

    Returns:
        A `Posterior` with `theta_samples`, `mean`, `prob_best` and `interval(level)`.

    """
    embeddings = _validate.check_embeddings(embeddings)
    n, m, dim = embeddings.shape
    per_sample = sample_distances(embeddings)
    if n_eff_per_sample == "dispersion":
        n_eff_per_sample = float(dispersion_dim(embeddings))
    elif n_eff_per_sample == "participation":
        n_eff_per_sample = float(effective_dim(embeddings))
    elif isinstance(n_eff_per_sample, str):
        raise ValueError(
            "n_eff_per_sample must be 'dispersion', 'participation' or a number, "
            f"got {n_eff_per_sample!r}"
        )
    n_eff_per_sample = _validate.check_positive("n_eff_per_sample", n_eff_per_sample)
    if (k or n) * n_eff_per_sample <= m - 2:
        raise ValueError(
            f"the Wishart likelihood needs more than n_models - 2 = {m - 2} independent "
            f"columns, got {k or n} samples x {n_eff_per_sample:.3g}: use a larger k"
        )
    global_d = jnp.mean(per_sample, axis=0)
    prior_loc = jnp.full(m, _data_scale(global_d, dim))
    key_global, key_local = jax.random.split(key)

    if inputs is None:
        if k is not None or pool is not None:
            raise ValueError("k and pool need inputs (they define Local neighbourhoods)")
        method = method or "nuts"
        args = (
            contrast_scatter(global_d, dim),
            jnp.asarray(n * n_eff_per_sample),
            prior_loc,
            prior_scale,
            _log_var_start(global_d, dim),
            num_samples,
        )
        if method == "nuts":
            sampler = nuts_sampler(num_samples, num_warmup) if sampler is None else sampler
            return Posterior(_nuts(key_global, *args[:-1], sampler))
        if method == "laplace":
            return Posterior(_laplace_one(key_global, *args)[0])
        raise ValueError(f"method must be 'nuts' or 'laplace', got {method!r}")

    inputs = _validate.check_inputs(inputs, n)
    if k is None:
        raise ValueError("Local posterior needs k (neighbours per input)")
    k = _validate.check_k(k, n)
    if method not in (None, "laplace"):
        raise ValueError(f"Local posteriors use method='laplace', got {method!r}")
    local_d = local_distances(
        per_sample, inputs, inputs, k, include_self=True, block_size=block_size
    )
    scatter = jax.vmap(lambda d: contrast_scatter(d, dim))(local_d)
    start = jax.vmap(lambda d: _log_var_start(d, dim))(local_d)
    n_eff = jnp.asarray(k * n_eff_per_sample)
    keys = jax.random.split(key_local, n)

    def laplace_all(loc: Array, scale: Array | float) -> tuple[Array, Array, Array]:
        scale = jnp.broadcast_to(jnp.asarray(scale, scatter.dtype), (m,))
        return _laplace_many(keys, scatter, n_eff, loc, scale, start, num_samples, 50)

    if pool is None:
        draws, _, _ = laplace_all(prior_loc, prior_scale)
    else:
        _, global_mode, _ = _laplace_one(
            key_global,
            contrast_scatter(global_d, dim),
            jnp.asarray(n * n_eff_per_sample),
            prior_loc,
            prior_scale,
            _log_var_start(global_d, dim),
            1,
        )
        if pool == "auto":
            # Spread of local modes = prior spread + estimation noise; subtract the noise.
            _, modes, covs = laplace_all(prior_loc, prior_scale)
            noise = jnp.mean(jax.vmap(jnp.diag)(covs), axis=0)
            spread = jnp.var(modes, axis=0) - noise
            pool_scale = jnp.sqrt(jnp.maximum(spread, 1e-4))
        else:
            pool_scale = _validate.check_positive("pool", pool)
        draws, _, _ = laplace_all(global_mode, pool_scale)
    return Posterior(jnp.moveaxis(draws, 1, 0))


# ------------------------------------------------------------------ the additive model
#
# The Wishart above is the posterior of the paper's story taken as true. On real data the
# story is wrong in a way the data can show: families of models that share errors make
# the mean distance matrix non-additive. The default posterior below says so.

MISFIT_SCALE = 1.0  # sd of each model's own error, in units of tau (the pair misfit)
TAU_SCALE = 0.1  # half-Cauchy scale of tau, as a fraction of a typical a_i
TAU_GRID = 48  # log-spaced values of tau, 1e-4 to 10 typical a_i
POSITIVE_FLOOR = 0.05  # a_i below this fraction of a typical a_i is bent smoothly to > 0
ADDITIVE_BATCH = 128  # Local: neighbourhoods per jitted, vmapped block (bounds the memory)


# Small symmetric positive-definite algebra in plain XLA ops. jnp.linalg's cholesky and
# inv call LAPACK (OpenBLAS from numpy/scipy, with its own pthreads); called from XLA's
# threads on many small matrices at once it deadlocked (0% CPU, never returns) on the
# shared 2-core machine. These loops are O(p^3) like LAPACK and p is at most ~50 here.


def _chol(a: Array) -> Array:
    """Lower Cholesky factor of one SPD matrix (p, p)."""
    p = a.shape[-1]
    idx = jnp.arange(p)

    def column(j: Array, low: Array) -> Array:
        row_j = jax.lax.dynamic_index_in_dim(low, j, axis=0, keepdims=False)
        v = jax.lax.dynamic_index_in_dim(a, j, axis=1, keepdims=False) - low @ row_j
        d = jnp.sqrt(jnp.maximum(v[j], jnp.finfo(a.dtype).tiny))
        col = jnp.where(idx > j, v / d, 0.0) + jnp.where(idx == j, d, 0.0)
        return jax.lax.dynamic_update_index_in_dim(low, col, j, axis=1)

    return jax.lax.fori_loop(0, p, column, jnp.zeros_like(a))


def _forward(low: Array, b: Array) -> Array:
    """Solve low @ x = b for lower-triangular low; b (p,) or (p, r)."""
    p = low.shape[-1]

    def row(j: Array, x: Array) -> Array:
        l_j = jax.lax.dynamic_index_in_dim(low, j, axis=0, keepdims=False)
        b_j = jax.lax.dynamic_index_in_dim(b, j, axis=0, keepdims=False)
        x_j = (b_j - l_j @ x) / l_j[j]
        return jax.lax.dynamic_update_index_in_dim(x, x_j, j, axis=0)

    return jax.lax.fori_loop(0, p, row, jnp.zeros_like(b))


def _spd_inv(a: Array) -> Array:
    """Inverse of one SPD matrix from its Cholesky factor."""
    low_inv = _forward(_chol(a), jnp.eye(a.shape[-1], dtype=a.dtype))
    return low_inv.T @ low_inv


def pair_design(m: int) -> Float[Array, "n_pairs n_models"]:
    """Rows (i, j), i < j, with ones at i and j: E D_ij = a_i + a_j is `pair_design @ a`."""
    i, j = jnp.triu_indices(m, 1)
    rows = jnp.arange(i.shape[0])
    return jnp.zeros((i.shape[0], m)).at[rows, i].set(1.0).at[rows, j].set(1.0)


def pair_vectors(
    distances: Float[Array, "*batch n_models n_models"],
) -> Float[Array, "*batch n_pairs"]:
    """The upper triangle of each D, in `pair_design`'s row order."""
    i, j = jnp.triu_indices(distances.shape[-1], 1)
    return distances[..., i, j]


def additive_model(
    pair_mean: Float[Array, " n_pairs"],
    pair_cov: Float[Array, "n_pairs n_pairs"],
    prior_loc: Float[Array, ""],
    dim: int,
    misfit_scale: float = MISFIT_SCALE,
) -> None:
    """NumPyro model of the mean pair distances with a lack-of-fit term (the default).

    D̄_ij = a_i + a_j + e_ij + sampling noise: e_ij ~ N(0, tau^2) is what the additive
    story cannot explain (shared family errors make D non-additive), tau ~ half-Cauchy,
    and the sampling noise of the mean over inputs is N(0, pair_cov) (the inputs'
    covariance of D / n: inputs, not embedding axes, are the independent units). The
    quality that matters is not the additive fit a but a + misfit_scale x tau x z,
    z ~ N(0, I): where pairs misfit by tau, each model's own error is unknown by as much.
    theta_i = dim / (2 a_i^+), with a^+ a smooth positive version of a.

    Args:
        pair_mean: mean over inputs of each pair's squared distance (`pair_vectors`).
        pair_cov: covariance of that mean (the inputs' covariance / n).
        prior_loc: a typical a_i (half the mean pair distance); priors scale with it.
        dim: embedding dimension (only converts a to theta).
        misfit_scale: sd of each model's own error in units of tau.
    """
    import numpyro
    import numpyro.distributions as dist

    p = pair_mean.shape[-1]
    m = int(round((1 + (1 + 8 * p) ** 0.5) / 2))
    design = pair_design(m)
    tau = numpyro.sample("tau", dist.HalfCauchy(TAU_SCALE * prior_loc))
    a = numpyro.sample("a", dist.Normal(jnp.full(m, prior_loc), 2 * prior_loc).to_event(1))
    z = numpyro.sample("model_error", dist.Normal(jnp.zeros(m), 1.0).to_event(1))
    quality = a + misfit_scale * tau * z
    numpyro.deterministic("theta", _theta_from_a(quality, prior_loc, dim))
    cov = pair_cov + tau**2 * jnp.eye(p)
    numpyro.sample(
        "pair_mean", dist.MultivariateNormal(design @ a, covariance_matrix=cov), obs=pair_mean
    )


def _theta_from_a(a: Array, typical: Array, dim: int) -> Array:
    """dim / (2 a^+): a^+ = a above the floor, floor^2 / (2 floor - a) below.

    Positive, strictly decreasing in a, smooth at the floor (value and slope match), and
    finite for any finite a (no underflow to 0): the argmax of theta is the argmin of a
    even for draws with a <= 0 (a model whose additive error is below zero is very good,
    not invalid). Never a hidden abs() or clip that would tie models.
    """
    floor = POSITIVE_FLOOR * typical
    bent = floor**2 / (2 * floor - jnp.minimum(a, floor))
    return dim / (2 * jnp.where(a > floor, a, bent))


def _additive_draws(
    key: PRNGKeyArray,
    pair_mean: Array,
    pair_cov: Array,
    num_samples: int,
    misfit_scale: float,
    tau_min: Array | float = 0.0,
) -> tuple[Array, Array]:
    """Exact posterior draws of the additive model's quality a + misfit: (draws, E tau).

    Given tau everything is Gaussian, so tau is integrated on a log grid (its marginal
    likelihood in closed form) and a | tau drawn exactly: no MCMC, and vmappable. Grid
    points below `tau_min` get no mass (Local: the misfit seen on all inputs is a floor
    for every neighbourhood, whose 5 or so residual degrees of freedom cannot rule it out).
    """
    p = pair_mean.shape[-1]
    m = int(round((1 + (1 + 8 * p) ** 0.5) / 2))
    design = pair_design(m).astype(pair_mean.dtype)
    typical = jnp.maximum(jnp.mean(pair_mean) / 2, jnp.finfo(pair_mean.dtype).tiny)
    prior_sd = 2 * typical
    taus = typical * jnp.logspace(-4, 1, TAU_GRID, dtype=pair_mean.dtype)
    eye_p, eye_m = jnp.eye(p, dtype=pair_mean.dtype), jnp.eye(m, dtype=pair_mean.dtype)
    # A tiny ridge keeps the covariance invertible where few inputs make it singular.
    jitter = (1e-6 * typical) ** 2 * eye_p

    def given_tau(tau: Array) -> tuple[Array, Array, Array]:
        noise = pair_cov + jitter + tau**2 * eye_p
        marginal = noise + prior_sd**2 * design @ design.T
        chol = _chol(marginal)
        resid = _forward(chol, pair_mean - design @ jnp.full(m, typical))
        loglik = -0.5 * resid @ resid - jnp.sum(jnp.log(jnp.diag(chol)))
        noise_inv = _spd_inv(noise)
        cov = _spd_inv(design.T @ noise_inv @ design + eye_m / prior_sd**2)
        mean = cov @ (design.T @ noise_inv @ pair_mean + typical / prior_sd**2)
        cov = cov + (misfit_scale * tau) ** 2 * eye_m
        return loglik, mean, cov

    loglik, mean, cov = jax.vmap(given_tau)(taus)
    # Half-Cauchy prior on tau; the grid is uniform in log tau, hence the Jacobian tau.
    log_post = loglik - jnp.log1p((taus / (TAU_SCALE * typical)) ** 2) + jnp.log(taus)
    floor = jnp.minimum(tau_min, taus[-1])  # never remove the whole grid
    log_post = jnp.where(taus >= floor, log_post, -jnp.inf)
    weight = jax.nn.softmax(log_post)
    key_grid, key_draw = jax.random.split(key)
    which = jax.random.choice(key_grid, TAU_GRID, (num_samples,), p=weight)
    chol = jax.vmap(_chol)(cov + jitter[0, 0] * eye_m[None])
    z = jax.random.normal(key_draw, (num_samples, m), dtype=pair_mean.dtype)
    draws = mean[which] + jnp.einsum("sij,sj->si", chol[which], z)
    return draws, jnp.sum(weight * taus)


def _additive_theta(
    key: PRNGKeyArray,
    pair_mean: Array,
    pair_cov: Array,
    num_samples: int,
    misfit_scale: float,
    dim: int,
    tau_min: Array | float = 0.0,
) -> tuple[Array, Array]:
    draws, tau = _additive_draws(key, pair_mean, pair_cov, num_samples, misfit_scale, tau_min)
    typical = jnp.maximum(jnp.mean(pair_mean) / 2, jnp.finfo(pair_mean.dtype).tiny)
    return _theta_from_a(draws, typical, dim), tau


_additive_one = jax.jit(_additive_theta, static_argnames=("num_samples", "dim"))


def _pair_moments(pairs: Array) -> tuple[Array, Array]:
    """Mean over rows, and the covariance of that mean (rows as independent units)."""
    n = pairs.shape[0]
    mean = jnp.mean(pairs, axis=0)
    centred = pairs - mean[None, :]
    return mean, centred.T @ centred / (max(n - 1, 1) * n)


@jax.jit(static_argnames=("num_samples", "misfit_scale", "dim"))
def _additive_block(
    keys: Array,
    pairs: Array,
    neighbours: Array,
    tau_min: Array,
    num_samples: int,
    misfit_scale: float,
    dim: int,
) -> tuple[Array, Array]:
    """One block of neighbourhoods, vmapped: (draws (block, S, m), E tau (block,))."""

    def one(key: Array, idx: Array) -> tuple[Array, Array]:
        mean, cov = _pair_moments(pairs[idx])
        # tau_min is in units of the global typical a_i; rescale to this neighbourhood.
        scale = jnp.mean(mean) / 2
        return _additive_theta(key, mean, cov, num_samples, misfit_scale, dim, tau_min * scale)

    return jax.vmap(one)(keys, neighbours)


def _additive_local(
    keys: Array,
    pairs: Array,
    neighbours: Array,
    tau_min: Array,
    num_samples: int,
    misfit_scale: float,
    dim: int,
) -> tuple[Array, Array]:
    """Every neighbourhood, ADDITIVE_BATCH at a time (bounded memory, one compilation:
    the last block is padded with copies of the first row and cut off)."""
    n = neighbours.shape[0]
    block = min(ADDITIVE_BATCH, n)
    draws, taus = [], []
    for start in range(0, n, block):
        idx = jnp.arange(start, start + block)
        idx = jnp.where(idx < n, idx, 0)
        d, t = _additive_block(
            keys[idx], pairs, neighbours[idx], tau_min, num_samples, misfit_scale, dim
        )
        keep = min(block, n - start)
        draws.append(d[:keep])
        taus.append(t[:keep])
    return jnp.concatenate(draws), jnp.concatenate(taus)


# ------------------------------------------------------------------ labels and lengths
#
# Per-input quality q_ni = w_len z(len)_ni + w_cons z(log theta)_ni + b_i: the recommended
# label-free router's two signals (`_signals`, LenCons) plus a bias per model that only
# labels can see. A judge score is score_ni = c_n + q_ni + noise (c_n: how hard input n
# is; removed by centring each labelled row over its judged models). Conjugate
# normal-inverse-gamma, so the posterior is exact and cheap: without labels it is the
# prior, centred on the recommended router (LenCons where families confound the
# consensus, the consensus alone where they do not); labels move w and b.

LABEL_PRIOR_SIGNAL = 0.25  # prior mean of the leading signal's weight, in noise sds per z
LABEL_PRIOR_SD = 0.1  # prior sd of w_len and w_cons, in noise sds: a few labels refine the
# label-free router rather than overturn it
BIAS_PRIOR_SD = 0.25  # prior sd of each model's bias b_i, in noise sds, where families
# confound the consensus (the labels must be able to overturn it)
TRUSTED_BIAS_PRIOR_SD = 0.1  # the same where the gate trusts the consensus: a few noisy
# verdicts refine it rather than overturn it
NOISE_SHAPE = 2.0  # inverse-gamma shape of the noise variance (mean = the labels' spread)


def check_labels(labels: object, n: int, m: int) -> tuple[Array, Array]:
    """(rows, scores) validated: rows ints in [0, n), scores (n_labels, m), finite or NaN."""
    import numpy as np

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
    cov = _spd_inv(prec)
    mean = cov @ (prec0 @ mu0 + x.T @ y)
    a = NOISE_SHAPE + n_obs / 2
    b = (NOISE_SHAPE - 1) * scale**2 + 0.5 * (y @ y + mu0 @ prec0 @ mu0 - mean @ prec @ mean)
    key_var, key_w = jax.random.split(key)
    var = b / jax.random.gamma(key_var, a, (num_samples,))
    chol = _chol(cov)
    z = jax.random.normal(key_w, (num_samples, mean.shape[0]))
    return mean[None, :] + jnp.sqrt(var)[:, None] * (z @ chol.T)


def _with_labels(
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


def fit_posterior(
    embeddings: Float[Array, "n_samples n_models dim"],
    *,
    key: PRNGKeyArray,
    inputs: Float[Array, "n_samples input_dim"] | None = None,
    k: int | None = None,
    num_samples: int = 1000,
    model: Literal["additive", "wishart"] = "additive",
    labels: tuple[Any, Any] | None = None,
    lengths: Float[Array, "n_samples n_models"] | None = None,
    misfit_scale: float = MISFIT_SCALE,
    confounded: bool | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
    **wishart: Any,
) -> Posterior:
    """Posterior over each model's quality: Global, or per input (Local, or with lengths).

    `model="additive"` (default): the mean pair distances D̄_ij = a_i + a_j + e_ij, with
    a lack-of-fit term e_ij ~ N(0, tau^2), tau learned (half-Cauchy prior), and the
    covariance of D̄ over inputs as its sampling noise; each model's quality is a_i plus
    an own error of sd `misfit_scale` x tau (`additive_model`). Where families make D
    non-additive the posterior widens; where the story fits it stays tight. Exact (tau on
    a grid, Gaussian given tau), jitted; Local fits it per neighbourhood of k inputs.
    `model="wishart"`: the earlier posterior of the paper's story taken as true
    (`smoothie_model`; keywords `method`, `pool`, `n_eff_per_sample`, `prior_scale`,
    `num_warmup`, `sampler` go to it).

    With `labels=(rows, scores)` and/or `lengths`, quality becomes per input
    q_ni = w_len z(log(1 + len))_ni + w_cons z(log theta)_ni + b_i (`label_model`): the
    recommended router's signals plus a per-model bias, with the recommended router's
    gate: where `sj.families.confounded` finds families of models that agree more than
    independence allows, the prior is centred on LenCons (w_len : w_cons = 2 : 1);
    elsewhere on the consensus alone (w_len centred on 0). Judge scores are
    observations score_ni = c_n + q_ni + noise, so a few labels correct what consensus
    cannot see. theta_samples are then exp(q - max q).

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
        lengths: (n_samples, n_models) output lengths (e.g. characters). Additive only.
        misfit_scale: sd of each model's own error in units of the pair misfit tau.
        confounded: with labels or lengths, whether families confound the consensus (the
            prior's gate); None decides with `sj.families.confounded` (alpha 0.01).
        block_size: queries per block of the neighbour search.

    Returns:
        A `Posterior`: theta_samples (num_samples, n_models) Global, or
        (num_samples, n_samples, n_models) with inputs or lengths.

    Raises:
        ValueError: on bad arguments or labels (the message names the problem).

    >>> x = jax.random.normal(jax.random.key(0), (200, 3, 8))
    >>> fit_posterior(x, key=jax.random.key(1), num_samples=100).theta_samples.shape
    (100, 3)
    """
    if model == "wishart":
        if labels is not None or lengths is not None:
            raise ValueError("labels and lengths need model='additive'")
        return _fit_wishart(
            embeddings,
            key=key,
            inputs=inputs,
            k=k,
            num_samples=num_samples,
            block_size=block_size,
            **wishart,
        )
    if model != "additive":
        raise ValueError(f"model must be 'additive' or 'wishart', got {model!r}")
    if wishart:
        raise ValueError(
            f"{sorted(wishart)} apply to model='wishart' only (the additive posterior is exact)"
        )
    embeddings = _validate.check_embeddings(embeddings)
    n, m, dim = embeddings.shape
    misfit_scale = float(misfit_scale)
    if not misfit_scale >= 0:
        raise ValueError(f"misfit_scale must be >= 0, got {misfit_scale}")
    if labels is not None:
        labels = check_labels(labels, n, m)
    length_z = None
    if lengths is not None:
        length_z = _standardise_rows(jnp.log1p(_validate.check_lengths(lengths, (n, m))))
    if n < 2:
        raise ValueError("the additive posterior needs at least 2 samples")
    pairs = pair_vectors(sample_distances(embeddings))
    key_theta, key_labels = jax.random.split(key)
    if inputs is None:
        if k is not None:
            raise ValueError("k: Local posteriors need inputs (they define the neighbourhoods)")
        mean, cov = _pair_moments(pairs)
        theta, _ = _additive_one(key_theta, mean, cov, num_samples, misfit_scale, dim)
    else:
        inputs = _validate.check_inputs(inputs, n)
        if k is None:
            raise ValueError("Local posterior needs k (neighbours per input)")
        k = _validate.check_k(k, n)
        if k < 2:
            raise ValueError(
                "the additive Local posterior needs k >= 2 (a spread per neighbourhood)"
            )
        neighbours = knn(inputs, inputs, k, include_self=True, block_size=block_size)
        keys = jax.random.split(key_theta, n + 1)
        # The misfit of the whole data set, relative to its typical a_i, floors each
        # neighbourhood's tau: families do not stop sharing errors in a neighbourhood.
        mean, cov = _pair_moments(pairs)
        _, tau_global = _additive_one(keys[-1], mean, cov, 2, misfit_scale, dim)
        tau_min = tau_global / (jnp.mean(mean) / 2)
        theta, _ = _additive_local(
            keys[:-1], pairs, neighbours, tau_min, num_samples, misfit_scale, dim
        )
        theta = jnp.moveaxis(theta, 1, 0)
    if labels is None and length_z is None:
        return Posterior(theta)
    if confounded is None:
        confounded = families_confound(embeddings)
    return Posterior(_with_labels(key_labels, theta, length_z, labels, m, bool(confounded)))

"""The Wishart posterior (`posterior/_wishart.py`): model shapes, calibration on simulated
data, consistency, Local and pooling."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import pytest

import smoothie_jax as sj
from smoothie_jax.posterior._wishart import (
    contrast_scatter,
    effective_dim,
    fit_wishart,
    helmert,
    smoothie_model,
)

THETA = jnp.array([1.0, 2.0, 4.0, 8.0])


def simulate(key: jax.Array, n: int, dim: int = 8, theta: jax.Array = THETA) -> jax.Array:
    return sj.simulate_outputs(key, jnp.broadcast_to(theta, (n, theta.shape[0])), dim=dim)


def test_helmert_is_orthonormal_contrast() -> None:
    c = helmert(5)
    chex.assert_trees_all_close(c @ c.T, jnp.eye(4), atol=1e-6)
    chex.assert_trees_all_close(c @ jnp.ones(5), jnp.zeros(4), atol=1e-6)


@pytest.mark.slow
def test_contrast_scatter_matches_direct_scatter(key: jax.Array) -> None:
    x = simulate(key, 50)
    c = helmert(4)
    z = jnp.einsum("pm,nmd->npd", c, x)
    direct = jnp.einsum("npd,nqd->pq", z, z) / (50 * 8)
    from_d = contrast_scatter(jnp.mean(sj.sample_distances(x), axis=0), 8)
    chex.assert_trees_all_close(from_d, direct, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_effective_dim_of_independent_axes_is_dim(key: jax.Array) -> None:
    assert abs(float(effective_dim(simulate(key, 2000, dim=10))) - 10) < 0.5


@pytest.mark.slow
def test_effective_dim_of_correlated_axes_is_small(key: jax.Array) -> None:
    x = simulate(key, 2000, dim=2)
    # 64 axes that are mixtures of 2: effectively 2 dimensions.
    mix = jax.random.normal(jax.random.key(9), (2, 64))
    assert float(effective_dim(x @ mix)) < 2.5


@pytest.mark.slow
def test_model_site_shapes() -> None:
    scatter = contrast_scatter(jnp.ones((4, 4)) - jnp.eye(4), 8)
    seeded = numpyro.handlers.seed(smoothie_model, jax.random.key(0))
    trace = numpyro.handlers.trace(seeded).get_trace(scatter, jnp.asarray(100.0), jnp.zeros(4))
    assert trace["log_var"]["value"].shape == (4,)
    assert trace["theta"]["value"].shape == (4,)
    assert trace["scatter"]["value"].shape == (3, 3)
    assert trace["scatter"]["is_observed"]


@pytest.mark.slow
def test_posterior_module_shapes(key: jax.Array) -> None:
    x = simulate(key, 300)
    post = sj.posterior.fit_posterior(x, key=jax.random.key(1), num_samples=200, model="wishart")
    chex.assert_shape(post.theta_samples, (200, 4))
    chex.assert_shape(post.mean, (4,))
    lower, upper = post.interval(0.9)
    chex.assert_shape((lower, upper), ((4,), (4,)))
    assert bool(jnp.all(lower <= upper))
    chex.assert_trees_all_close(jnp.sum(post.prob_best), 1.0, rtol=1e-6)
    inputs = jax.random.normal(jax.random.key(2), (300, 5))
    local = sj.posterior.fit_posterior(
        x, inputs=inputs, k=30, key=jax.random.key(1), num_samples=50, model="wishart"
    )
    chex.assert_shape(local.theta_samples, (50, 300, 4))
    chex.assert_shape(local.interval(0.5)[0], (300, 4))
    chex.assert_trees_all_close(jnp.sum(local.prob_best, -1), jnp.ones(300), rtol=1e-5)
    chex.assert_tree_all_finite(local.theta_samples)


@pytest.mark.slow
def test_nuts_and_laplace_agree(key: jax.Array) -> None:
    x = simulate(key, 1000)
    nuts = sj.posterior.fit_posterior(
        x, key=jax.random.key(1), num_samples=1000, num_warmup=300, model="wishart"
    )
    laplace = sj.posterior.fit_posterior(
        x, key=jax.random.key(1), num_samples=1000, method="laplace", model="wishart"
    )
    chex.assert_trees_all_close(nuts.mean, laplace.mean, rtol=0.02)
    width = lambda p: p.interval(0.9)[1] - p.interval(0.9)[0]  # noqa: E731
    chex.assert_trees_all_close(width(nuts), width(laplace), rtol=0.2)


@pytest.mark.slow
def test_credible_intervals_are_calibrated() -> None:
    """90% intervals cover the true theta in 85-95% of 100 replications (per model)."""
    covered = []
    for rep in range(100):
        x = simulate(jax.random.key(1000 + rep), 200)
        post = sj.posterior.fit_posterior(
            x,
            key=jax.random.key(rep),
            num_samples=400,
            method="laplace",
            n_eff_per_sample=8,
            model="wishart",
        )
        lower, upper = post.interval(0.9)
        covered.append(np.asarray((lower <= THETA) & (THETA <= upper)))
    rate = np.mean(covered)
    assert 0.85 <= rate <= 0.95, rate


@pytest.mark.slow
def test_default_effective_dim_is_calibrated_on_independent_axes() -> None:
    covered = []
    for rep in range(40):
        x = simulate(jax.random.key(2000 + rep), 200)
        post = sj.posterior.fit_posterior(
            x, key=jax.random.key(rep), num_samples=400, method="laplace", model="wishart"
        )
        lower, upper = post.interval(0.9)
        covered.append(np.asarray((lower <= THETA) & (THETA <= upper)))
    assert 0.8 <= np.mean(covered) <= 0.98


@pytest.mark.slow
def test_consistency_mean_to_closed_form_and_width_shrinks() -> None:
    widths, errors = [], []
    for n in (500, 2000, 8000):
        x = simulate(jax.random.key(n), n)
        post = sj.posterior.fit_posterior(
            x, key=jax.random.key(0), num_samples=2000, method="laplace", model="wishart"
        )
        closed = sj.fit_global(x).theta
        errors.append(float(jnp.max(jnp.abs(post.mean / closed - 1))))
        lower, upper = post.interval(0.9)
        widths.append(np.asarray((upper - lower) / post.mean))
    assert errors[-1] < 0.01
    # Quadrupling n halves the relative width: 1 / sqrt(n).
    np.testing.assert_allclose(widths[1] / widths[0], 0.5, rtol=0.15)
    np.testing.assert_allclose(widths[2] / widths[1], 0.5, rtol=0.15)


@pytest.mark.slow
def test_local_posterior_follows_neighbourhoods(key: jax.Array) -> None:
    task_theta = jnp.array([[1.0, 2.0, 8.0], [8.0, 2.0, 1.0]])
    x, inputs, task = sj.simulate_tasks(key, task_theta, n_samples=400, dim=16, input_dim=8)
    post = sj.posterior.fit_posterior(
        x, inputs=inputs, k=20, key=jax.random.key(1), num_samples=200, model="wishart"
    )
    best = jnp.argmax(task_theta[task], axis=-1)
    assert float(jnp.mean(post.route() == best)) > 0.95


@pytest.mark.slow
@pytest.mark.parametrize("pool", [0.3, "auto"])
def test_pooling_shrinks_towards_global(key: jax.Array, pool: float | str) -> None:
    x = simulate(key, 400)
    inputs = jax.random.normal(jax.random.key(3), (400, 4))
    kw = dict(inputs=inputs, k=5, key=jax.random.key(1), num_samples=200, model="wishart")
    plain = sj.posterior.fit_posterior(x, **kw)
    pooled = sj.posterior.fit_posterior(x, pool=pool, **kw)
    # Every input shares the same true theta: pooling must cut the spread across inputs.
    spread = lambda p: float(jnp.mean(jnp.std(jnp.log(p.mean), axis=0)))  # noqa: E731
    assert spread(pooled) < 0.5 * spread(plain)


@pytest.mark.unchecked  # method="hmc" and n_eff_per_sample="axes" break the Literal annotations
def test_fit_wishart_bad_arguments(key: jax.Array) -> None:
    x = simulate(key, 50)
    inputs = x[:, 0]
    with pytest.raises(ValueError, match="k and pool need inputs"):
        fit_wishart(x, key=key, k=5, n_eff_per_sample=8)
    with pytest.raises(ValueError, match="k and pool need inputs"):
        fit_wishart(x, key=key, pool=0.3, n_eff_per_sample=8)
    with pytest.raises(ValueError, match="method must be 'nuts' or 'laplace'"):
        fit_wishart(x, key=key, method="hmc", n_eff_per_sample=8)
    with pytest.raises(ValueError, match="Local posterior needs k"):
        fit_wishart(x, key=key, inputs=inputs, n_eff_per_sample=8)
    with pytest.raises(ValueError, match="Local posteriors use method='laplace'"):
        fit_wishart(x, key=key, inputs=inputs, k=10, method="nuts", n_eff_per_sample=8)
    with pytest.raises(ValueError, match="n_eff_per_sample must be"):
        fit_wishart(x, key=key, n_eff_per_sample="axes")
    with pytest.raises(ValueError, match="needs more than n_models - 2"):
        fit_wishart(x, key=key, inputs=inputs, k=1, n_eff_per_sample=1.5)

"""Routing policies over posterior draws."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import smoothie_jax as sj


def certain(theta: jax.Array, num_samples: int = 20) -> sj.posterior.Posterior:
    return sj.posterior.Posterior(jnp.broadcast_to(theta, (num_samples, *theta.shape)))


def noisy(
    key: jax.Array, n: int = 300, m: int = 4, num_samples: int = 200
) -> sj.posterior.Posterior:
    k1, k2 = jax.random.split(key)
    centre = jax.random.uniform(k1, (n, m), minval=1.0, maxval=2.0)
    noise = 0.3 * jax.random.normal(k2, (num_samples, n, m))
    return sj.posterior.Posterior(jnp.exp(jnp.log(centre)[None] + noise))


@pytest.mark.slow
def test_certain_posterior_every_policy_is_argmax(key: jax.Array) -> None:
    theta = jax.random.uniform(key, (50, 5), minval=0.5, maxval=3.0)
    post = certain(theta)
    best = jnp.argmax(theta, axis=-1)
    costs = jnp.zeros(5)
    for choice in (
        sj.posterior.highest_mean(post),
        sj.posterior.most_probable(post),
        sj.posterior.thompson(post, jax.random.key(1)),
        sj.posterior.abstain(post, threshold=0.99, default=0)[0],
        sj.posterior.cost_aware(post, costs, tradeoff=1.0),
        post.route(),
    ):
        chex.assert_trees_all_equal(choice, best)


@pytest.mark.slow
def test_abstention_rises_with_threshold(key: jax.Array) -> None:
    post = noisy(key)
    rates = [
        float(jnp.mean(sj.posterior.abstain(post, threshold=t, default=2)[1]))
        for t in np.linspace(0.0, 1.0, 11)
    ]
    assert rates[0] == 0.0 and rates[-1] > 0.9
    assert all(a <= b for a, b in zip(rates, rates[1:]))
    choice, abstained = sj.posterior.abstain(post, threshold=0.6, default=2)
    assert bool(jnp.all(jnp.where(abstained, choice == 2, True)))


@pytest.mark.slow
def test_zero_cost_reproduces_quality_only_choice(key: jax.Array) -> None:
    post = noisy(key)
    quality_only = jnp.argmax(sj.posterior.expected_quality(post), axis=-1)
    costs = jnp.array([1.0, 5.0, 2.0, 0.5])
    chex.assert_trees_all_equal(sj.posterior.cost_aware(post, costs, tradeoff=0.0), quality_only)
    chex.assert_trees_all_equal(
        sj.posterior.cost_aware(post, jnp.zeros(4), tradeoff=3.0), quality_only
    )


def test_tradeoff_sweep_lowers_cost(key: jax.Array) -> None:
    post = noisy(key)
    costs = jnp.array([1.0, 5.0, 2.0, 0.5])
    choices = sj.posterior.tradeoff_sweep(post, costs, jnp.linspace(0.0, 1.0, 6))
    chex.assert_shape(choices, (6, 300))
    mean_cost = [float(jnp.mean(costs[c])) for c in choices]
    assert all(a >= b for a, b in zip(mean_cost, mean_cost[1:]))
    assert mean_cost[-1] == 0.5  # a large trade-off always takes the cheapest model


@pytest.mark.slow
def test_thompson_explores_in_proportion(key: jax.Array) -> None:
    # Model 1 is best in 70% of draws: Thompson picks it about 70% of the time.
    draws = jnp.where(
        jax.random.uniform(key, (1000, 1, 1)) < 0.7,
        jnp.array([1.0, 2.0, 0.0]),
        jnp.array([2.0, 1.0, 0.0]),
    )
    post = sj.posterior.Posterior(jnp.broadcast_to(draws, (1000, 2000, 3)))
    chex.assert_trees_all_close(post.prob_best[0], jnp.array([0.3, 0.7, 0.0]), atol=0.05)
    picks = sj.posterior.thompson(post, jax.random.key(5))
    assert abs(float(jnp.mean(picks == 1)) - 0.7) < 0.05


def test_posterior_mean_is_a_deprecated_alias_of_highest_mean() -> None:
    assert "posterior_mean" not in sj.posterior.__all__
    with pytest.warns(DeprecationWarning, match="is highest_mean"):
        from smoothie_jax.posterior import posterior_mean  # importable for one more release
    assert posterior_mean is sj.posterior.highest_mean
    with pytest.raises(AttributeError, match="no attribute 'posterior_means'"):
        sj.posterior.posterior_means  # noqa: B018


def test_cost_aware_ranks_by_net_of_cost(key: jax.Array) -> None:
    post = noisy(key, n=50)
    costs = jnp.array([1.0, 5.0, 2.0, 0.5])
    net = sj.posterior.expected_quality(post) - 0.1 * costs[None]
    chex.assert_trees_all_equal(
        sj.posterior.cost_aware(post, costs, tradeoff=0.1), jnp.argmax(net, axis=-1)
    )

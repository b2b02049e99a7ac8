"""`Posterior` (`posterior/_posterior.py`): the draws and what they say about the best model."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import smoothie_jax as sj


def test_global_summaries() -> None:
    draws = jnp.array([[1.0, 2.0, 0.5], [3.0, 2.0, 0.5], [1.0, 4.0, 0.5], [1.0, 5.0, 6.0]])
    post = sj.posterior.Posterior(draws)
    chex.assert_trees_all_close(post.mean, jnp.mean(draws, axis=0))
    chex.assert_trees_all_close(post.prob_best, jnp.array([0.25, 0.5, 0.25]))
    assert int(post.route()) == 1
    lower, upper = post.interval(0.5)
    np.testing.assert_allclose(lower, np.quantile(np.asarray(draws), 0.25, axis=0), rtol=1e-6)
    np.testing.assert_allclose(upper, np.quantile(np.asarray(draws), 0.75, axis=0), rtol=1e-6)


def test_local_shapes(key: jax.Array) -> None:
    post = sj.posterior.Posterior(jnp.exp(jax.random.normal(key, (40, 7, 3))))
    chex.assert_shape((post.mean, post.prob_best), ((7, 3), (7, 3)))
    chex.assert_shape(post.interval(0.9), ((7, 3), (7, 3)))
    chex.assert_shape(post.route(), (7,))
    chex.assert_trees_all_close(jnp.sum(post.prob_best, -1), jnp.ones(7), rtol=1e-6)
    lower, upper = post.interval(0.9)
    assert bool(jnp.all(lower <= upper))


@pytest.mark.parametrize("level", [0.0, 1.0, 1.5, -0.1])
def test_level_outside_zero_one_raises(level: float) -> None:
    with pytest.raises(ValueError, match="level must be in"):
        sj.posterior.Posterior(jnp.ones((4, 3))).interval(level)


def test_is_a_pytree() -> None:
    post = sj.posterior.Posterior(jnp.ones((4, 3)))
    doubled = jax.tree_util.tree_map(lambda a: 2 * a, post)
    assert isinstance(doubled, sj.posterior.Posterior)
    chex.assert_trees_all_equal(doubled.theta_samples, 2 * jnp.ones((4, 3)))

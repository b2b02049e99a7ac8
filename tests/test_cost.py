"""The cost trade-off (`_cost.net_of_cost`): quality - tradeoff * cost, in the inputs'
library and precision, traceable in the trade-off."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np

from smoothie_jax._cost import net_of_cost

QUALITY = np.array([[0.5, 0.3, 0.2], [0.1, 0.6, 0.3]])
COSTS = np.array([1.0, 0.0, 0.5])


def test_numpy_in_numpy_out_in_float64() -> None:
    net = net_of_cost(QUALITY, COSTS, 0.25)
    assert isinstance(net, np.ndarray) and net.dtype == np.float64
    np.testing.assert_array_equal(net, QUALITY - 0.25 * COSTS[None])
    np.testing.assert_array_equal(net_of_cost(QUALITY, COSTS, 0.0), QUALITY)


def test_jax_in_jax_out_and_traceable_in_the_tradeoff() -> None:
    quality = jnp.asarray(QUALITY, jnp.float32)
    net = net_of_cost(quality, jnp.asarray(COSTS, jnp.float32), 0.25)
    assert isinstance(net, jax.Array)
    chex.assert_trees_all_close(net, quality - 0.25 * jnp.asarray(COSTS, jnp.float32)[None])
    sweep = jax.vmap(lambda t: net_of_cost(quality, COSTS, t))(jnp.array([0.0, 1.0]))
    chex.assert_shape(sweep, (2, 2, 3))
    chex.assert_trees_all_close(sweep[0], quality)


def test_costs_per_input_are_taken_as_given() -> None:
    per_input = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    np.testing.assert_allclose(net_of_cost(QUALITY, per_input, 1.0), QUALITY - per_input)

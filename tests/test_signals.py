"""The recommended router's signal (`_signals`): the consensus, weighted by quality."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from smoothie_jax import _signals as signals


def test_consensus_is_minus_the_mean_distance_to_the_others() -> None:
    rng = np.random.default_rng(0)
    d = rng.uniform(size=(7, 4, 4))
    d = d + np.swapaxes(d, 1, 2)
    d[:, np.arange(4), np.arange(4)] = 0
    np.testing.assert_allclose(signals.consensus(jnp.asarray(d)), -d.sum(-1) / 3, rtol=1e-6)
    # With a mask, the mean runs over the models that answered too.
    observed = np.ones((7, 4), bool)
    observed[0, 3] = False
    pairs = (observed[:, :, None] & observed[:, None]) & ~np.eye(4, dtype=bool)
    got = np.asarray(signals.consensus(jnp.asarray(d), jnp.asarray(pairs, jnp.float32)))
    np.testing.assert_allclose(got[0, :3], -d[0, :3, :3].sum(-1) / 2, rtol=1e-6)


def test_weighted_consensus_is_the_distance_to_the_precision_weighted_mean() -> None:
    # Under the paper's model the posterior mean of the truth weighs each output by its
    # precision; sum_j v_j D_ij is the squared distance to that mean up to a constant.
    rng = np.random.default_rng(1)
    x = rng.normal(size=(6, 4, 3))
    d = np.sum((x[:, :, None] - x[:, None]) ** 2, axis=-1)
    theta = np.array([1.0, 2.0, 4.0, 0.5])
    got = np.asarray(signals.weighted_consensus(jnp.asarray(d), jnp.asarray(theta), 1.0))
    mean = np.einsum("nmd,m->nd", x, theta / theta.sum())
    to_mean = np.sum((x - mean[:, None]) ** 2, axis=-1)
    np.testing.assert_allclose(
        got - got.mean(1, keepdims=True),
        -(to_mean - to_mean.mean(1, keepdims=True)),
        rtol=1e-4,
        atol=1e-5,
    )


def test_weighted_consensus_masks_models_that_did_not_answer() -> None:
    d = jnp.asarray(np.array([[[0.0, 1.0, 9.0], [1.0, 0.0, 4.0], [9.0, 4.0, 0.0]]] * 2))
    observed = jnp.array([[True, True, False], [True, True, True]])
    score = np.asarray(signals.weighted_consensus(d, jnp.ones(3), 1.0, observed))
    assert np.isneginf(score[0, 2]) and np.isfinite(score[1]).all()
    np.testing.assert_allclose(score[0, :2], [-0.5, -0.5])  # the unanswered one weighs 0

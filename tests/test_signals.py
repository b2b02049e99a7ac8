"""The recommended router's signals (`_signals`): consensus, the gate's agreement, z()."""

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


def test_agreement_removes_model_and_input_means() -> None:
    rng = np.random.default_rng(1)
    noise = rng.normal(size=(200, 5)).astype(np.float32)
    model_bias = np.arange(5.0)[None] * 10  # a verbose model is not a good one
    input_bias = rng.normal(size=(200, 1)) * 10
    assert (
        abs(
            float(
                signals.agreement(noise + model_bias, rng.normal(size=(200, 5)).astype(np.float32))
            )
        )
        < 0.1
    )
    tracked = noise + model_bias + input_bias
    assert float(signals.agreement(tracked, noise)) > 0.99
    # Unobserved entries do not count (the masked centring is one pass, not exact).
    observed = np.ones((200, 5), bool)
    observed[:50, 0] = False
    wild = np.where(observed, tracked, 1e6)
    assert float(signals.agreement(wild, noise, observed)) > 0.95


def test_gated_score_masks_models_that_did_not_answer() -> None:
    z = jnp.zeros((2, 3))
    observed = jnp.array([[True, False, True], [True, True, True]])
    score = signals.gated_score(z, jnp.ones((2, 3)), True, observed=observed)
    assert np.isneginf(np.asarray(score)[0, 1]) and float(score[1, 1]) == signals.LENGTH_WEIGHT

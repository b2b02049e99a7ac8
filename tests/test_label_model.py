"""Labels and output lengths in the posterior (`posterior/_label_model.py`)."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import pytest

import smoothie_jax as sj
from smoothie_jax.posterior._label_model import label_model

N, M, DIM = 150, 4, 8


@pytest.fixture(scope="module")
def fooled() -> tuple[jax.Array, np.ndarray, np.ndarray]:
    """Consensus is fooled: models 2 and 3 share a family error and so agree, while the
    truly best model (0, the smallest own error... in the judge's eyes) is a loner.

    The judge's truth is a per-model quality q, unrelated to the embeddings; scores are
    q plus noise. Lengths carry no signal (all equal).
    """
    individual = jnp.array([1.0, 1.5, 0.6, 0.6])
    x = sj.simulate_families(
        jax.random.key(0), individual, jnp.array([0.0, 3.0]), [0, 0, 1, 1], n_samples=N, dim=DIM
    )
    quality = np.array([0.8, 0.5, 0.3, 0.2])
    rng = np.random.default_rng(0)
    scores = quality[None, :] + 0.3 * rng.standard_normal((N, M))
    return x, scores, quality


@pytest.mark.slow
def test_labels_move_the_posterior_to_the_truth(fooled) -> None:
    """With labels drawn from the simulated truth, P(best) of the true best rises to ~1."""
    x, scores, quality = fooled
    prob = []
    for n_lab in (0, 5, 20, 80):
        rows = np.arange(n_lab)
        post = sj.fit_posterior(
            x, key=jax.random.key(1), num_samples=500, labels=(rows, scores[rows])
        )
        chex.assert_shape(post.theta_samples, (500, M))
        prob.append(float(post.prob_best[0]))
    assert prob[-1] > 0.95, prob
    assert prob[-1] > prob[0] + 0.3, prob


@pytest.mark.slow
def test_labels_and_lengths_give_per_input_draws(fooled) -> None:
    x, scores, _ = fooled
    lengths = np.ones((N, M))
    post = sj.fit_posterior(
        x,
        key=jax.random.key(1),
        num_samples=50,
        lengths=lengths,
        labels=(np.arange(10), scores[:10]),
    )
    chex.assert_shape(post.theta_samples, (50, N, M))
    chex.assert_tree_all_finite(post.theta_samples)
    assert bool(jnp.all(post.theta_samples > 0))
    chex.assert_shape(sj.most_probable(post), (N,))


def _dominant_lengths() -> np.ndarray:
    return np.tile([100.0, 200.0, 400.0, 50.0], (N, 1)) * np.exp(
        0.01 * np.random.default_rng(1).standard_normal((N, M))
    )


@pytest.mark.slow
def test_lengths_alone_route_like_the_longest(fooled) -> None:
    """No labels, lengths that dominate, families found: the prior is LenCons, led by
    length."""
    x, _, _ = fooled
    assert sj.families.confounded(x)
    post = sj.fit_posterior(x, key=jax.random.key(1), num_samples=200, lengths=_dominant_lengths())
    assert float(jnp.mean(sj.posterior_mean(post) == 2)) > 0.95


@pytest.mark.slow
def test_length_prior_follows_the_family_gate(fooled) -> None:
    """Where the consensus is trusted, the prior is centred on it (w_len 0): without
    labels the posterior mean routes as Smoothie-Global, whatever the lengths, and as
    `sj.route(method="auto")` does; `confounded=None` asks `sj.families.confounded`."""
    x, _, _ = fooled
    clean = sj.simulate_outputs(
        jax.random.key(2), jnp.tile(jnp.array([1.0, 2.0, 4.0, 8.0]), (N, 1)), dim=DIM
    )
    assert not sj.families.confounded(clean)
    lengths = _dominant_lengths()
    trusted = sj.fit_posterior(clean, key=jax.random.key(1), num_samples=200, lengths=lengths)
    global_choice = int(sj.fit_global(clean).route())
    assert global_choice == 3
    np.testing.assert_array_equal(np.asarray(sj.posterior_mean(trusted)), global_choice)
    auto = sj.route(clean, lengths=lengths, method="auto")
    np.testing.assert_array_equal(np.asarray(auto.choice), global_choice)
    forced = sj.fit_posterior(
        clean, key=jax.random.key(1), num_samples=200, lengths=lengths, confounded=True
    )
    assert float(jnp.mean(sj.posterior_mean(forced) == 2)) > 0.95


@pytest.mark.slow
def test_bias_prior_follows_the_family_gate() -> None:
    """Labels that contradict a trusted consensus move it less than a confounded one: a
    few noisy verdicts refine what the gate trusts, and can overturn what it does not."""
    clean = sj.simulate_outputs(
        jax.random.key(2), jnp.tile(jnp.array([1.0, 2.0, 4.0, 8.0]), (N, 1)), dim=DIM
    )
    rng = np.random.default_rng(3)
    rows = np.arange(10)
    scores = np.array([0.3, 0.0, 0.0, 0.0]) + 0.3 * rng.standard_normal((10, M))
    prob = {
        gate: float(
            sj.fit_posterior(
                clean,
                key=jax.random.key(1),
                num_samples=2000,
                labels=(rows, scores),
                confounded=gate,
            ).prob_best[0]
        )
        for gate in (False, True)
    }
    assert prob[True] > prob[False] + 0.1, prob


@pytest.mark.parametrize(
    "labels, message",
    [
        ((np.array([0, N]), np.ones((2, M))), r"rows must be in \[0, 150\)"),
        ((np.array([-1]), np.ones((1, M))), r"rows must be in \[0, 150\)"),
        ((np.array([0, 1]), np.full((2, M), np.nan)), "no labelled row has two or more"),
        ((np.array([0]), np.array([[1.0, np.inf, 0.0, 0.0]])), "contain inf"),
        ((np.array([0, 1, 2]), np.ones((2, M))), "differ in length"),
        ((np.array([0, 1]), np.ones((2, M + 1))), "must have shape"),
        ((np.array([0.5, 1.0]), np.ones((2, M))), "1-d array of ints"),
        ((np.array([[0, 1]]), np.ones((2, M))), "1-d array of ints"),
        pytest.param(np.ones((2, M)), "pair", marks=pytest.mark.unchecked),
    ],
)
def test_bad_labels_raise(fooled, labels, message: str) -> None:
    x, _, _ = fooled
    with pytest.raises(ValueError, match=message):
        sj.fit_posterior(x, key=jax.random.key(0), labels=labels)


@pytest.mark.slow
def test_label_model_site_shapes() -> None:
    scores = jnp.array([[1.0, 0.0, jnp.nan], [0.5, 0.5, 1.0]])
    seeded = numpyro.handlers.seed(label_model, jax.random.key(0))
    trace = numpyro.handlers.trace(seeded).get_trace(
        jnp.ones((2, 3, 5)), scores, jnp.zeros(5), jnp.ones(5), jnp.asarray(0.3)
    )
    assert trace["noise_var"]["value"].shape == ()
    assert trace["w"]["value"].shape == (5,)
    assert trace["scores"]["value"].shape == (2, 3)
    assert trace["scores"]["is_observed"]

"""Labels and output lengths in the posterior (`_label_model.py`)."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import pytest

import smoothie_jax as sj
from smoothie_jax._label_model import label_model

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


def numpy_label_fit(r: np.ndarray, y: np.ndarray) -> np.ndarray:
    """E[(beta, b)] by the definition, in NumPy float64: every grid point's conjugate
    posterior weighed by its normal-inverse-gamma evidence (complete rows)."""
    from smoothie_jax import _label_model as lm

    n_rows, m = y.shape
    yc = (y - y.mean(1, keepdims=True)).reshape(-1)
    x = np.concatenate(
        [
            (r - r.mean(1, keepdims=True))[..., None],
            np.broadcast_to(np.eye(m) - 1 / m, (n_rows, m, m)),
        ],
        axis=-1,
    ).reshape(-1, 1 + m)
    n_obs = n_rows * (m - 1)
    s2 = yc @ yc / n_obs
    mu0 = np.r_[lm.BETA_PRIOR * np.sqrt(s2), np.zeros(m)]
    logml, means = [], []
    for beta_sd, bias_sd in lm.GRID:
        p0 = np.diag(1 / np.r_[beta_sd, np.full(m, bias_sd)] ** 2)
        pn = p0 + x.T @ x
        mean = np.linalg.solve(pn, p0 @ mu0 + x.T @ yc)
        a = lm.NOISE_SHAPE + n_obs / 2
        b = (lm.NOISE_SHAPE - 1) * s2 + 0.5 * (yc @ yc + mu0 @ p0 @ mu0 - mean @ pn @ mean)
        logml.append(
            0.5 * np.linalg.slogdet(p0)[1] - 0.5 * np.linalg.slogdet(pn)[1]
            + lm.NOISE_SHAPE * np.log((lm.NOISE_SHAPE - 1) * s2) - a * np.log(b)
        )  # fmt: skip
        means.append(mean)
    w = np.exp(np.array(logml) - max(logml))
    return (w / w.sum()) @ np.array(means)


def test_the_exact_posterior_matches_its_definition() -> None:
    from smoothie_jax import _label_model as lm

    rng = np.random.default_rng(0)
    r = rng.normal(size=(12, M)).astype(np.float32)
    y = (0.3 * r + np.array([0.5, 0, 0, -0.2]) + 0.4 * rng.normal(size=(12, M))).astype(np.float32)
    got = np.asarray(lm.fit_labelled_rows(jnp.asarray(r), jnp.asarray(y)).posterior_mean)
    np.testing.assert_allclose(got, numpy_label_fit(r, y), rtol=2e-3, atol=2e-3)


@pytest.mark.slow  # seconds of work: a posterior fit
def test_without_labels_the_posterior_routes_as_the_router(fooled) -> None:
    x, _, _ = fooled
    lengths = np.tile([100.0, 200.0, 400.0, 50.0], (N, 1))
    post = sj.posterior.fit_posterior(x, key=jax.random.key(1), num_samples=100, lengths=lengths)
    chex.assert_shape(post.theta_samples, (100, N, M))
    score = sj._signals.recommended_score(sj.make_batch(x, lengths=lengths))
    from smoothie_jax import _label_model as lm

    routed = jnp.argmax(lm.quality_mean(score, lm.fit_label_model(score, None)), axis=1)
    np.testing.assert_array_equal(routed, sj.route(x, lengths=lengths).choice)


@pytest.mark.slow
def test_labels_overturn_a_wrong_router(fooled) -> None:
    """The router prefers the agreeing family; labels from the judge's truth (model 0 is
    best) win within 20 labelled inputs."""
    x, scores, _ = fooled
    score = sj._signals.recommended_score(sj.make_batch(x))
    assert int(jnp.argmax(jnp.mean(score, axis=0))) != 0  # the router is wrong
    prob = []
    for n_lab in (0, 5, 20, 80):
        rows = np.arange(n_lab)
        post = sj.posterior.fit_posterior(
            x, key=jax.random.key(1), num_samples=500, labels=(rows, scores[rows])
        )
        chex.assert_shape(post.theta_samples, (500, N, M))
        prob.append(float(jnp.mean(post.prob_best[:, 0])))
    assert prob[2] > 0.8 and prob[3] > 0.95, prob
    assert prob[-1] > prob[0] + 0.3, prob


@pytest.mark.slow
def test_labels_lengths_and_answers_give_per_input_draws(fooled) -> None:
    x, scores, _ = fooled
    answers = np.zeros((N, M), np.int32)
    post = sj.posterior.fit_posterior(
        x,
        key=jax.random.key(1),
        num_samples=50,
        lengths=np.ones((N, M)),
        answers=answers,
        labels=(np.arange(10), scores[:10]),
    )
    chex.assert_shape(post.theta_samples, (50, N, M))
    chex.assert_tree_all_finite(post.theta_samples)
    assert bool(jnp.all(post.theta_samples > 0))
    chex.assert_shape(sj.posterior.most_probable(post), (N,))


@pytest.mark.slow  # seconds of work: a posterior fit per suggestion
def test_suggested_labels_are_where_the_leaders_differ() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(40, M, DIM)).astype(np.float32)
    x[:, 1] = x[:, 0] + 0.01 * rng.normal(size=(40, DIM))  # 0 and 1 agree, except...
    x[7, 1] += 5.0  # ...on input 7
    lengths = np.tile([100.0, 100.0, 10.0, 10.0], (40, 1))  # the router leads with 0, 1
    first = sj.posterior.suggest_labels(x, 3, key=jax.random.key(0), lengths=lengths)
    assert first.shape == (3,) and int(first[0]) == 7
    rows = np.asarray(first)
    again = sj.posterior.suggest_labels(
        x, 3, key=jax.random.key(0), lengths=lengths, labels=(rows, rng.random((3, M)))
    )
    assert not set(np.asarray(again).tolist()) & set(rows.tolist())  # never twice
    answers = np.where(rng.random((40, M)) < 0.8, 0, 1 + np.arange(M)).astype(np.int32)
    pick = int(sj.posterior.suggest_labels(x, 1, key=jax.random.key(0), answers=answers)[0])
    from smoothie_jax import _label_model as lm

    score = sj._signals.recommended_score(sj.make_batch(x, answers=answers))
    leaders = np.argsort(
        -np.asarray(lm.quality_mean(score, lm.fit_label_model(score, None))).mean(0)
    )
    assert answers[pick, leaders[0]] != answers[pick, leaders[1]]  # the leaders differ there
    with pytest.raises(ValueError, match="n must be"):
        sj.posterior.suggest_labels(x, 41, key=jax.random.key(0))


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
        sj.posterior.fit_posterior(x, key=jax.random.key(0), labels=labels)


@pytest.mark.slow
def test_label_model_site_shapes() -> None:
    scores = jnp.array([[1.0, 0.0, jnp.nan], [0.5, 0.5, 1.0]])
    seeded = numpyro.handlers.seed(label_model, jax.random.key(0))
    trace = numpyro.handlers.trace(seeded).get_trace(
        jnp.ones((2, 3)), scores, 0.2, 0.4, jnp.asarray(0.3)
    )
    assert trace["noise_var"]["value"].shape == ()
    assert trace["w"]["value"].shape == (4,)

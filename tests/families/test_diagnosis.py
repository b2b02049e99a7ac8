"""`_independence`: the independence test's calibration and power, the groups it
names, and the gate it gives the recommended router."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import smoothie_jax as sj
from smoothie_jax import simulate_families
from smoothie_jax.families import diagnose, family_labels

from .simulated import DIM, FAMILIES, family_data, null_data

# ---------------------------------------------------------------- the test: calibration


def rejection_rate(make, reps: int, alpha: float = 0.05) -> tuple[float, np.ndarray]:
    p = np.array([diagnose(make(seed), alpha=alpha).p_value for seed in range(reps)])
    return float(np.mean(p < alpha)), p


# 200 replications: the rejection rate's sd at 0.05 is 0.015; allow 3 sd.
LOW, HIGH = 0.05 - 3 * 0.0154, 0.05 + 3 * 0.0154


def test_calibrated_under_independence() -> None:
    rate, p = rejection_rate(null_data, 200)
    assert LOW <= rate <= HIGH, rate
    assert 0.4 <= np.mean(p < 0.5) <= 0.6  # the whole null distribution is about uniform


@pytest.mark.slow
def test_calibrated_with_uneven_inputs_and_correlated_axes() -> None:
    # Inputs differ in difficulty (variances x a log-normal factor per input) and 64 axes
    # mix 16: what a Wishart/Gaussian bootstrap gets wrong, inputs as units get right.
    mix = jax.random.normal(jax.random.key(99), (DIM, 64)) / 8

    def make(seed: int) -> jax.Array:
        return null_data(seed, heterogeneity=0.7) @ mix

    rate, _ = rejection_rate(make, 200)
    assert LOW <= rate <= HIGH, rate


def test_no_groups_reported_without_rejection() -> None:
    for seed in range(20):
        d = diagnose(null_data(seed))
        assert d.rejected or d.groups == ()


# ---------------------------------------------------------------- power and groups


@pytest.mark.slow
def test_rejects_and_finds_the_families() -> None:
    truth = family_labels(FAMILIES)
    found = 0
    for seed in range(10):
        d = diagnose(family_data(seed))
        assert d.rejected and d.p_value < 1e-6
        found += d.labels == truth
        assert d.mirror is None  # two families: which models share an error is identified
    assert found >= 9
    text = diagnose(family_data(0)).to_text([f"m{i}" for i in range(7)])
    assert "REJECTED" in text and "{m0, m1, m2}" in text and "{m3, m4}" in text
    assert diagnose(family_data(0)).explained > 0.95  # the right families explain it all


def test_excess_is_negative_within_families(family_x: jax.Array) -> None:
    d = diagnose(family_x)
    chex.assert_trees_all_close(d.excess.sum(axis=1), np.zeros(7), atol=1e-4)
    assert d.excess[0, 1] < 0 and d.excess[3, 4] < 0 and d.excess[0, 5] > 0


@pytest.mark.slow
def test_one_family_and_singletons_reports_its_mirror() -> None:
    # {0, 1, 2} sharing an error fits D exactly as well as {3, 4} sharing one.
    x = simulate_families(
        jax.random.key(3),
        jnp.full(5, 0.5),
        jnp.array([1.5, 0, 0]),
        [0, 0, 0, 1, 2],
        n_samples=500,
        dim=DIM,
    )
    d = diagnose(x)
    assert d.mirror is not None
    assert {d.groups[0], d.mirror} == {(0, 1, 2), (3, 4)}
    assert "cannot be told" in d.to_text()
    assert sorted(map(tuple, [[0, 1, 2], [3, 4]])) == sorted(
        tuple(i for i in range(5) if d.identified_labels[i] == g) for g in (0, 1)
    )


# ---------------------------------------------------------------- bad inputs


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda x: diagnose(x, alpha=1.5), "alpha"),
        (lambda x: diagnose(x[:5]), "more than 6 inputs"),
        pytest.param(
            lambda x: diagnose(x[0]), "embeddings must have shape", marks=pytest.mark.unchecked
        ),
        (lambda x: diagnose(x.at[0, 0, 0].set(jnp.nan)), "NaN"),
    ],
)
def test_bad_inputs_raise_value_error(null_x: jax.Array, call, match: str) -> None:  # noqa: ANN001
    with pytest.raises(ValueError, match=match):
        call(null_x)


# ---------------------------------------------------------------- the router's gate


def test_confounded_is_the_routers_gate(family_x: jax.Array, null_x: jax.Array) -> None:
    """`confounded`: families found at the policy's alpha; too few inputs: False; only
    inputs every model answered are tested."""
    fam, null = family_x, null_x
    assert sj.families.confounded(fam) and not sj.families.confounded(null)
    assert sj.families.confounded(fam) == bool(diagnose(fam, alpha=0.01).groups)
    assert not sj.families.can_diagnose(6, 5) and sj.families.can_diagnose(7, 5)
    assert not sj.families.confounded(fam[:6])
    observed = np.ones(fam.shape[:2], bool)
    observed[6:, 0] = False  # only 6 complete inputs left: too few to test
    assert not sj.families.confounded(fam, observed)

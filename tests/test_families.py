"""Model families: the independence test's calibration and power, the family-aware fit's
recovery and identifiability, equality with plain Smoothie, the safe policy, bad inputs."""

from __future__ import annotations

import itertools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import smoothie_jax as sj
from smoothie_jax import simulate_families
from smoothie_jax.families import (
    FamilySmoothie,
    diagnose,
    family_labels,
    fit_families,
    identifiability,
    route_families,
)
from smoothie_jax.families._design import design_matrix as _design

DIM = 16


def null_data(seed: int, n: int = 120, m: int = 5, **kwargs: float) -> jax.Array:
    """Independent errors: every model its own family with no shared variance."""
    individual = jnp.linspace(0.3, 1.5, m)
    return simulate_families(
        jax.random.key(seed),
        individual,
        jnp.zeros(m),
        list(range(m)),
        n_samples=n,
        dim=DIM,
        **kwargs,
    )


# Two families and two models alone. Family 0 has small individual errors but a large
# shared one: its members agree closely and win Smoothie's vote, but model 5 is best.
FAMILIES = [0, 0, 0, 1, 1, 2, 3]
INDIVIDUAL = jnp.array([0.2, 0.25, 0.3, 0.6, 0.8, 0.5, 0.9])
FAMILY_VAR = jnp.array([1.0, 0.5, 0.0, 0.0])
TRUE_DELTA = DIM * (np.asarray(INDIVIDUAL) + np.asarray(FAMILY_VAR)[FAMILIES])


def family_data(seed: int, n: int = 400) -> jax.Array:
    return simulate_families(
        jax.random.key(seed), INDIVIDUAL, FAMILY_VAR, FAMILIES, n_samples=n, dim=DIM
    )


# ---------------------------------------------------------------- equality with plain


def test_least_squares_on_pairs_is_the_triplet_closed_form() -> None:
    rng = np.random.default_rng(0)
    for m in (3, 4, 7):
        d = rng.uniform(1, 2, (m, m))
        d = d + d.T
        np.fill_diagonal(d, 0)
        x, _ = _design(tuple(range(m)))
        ls = np.linalg.lstsq(x, d[np.triu_indices(m, 1)], rcond=None)[0]
        triplet = np.asarray(sj.triplet_delta(jnp.asarray(d, jnp.float32)))
        np.testing.assert_allclose(ls, triplet, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("m", [3, 5, 8])
def test_every_model_alone_equals_fit_global(m: int) -> None:
    x = jax.random.normal(jax.random.key(m), (50, m, 8)) * jnp.linspace(0.5, 2, m)[None, :, None]
    fit = fit_families(x, list(range(m)))
    chex.assert_trees_all_close(fit.theta, sj.fit_global(x).theta, rtol=1e-5)
    assert fit.identified
    chex.assert_trees_all_close(fit.delta_range[0], fit.delta_range[1])
    chex.assert_trees_all_close(fit.family_variance, jnp.zeros(m))


@pytest.mark.slow
def test_route_without_families_is_plain_smoothie() -> None:
    x = null_data(0, n=300)
    route = route_families(x)
    assert route.method == "smoothie" and not route.abstained
    assert route.choice == int(sj.fit_global(x).route())
    chex.assert_trees_all_close(route.fit.theta, sj.fit_global(x).theta, rtol=1e-5)


def test_one_family_of_everyone_ranks_like_plain() -> None:
    # One group: the shared error is invisible, the ranking is not; at W = 0 the fit is
    # the plain one.
    x = null_data(2, n=200)
    fit = fit_families(x, [0] * 5)
    chex.assert_trees_all_close(fit.theta, sj.fit_global(x).theta, rtol=1e-5)
    assert fit.identified and bool(jnp.all(jnp.isinf(fit.delta_range[1])))


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


def test_excess_is_negative_within_families() -> None:
    d = diagnose(family_data(0))
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


# ---------------------------------------------------------------- recovery


@pytest.mark.slow
def test_recovers_each_models_own_quality_with_given_families() -> None:
    x = family_data(0, n=2000)
    fit = fit_families(x, FAMILIES)
    assert fit.identified
    np.testing.assert_allclose(np.asarray(fit.delta), TRUE_DELTA, rtol=0.06)
    np.testing.assert_allclose(
        np.asarray(fit.family_variance), DIM * np.asarray(FAMILY_VAR)[FAMILIES], atol=0.6
    )
    assert int(fit.route()) == int(np.argmin(TRUE_DELTA)) == 5
    # Plain Smoothie is fooled by the close family: it picks a member of family 0.
    assert int(sj.fit_global(x).route()) in (0, 1, 2)


@pytest.mark.slow
def test_recovers_quality_with_found_families_and_routes_right() -> None:
    x = family_data(1, n=2000)
    route = route_families(x)
    assert route.method == "family-aware" and route.choice == 5
    np.testing.assert_allclose(np.asarray(route.fit.delta), TRUE_DELTA, rtol=0.08)


def test_permuting_models_permutes_the_fit() -> None:
    x = family_data(2)
    perm = np.array([6, 2, 4, 0, 5, 1, 3])
    fit = fit_families(x, FAMILIES)
    fit_p = fit_families(x[:, perm], [FAMILIES[i] for i in perm])
    chex.assert_trees_all_close(fit_p.theta, fit.theta[perm], rtol=1e-4)
    d, d_p = diagnose(x), diagnose(x[:, perm])
    assert d_p.p_value == pytest.approx(d.p_value, abs=1e-12)
    relabel = {tuple(sorted(perm[list(g)])) for g in d_p.groups}
    assert relabel == {tuple(sorted(g)) for g in d.groups}


def test_fitted_module_is_a_pytree() -> None:
    fit = fit_families(family_data(0), FAMILIES)
    assert isinstance(fit, FamilySmoothie)
    doubled = jax.jit(lambda f: jax.tree_util.tree_map(lambda a: 2 * a, f))(fit)
    chex.assert_trees_all_close(doubled.theta, 2 * fit.theta)
    chex.assert_tree_all_finite((fit.theta, fit.delta, fit.family_variance))


# ---------------------------------------------------------------- identifiability


@pytest.mark.parametrize(
    ("families", "groups", "quality", "ranking", "individual"),
    [
        ([0, 1, 2, 3], 4, True, True, (True,) * 4),
        ([0, 0, 1, 2], 3, True, True, (True,) * 4),
        ([0, 0, 1, 1], 2, False, False, (True,) * 4),
        ([0, 0, 0, 1], 2, False, False, (True, True, True, False)),
        ([0, 0, 0, 0], 1, False, True, (True,) * 4),
    ],
)
def test_identifiability_cases(
    families: list[int], groups: int, quality: bool, ranking: bool, individual: tuple
) -> None:
    ident = identifiability(families)
    assert (ident.n_groups, ident.quality, ident.ranking) == (groups, quality, ranking)
    assert ident.family_variance == quality and ident.individual == individual
    # The structural claim, checked on the design: full column rank iff >= 3 groups.
    x, _ = _design(family_labels(families))
    assert (np.linalg.matrix_rank(x) == x.shape[1]) == quality


def test_two_groups_give_an_interval() -> None:
    x = family_data(0)[:, :5]  # families {0, 1, 2} and {3, 4} only
    fit = fit_families(x, [0, 0, 0, 1, 1])
    low, high = np.asarray(fit.delta_range)
    assert np.all(high - low > 0.1)  # no model's own quality is identified
    assert np.all(np.asarray(fit.family_variance) >= -1e-6)
    # Within-group differences are identified: the same at both ends of the interval.
    np.testing.assert_allclose(np.diff(low[:3]), np.diff(high[:3]), atol=1e-4)


@pytest.mark.slow
def test_two_groups_route_identified_by_nonnegative_family_variance() -> None:
    # Model 3 beats family {0, 1, 2} even if all of that family's shared error were
    # really model 3's group's: W >= 0 alone decides the route.
    x = simulate_families(
        jax.random.key(0),
        jnp.array([1.0, 1.1, 1.2, 0.2, 0.5]),
        jnp.array([0.3, 0.0]),
        [0, 0, 0, 1, 1],
        n_samples=400,
        dim=DIM,
    )
    fit = fit_families(x, [0, 0, 0, 1, 1])
    assert fit.identified and int(fit.route()) == 3
    route = route_families(x, families=[0, 0, 0, 1, 1])
    assert route.method == "family-aware" and "W >= 0 alone" in route.reason


# ---------------------------------------------------------------- the safe policy


def test_unidentified_route_falls_back_to_default_or_stratified() -> None:
    x = family_data(0)[:, :5]
    families = {"a": "A", "b": "A", "c": "A", "d": "B", "e": "B"}
    models = list("abcde")
    fit = fit_families(x, families, models=models)
    assert not fit.identified
    with_default = route_families(x, families=families, models=models, default="d")
    assert with_default.method == "default" and with_default.choice == 3
    assert with_default.abstained and "not identified" in with_default.reason
    safe = route_families(x, families=families, models=models)
    assert safe.method == "stratified" and safe.choice is None and safe.abstained
    p = safe.probabilities
    assert p.sum() == pytest.approx(1.0)
    assert p[:3].sum() == pytest.approx(3 / 5) and p[3:].sum() == pytest.approx(2 / 5)
    # The identified within-group choices are right, so it beats uniform random picking.
    quality = -TRUE_DELTA[:5]
    assert safe.expected(quality) >= quality.mean()
    draws = np.asarray(safe.sample(jax.random.key(0), 4000))
    np.testing.assert_allclose(np.bincount(draws, minlength=5) / 4000, p, atol=0.03)
    assert "Routing probabilities" in safe.to_text(models)


@pytest.mark.slow
def test_three_models_are_untestable_and_route_plainly() -> None:
    x = null_data(0, m=3)
    d = diagnose(x)
    assert not d.testable and d.p_value == 1.0 and "not possible" in d.to_text()
    route = route_families(x)
    assert route.method == "smoothie" and route.choice == int(sj.fit_global(x).route())


def test_given_families_on_family_data_route_right() -> None:
    route = route_families(family_data(4), families=FAMILIES, default=0)
    assert route.method == "family-aware" and route.choice == 5 and not route.abstained
    assert route.diagnosis.given and route.diagnosis.family_p_value >= 0.05
    assert "Families given: {0, 1, 2}; {3, 4}" in route.to_text()


def test_strict_never_ranks_across_groups_after_a_rejection() -> None:
    route = route_families(family_data(4), families=FAMILIES, strict=True)
    assert route.method == "stratified" and "strict" in route.reason
    # Groups {0, 1, 2}, {3, 4}, {5}, {6}: mass size/m on each group's best model.
    p = route.probabilities
    np.testing.assert_allclose(p[[0, 1, 2]].sum(), 3 / 7)
    np.testing.assert_allclose(p[[5, 6]], [1 / 7, 1 / 7])
    assert np.argmax(p[:3]) == 0 and np.argmax(p[3:5]) == 0  # the identified best within
    # Without a rejection strict changes nothing.
    x = null_data(0, n=300)
    assert route_families(x, strict=True).choice == route_families(x).choice


def test_a_model_that_does_not_fit_falls_back() -> None:
    # Every model declared alone on family data: that model (independence) is rejected,
    # so the route is the uniform draw: exactly random picking.
    models = [f"m{i}" for i in range(7)]
    route = route_families(family_data(4), families=list(range(7)), models=models)
    assert route.method == "stratified" and "does not fit" in route.reason
    np.testing.assert_allclose(route.probabilities, np.full(7, 1 / 7))
    with_default = route_families(
        family_data(4), families=list(range(7)), models=models, default="m6"
    )
    assert with_default.method == "default" and with_default.choice == 6


# ---------------------------------------------------------------- bad inputs


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda x: fit_families(x, [0, 0, 1]), "3 labels for 5 models"),
        (lambda x: fit_families(x, {"a": 0}), "need models"),
        (lambda x: fit_families(x, {"zz": 0}, models=list("abcde")), "not in models"),
        (lambda x: fit_families(x, "aabbc"), "sequence of one label"),
        pytest.param(
            lambda x: fit_families(x, [[0], [0], [1], [2], [3]]),
            "hashable",
            marks=pytest.mark.unchecked,
        ),
        (lambda x: diagnose(x, alpha=1.5), "alpha"),
        (lambda x: diagnose(x[:5]), "more than 6 inputs"),
        pytest.param(
            lambda x: diagnose(x[0]), "embeddings must have shape", marks=pytest.mark.unchecked
        ),
        (lambda x: diagnose(x.at[0, 0, 0].set(jnp.nan)), "NaN"),
        (lambda x: route_families(x, default="zz", models=list("abcde")), "default model"),
        (lambda x: route_families(x, default=7), "outside"),
        (lambda x: route_families(x, models=["a"]), "1 names for 5 models"),
    ],
)
def test_bad_inputs_raise_value_error(call, match: str) -> None:  # noqa: ANN001
    with pytest.raises(ValueError, match=match):
        call(null_data(0))


def test_too_many_families_for_the_exact_fit() -> None:
    x = jax.random.normal(jax.random.key(0), (30, 27, 2))
    with pytest.raises(ValueError, match="at most 12"):
        fit_families(x, [i // 2 for i in range(27)])


def test_labels_from_mapping_keep_unnamed_models_alone() -> None:
    labels = family_labels({"a": "x", "c": "x"}, models=["a", "b", "c", "d"])
    assert labels == (0, 1, 0, 2)
    assert list(itertools.accumulate(labels, max))[-1] == 2


def test_confounded_is_the_routers_gate() -> None:
    """`confounded`: families found at the policy's alpha; too few inputs: False; only
    inputs every model answered are tested."""
    fam, null = family_data(0), null_data(0)
    assert sj.families.confounded(fam) and not sj.families.confounded(null)
    assert sj.families.confounded(fam) == bool(diagnose(fam, alpha=0.01).groups)
    assert not sj.families.can_diagnose(6, 5) and sj.families.can_diagnose(7, 5)
    assert not sj.families.confounded(fam[:6])
    observed = np.ones(fam.shape[:2], bool)
    observed[6:, 0] = False  # only 6 complete inputs left: too few to test
    assert not sj.families.confounded(fam, observed)

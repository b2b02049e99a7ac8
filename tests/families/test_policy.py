"""`_family_route`: the safe route, plain Smoothie where the consensus holds, a
fallback (the user's default or a stratified draw) where it cannot be trusted."""

from __future__ import annotations

import chex
import jax
import numpy as np
import pytest

import smoothie_jax as sj
from smoothie_jax.families import diagnose, fit_families, route_families

from .simulated import FAMILIES, TRUE_DELTA, family_data, null_data


@pytest.mark.slow
def test_route_without_families_is_plain_smoothie() -> None:
    x = null_data(0, n=300)
    route = route_families(x)
    assert route.method == "smoothie" and not route.abstained
    assert route.choice == int(sj.fit_global(x).route())
    chex.assert_trees_all_close(route.fit.theta, sj.fit_global(x).theta, rtol=1e-5)


@pytest.mark.slow
def test_recovers_quality_with_found_families_and_routes_right() -> None:
    x = family_data(1, n=2000)
    route = route_families(x)
    assert route.method == "family-aware" and route.choice == 5
    np.testing.assert_allclose(np.asarray(route.fit.delta), TRUE_DELTA, rtol=0.08)


def test_unidentified_route_falls_back_to_default_or_stratified(family_x: jax.Array) -> None:
    x = family_x[:, :5]
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


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"default": "zz", "models": list("abcde")}, "default model"),
        ({"default": 7}, "outside"),
        ({"models": ["a"]}, "1 names for 5 models"),
    ],
)
def test_bad_arguments_raise_value_error(null_x: jax.Array, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        route_families(null_x, **kwargs)

"""`_family_fit`: the family-aware fit's equality with plain Smoothie, recovery,
identifiability, and its module."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import smoothie_jax as sj
from smoothie_jax import simulate_families
from smoothie_jax._family_design import design_matrix as _design
from smoothie_jax.families import (
    FamilySmoothie,
    diagnose,
    family_labels,
    fit_families,
    identifiability,
    route_families,
)

from .simulated import DIM, FAMILIES, FAMILY_VAR, TRUE_DELTA, family_data, null_data

# ---------------------------------------------------------------- equality with plain


@pytest.mark.slow
@pytest.mark.parametrize("m", [3, 5, 8])
def test_every_model_alone_equals_fit_global(m: int) -> None:
    x = jax.random.normal(jax.random.key(m), (50, m, 8)) * jnp.linspace(0.5, 2, m)[None, :, None]
    fit = fit_families(x, list(range(m)))
    chex.assert_trees_all_close(fit.theta, sj.fit_global(x).theta, rtol=1e-5)
    assert fit.identified
    chex.assert_trees_all_close(fit.delta_range[0], fit.delta_range[1])
    chex.assert_trees_all_close(fit.family_variance, jnp.zeros(m))


def test_one_family_of_everyone_ranks_like_plain() -> None:
    # One group: the shared error is invisible, the ranking is not; at W = 0 the fit is
    # the plain one.
    x = null_data(2, n=200)
    fit = fit_families(x, [0] * 5)
    chex.assert_trees_all_close(fit.theta, sj.fit_global(x).theta, rtol=1e-5)
    assert fit.identified and bool(jnp.all(jnp.isinf(fit.delta_range[1])))


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


def test_fitted_module_is_a_pytree(family_x: jax.Array) -> None:
    fit = fit_families(family_x, FAMILIES)
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


def test_two_groups_give_an_interval(family_x: jax.Array) -> None:
    x = family_x[:, :5]  # families {0, 1, 2} and {3, 4} only
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


def test_too_many_families_for_the_exact_fit() -> None:
    x = jax.random.normal(jax.random.key(0), (30, 27, 2))
    with pytest.raises(ValueError, match="at most 12"):
        fit_families(x, [i // 2 for i in range(27)])

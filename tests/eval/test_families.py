"""Family-aware rows of the evaluation table, on `evaluate`'s own splits."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import smoothie_jax as sj
from smoothie_jax.eval import evaluate_families
from smoothie_jax.families import route_families

DIM = 16
# Two families and two models alone (as in tests/families/simulated.py): family 0 has small
# individual errors but a large shared one, so its members agree closely and win
# Smoothie's vote.
FAMILIES = [0, 0, 0, 1, 1, 2, 3]
INDIVIDUAL = jnp.array([0.2, 0.25, 0.3, 0.6, 0.8, 0.5, 0.9])
FAMILY_VAR = jnp.array([1.0, 0.5, 0.0, 0.0])


def family_data(seed: int, n: int = 400) -> jax.Array:
    return sj.simulate_families(
        jax.random.key(seed), INDIVIDUAL, FAMILY_VAR, FAMILIES, n_samples=n, dim=DIM
    )


@pytest.mark.slow
def test_evaluate_families_rows_match_the_protocol() -> None:
    x = family_data(0)
    scores = np.asarray(jax.random.uniform(jax.random.key(1), (400, 7)), np.float64)
    models = [f"m{i}" for i in range(7)]
    splits = sj.eval.draw_splits(scores, ensembles=6, size=5, seed=0, n_labelled=50)
    families = dict(zip(models, map(str, FAMILIES)))
    rows_, detail = evaluate_families(x, scores, models, splits=splits, families=families)
    rows = {row.name: row.per_ensemble for row in rows_}
    assert set(rows) == {
        f"Smoothie-{kind} ({source})"
        for kind in ("Families", "Safe", "Strict")
        for source in ("found", "given")
    }
    assert all(len(v) == 6 for v in rows.values()) and len(detail) == 6
    for e, split in enumerate(splits):
        ens = list(split.models)
        held = 100 * scores[split.held_out][:, ens].mean(axis=0)
        assert detail[e]["p_value"] < 1e-6  # every ensemble holds part of a family
        assert held.min() - 1e-9 <= rows["Smoothie-Safe (given)"][e] <= held.max() + 1e-9
        assert detail[e]["given"]["method"] in ("family-aware", "stratified")
        # Each row is what the public policy gives on the same kept rows.
        kept = x[split.kept][:, ens]
        names = [models[i] for i in ens]
        for source, fams in (("found", None), ("given", [FAMILIES[i] for i in ens])):
            safe = route_families(kept, families=fams, models=names)
            strict = route_families(kept, families=fams, models=names, strict=True)
            assert detail[e][source]["method"] == safe.method
            assert rows[f"Smoothie-Safe ({source})"][e] == pytest.approx(safe.expected(held))
            assert rows[f"Smoothie-Strict ({source})"][e] == pytest.approx(strict.expected(held))
            fit = held[int(safe.fit.route())]
            assert rows[f"Smoothie-Families ({source})"][e] == pytest.approx(fit)

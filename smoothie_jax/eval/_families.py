"""Family-aware rows for the evaluation table, on `evaluate`'s own splits."""

from __future__ import annotations

from collections.abc import Sequence

import jax.numpy as jnp
import numpy as np
from jaxtyping import Float

from .. import _validate
from .._estimator import DEFAULT_EPS
from .._family_design import DEFAULT_POLICY_ALPHA, Families, moments_of
from .._family_fit import fit_from_mean
from .._family_route import decide_route
from .._independence import check_enough_samples, diagnose_moments
from ..families import family_labels
from ._names import LABEL_FREE, SCALE
from ._result import MethodResult
from ._split import Split


def evaluate_families(
    outputs: Float[_validate.ArrayLike, "n_samples n_models dim"],
    scores: Float[np.ndarray, "n_samples n_models"],
    models: Sequence[str],
    *,
    splits: Sequence[Split],
    families: Families | None = None,
    alpha: float = DEFAULT_POLICY_ALPHA,
) -> tuple[tuple[MethodResult, ...], list[dict]]:
    """Family-aware rows of the test-time table, fitted and scored as Smoothie-Global is.

    Pass an `EvaluationResult`'s `splits`: every method is fitted on each ensemble's kept
    inputs (unlabelled to it) and scored on its held-out inputs, 100 x mean score, and the
    rows go into the table with `result.with_rows(rows)`. One diagnosis and one fit per
    ensemble and source serve every policy.

    Returns:
        (rows, detail): rows for the groups found and, with `families`, for the groups
        given: "Smoothie-Families (source)" (the family fit's best model, whatever the
        checks say), "Smoothie-Safe (source)" (`route_families`) and
        "Smoothie-Strict (source)" (`route_families(strict=True)`); a stratified fallback
        is scored by its expectation. `detail`: per ensemble, the diagnosis, the groups
        and what each policy did.
    """
    outputs = _validate.check_embeddings(outputs)
    scores = np.asarray(scores, np.float64)
    models = tuple(models)
    labels_all = family_labels(families, models=models) if families is not None else None
    rows: dict[str, list[float]] = {}
    detail = []
    for split in splits:
        ens = np.asarray(split.models)
        emb = jnp.take(jnp.take(outputs, jnp.asarray(split.kept), axis=0), jnp.asarray(ens), 1)
        check_enough_samples(emb.shape[0], emb.shape[1])
        moments = moments_of(emb)  # once per ensemble: every source and policy reads them
        held_means = SCALE * scores[split.held_out][:, ens].mean(axis=0)
        names = [models[i] for i in ens]
        record: dict = {"models": names}
        runs: list[tuple[str, list | None]] = [("found", None)]
        if labels_all is not None:
            runs.append(("given", [labels_all[i] for i in ens]))
        for source, fams in runs:
            d = diagnose_moments(moments, alpha=alpha, families=fams, models=names)
            labels = d.labels if d.given else d.identified_labels
            fit = fit_from_mean(moments.mean, labels, moments.dim, DEFAULT_EPS)
            safe = decide_route(d, fit, names)
            strict = decide_route(d, fit, names, strict=True)
            if source == "found":
                record["p_value"] = d.p_value
            record[source] = {
                "groups": [[names[i] for i in g] for g in d.groups],
                "mirror": None if d.mirror is None else [names[i] for i in d.mirror],
                "family_p_value": d.family_p_value,
                "explained": d.explained,
                "method": safe.method,
                "reason": safe.reason,
                "strict_method": strict.method,
            }
            for row, value in (
                (f"Smoothie-Families ({source})", float(held_means[int(fit.route())])),
                (f"Smoothie-Safe ({source})", safe.expected(held_means)),
                (f"Smoothie-Strict ({source})", strict.expected(held_means)),
            ):
                rows.setdefault(row, []).append(value)
        detail.append(record)
    return tuple(MethodResult(k, LABEL_FREE, tuple(v)) for k, v in rows.items()), detail

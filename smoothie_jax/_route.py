"""The decision stage: one call from embeddings to the model chosen for each input.

`route` is what the command line and a platform call: it runs the recommended
label-free router (LenCons, `_signals.py`, when output lengths are given), reports the
independence test of the consensus it relies on, and returns a `Decision` that says what
was chosen, with which probabilities, by which method and why. The paper's estimators
stay available by name (`method="local"` / `"global"`) and as plain functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import final

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from . import _validate
from ._distances import pair_mask, sample_distances
from ._estimator import DEFAULT_EPS
from ._neighbours import Search
from ._signals import consensus_term, lencons_scores, log_length, standardise
from ._smoothie import fit_global, fit_local, masked_global_theta
from .families import (
    DEFAULT_ALPHA,
    DEFAULT_POLICY_ALPHA,
    Diagnosis,
    diagnose_answered,
    route_families,
)

DEFAULT_K = 20
METHODS = ("auto", "local", "global")


@final
class Decision(eqx.Module):
    """Which model answers each input, and how sure the router is.

    Attributes:
        choice: (n_samples,) index of the chosen model for each input.
        probabilities: (n_samples, n_models) probability of routing each input to each
            model: one-hot where the choice is deterministic, spread where the router
            draws (a fallback when consensus cannot be trusted), posterior probability
            of being best where a posterior chose.
        weights: (n_samples, n_models) normalised quality scores behind the choice.
        method: the method that decided, e.g. "smoothie-local".
        reason: one sentence saying why that method, for logs and reports.
        diagnosis: the independence test the decision relied on (None where it was not
            run: too few inputs to test, or asked not to).
        interval: with a posterior, the (lower, upper) 90% credible bounds of each
            model's theta per input, each (n_samples, n_models); else None.
    """

    choice: Int[Array, " n_samples"]
    probabilities: Float[Array, "n_samples n_models"]
    weights: Float[Array, "n_samples n_models"]
    method: str = eqx.field(static=True)
    reason: str = eqx.field(static=True)
    diagnosis: Diagnosis | None = eqx.field(static=True, default=None)
    interval: tuple[Array, Array] | None = None

    def __check_init__(self) -> None:
        n, m = self.probabilities.shape
        if self.choice.shape != (n,) or self.weights.shape != (n, m):
            raise ValueError(
                f"Decision needs choice (n,), probabilities and weights (n, m); got "
                f"{self.choice.shape}, {self.probabilities.shape}, {self.weights.shape}"
            )

    @property
    def n_models(self) -> int:
        return self.probabilities.shape[-1]


def _normalise(theta: Array) -> Array:
    return theta / jnp.sum(theta, axis=-1, keepdims=True)


def route(
    embeddings: Float[Array, "n_samples n_models dim"],
    inputs: Float[Array, "n_samples input_dim"] | None = None,
    *,
    lengths: Float[Array, "n_samples n_models"] | None = None,
    key: PRNGKeyArray | None = None,
    method: str = "auto",
    k: int = DEFAULT_K,
    families: object | None = None,
    models: Sequence[str] | None = None,
    default: int | str | None = None,
    strict: bool = False,
    check: bool = True,
    posterior: bool = False,
    level: float = 0.9,
    observed: Bool[Array, "n_samples n_models"] | None = None,
    search: str | Search = "exact",
) -> Decision:
    """Test-time routing: every model answered every input; choose one answer per input.

    The recommended method ("auto") trusts the paper's consensus unless the data show it
    confounded: the independence test (`diagnose`) runs first, and only where it finds
    families of models that agree more than independence allows (and `lengths` are
    given) does it route by LenCons, each output's standardised log length plus half of
    Smoothie-Global's standardised log theta (`_signals.py` says why and how it was
    measured). Otherwise it is Smoothie-Global.

    Args:
        embeddings: embedding of each model's output for each input.
        inputs: embedding of each input; "local" smooths over the k nearest.
        lengths: length of each output in characters (>= 0), for "auto".
        key: PRNG key for methods that draw (a fallback draw per input); default key 0.
        method: "auto" (recommended), or a paper estimator by name: "local"
            (Smoothie-Local with k neighbours, needs `inputs`) or "global"
            (Smoothie-Global, checked for correlated families by `route_families`
            unless `check` is False).
        k: neighbours of "local" (clipped to n_samples).
        families: known model families for the check ({model: family} with `models`,
            or one label per model).
        models: model names (for a mapping `families`, a named `default`).
        default: with "global", where to route when the consensus cannot be trusted.
        strict: with "global", never rank models across families once independence is
            rejected.
        check: run the independence test (`diagnose`) and, for "global", the family
            check; False gives the plain estimator.
        posterior: decide by the NumPyro posterior of the paper's estimator instead
            (Global, or Local with k neighbours): the choice is the most probably best
            model, `probabilities` its posterior probability of being best, `weights`
            the posterior mean, `interval` the credible bounds at `level`.
        level: credible level of `interval`.
        observed: True where model j answered input i, for files where some models did
            not answer some inputs; a model is never chosen where it did not answer.
        search: neighbour search of "local": "exact", "approximate" or a `Search`.

    Returns:
        A `Decision` with `choice` of shape (n_samples,).

    Raises:
        ValueError: bad shapes, lengths that are negative, NaN or of the wrong shape, an
            unknown method, or a mask that leaves a model without data.

    >>> x = jax.random.normal(jax.random.key(0), (60, 4, 8))
    >>> route(x, x[:, 0], lengths=jnp.ones((60, 4))).choice.shape
    (60,)
    """
    embeddings = _validate.check_embeddings(embeddings)
    n, m, dim = embeddings.shape
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if inputs is not None:
        inputs = _validate.check_inputs(inputs, n)
    if lengths is not None:
        lengths = _validate.check_lengths(lengths, (n, m))
    if method == "local" and inputs is None:
        raise ValueError("method='local' needs inputs (the neighbours come from them)")
    k = _validate.check_k(k, n, clip=True)
    key = jax.random.key(0) if key is None else key
    if observed is not None:
        observed = _validate.check_observed(observed, (n, m))
        if bool(observed.all()):
            observed = None  # nothing missing: the exact paths below
    if posterior:
        if observed is not None:
            raise ValueError("posterior=True needs every model's answer to every input")
        return _posterior_decision(embeddings, inputs, method, k, key, level, check)
    diagnosis = None
    if check or method == "auto":  # the recommended method reads the diagnosis
        # The gate asks for the policy's stronger evidence: a false alarm would swap the
        # paper's consensus for the length signal.
        alpha = DEFAULT_POLICY_ALPHA if method == "auto" else DEFAULT_ALPHA
        diagnosis = diagnose_answered(
            embeddings, observed, alpha=alpha, families=families, models=models
        )

    if method == "auto":
        eps = jnp.asarray(DEFAULT_EPS, embeddings.dtype)
        pairs = (
            jnp.broadcast_to(1.0 - jnp.eye(m), (n, m, m))
            if observed is None
            else pair_mask(observed)
        )
        theta = masked_global_theta(sample_distances(embeddings), pairs, dim, eps=eps)
        confounded = diagnosis is not None and len(diagnosis.groups) > 0
        if lengths is None or not confounded:
            score = jnp.log(jnp.where(theta > 0, theta, 1.0))
            score = jnp.broadcast_to(jnp.where(theta > 0, score, -jnp.inf), (n, m))
            if observed is not None:
                score = jnp.where(observed, score, -jnp.inf)
            how = "smoothie-global"
            why = (
                "no lengths given: Smoothie-Global."
                if lengths is None
                else "no family of models agrees more than independence allows: the "
                "consensus is trusted, Smoothie-Global."
            )
        else:
            length_z = standardise(log_length(lengths), observed)
            score = lencons_scores(length_z, consensus_term(theta), observed)
            how = "lencons"
            why = (
                f"{len(diagnosis.groups)} families agree more than independence allows, so "
                "the consensus is confounded: LenCons, each output's standardised log "
                "length plus half of Smoothie-Global's standardised log quality."
            )
        choice = jnp.argmax(score, axis=-1).astype(jnp.int32)
        return Decision(
            choice=choice,
            probabilities=jax.nn.one_hot(choice, m, dtype=jnp.float32),
            weights=jax.nn.softmax(score, axis=-1),
            method=how,
            reason=why,
            diagnosis=diagnosis,
        )

    if method == "global" and check and observed is None:
        fam = route_families(
            embeddings, families=families, models=models, default=default, strict=strict
        )
        probabilities = np.broadcast_to(fam.probabilities, (n, m))
        return Decision(
            choice=jnp.asarray(fam.sample(key, n), jnp.int32),
            probabilities=jnp.asarray(probabilities, jnp.float32),
            weights=jnp.broadcast_to(fam.fit.weights, (n, m)),
            method=f"smoothie-global ({fam.method})",
            reason=fam.reason,
            diagnosis=fam.diagnosis,
        )
    if method == "global":
        theta = jnp.broadcast_to(fit_global(embeddings, observed=observed).theta, (n, m))
        how, why = "smoothie-global", "Smoothie-Global: one quality per model for the file."
    else:
        theta = fit_local(embeddings, inputs, k=k, observed=observed, search=search).theta
        how = f"smoothie-local (k={k})"
        why = f"Smoothie-Local: each input's quality from its {k} nearest inputs."
    if observed is not None:
        how += ", masked"
        why += " Pairs are averaged where both models answered."
    choice = jnp.argmax(theta, axis=-1).astype(jnp.int32)
    return Decision(
        choice=choice,
        probabilities=jax.nn.one_hot(choice, m, dtype=jnp.float32),
        weights=_normalise(theta),
        method=how,
        reason=why,
        diagnosis=diagnosis,
    )


def _posterior_decision(
    embeddings: Array,
    inputs: Array | None,
    method: str,
    k: int,
    key: PRNGKeyArray,
    level: float,
    check: bool,
) -> Decision:
    """One model per record: choice, probabilities, weights and bounds all from one
    posterior (Global without inputs or with method "global", else Local)."""
    from .posterior import fit_posterior
    from .posterior._policies import most_probable

    n, m, _ = embeddings.shape
    local = inputs is not None and method == "local"
    post = fit_posterior(
        embeddings, key=key, inputs=inputs if local else None, k=k if local else None
    )
    lower, upper = post.interval(level)
    prob = jnp.broadcast_to(post.prob_best, (n, m))
    diagnosis = diagnose_answered(embeddings) if check else None
    how = f"Smoothie-Local k={k}" if local else "Smoothie-Global"
    return Decision(
        choice=jnp.broadcast_to(most_probable(post), (n,)).astype(jnp.int32),
        probabilities=prob.astype(jnp.float32),
        weights=jnp.broadcast_to(_normalise(post.mean), (n, m)),
        method=f"posterior ({how})",
        reason=f"the most probably best model under the NumPyro posterior of {how}.",
        diagnosis=diagnosis,
        interval=(jnp.broadcast_to(lower, (n, m)), jnp.broadcast_to(upper, (n, m))),
    )

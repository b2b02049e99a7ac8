"""The decision stage: one call from embeddings to the model chosen for each input.

`route` is what the command line and a platform call: it runs the recommended
label-free router, checks the consensus it relies on, and returns a `Decision` that says
what was chosen, with which probabilities, by which method and why. The paper's
estimators stay available as plain functions (`fit_global`, `fit_local`) underneath.
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
from ._5_smoothie import fit_global, fit_local
from .families import Diagnosis, diagnose, route_families

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


def _can_diagnose(n: int, m: int) -> bool:
    """The independence test needs more than m(m-3)/2 + 1 inputs (see `diagnose`)."""
    return n > m * (m - 3) // 2 + 1


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
) -> Decision:
    """Test-time routing: every model answered every input; choose one answer per input.

    Args:
        embeddings: embedding of each model's output for each input.
        inputs: embedding of each input; Local methods smooth over the k nearest.
        lengths: length of each output (characters), a signal of the recommended method.
        key: PRNG key for methods that draw (a fallback draw per input); default key 0.
        method: "auto" (recommended), or a paper estimator: "local" (Smoothie-Local
            with k neighbours, needs `inputs`) or "global" (Smoothie-Global, checked
            for correlated families by `route_families`).
        k: neighbours of the Local methods (clipped to n_samples).
        families: known model families for the check ({model: family} with `models`,
            or one label per model).
        models: model names (for a mapping `families`, a named `default`).
        default: with "global", where to route when the consensus cannot be trusted.
        strict: with "global", never rank models across families once independence is
            rejected.
        check: run the independence test (`diagnose`) and report it.
        posterior: decide by the NumPyro posterior of the same estimator instead
            (Global, or Local with k neighbours): the choice is the most probably best
            model, `probabilities` its posterior probability of being best, `weights`
            the posterior mean, `interval` the credible bounds at `level`.
        level: credible level of `interval`.
        observed: True where model j answered input i, for files where some models did
            not answer some inputs; a model is never chosen where it did not answer.

    Returns:
        A `Decision` with `choice` of shape (n_samples,).

    >>> x = jax.random.normal(jax.random.key(0), (60, 4, 8))
    >>> route(x, x[:, 0]).choice.shape
    (60,)
    """
    embeddings = _validate.check_embeddings(embeddings)
    n, m, _ = embeddings.shape
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
    if observed is not None:
        return _masked_decision(embeddings, inputs, observed, method, k)
    if posterior:
        return _posterior_decision(embeddings, inputs, method, k, key, level, check)

    if method == "global" or (method == "auto" and inputs is None):
        fam = route_families(
            embeddings, families=families, models=models, default=default, strict=strict
        )
        probabilities = np.broadcast_to(fam.probabilities, (n, m))
        choice = fam.sample(key, n)
        weights = jnp.broadcast_to(fam.fit.weights, (n, m))
        return Decision(
            choice=jnp.asarray(choice, jnp.int32),
            probabilities=jnp.asarray(probabilities, jnp.float32),
            weights=weights,
            method=f"smoothie-global ({fam.method})",
            reason=fam.reason,
            diagnosis=fam.diagnosis,
        )

    theta = fit_local(embeddings, inputs, k=k).theta
    diagnosis = None
    if check and _can_diagnose(n, m):
        diagnosis = diagnose(embeddings, families=families, models=models)
    choice = jnp.argmax(theta, axis=-1).astype(jnp.int32)
    return Decision(
        choice=choice,
        probabilities=jax.nn.one_hot(choice, m, dtype=jnp.float32),
        weights=_normalise(theta),
        method=f"smoothie-local (k={k})",
        reason=f"Smoothie-Local: each input's quality from its {k} nearest inputs.",
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
    from ._5_bayes import fit_posterior
    from ._6_policies import most_probable

    n, m, _ = embeddings.shape
    local = inputs is not None and method != "global"
    post = fit_posterior(
        embeddings, key=key, inputs=inputs if local else None, k=k if local else None
    )
    lower, upper = post.interval(level)
    prob = jnp.broadcast_to(post.prob_best, (n, m))
    diagnosis = diagnose(embeddings) if check and _can_diagnose(n, m) else None
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


def _masked_decision(
    embeddings: Array, inputs: Array | None, observed: Array, method: str, k: int
) -> Decision:
    """Smoothie on the observed entries (pairs averaged where both models answered)."""
    n, m, _ = embeddings.shape
    if method == "global" or inputs is None:
        theta = fit_global(embeddings, observed=observed).theta
        how, reason = "smoothie-global (masked)", "Smoothie-Global on the observed answers"
    else:
        theta = fit_local(embeddings, inputs, k=k, observed=observed).theta
        how, reason = f"smoothie-local (k={k}, masked)", "Smoothie-Local on the observed answers"
    choice = jnp.argmax(theta, axis=-1).astype(jnp.int32)
    complete = np.asarray(observed).all(axis=1)
    diagnosis = None
    if _can_diagnose(int(complete.sum()), m):  # the test needs inputs every model answered
        diagnosis = diagnose(embeddings[np.flatnonzero(complete)])
    return Decision(
        choice=choice,
        probabilities=jax.nn.one_hot(choice, m, dtype=jnp.float32),
        weights=_normalise(theta),
        method=how,
        reason=f"{reason}: a pair's distance is averaged where both models answered; "
        "a model is never chosen where it did not answer.",
        diagnosis=diagnosis,
    )

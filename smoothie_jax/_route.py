"""The decision stage: one call from embeddings to the model chosen for each input.

`route` is what the command line and a platform call. It dispatches to one function
per method, each with only the parameters that apply to it:

- `route_auto`, the recommended label-free router: per-input consensus, length where
  the data show it tracks the consensus (`_signals.py`), final answers where given
  (`_agreement.py`);
- `route_global` and `route_local`, the paper's estimators by name;
- `route_posterior`, the most probably best model under the NumPyro posterior.

Each returns a `Decision`: what was chosen, with which probabilities, by which method
and why.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray, Real

from . import _validate
from ._agreement import answer_accuracy, answer_families, answer_vote
from ._decision import Decision, argmax_decision
from ._distances import pair_mask, sample_distances
from ._knn import DEFAULT_BLOCK_SIZE
from ._search import Search
from ._signals import (
    RECOMMENDED,
    Recipe,
    agreement,
    consensus,
    gated_score,
    log_length,
    recommended_score,
    standardise,
)
from ._smoothie import fit_global, fit_local
from .families import DEFAULT_ALPHA, DEFAULT_POLICY_ALPHA, diagnose_answered, route_families
from .families._diagnosis import p_text

DEFAULT_K = 20
METHODS = ("auto", "local", "global")


def route(
    embeddings: Float[_validate.ArrayLike, "n_samples n_models dim"],
    inputs: Float[_validate.ArrayLike, "n_samples input_dim"] | None = None,
    *,
    lengths: Real[_validate.ArrayLike, "n_samples n_models"] | None = None,
    answers: Int[_validate.ArrayLike, "n_samples n_models"] | None = None,
    labels: tuple[object, object] | None = None,
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
    observed: Bool[_validate.ArrayLike, "n_samples n_models"] | None = None,
    search: str | Search = "exact",
) -> Decision:
    """Test-time routing: every model answered every input; choose one answer per input.

    The recommended method ("auto", `route_auto`) reads the data it routes: each output's
    consensus (Smoothie's per-input error estimate), plus its standardised log length
    only where length tracks the consensus in this data, and a weighted vote of the final
    answers where `answers` are given (`_signals.py` and `_agreement.py` say why and how
    it was measured, leave-one-set-out).

    Args:
        embeddings: embedding of each model's output for each input.
        inputs: embedding of each input; "local" smooths over the k nearest.
        lengths: length of each output in characters (>= 0), for "auto".
        answers: for exact-answer tasks, integer codes of each output's final answer
            (equal in a row: the same answer; -1: none; `data.answer_codes`), for "auto".
        labels: (rows, scores) a person gave a few inputs, for "auto" (`route_auto`).
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
    n, m, _ = embeddings.shape
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if method == "local" and inputs is None:
        raise ValueError("method='local' needs inputs (the neighbours come from them)")
    if inputs is not None:
        inputs = _validate.check_inputs(inputs, n)
    if lengths is not None:
        lengths = _validate.check_lengths(lengths, (n, m))
    k = _validate.check_k(k, n, clip=True)
    key = jax.random.key(0) if key is None else key
    observed = _observed_or_none(observed, (n, m))
    if posterior:
        if observed is not None:
            raise ValueError("posterior=True needs every model's answer to every input")
        local = inputs is not None and method == "local"
        return route_posterior(
            embeddings, inputs if local else None, key=key, k=k, level=level, check=check
        )
    if (answers is not None or labels is not None) and (method != "auto" or posterior):
        raise ValueError(
            "answers and labels are read by method='auto' only (the recommended router)"
        )
    if method == "auto":
        return route_auto(
            embeddings,
            lengths=lengths,
            answers=answers,
            labels=labels,
            observed=observed,
            families=families,
            models=models,
        )
    if method == "global":
        return route_global(
            embeddings,
            key=key,
            families=families,
            models=models,
            default=default,
            strict=strict,
            check=check,
            observed=observed,
        )
    return route_local(
        embeddings,
        inputs,
        k=k,
        observed=observed,
        search=search,
        check=check,
        families=families,
        models=models,
    )


def _observed_or_none(observed: object, shape: tuple[int, int]) -> Array | None:
    """The checked mask, or None where every model answered every input (the fast path)."""
    if observed is None:
        return None
    observed = _validate.check_observed(observed, shape)
    return None if bool(observed.all()) else observed


def route_auto(
    embeddings: Float[_validate.ArrayLike, "n_samples n_models dim"],
    *,
    lengths: Real[_validate.ArrayLike, "n_samples n_models"] | None = None,
    answers: Int[_validate.ArrayLike, "n_samples n_models"] | None = None,
    labels: tuple[object, object] | None = None,
    observed: Bool[_validate.ArrayLike, "n_samples n_models"] | None = None,
    recipe: Recipe = RECOMMENDED,
    families: object | None = None,
    models: Sequence[str] | None = None,
) -> Decision:
    """The recommended label-free router: consensus, length where the data say it helps,
    and the models' final answers where they are given.

    - Without answers: each output's consensus (minus its mean squared distance to the
      other outputs of its input: Smoothie's per-input error estimate, k = 1), plus its
      standardised log length where length tracks the consensus in this data
      (`_signals.agreement` > `recipe.gate`); otherwise the consensus alone, the
      paper's choice, which risks least where the signals disagree.
    - With answers (`data.answer_codes`): a weighted vote of the final answers, each
      model's weight from its accuracy (the triplet model on answer agreement), a family
      that shares wrong answers counted once (`_agreement`); among the models giving the
      winning answer, the most accurate. Inputs where no model answered fall back to
      the score above.

    The independence test (`families.diagnose`) still runs and is reported in the
    Decision; it no longer decides (it rejects on almost every real ensemble).

    Args:
        embeddings: embedding of each model's output for each input.
        lengths: length of each output in characters (>= 0).
        answers: integer answer codes (equal in a row: the same final answer; -1: none).
        labels: (rows, scores) of a few inputs a person scored (NaN: unjudged; see
            `sj.suggest_labels`): each input then goes to the model of highest posterior
            mean quality under the label model (`posterior/_label_model.py`), whose prior
            is the score above.
        observed: True where model j answered input i; a model is never chosen where it
            did not answer.
        recipe: the two constants of the length gate (`Recipe`).
        families: known families for the reported test, as `route`.
        models: model names, as `route`.

    >>> x = jax.random.normal(jax.random.key(0), (60, 4, 8))
    >>> route_auto(x, lengths=jnp.ones((60, 4))).method
    'consensus'
    """
    embeddings = _validate.check_embeddings(embeddings)
    n, m, _ = embeddings.shape
    if lengths is not None:
        lengths = _validate.check_lengths(lengths, (n, m))
    if answers is not None:
        answers = _validate.check_answers(answers, (n, m))
    observed = _observed_or_none(observed, (n, m))
    diagnosis = diagnose_answered(
        embeddings, observed, alpha=DEFAULT_POLICY_ALPHA, families=families, models=models
    )
    if labels is not None:
        return _labelled_decision(
            embeddings, lengths, answers, labels, observed, recipe, diagnosis, models
        )
    pairs = None if observed is None else pair_mask(observed)
    cons = consensus(sample_distances(embeddings), pairs)
    cons_z = standardise(cons, observed)
    rho = None
    if lengths is not None:
        rho = float(agreement(log_length(lengths), cons, observed))
    use_length = bool(rho is not None and rho > recipe.gate)
    length_z = None if lengths is None else standardise(log_length(lengths), observed)
    score = gated_score(cons_z, length_z, use_length, recipe, observed)
    how, why = _gate_reason(rho, recipe)
    test = _test_sentence(diagnosis, models)
    if answers is not None:
        labels = answer_families(answers)
        accuracy = answer_accuracy(answers, labels)
        voted, support = answer_vote(answers, accuracy, labels)
        unanswered = jnp.all(answers < 0, axis=1)
        choice = jnp.where(unanswered, jnp.argmax(score, axis=1), voted).astype(jnp.int32)
        weights = jax.nn.softmax(jnp.where(unanswered[:, None], score, support), axis=-1)
        grouped = [list(map(int, np.flatnonzero(labels == g))) for g in np.unique(labels)]
        shared = [g for g in grouped if len(g) > 1]
        how = "answer vote"
        why = (
            "Answers given: a weighted vote of the final answers (each model weighs its "
            "accuracy estimated from answer agreement"
            + (f"; families that share answers, counted once: {shared}" if shared else "")
            + "), the most accurate model giving the winning answer"
            + (f". Where no model answered: {why}" if bool(unanswered.any()) else ".")
        )
        return Decision(
            choice=choice,
            probabilities=jax.nn.one_hot(choice, m, dtype=jnp.float32),
            weights=weights,
            method=how,
            reason=test + why,
            diagnosis=diagnosis,
        )
    weights = jax.nn.softmax(score, axis=-1)
    return argmax_decision(score, weights, method=how, reason=test + why, diagnosis=diagnosis)


def _labelled_decision(
    embeddings: Array,
    lengths: Array | None,
    answers: Array | None,
    labels: tuple[object, object],
    observed: Array | None,
    recipe: Recipe,
    diagnosis: object,
    models: Sequence[str] | None,
) -> Decision:
    """The label model's posterior mean, its prior the recommended score."""
    from .posterior._label_model import check_labels, label_fit, quality_mean

    n, m, _ = embeddings.shape
    rows, scores = check_labels(labels, n, m)
    score, rho = recommended_score(
        embeddings, lengths=lengths, answers=answers, observed=observed, recipe=recipe
    )
    fit = label_fit(score, (rows, scores))
    quality = quality_mean(score, fit)
    beta, bias = float(fit.posterior_mean[0]), np.asarray(fit.posterior_mean[1:])
    how, why = _gate_reason(rho, recipe)
    why = _test_sentence(diagnosis, models) + (
        f"{rows.shape[0]} labelled inputs: the label model's posterior mean quality, the "
        f"router's score weighed {beta:.2f} plus per-model biases learned from the labels "
        f"(largest {bias.max():+.2f}, {_name(models, int(bias.argmax()))}). Its prior: "
        f"{why[0].lower()}{why[1:]}"
    )
    weights = jax.nn.softmax(quality, axis=-1)
    return argmax_decision(
        quality, weights, method=f"{how} + labels", reason=why, diagnosis=diagnosis
    )


def _name(models: Sequence[str] | None, j: int) -> str:
    return f"model {j}" if models is None else str(models[j])


def _test_sentence(diagnosis: object, models: Sequence[str] | None) -> str:
    """What the independence test found, and that the recommended router only reports it
    (the embedding consensus cannot undo a family; answers and labels can)."""
    if diagnosis is None:
        return ""
    p = f"p = {p_text(diagnosis.p_value)}"
    if not diagnosis.rejected:
        return f"Independence is not rejected ({p}). "
    if not diagnosis.groups:
        return f"Independence is rejected ({p}) but no family explains it; reported only. "
    names = ["{" + ", ".join(_name(models, i) for i in group) + "}" for group in diagnosis.groups]
    return (
        f"Families agree more than independence allows ({', '.join(names)}; {p}): the "
        "consensus may favour them, which answers or a few labels correct. "
    )


def _gate_reason(rho: float | None, recipe: Recipe) -> tuple[str, str]:
    """The method name and the sentence that says why, from the gate's reading."""
    if rho is None:
        return "consensus", (
            "No lengths given: the consensus alone (the output closest to the others, "
            "Smoothie-Local k=1)."
        )
    if rho > recipe.gate:
        return "consensus + length", (
            f"Length tracks the consensus here (rho = {rho:.3f} > {recipe.gate}): each "
            "output's consensus plus its standardised log length."
        )
    return "consensus", (
        f"Length does not track the consensus here (rho = {rho:.3f} <= {recipe.gate}), so it "
        "is left out: the consensus alone (the output closest to the others, Smoothie-Local "
        "k=1), the choice that risks least."
    )


def route_global(
    embeddings: Float[_validate.ArrayLike, "n_samples n_models dim"],
    *,
    key: PRNGKeyArray | None = None,
    families: object | None = None,
    models: Sequence[str] | None = None,
    default: int | str | None = None,
    strict: bool = False,
    check: bool = True,
    observed: Bool[_validate.ArrayLike, "n_samples n_models"] | None = None,
) -> Decision:
    """Smoothie-Global, checked for correlated families by `route_families`.

    Args:
        embeddings: embedding of each model's output for each input.
        key: PRNG key of the fallback draw per input; default key 0.
        families: known families for the check, as `route`.
        models: model names, as `route`.
        default: where to route when the consensus cannot be trusted.
        strict: never rank models across families once independence is rejected.
        check: run the family check; False gives the plain estimator.
        observed: True where model j answered input i (the check then only reports).

    >>> x = jax.random.normal(jax.random.key(0), (60, 4, 8))
    >>> route_global(x, check=False).method
    'smoothie-global'
    """
    embeddings = _validate.check_embeddings(embeddings)
    n, m, _ = embeddings.shape
    key = jax.random.key(0) if key is None else key
    observed = _observed_or_none(observed, (n, m))
    if check and observed is None:
        fam = route_families(
            embeddings, families=families, models=models, default=default, strict=strict
        )
        return Decision(
            choice=jnp.asarray(fam.sample(key, n), jnp.int32),
            probabilities=jnp.asarray(np.broadcast_to(fam.probabilities, (n, m)), jnp.float32),
            weights=jnp.broadcast_to(fam.fit.weights, (n, m)),
            method=f"smoothie-global ({fam.method})",
            reason=fam.reason,
            diagnosis=fam.diagnosis,
        )
    diagnosis = (
        diagnose_answered(embeddings, observed, families=families, models=models) if check else None
    )
    theta = jnp.broadcast_to(fit_global(embeddings, observed=observed).theta, (n, m))
    how, why = "smoothie-global", "Smoothie-Global: one quality per model for the file."
    if observed is not None:
        how += ", masked"
        why += " Pairs are averaged where both models answered."
    return argmax_decision(
        theta, _validate.normalise(theta), method=how, reason=why, diagnosis=diagnosis
    )


def route_local(
    embeddings: Float[_validate.ArrayLike, "n_samples n_models dim"],
    inputs: Float[_validate.ArrayLike, "n_samples input_dim"],
    *,
    k: int = DEFAULT_K,
    observed: Bool[_validate.ArrayLike, "n_samples n_models"] | None = None,
    search: str | Search = "exact",
    block_size: int = DEFAULT_BLOCK_SIZE,
    check: bool = True,
    families: object | None = None,
    models: Sequence[str] | None = None,
) -> Decision:
    """Smoothie-Local: each input's quality from its k nearest inputs, the best per input.

    Args:
        embeddings: embedding of each model's output for each input.
        inputs: embedding of each input; the neighbours come from them.
        k: neighbours (clipped to n_samples).
        observed: True where model j answered input i; pairs are averaged where both
            models answered, and a model is never chosen where it did not answer.
        search: how neighbours are found (a `Search` or its name).
        block_size: queries per block of the neighbour search.
        check: also run (and report) the independence test.
        families: known families for the test, as `route`.
        models: model names, as `route`.

    >>> x = jax.random.normal(jax.random.key(0), (60, 4, 8))
    >>> route_local(x, x[:, 0], k=10, check=False).method
    'smoothie-local (k=10)'
    """
    embeddings = _validate.check_embeddings(embeddings)
    n, m, _ = embeddings.shape
    inputs = _validate.check_inputs(inputs, n)
    k = _validate.check_k(k, n, clip=True)
    observed = _observed_or_none(observed, (n, m))
    diagnosis = (
        diagnose_answered(
            embeddings, observed, alpha=DEFAULT_ALPHA, families=families, models=models
        )
        if check
        else None
    )
    theta = fit_local(
        embeddings, inputs, k=k, observed=observed, search=search, block_size=block_size
    ).theta
    how = f"smoothie-local (k={k})"
    why = f"Smoothie-Local: each input's quality from its {k} nearest inputs."
    if observed is not None:
        how += ", masked"
        why += " Pairs are averaged where both models answered."
    return argmax_decision(
        theta, _validate.normalise(theta), method=how, reason=why, diagnosis=diagnosis
    )


def route_posterior(
    embeddings: Float[_validate.ArrayLike, "n_samples n_models dim"],
    inputs: Float[_validate.ArrayLike, "n_samples input_dim"] | None = None,
    *,
    key: PRNGKeyArray | None = None,
    k: int = DEFAULT_K,
    level: float = 0.9,
    check: bool = True,
) -> Decision:
    """The most probably best model under the NumPyro posterior of the paper's estimator:
    Global without `inputs`, Local with k neighbours with them.

    `probabilities` is each model's posterior probability of being best, `weights` the
    normalised posterior mean, and `interval` the credible bounds of theta at `level`.
    """
    from .posterior import fit_posterior, most_probable

    embeddings = _validate.check_embeddings(embeddings)
    n, m, _ = embeddings.shape
    key = jax.random.key(0) if key is None else key
    local = inputs is not None
    if local:
        inputs = _validate.check_inputs(inputs, n)
        k = _validate.check_k(k, n, clip=True)
    post = fit_posterior(embeddings, key=key, inputs=inputs, k=k if local else None)
    lower, upper = post.interval(level)
    diagnosis = diagnose_answered(embeddings) if check else None
    how = f"Smoothie-Local k={k}" if local else "Smoothie-Global"
    return Decision(
        choice=jnp.broadcast_to(most_probable(post), (n,)).astype(jnp.int32),
        probabilities=jnp.broadcast_to(post.prob_best, (n, m)).astype(jnp.float32),
        weights=jnp.broadcast_to(_validate.normalise(post.mean), (n, m)),
        method=f"posterior ({how})",
        reason=f"The most probably best model under the NumPyro posterior of {how}.",
        diagnosis=diagnosis,
        interval=(jnp.broadcast_to(lower, (n, m)), jnp.broadcast_to(upper, (n, m))),
    )

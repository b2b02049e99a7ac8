"""The decision stage: one call from embeddings to the model chosen for each input.

`route` is what the command line and a platform call. It validates its arrays once into
a `Batch` (`make_batch`) and hands it to one decision per method, each with only the
parameters that apply to it; the public `route_auto`, `route_global` and `route_local`
are the same decisions by name:

- "auto", the recommended label-free router: the weighted consensus (`_signals.py`),
  the answer posterior where final answers are given (`_agreement.py`), a few labels
  where given, which drop the models they show to be worse (`_label_model.py`);
- "global" and "local", the paper's estimators.

Each returns a `Decision`: what was chosen, with which probabilities, by which method
and why. The posterior's decision is `sj.posterior.route_posterior`.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Bool, Float, Int, PRNGKeyArray, Real

from . import _validate
from ._batch import Batch, make_batch
from ._decision import Decision, argmax_decision
from ._family_design import DEFAULT_ALPHA, DEFAULT_POLICY_ALPHA
from ._family_route import route_batch_families
from ._independence import Diagnosis, diagnose_batch, p_text
from ._knn import DEFAULT_BLOCK_SIZE
from ._search import Search
from ._signals import RECOMMENDED, Recipe, consensus_score, standardise
from ._smoothie import global_fit, local_fit
from ._tasks import BEST_BONUS, answer_choice, read_answers, task_points

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
    observed: Bool[_validate.ArrayLike, "n_samples n_models"] | None = None,
    search: str | Search = "exact",
    posterior: bool = False,
) -> Decision:
    """Test-time routing: every model answered every input; choose one answer per input.

    The recommended method ("auto", `route_auto`): each output's distance to the other
    outputs of its input, each weighted by its model's Smoothie-Global quality (the
    weighted consensus), and where `answers` are given, the answer most probably right
    given each model's accuracy and how often wrong answers coincide (`_signals.py` and
    `_agreement.py` say why and how it was measured, leave-one-set-out).

    Args:
        embeddings: embedding of each model's output for each input.
        inputs: embedding of each input; "local" smooths over the k nearest.
        lengths: length of each output in characters (>= 0), checked and kept in the
            batch; the label-free route does not read them (see `_signals.py`).
        answers: for exact-answer tasks, integer codes of each output's final answer
            (equal in a row: the same answer; -1: none; `data.answer_codes`), for "auto".
        labels: (rows, scores) a person gave a few inputs, for "auto" (`route_auto`).
        key: PRNG key of "global"'s fallback draw per input; default key 0.
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
        observed: True where model j answered input i, for files where some models did
            not answer some inputs; a model is never chosen where it did not answer.
        search: neighbour search of "local": "exact", "approximate" or a `Search`.
        posterior: no longer read here: the posterior's decision is
            `sj.posterior.route_posterior` (True raises, saying so).

    Returns:
        A `Decision` with `choice` of shape (n_samples,).

    Raises:
        ValueError: bad shapes, lengths that are negative, NaN or of the wrong shape, an
            unknown method, or a mask that leaves a model without data.

    >>> x = jax.random.normal(jax.random.key(0), (60, 4, 8))
    >>> route(x, x[:, 0], lengths=jnp.ones((60, 4))).choice.shape
    (60,)
    """
    if posterior:
        raise ValueError(
            "route(posterior=True) is sj.posterior.route_posterior(embeddings, inputs, key=...) "
            "since smoothie_jax 0.4 (it reads neither answers nor labels)"
        )
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if method == "local" and inputs is None:
        raise ValueError("method='local' needs inputs (the neighbours come from them)")
    if (answers is not None or labels is not None) and method != "auto":
        raise ValueError(
            "answers and labels are read by method='auto' only (the recommended router)"
        )
    batch = make_batch(embeddings, inputs, lengths=lengths, answers=answers, observed=observed)
    k = _validate.check_k(k, batch.n_samples, clip=True)
    if method == "auto":
        diagnosis = diagnose_batch(
            batch, alpha=DEFAULT_POLICY_ALPHA, families=families, models=models
        )
        return decide_auto(batch, labels=labels, diagnosis=diagnosis, models=models)
    if method == "global":
        return _decide_global(
            batch,
            key=key,
            families=families,
            models=models,
            default=default,
            strict=strict,
            check=check,
        )
    return _decide_local(batch, k=k, search=search, check=check, families=families, models=models)


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
    """The recommended label-free router: the weighted consensus, and the models' final
    answers where they are given.

    - Without answers: each output's squared distance to the other outputs of its input,
      each weighted by its model's Smoothie-Global quality to the power
      `recipe.sharpness` (`_signals.weighted_consensus`): under the paper's model, the
      output nearest the best estimate of the truth. Lengths are not read (no label-free
      reading tells whether longer is better; a few labels can weigh them).
    - With answers (`data.answer_codes`): per input, the answer of the most accurate
      model (per task found in the inputs where the answers show tasks differ,
      `_tasks.py`) unless the answers make another far more probably right, given each
      model's accuracy and the chance that two wrong answers coincide, both read from
      answer agreement (`_agreement.answer_posterior`); a family that shares wrong
      answers votes once; the most accurate model giving that answer. Inputs where no
      model answered fall back to the weighted consensus.

    The independence test (`families.diagnose`) still runs and is reported in the
    Decision; it does not decide (it rejects on almost every real ensemble).

    Args:
        embeddings: embedding of each model's output for each input.
        lengths: length of each output in characters (>= 0): checked, not read.
        answers: integer answer codes (equal in a row: the same final answer; -1: none).
        labels: (rows, scores) of a few inputs a person scored (NaN: unjudged; see
            `sj.posterior.suggest_labels`): models the labels show to be worse are
            dropped, and each input goes to the choice above among the rest
            (`_label_model.py`); labels that show no difference change nothing.
        observed: True where model j answered input i; a model is never chosen where it
            did not answer.
        recipe: the weighted consensus's constant (`Recipe`).
        families: known families for the reported test, as `route`.
        models: model names, as `route`.

    >>> x = jax.random.normal(jax.random.key(0), (60, 4, 8))
    >>> route_auto(x, lengths=jnp.ones((60, 4))).method
    'weighted consensus'
    """
    batch = make_batch(embeddings, lengths=lengths, answers=answers, observed=observed)
    diagnosis = diagnose_batch(batch, alpha=DEFAULT_POLICY_ALPHA, families=families, models=models)
    return decide_auto(batch, labels=labels, recipe=recipe, diagnosis=diagnosis, models=models)


def decide_auto(
    batch: Batch,
    *,
    labels: tuple[object, object] | None = None,
    recipe: Recipe = RECOMMENDED,
    diagnosis: Diagnosis | None = None,
    models: Sequence[str] | None = None,
) -> Decision:
    """`route_auto` on a validated batch; `diagnosis` (reported only) is the caller's."""
    test = _test_sentence(diagnosis, models)
    if labels is not None:
        return _labelled_decision(batch, labels, recipe, test, diagnosis, models)
    why = _consensus_reason(recipe, batch.lengths is not None)
    if batch.answers is not None:
        return _answer_decision(batch, recipe, why, test, diagnosis)
    score = consensus_score(batch, recipe)
    weights = jax.nn.softmax(standardise(score, batch.observed), axis=-1)
    if batch.observed is not None:
        weights = jnp.where(batch.observed, weights, 0.0)
    return argmax_decision(
        score, weights, method="weighted consensus", reason=test + why, diagnosis=diagnosis
    )


def _consensus_reason(recipe: Recipe, lengths: bool) -> str:
    return (
        "Each output's distance to the other outputs of its input, each weighted by its "
        f"model's Smoothie-Global quality to the power {recipe.sharpness:g} (0 would be the "
        "plain consensus, a large power Smoothie-Global): the output nearest the best "
        "estimate of the truth."
        + (
            " Lengths are left out: no label-free reading shows whether longer is better "
            "here (a few labels can weigh them)."
            if lengths
            else ""
        )
    )


def _answer_decision(
    batch: Batch, recipe: Recipe, fallback: str, test: str, diagnosis: Diagnosis | None
) -> Decision:
    """Per input, the favoured model's answer unless the answers make another far more
    probably right (`_tasks.answer_choice`); the weighted consensus where no model
    answered (read only where some input has no answer)."""
    evidence = read_answers(batch.answers, task_points(batch))
    voted, support, favoured = answer_choice(evidence)
    model = evidence.model
    unanswered = jnp.asarray(voted < 0)
    score = (
        consensus_score(batch, recipe)
        if bool(unanswered.any())
        else jnp.zeros(voted.shape + (batch.n_models,))
    )
    choice = jnp.where(unanswered, jnp.argmax(score, axis=1), voted).astype(jnp.int32)
    support = jnp.asarray(support, jnp.float32)
    weights = jax.nn.softmax(jnp.where(unanswered[:, None], score, support), axis=-1)
    families = model.families
    grouped = [list(map(int, np.flatnonzero(families == g))) for g in np.unique(families)]
    shared = [g for g in grouped if len(g) > 1]
    leads = sorted(set(map(int, favoured)))
    why = (
        "Answers given: per input the answer of the most accurate model "
        + (f"(by task found in the inputs: {leads})" if len(leads) > 1 else f"({leads[0]})")
        + f" unless the answers make another at least e^{BEST_BONUS:g} times more probably "
        "right, from each model's accuracy and how often two wrong answers coincide "
        f"(c = {model.coincidence:.2f}), both read from answer agreement"
        + (f"; families that share answers vote once: {shared}" if shared else "")
        + "; the most accurate model giving it"
        + (f". Where no model answered: {fallback}" if bool(unanswered.any()) else ".")
    )
    return Decision(
        choice=choice,
        probabilities=jax.nn.one_hot(choice, batch.n_models, dtype=jnp.float32),
        weights=weights,
        method="answer vote",
        reason=test + why,
        diagnosis=diagnosis,
    )


def _labelled_decision(
    batch: Batch,
    labels: tuple[object, object],
    recipe: Recipe,
    test: str,
    diagnosis: Diagnosis | None,
    models: Sequence[str] | None,
) -> Decision:
    """Labels drop the models they show to be worse (`_label_model.py`); among the rest,
    each input goes to the label-free router's choice, less a weight per noise sd a model
    lies behind the labels' best, scaled by how unsure the label-free router is. Labels
    that show no difference leave the route as it was."""
    from ._label_model import (
        THRESHOLD,
        WEIGHT,
        batch_evidence,
        check_labels,
        dropped,
        labelled_score,
        router_doubt,
        router_score,
    )

    rows, scores = check_labels(labels, batch.n_samples, batch.n_models)
    evidence = batch_evidence(batch, rows, scores)
    doubt = router_doubt(batch)
    quality = labelled_score(router_score(batch, recipe), evidence, doubt=doubt)
    if batch.observed is not None:
        quality = jnp.where(batch.observed, quality, -jnp.inf)
    prior = "the answer vote" if batch.answers is not None else "the weighted consensus"
    gone = dropped(evidence)
    top = int(np.argmax(evidence.against))
    if gone:
        names = ", ".join(_name(models, j) for j in gone)
        found = f"they show {names} worse by more than {THRESHOLD:g} standard errors: dropped"
    else:
        found = (
            f"they show no model worse by more than {THRESHOLD:g} standard errors (largest "
            f"{float(evidence.against[top]):.2f}, {_name(models, top)}): no model dropped"
        )
    why = test + (
        f"{evidence.n_rows} labelled inputs compare the models: {found}. Each input goes to "
        f"{prior}'s choice among the rest, less {WEIGHT:g} x {doubt:.2f} (how unsure "
        "the label-free router is of the best model) per noise sd a model's labelled mean "
        "lies behind the best one's."
    )
    weights = jax.nn.softmax(jnp.where(jnp.isfinite(quality), quality, -1e30), axis=-1)
    return argmax_decision(quality, weights, method="labels", reason=why, diagnosis=diagnosis)


def _name(models: Sequence[str] | None, j: int) -> str:
    return f"model {j}" if models is None else str(models[j])


def _test_sentence(diagnosis: Diagnosis | None, models: Sequence[str] | None) -> str:
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
    return _decide_global(
        make_batch(embeddings, observed=observed),
        key=key,
        families=families,
        models=models,
        default=default,
        strict=strict,
        check=check,
    )


def _decide_global(
    batch: Batch,
    *,
    key: PRNGKeyArray | None,
    families: object | None,
    models: Sequence[str] | None,
    default: int | str | None,
    strict: bool,
    check: bool,
) -> Decision:
    n, m = batch.n_samples, batch.n_models
    key = jax.random.key(0) if key is None else key
    if check and batch.observed is None:
        fam = route_batch_families(
            batch, families=families, models=models, default=default, strict=strict
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
        diagnose_batch(batch, alpha=DEFAULT_ALPHA, families=families, models=models)
        if check
        else None
    )
    theta = jnp.broadcast_to(global_fit(batch).theta, (n, m))
    how, why = "smoothie-global", "Smoothie-Global: one quality per model for the file."
    if batch.observed is not None:
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
    batch = make_batch(embeddings, inputs, observed=observed)
    return _decide_local(
        batch,
        k=_validate.check_k(k, batch.n_samples, clip=True),
        search=search,
        block_size=_validate.check_block_size(block_size),
        check=check,
        families=families,
        models=models,
    )


def _decide_local(
    batch: Batch,
    *,
    k: int,
    search: str | Search,
    check: bool,
    families: object | None,
    models: Sequence[str] | None,
    block_size: int = DEFAULT_BLOCK_SIZE,
) -> Decision:
    diagnosis = (
        diagnose_batch(batch, alpha=DEFAULT_ALPHA, families=families, models=models)
        if check
        else None
    )
    theta = local_fit(batch, k=k, search=search, block_size=block_size).theta
    how = f"smoothie-local (k={k})"
    why = f"Smoothie-Local: each input's quality from its {k} nearest inputs."
    if batch.observed is not None:
        how += ", masked"
        why += " Pairs are averaged where both models answered."
    return argmax_decision(
        theta, _validate.normalise(theta), method=how, reason=why, diagnosis=diagnosis
    )

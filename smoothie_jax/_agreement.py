"""Answer-level consensus: the paper's triplet model on agreement of final answers.

Where outputs end in a checkable answer (maths, trivia, code outputs, multiple choice),
agreement of answers says more than agreement of whole texts. Model: model i's answer is
right with probability p_i, independently across models, and two wrong answers are the
same one with probability c (a popular mistake). Two models then agree with probability
A_ij = p_i p_j + (1 - p_i)(1 - p_j) c: Smoothie's idea (pairwise agreement identifies each
model's quality) with the wrong answers of hard tasks allowed to coincide. `fit_answers`
reads p and c from the pair agreement rates; `answer_posterior` gives, per input, the
answer most probably right under them (where c is small the vote decides; where mistakes
often coincide, the accuracies do) and the most accurate model giving it.

Families that share wrong answers beyond c break independence: their members agree more
than the fit allows. `answer_families` proposes them (the pair whose agreement exceeds the
plain triplet fit by most bootstrap standard errors, if beyond `FAMILY_Z`), and
`fit_answers` keeps a proposal only where it still agrees beyond the fit with c; a family
cannot vouch for itself: its pairs leave the fit, and on an input where it gives one
answer it votes once.

Codes come from `data.answer_codes`: (n_samples, n_models) ints, equal in a row for the
same answer, -1 where none was extracted (it agrees with nothing).

Measured (`benchmarks/answer_constants.py`, 40 ensembles of 5, test-time G): GSM8K 1.05
and CRUXEval 0.83 (1.10 and 0.91 as routed, with the leader's bonus of `_tasks.py`),
where majority vote scores 1.02 and 0.50 (0.5's plain weighted vote, c = 0, with 0.9's
answer codes: 1.04 and 0.45); with one family member's wrong answers copied
to its sibling (`benchmarks/families_stress.py`) 0.97, where majority vote falls to
-0.51.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int, PRNGKeyArray
from scipy.special import gammaln

from ._validate import ArrayLike

FAMILY_Z = 5.0  # bootstrap z of a pair's excess agreement that makes it a family
MAX_FAMILIES = 2  # merges of the greedy search (ensembles of 4 to 10 models)
BOOTSTRAP = 100  # resamples of the inputs for the residuals' standard errors
_MIRROR_Z = 0.5  # pairs within this z of the most excessive one tie (mirror pairs)
_FLOOR = 1e-3  # agreement rates and accuracies are kept in [_FLOOR, 1 - _FLOOR]
_LOGIT = 8.0  # the fit's logits stay in [-8, 8]: accuracies in [0.0003, 0.9997]
RESAMPLES = 200  # bootstrap resamples of the inputs behind `answer_prob_best`
GAUSS_NEWTON_STEPS = 25  # refits of each resample, from the full fit (converged by ~10)
_CHUNK = 8192  # inputs weighed at a time (memory stays flat at a million)


def agreements(
    codes: Int[ArrayLike, "n_samples n_models"],
) -> Float[Array, "n_samples n_models n_models"]:
    """1.0 where models i and j gave the same answer to an input (a model agrees with
    itself), 0 where they differ or either gave none.

    >>> agreements(jnp.array([[0, 0, 1, -1]]))[0, 0]
    Array([1., 1., 0., 0.], dtype=float32)
    """
    codes = jnp.asarray(codes)
    same = (codes[:, :, None] == codes[:, None, :]) & (codes[:, :, None] >= 0)
    return same.astype(jnp.float32)


def _pair_fit(rates: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """delta by least squares on -log agreement over pairs of different families, and the
    residual of every such pair (NaN elsewhere); None where delta is not identified."""
    m = rates.shape[-1]
    iu, ju = np.triu_indices(m, 1)
    cross = labels[iu] != labels[ju]
    design = np.zeros((int(cross.sum()), m))
    design[np.arange(design.shape[0]), iu[cross]] = 1.0
    design[np.arange(design.shape[0]), ju[cross]] = 1.0
    if design.shape[0] == 0 or np.linalg.matrix_rank(design) < m:
        return None
    y = -np.log(np.clip(rates[..., iu[cross], ju[cross]], _FLOOR, 1.0))
    delta = y @ np.linalg.pinv(design).T
    residual = np.full(rates.shape[:-2] + (len(iu),), np.nan)
    residual[..., cross] = y - (delta[..., iu[cross]] + delta[..., ju[cross]])
    return delta, residual


def answer_families(
    codes: Int[ArrayLike, "n_samples n_models"],
    *,
    z: float = FAMILY_Z,
    max_families: int = MAX_FAMILIES,
    bootstrap: int = BOOTSTRAP,
    seed: int = 0,
) -> np.ndarray:
    """Families of models that agree on answers more than independence allows.

    Args:
        codes: answer codes (see the module docstring).
        z: how many bootstrap standard errors a pair's excess agreement must reach.
        max_families: merges at most (each joins the two families of one pair).
        bootstrap: resamples of the inputs behind the standard errors.
        seed: the resampling's seed.

    Returns:
        (n_models,) family labels 0, 1, ...; models that share one are a family.

    >>> right = np.random.default_rng(0).random((400, 4)) < 0.8
    >>> codes = np.where(right, 0, 1 + np.arange(4))  # each model's own wrong answer
    >>> codes[:, 3] = np.where(right[:, 2], codes[:, 3], codes[:, 2])  # 3 repeats 2's
    >>> answer_families(codes).tolist()
    [0, 1, 2, 2]
    """
    same = np.asarray(agreements(codes), np.float64)
    n, m = same.shape[:2]
    rates = same.mean(axis=0)
    weights = np.random.default_rng(seed).multinomial(n, np.full(n, 1 / n), size=bootstrap) / n
    resampled = np.einsum("bn,nij->bij", weights, same)
    labels = np.arange(m)
    iu, ju = np.triu_indices(m, 1)
    for _ in range(max_families):
        fit, fits = _pair_fit(rates, labels), _pair_fit(resampled, labels)
        if fit is None or fits is None:
            break
        excess = fit[1] / (np.std(fits[1], axis=0) + 1e-12)  # negative: agree too much
        if np.all(np.isnan(excess)):
            break
        lowest = np.nanmin(excess)
        ties = np.flatnonzero(excess <= lowest + _MIRROR_Z)
        pick = ties[np.argmax(rates[iu[ties], ju[ties]])]  # of mirror pairs, the closer one
        if lowest > -z:
            break
        merged = np.where(labels == labels[ju[pick]], labels[iu[pick]], labels)
        if _pair_fit(rates, np.unique(merged, return_inverse=True)[1]) is None:
            break  # the merge would leave the accuracies unidentified
        labels = np.unique(merged, return_inverse=True)[1]
    return labels


def answer_accuracy(
    codes: Int[ArrayLike, "n_samples n_models"], families: np.ndarray | None = None
) -> np.ndarray:
    """Each model's accuracy p_i from answer agreement over pairs of different families
    (every pair without `families`), in [0.001, 0.999].

    >>> p = np.array([0.9, 0.8, 0.6])
    >>> right = np.random.default_rng(0).random((20000, 3)) < p
    >>> answer_accuracy(np.where(right, 0, 1 + np.arange(3))).round(1).tolist()
    [0.9, 0.8, 0.6]
    """
    same = np.asarray(agreements(codes), np.float64)
    m = same.shape[1]
    labels = np.arange(m) if families is None else np.asarray(families)
    fit = _pair_fit(same.mean(axis=0), labels) or _pair_fit(same.mean(axis=0), np.arange(m))
    return np.clip(np.exp(-fit[0]), _FLOOR, 1 - _FLOOR)


@dataclasses.dataclass(frozen=True, eq=False)  # holds arrays
class AnswerModel:
    """What the answers say of the models: each one's accuracy, how often two wrong
    answers coincide, and the families that share wrong answers beyond that.

    Attributes:
        accuracy: (n_models,) P(model i's answer is right | it answered).
        coincidence: c, the probability that two wrong answers are the same one.
        families: (n_models,) family labels (`answer_families`); a family votes once.
    """

    accuracy: np.ndarray
    coincidence: float
    families: np.ndarray


def fit_answers(
    codes: Int[ArrayLike, "n_samples n_models"], families: np.ndarray | None = None
) -> AnswerModel:
    """Accuracies and coincidence from agreement over pairs of different families.

    Two models agree where both are right, or both wrong with the same wrong answer:
    A_ij = p_i p_j + (1 - p_i)(1 - p_j) c, over the inputs both answered. Easy tasks have
    few wrong answers and c barely matters; hard ones have many that coincide (a common
    wrong answer), so agreement says less and the accuracies say more. p and c are the
    least-squares fit over the pairs; with fewer pairs than unknowns, c is the floor (the
    plain triplet model on answers).

    Families: the pairs that agree beyond independence (`answer_families`) are kept as a
    family only where they still agree beyond the fit with c, fitted without them (weak
    models that share a popular wrong answer are what c explains; a model that copies
    another's mistakes is not).

    `families` (labels, as `AnswerModel.families`) skips the search: a group of inputs
    is read with the families found on all of them (families are the models', not the
    task's, and a small group has too little data to find them).

    >>> p = np.array([0.9, 0.8, 0.6, 0.7])
    >>> right = np.random.default_rng(0).random((20000, 4)) < p
    >>> fit_answers(np.where(right, 0, 1 + np.arange(4))).accuracy.round(1).tolist()
    [0.9, 0.8, 0.6, 0.7]
    """
    codes = np.asarray(codes)
    m = codes.shape[1]
    rates = _answered_rates(codes)
    answered = (codes >= 0).astype(np.float64)
    counts = answered.T @ answered
    candidates = _groups(answer_families(codes)) if families is None else []
    families = np.arange(m) if families is None else np.asarray(families)
    for candidate in candidates:
        within = np.zeros((m, m), bool)
        within[np.ix_(candidate, candidate)] = True
        fit = _fit_coincidence(rates, ~within & _cross(families))
        if fit is None:
            continue
        iu, ju = np.triu_indices(m, 1)
        pairs = within[iu, ju]
        observed, n_pairs = rates[iu, ju][pairs], counts[iu, ju][pairs]
        excess = observed - _predicted_rates(*fit)[iu, ju][pairs]
        sd = np.sqrt(np.clip(observed * (1 - observed), _FLOOR, None) / np.maximum(n_pairs, 1))
        if np.mean(excess / sd) > FAMILY_Z:
            families[candidate] = families[candidate[0]]
    families = np.unique(families, return_inverse=True)[1]
    fit = _fit_coincidence(rates, _cross(families))
    if fit is None:
        return AnswerModel(answer_accuracy(codes, families), _FLOOR, families)
    accuracy, coincidence = fit
    return AnswerModel(accuracy, coincidence, families)


def _groups(labels: np.ndarray) -> list[np.ndarray]:
    """The groups of two or more models of a labelling."""
    return [g for g in (np.flatnonzero(labels == k) for k in np.unique(labels)) if g.size > 1]


def _cross(families: np.ndarray) -> np.ndarray:
    """(m, m) True for the pairs of models of different families."""
    return families[:, None] != families[None, :]


def _predicted_rates(accuracy: np.ndarray, coincidence: float) -> np.ndarray:
    p = accuracy
    return np.outer(p, p) + np.outer(1 - p, 1 - p) * coincidence


def _fit_coincidence(rates: np.ndarray, pairs: np.ndarray) -> tuple[np.ndarray, float] | None:
    """Least-squares p and c on the agreement rates of the chosen pairs; None where they
    are fewer than the unknowns."""
    from scipy.optimize import least_squares

    m = rates.shape[0]
    iu, ju = np.triu_indices(m, 1)
    chosen = pairs[iu, ju]
    i, j, target = iu[chosen], ju[chosen], rates[iu, ju][chosen]
    if chosen.sum() < m + 1:
        return None

    def residual(z: np.ndarray) -> np.ndarray:
        p, c = _sigmoid(z[:m]), _sigmoid(z[m])
        return p[i] * p[j] + (1 - p[i]) * (1 - p[j]) * c - target

    # The fit is nearly degenerate on hard tasks (p p' + c q q' is a rank-2 form): start
    # from rare, even and common coincidences and keep the best.
    # Each model's best agreement rate is a rough first guess of its accuracy.
    guess = np.log(np.clip(np.where(pairs, rates, 0.0).max(axis=1), 0.05, 0.95))
    guess = guess - np.log1p(-np.exp(guess))
    fits = [
        least_squares(residual, np.r_[p0, c0], bounds=(-_LOGIT, _LOGIT))
        for p0 in (np.full(m, 1.0), guess)
        for c0 in (-2.0, 0.0, 2.0)
    ]
    z = min(fits, key=lambda fit: fit.cost).x
    accuracy = np.clip(_sigmoid(z[:m]), _FLOOR, 1 - _FLOOR)
    return accuracy, float(np.clip(_sigmoid(z[m]), _FLOOR, 1 - _FLOOR))


def _sigmoid(z: np.ndarray | float) -> np.ndarray | float:
    return 1 / (1 + np.exp(-z))


def _answered_rates(codes: np.ndarray) -> np.ndarray:
    """(m, m) share of the inputs both models answered where their answers are equal."""
    same = np.asarray(agreements(codes), np.float64).sum(axis=0)
    answered = (codes >= 0).astype(np.float64)
    return same / np.maximum(answered.T @ answered, 1.0)


def answer_posterior(
    codes: Int[ArrayLike, "n_samples n_models"], model: AnswerModel
) -> tuple[Int[Array, " n_samples"], Float[Array, "n_samples n_models"]]:
    """Per input, the answer most probably right and the most accurate model giving it.

    Given the answers of an input, the log-probability that answer a is the right one:
    sum over the models giving a of log p_i, over the others of log(1 - p_i), plus the
    probability of how the wrong answers group (a Chinese restaurant process whose
    chance of a coincidence is c, concentration (1 - c) / c). Where c is small, agreement
    is strong evidence and the vote decides; where wrong answers often coincide, the
    accuracies do. A family that gives one answer on an input votes once (its most
    accurate member).

    Returns:
        (choice, support): the chosen model per input (-1 where no model answered), and
        each output's log-probability that its answer is right, up to a constant per
        input (-inf where a model gave no answer).
    """
    codes = _by_position(np.asarray(codes))
    n, m = codes.shape
    p = model.accuracy
    voter = _voters(codes, model)
    coded = codes >= 0
    onehot = (codes[:, :, None] == np.arange(m)[None, None, :]) & coded[:, :, None]  # n m K
    votes = onehot & voter[:, :, None]
    counts = votes.sum(axis=1)  # (n, K)
    log_p, log_q = np.log(p), np.log1p(-p)
    right = np.einsum("nmk,m->nk", votes, log_p)
    wrong = np.einsum("nm,m->n", voter & coded, log_q)[:, None] - np.einsum(
        "nmk,m->nk", votes, log_q
    )
    alpha = (1 - model.coincidence) / model.coincidence
    present = counts > 0
    groups = present.sum(axis=1, keepdims=True) - 1
    log_gamma = np.where(present, gammaln(np.maximum(counts, 1)), 0.0)
    n_wrong = counts.sum(axis=1, keepdims=True) - counts
    crp = (
        groups * np.log(alpha)
        + log_gamma.sum(axis=1, keepdims=True)
        - log_gamma
        - gammaln(alpha + n_wrong)
        + gammaln(alpha)
    )
    log_post = np.where(present, right + wrong + crp, -np.inf)  # (n, K)
    best = np.argmax(log_post, axis=1)
    gives_best = coded & (codes == best[:, None])
    choice = np.where(gives_best, p[None, :], -np.inf).argmax(axis=1)
    choice = np.where(coded.any(axis=1), choice, -1)
    support = np.where(coded, np.take_along_axis(log_post, np.maximum(codes, 0), axis=1), -np.inf)
    return jnp.asarray(choice, jnp.int32), jnp.asarray(support, jnp.float32)


def _by_position(codes: np.ndarray) -> np.ndarray:
    """Codes renamed to the position of their first giver in the row (so < n_models)."""
    same = codes[:, :, None] == codes[:, None, :]
    return np.where(codes >= 0, np.argmax(same, axis=2), -1)


def _voters(codes: np.ndarray, model: AnswerModel) -> np.ndarray:
    """Who votes on each input: all, except that a family giving one answer there votes
    once, by its most accurate member."""
    voter = np.ones(codes.shape, bool)
    for family in np.unique(model.families):
        members = np.flatnonzero(model.families == family)
        if members.size < 2:
            continue
        sub = codes[:, members]
        agree = np.all(sub >= 0, axis=1) & np.all(sub == sub[:, :1], axis=1)
        lead = members[np.argmax(model.accuracy[members])]
        voter[np.ix_(agree, members)] = False
        voter[agree, lead] = True
    return voter


def answer_prob_best(
    codes: Int[np.ndarray, "n_samples n_models"],
    key: PRNGKeyArray,
    resamples: int = RESAMPLES,
    model: AnswerModel | None = None,
) -> np.ndarray:
    """Each model's share of bootstrap resamples (of the inputs) in which its answer
    accuracy is the highest: A_ij = p_i p_j + (1 - p_i)(1 - p_j) c refitted by least squares
    to each resample's agreement rates over the pairs of different families (damped
    Gauss-Newton on the logits of p, all resamples at once, from the full fit). The
    resamples weigh each input by a Poisson(1) count (the bootstrap in a pass over the
    inputs, a chunk at a time). The "how sure" of `sj.posterior.certainty` with answers;
    `model`: the full fit (`fit_answers(codes)`), where the caller has it."""
    codes = np.asarray(codes)
    n, m = codes.shape
    model = fit_answers(codes) if model is None else model
    iu, ju = np.triu_indices(m, 1)
    cross = model.families[iu] != model.families[ju]
    i, j = iu[cross], ju[cross]
    if cross.sum() < m + 1:  # p and c not identified: the full fit, with no spread
        return np.eye(m)[int(np.argmax(model.accuracy))]
    rng = np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel().tolist())
    agree, both = np.zeros((resamples, i.size)), np.zeros((resamples, i.size))
    for start in range(0, n, _CHUNK):
        rows = codes[start : start + _CHUNK]
        weights = rng.poisson(1.0, (resamples, len(rows))).astype(np.float64)
        answered = rows >= 0
        agree += weights @ ((rows[:, i] == rows[:, j]) & answered[:, i]).astype(np.float64)
        both += weights @ (answered[:, i] & answered[:, j]).astype(np.float64)
    target = agree / np.maximum(both, 1.0)  # (resamples, pairs)
    # c held at the full fit: free, it lets a resample jump to the mirror solution
    # (p -> 1 - p fits as well as c -> 1), which no start-free refit would choose.
    c = model.coincidence
    start = np.clip(model.accuracy, 1e-3, 1 - 1e-3)
    z = np.broadcast_to(np.log(start) - np.log1p(-start), (resamples, m)).copy()
    pairs = np.arange(i.size)
    for _ in range(GAUSS_NEWTON_STEPS):
        p = 1 / (1 + np.exp(-z))
        pi, pj = p[:, i], p[:, j]
        resid = pi * pj + (1 - pi) * (1 - pj) * c - target
        jac = np.zeros((resamples, i.size, m))
        jac[:, pairs, i] = (pj - (1 - pj) * c) * pi * (1 - pi)
        jac[:, pairs, j] = (pi - (1 - pi) * c) * pj * (1 - pj)
        normal = np.einsum("bpk,bpl->bkl", jac, jac)
        damped = normal + 1e-3 * (normal * np.eye(m)) + 1e-9 * np.eye(m)
        step = np.linalg.solve(damped, -np.einsum("bpk,bp->bk", jac, resid)[..., None])[..., 0]
        z = np.clip(z + step, -_LOGIT, _LOGIT)
    return np.bincount(np.argmax(z, axis=1), minlength=m) / resamples

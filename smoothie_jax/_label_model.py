"""Labels: which models a few scored inputs show to be worse, and the decision they move.

A person scores every (or some) model's output on a few inputs: rows of `scores`, NaN
where a model was not scored. Only differences within a row carry information (a row is
one input: it may be easy for all or hard for all), so the labels are read through the
two-way fit score_rj = c_r + eta_j + noise on the judged cells: eta_j is model j's mean
score relative to the others on the same inputs, sigma the pooled noise sd. The evidence
that model j is worse (`LabelEvidence.against`) is the largest t = (eta_k - eta_j) / se
over the other models k (se from sigma and the rows both were judged on).

The labelled decision (`labelled_score`): a model the labels show to be worse by more
than `THRESHOLD` standard errors is dropped; each input goes to the remaining model of
highest label-free score (the recommended router's, `_signals.recommended_score`), less
`WEIGHT` x doubt x the model's gap: how far its labelled mean lies behind the best
labelled model's, in noise sds (an effect size, which does not grow with the number of
labels as a t does). The doubt (`router_doubt`) is how unsure the label-free router is of
the best model, read from the certainty `route` prints: 1 - P(best) of its most probable
model, scaled to [0, 1]. So labels count most where the label-free router knows least
(chat judged by an LLM: doubt about 0.85) and barely move a router that is sure (final
answers: about 0.25), a prior whose strength the data set; they only ever remove or
down-weigh models they show to be worse: without labels, or with labels that show no
difference, it routes exactly as the label-free router; where the labels show one model
far ahead it routes everything there (Best-on-Val); the per-input skill of the router is
kept among the models the labels cannot tell apart.

Why not a label model that adds a bias per model (or weights of several signals) to the
router's score, an earlier design: its biases, fitted on 5 noisy labels, flipped every
input where the router's scores were close, and chat judged by an LLM fell from 0.79
label-free to 0.39 with 5 labels. On the four dev sets (40 ensembles each, random labels
n = 5-50; docs/results/uncertainty.md) that model fell below max(label-free,
Best-on-Val) - 0.02 on every set at n = 5 (by up to 0.13 G); label models over several
signals (weighted consensus, Local theta, log length, per-model biases; evidence-weighted
priors, signs learned) did too. The 0.9 decision (a weight per standard error of
evidence, the same on every data set) met that target on 11 of the 16 (set, n) cells
leave-one-set-out: no one weight per standard error served chat at n = 5 (too little)
and the sure answer router at n = 20 (too much). This one meets 14
(`benchmarks/uncertainty_dev.py`).

`WEIGHT` is chosen leave-one-set-out (`LEAVE_ONE_SET_OUT`): each dev set is scored with
the weight chosen on the other three, by the total shortfall below max(label-free G,
Best-on-Val G) - 0.02 over n = 5, 10, 20, 50 (ties: the best worst margin); `WEIGHT` is
what all four choose. `THRESHOLD`, one standard error, is kept from 0.9 (where three of
the four folds chose it).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int, PRNGKeyArray

from ._additive import MISFIT_SCALE, additive_theta_draws
from ._agreement import answer_prob_best
from ._batch import Batch
from ._knn import DEFAULT_BLOCK_SIZE
from ._signals import RECOMMENDED, Recipe, recommended_score
from ._tasks import read_answers, task_points
from ._validate import ArrayLike

THRESHOLD = 1.0  # z: dropped where another model is better by more than z standard errors
WEIGHT = 8.0  # label-free score units taken off per noise sd of gap, at full doubt
# What each fold of `benchmarks/uncertainty_dev.py` chose on the other three dev sets, by
# the held-out set's file stem: WEIGHT.
LEAVE_ONE_SET_OUT = {
    "alpaca_eval_dev": 8.0,
    "alpaca_eval_v1_dev": 8.0,
    "zeroeval_gsm8k": 8.0,
    "zeroeval_crux": 10.0,
}
DOUBT_KEY = 0  # PRNG key of the certainty behind `router_doubt` (a route is deterministic)
TAUS = np.geomspace(0.01, 10.0, 40)  # grid of the models' spread, in noise sds (posterior)
TIE = 1e-4  # with answers: ties between givers of one answer go to the more accurate


def check_labels(
    labels: object, n: int, m: int
) -> tuple[Int[Array, " n_labels"], Float[Array, "n_labels n_models"]]:
    """(rows, scores) validated: rows ints in [0, n), scores (n_labels, m), finite or NaN."""
    if not isinstance(labels, (tuple, list)) or len(labels) != 2:
        raise ValueError("labels must be a pair (rows, scores)")
    rows, scores = np.asarray(labels[0]), np.asarray(labels[1], dtype=np.float64)
    if rows.ndim != 1 or not (np.issubdtype(rows.dtype, np.integer) or rows.size == 0):
        raise ValueError(
            f"labels rows must be a 1-d array of ints, got shape {rows.shape}, dtype {rows.dtype}"
        )
    if scores.ndim != 2 or scores.shape[1] != m:
        raise ValueError(
            f"labels scores must have shape (n_labels, n_models) = ({rows.size}, {m}), "
            f"got {scores.shape}"
        )
    if scores.shape[0] != rows.size:
        raise ValueError(
            f"labels rows and scores differ in length: {rows.size} rows, {scores.shape[0]} "
            "score rows"
        )
    if rows.size and (rows.min() < 0 or rows.max() >= n):
        bad = rows[(rows < 0) | (rows >= n)]
        raise ValueError(f"labels rows must be in [0, {n}) (the samples), got {bad[:5].tolist()}")
    if np.isinf(scores).any():
        raise ValueError(
            f"labels scores contain inf (at {np.argwhere(np.isinf(scores))[0].tolist()})"
        )
    judged = np.sum(~np.isnan(scores), axis=1)
    if rows.size and not (judged >= 2).any():
        raise ValueError(
            "labels scores: no labelled row has two or more judged models (NaN = unjudged); "
            "a row's scores only inform quality relative to the other models on that row"
        )
    return jnp.asarray(rows.astype(np.int32)), jnp.asarray(scores, jnp.float32)


@dataclasses.dataclass(frozen=True, eq=False)  # holds arrays
class LabelEvidence:
    """What the labelled rows say about each model (the two-way fit of the module docstring).

    Attributes:
        means: (n_models,) eta: each model's mean score relative to the others on the same
            rows (sums to 0 over the judged models; 0 for a model never judged).
        cov: (n_models, n_models) sampling covariance of `means` (sigma^2 (X'X)^-1 of the
            fit; 0 rows and columns for a model never judged).
        judged: (n_models,) labelled rows that scored each model.
        noise: sigma, the pooled sd of a score around its row and model effects.
        against: (n_models,) evidence that the model is worse: max over the other judged
            models k of (eta_k - eta_j) / se(eta_k - eta_j), >= 0; 0 where the labels
            cannot compare (fewer than two rows, or a model never judged).
        n_rows: labelled rows that judge two or more models (the rows the fit reads).
    """

    means: np.ndarray
    cov: np.ndarray
    judged: np.ndarray
    noise: float
    against: np.ndarray
    n_rows: int

    @property
    def gap(self) -> np.ndarray:
        """(n_models,) how far each model's labelled mean lies behind the best judged
        model's, in noise sds (>= 0); 0 for a model never judged, and for all where the
        labels cannot compare (no residual noise was read)."""
        seen = self.judged > 0
        if self.noise <= 0 or seen.sum() < 2:
            return np.zeros_like(self.means)
        return np.where(seen, (self.means[seen].max() - self.means) / self.noise, 0.0)


def label_evidence(scores: Float[ArrayLike, "n_labels n_models"]) -> LabelEvidence:
    """The two-way fit of labelled scores (NaN: unjudged) and the evidence against each model.

    Least squares of score_rj = c_r + eta_j (sum of eta = 0) on the judged cells of the rows
    that judge two or more models; sigma^2 is the residual sum of squares over its degrees
    of freedom. The fit is exact linear algebra on at most a few hundred rows (NumPy).

    >>> ev = label_evidence(np.array([[1.0, 0.2, 0.0], [0.9, 0.0, 0.1], [1.0, 0.1, 0.1]]))
    >>> ev.means.round(2).tolist(), bool(ev.against[0] == 0), bool(ev.against[1] > 3)
    ([0.59, -0.28, -0.31], True, True)
    """
    scores = np.asarray(scores, np.float64)
    m = scores.shape[-1]
    judged_cells = ~np.isnan(scores)
    scores = scores[judged_cells.sum(axis=1) >= 2]
    judged_cells = ~np.isnan(scores)
    n_rows = scores.shape[0]
    judged = judged_cells.sum(axis=0)
    none = LabelEvidence(np.zeros(m), np.zeros((m, m)), judged, 0.0, np.zeros(m), n_rows)
    seen = np.flatnonzero(judged > 0)
    if n_rows < 2 or seen.size < 2:
        return none
    # Design: one column per row, the judged models' effects in a sum-to-zero basis.
    r_idx, j_idx = np.nonzero(judged_cells)
    y = scores[r_idx, j_idx]
    pos = {int(j): i for i, j in enumerate(seen)}
    k = seen.size
    basis = np.vstack([np.eye(k - 1), -np.ones((1, k - 1))])  # eta = basis @ free
    design = np.zeros((y.size, n_rows + k - 1))
    design[np.arange(y.size), r_idx] = 1.0
    design[:, n_rows:] = basis[[pos[int(j)] for j in j_idx]]
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    resid = y - design @ coef
    dof = y.size - np.linalg.matrix_rank(design)
    spread = np.sqrt(np.mean((y - np.mean(y)) ** 2))
    if dof <= 0 or spread == 0:  # no residual to judge by, or every score the same
        return none
    # A perfect fit (every row tells the same differences) is strong but finite evidence.
    sigma2 = max(float(resid @ resid) / dof, (1e-6 * spread) ** 2, 1e-30)
    precision = design.T @ design
    free_cov = sigma2 * np.linalg.pinv(precision)[n_rows:, n_rows:]
    eta_seen = basis @ coef[n_rows:]
    cov_seen = basis @ free_cov @ basis.T
    means, cov = np.zeros(m), np.zeros((m, m))
    means[seen] = eta_seen
    cov[np.ix_(seen, seen)] = cov_seen
    var = np.diag(cov_seen)
    diff_var = var[:, None] + var[None, :] - 2 * cov_seen
    diff = eta_seen[:, None] - eta_seen[None, :]  # [k, j]: k minus j
    diff = np.where(np.abs(diff) > 1e-9 * spread, diff, 0.0)  # rounding is no evidence
    t = np.where(diff_var > 0, diff / np.sqrt(np.maximum(diff_var, 1e-300)), 0.0)
    against = np.zeros(m)
    against[seen] = np.maximum(t.max(axis=0), 0.0)
    return LabelEvidence(means, cov, judged, float(np.sqrt(sigma2)), against, n_rows)


def labelled_score(
    score: Float[Array, "n_samples n_models"],
    evidence: LabelEvidence,
    *,
    doubt: float = 1.0,
    threshold: float = THRESHOLD,
    weight: float = WEIGHT,
) -> Float[Array, "n_samples n_models"]:
    """The label-free score less `weight` x `doubt` x each model's gap behind the labels'
    best (`LabelEvidence.gap`), -inf for a model the labels show worse by more than
    `threshold` standard errors (and where `score` is).

    >>> ev = label_evidence(np.array([[1.0, 0.2, 0.0], [0.9, 0.0, 0.1], [1.0, 0.1, 0.1]]))
    >>> labelled_score(jnp.array([[0.0, 2.0, 1.0]]), ev).argmax(axis=1).tolist()
    [0]
    """
    against = jnp.asarray(evidence.against, score.dtype)
    moved = score - weight * doubt * jnp.asarray(evidence.gap, score.dtype)[None, :]
    return jnp.where((against <= threshold)[None, :], moved, -jnp.inf)


def router_prob_best(
    embeddings: Float[Array, "n_samples n_models dim"],
    answers: Int[ArrayLike, "n_samples n_models"] | None,
    key: PRNGKeyArray,
) -> np.ndarray:
    """The label-free router's P(best) per model, the "how sure" `route` prints
    (`sj.posterior.certainty` without labels): the additive Global posterior
    (`_additive`, `MISFIT_SCALE`, 1000 draws; the key split as `fit_posterior` splits it),
    or with answers the bootstrap of the answer accuracies (`_agreement.answer_prob_best`).
    `embeddings` checked (`_validate.check_embeddings`)."""
    if answers is not None:
        return answer_prob_best(np.asarray(answers), key)
    key_theta, _ = jax.random.split(key)
    theta = additive_theta_draws(
        key_theta,
        embeddings,
        inputs=None,
        k=None,
        num_samples=1000,
        misfit_scale=MISFIT_SCALE,
        block_size=DEFAULT_BLOCK_SIZE,
    )
    m = theta.shape[-1]
    return np.bincount(np.asarray(jnp.argmax(theta, axis=-1)), minlength=m) / theta.shape[0]


def router_doubt(batch: Batch) -> float:
    """How unsure the label-free router is of the best model: (1 - P(best) of its most
    probable model) / (1 - 1 / n_models), in [0, 1], from `router_prob_best` with key
    `DOUBT_KEY`. Read on the inputs every model answered; 1 (labels at full weight) where
    fewer than two are left."""
    embeddings, answers = batch.embeddings, batch.answers
    if batch.observed is not None:
        full = np.flatnonzero(np.asarray(batch.observed).all(axis=1))
        if full.size < 2:
            return 1.0
        embeddings = embeddings[full]
        answers = None if answers is None else answers[full]
    prob = router_prob_best(embeddings, answers, jax.random.key(DOUBT_KEY))
    m = prob.size
    return float(np.clip((1.0 - prob.max()) / (1.0 - 1.0 / m), 0.0, 1.0))


def router_score(batch: Batch, recipe: Recipe = RECOMMENDED) -> Float[Array, "n n_models"]:
    """The label-free score the labels move: the recommended router's standardised score
    (`_signals.recommended_score`); with answers, models giving one answer tie there, and
    the tie goes to the more accurate one, and to a model that answered over one that did
    not (as the label-free answer vote chooses)."""
    if batch.answers is None:
        return recommended_score(batch, recipe)
    evidence = read_answers(batch.answers, task_points(batch))  # read once, used twice
    score = recommended_score(batch, recipe, evidence)
    codes = np.asarray(batch.answers)
    accuracy = evidence.accuracy
    m = accuracy.size
    # By rank (float32 cannot hold 1e-4 x a difference of accuracies of 1e-5); equal
    # accuracies: the lower index, as the vote's argmax.
    rank = np.empty(m)
    rank[np.lexsort((-np.arange(m), accuracy))] = np.arange(m) / m
    silent = (codes < 0) & np.any(codes >= 0, axis=1, keepdims=True)
    return score + TIE * jnp.asarray(rank[None, :] - 2.0 * silent, score.dtype)


def batch_evidence(
    batch: Batch, rows: Int[ArrayLike, " n_labels"], scores: Float[ArrayLike, "n_labels n_models"]
) -> LabelEvidence:
    """`label_evidence` of labels on a batch: a model that did not answer an input counts
    as unjudged there."""
    scores = np.asarray(scores, np.float64)
    if batch.observed is not None:
        scores = np.where(np.asarray(batch.observed)[np.asarray(rows)], scores, np.nan)
    return label_evidence(scores)


def dropped(evidence: LabelEvidence, threshold: float = THRESHOLD) -> list[int]:
    """The models the labels drop (evidence against them above `threshold`)."""
    return [int(j) for j in np.flatnonzero(evidence.against > threshold)]


def quality_draws(
    key: PRNGKeyArray, evidence: LabelEvidence, num_samples: int
) -> Float[Array, "num_samples n_models"]:
    """Posterior draws of eta (each model's quality as the labels measure it).

    eta_j ~ N(0, tau^2) a priori (the models' spread tau, log-uniform on `TAUS` x sigma),
    the fit's means and covariance the likelihood: exact given tau, mixed over the grid
    by each tau's evidence, so a few labels that barely separate the models leave them
    close. A model never judged keeps the prior (it may be anything).
    """
    m = evidence.means.shape[0]
    sigma = max(evidence.noise, 1e-12)
    seen = evidence.judged > 0
    mean, cov = evidence.means[seen], evidence.cov[np.ix_(seen, seen)]
    k = int(seen.sum())
    logw, means, covs, priors = [], [], [], []
    for tau in TAUS * sigma:
        prior = tau**2 * np.eye(k)
        marginal = prior + cov + 1e-12 * sigma**2 * np.eye(k)
        _, logdet = np.linalg.slogdet(marginal)
        logw.append(-0.5 * (mean @ np.linalg.solve(marginal, mean) + logdet))
        gain = prior @ np.linalg.inv(marginal)
        means.append(gain @ mean)
        covs.append(prior - gain @ prior)
        priors.append(tau)
    logw = np.array(logw) if k else np.zeros(len(TAUS))
    weights = np.exp(logw - logw.max())
    weights /= weights.sum()
    key_grid, key_draw, key_prior = jax.random.split(key, 3)
    g = np.asarray(jax.random.choice(key_grid, len(TAUS), (num_samples,), p=jnp.asarray(weights)))
    z = np.asarray(jax.random.normal(key_draw, (num_samples, max(k, 1))))[:, :k]
    draws = np.zeros((num_samples, m))
    if k:
        chol = np.stack([np.linalg.cholesky(c + 1e-12 * sigma**2 * np.eye(k)) for c in covs])
        draws[:, seen] = np.stack(means)[g] + np.einsum("sij,sj->si", chol[g], z)
    free = np.asarray(jax.random.normal(key_prior, (num_samples, m)))
    draws[:, ~seen] = (np.array(priors)[g][:, None] * free)[:, ~seen]
    return jnp.asarray(draws, jnp.float32)


def label_model(scores: Float[Array, "n_labels n_models"], tau: float, noise: float) -> None:
    """NumPyro model of the labels (documentation and tests): score_rj = c_r + eta_j +
    N(0, noise^2) on the judged cells (NaN: unjudged, masked out), eta_j ~ N(0, tau^2),
    c_r ~ N(0, 10^2) (a row's difficulty: nearly free). `label_evidence` is its fit with a
    flat prior on eta and c; `quality_draws` its posterior of eta mixed over tau."""
    import numpyro
    import numpyro.distributions as dist

    n, m = scores.shape
    with numpyro.plate("models", m):
        eta = numpyro.sample("eta", dist.Normal(0.0, tau))
    with numpyro.plate("rows", n):
        row = numpyro.sample("row", dist.Normal(0.0, 10.0))
    judged = ~jnp.isnan(scores)
    with numpyro.handlers.mask(mask=judged):
        numpyro.sample(
            "scores",
            dist.Normal(row[:, None] + eta[None, :], noise),
            obs=jnp.where(judged, scores, 0.0),
        )

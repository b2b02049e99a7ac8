"""Tasks found in the inputs, and each one's best model where the answers show it.

A mix of tasks (maths word problems, code, trivia) can have a different best model per
task, and no router is told the task. `find_tasks` groups the inputs (spherical k-means
on the input embeddings, as many groups, 2 to `N_TASKS`, as the silhouette shows);
`read_answers` reads the answers overall and, per group, by the group's own answer model
(`fit_answers` with the families found on all inputs); `Evidence.best` gives a group its
own best model only where two readings, the group's own answer model and plurality (who
gave each input's most common answer), find the same challenger whose advantage over
the overall best, input by input, exceeds `TASK_Z` standard errors (`task_best`).
Elsewhere the overall best stands: one task, or tasks that share their best model, route
as without groups. `answer_choice` then keeps each input's favoured model's answer
unless the posterior's odds against it exceed e^`BEST_BONUS`. Without answers the same
groups are read by the label-free decisions (`vote_tasks`, used by `_signals.read_tasks`).

Measured (`benchmarks/answer_constants.py`, 40 ensembles of 5; G test / train): on
GSM8K, CRUXEval and their mix, whose tasks share their best model, groups change G by at
most 0.007; on the mix with CRUXEval's model columns reversed (each task its own best
model) they lift it from 1.10 / 0.85 to 1.23 / 1.23 (0.8, with 4 groups and the overall
answer model as second reading: 1.13 / 0.99). The bonus lifts test-time G from 1.05 to
1.10 (GSM8K) and 0.83 to 0.91 (CRUXEval). Both constants are chosen there; N_TASKS and
MIN_TASK were set by hand (at most 4 groups; 50 inputs per group fit).
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
from jaxtyping import Bool, Float, Int
from scipy.special import logsumexp

from ._agreement import (
    _FLOOR,
    AnswerModel,
    _by_position,
    answer_posterior,
    answer_prob_best,
    fit_answers,
)
from ._batch import Batch
from ._validate import ArrayLike

N_TASKS = 4  # groups proposed at most (each needs MIN_TASK inputs)
MIN_TASK = 50  # inputs a group needs to be tested at all
TASK_Z = 1.5  # paired z a group's own best must reach over the overall best (answers)
VOTE_Z = 2.0  # the same without answers: the answers' z of 0.8, kept (see vote_tasks)
BEST_BONUS = 3.0  # log-odds against the favoured model's answer that overrule it
LEADER_LEVEL = 0.8  # the bootstrap's P(best) the leader's contenders hold (see `leader`)
_ITERS = 30  # k-means rounds
_SAMPLE = 20_000  # inputs the centroids are fitted on (all are assigned)
_SILHOUETTE = 1000  # inputs the number of groups is judged on
_ROWS = 4096  # inputs converted to float64 at a time (memory stays flat at a million)


def find_tasks(
    points: Float[ArrayLike, "n_samples dim"], n_tasks: int = N_TASKS, *, seed: int = 0
) -> Float[np.ndarray, "n_groups dim"]:
    """Unit centroids of the groups the inputs show: spherical k-means (seeded) for 2 to
    `n_tasks` groups, kept at the number of highest silhouette (on a sample of
    `_SILHOUETTE` inputs); one group where there are too few inputs for two of `MIN_TASK`.

    Why the silhouette: a fixed number splits one task by topic, and a group then holds
    too few inputs to show its own best model (on the GSM8K + CRUXEval mix, 4 groups cut
    GSM8K in three; the silhouette keeps the two tasks).

    >>> x = np.r_[np.tile([1.0, 0.0], (60, 1)), np.tile([0.0, 1.0], (60, 1))]
    >>> sorted(assign_tasks(x, find_tasks(x, 2)).tolist()) == [0] * 60 + [1] * 60
    True
    """
    points = np.asarray(points)
    most = int(min(n_tasks, max(1, len(points) // MIN_TASK)))
    rng = np.random.default_rng(seed)
    if len(points) > _SAMPLE:  # sampled before the float64 copy
        points = points[rng.choice(len(points), _SAMPLE, replace=False)]
    fit = _unit(points.astype(np.float64))
    if most == 1:
        return _unit(fit.sum(0, keepdims=True)).astype(np.float32)
    sample = fit[rng.permutation(len(fit))[:_SILHOUETTE]]
    distance = 1.0 - sample @ sample.T  # cosine, the same for every number of groups
    fits = [_kmeans(fit, k, rng) for k in range(2, most + 1)]
    return max(fits, key=lambda c: _silhouette(sample, distance, c)).astype(np.float32)


def _kmeans(fit: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k unit centroids of spherical k-means on unit rows."""
    centroids = _spread_start(fit, k, rng)
    for _ in range(_ITERS):
        member = np.eye(k)[np.argmax(fit @ centroids.T, axis=1)]  # (n, k) one-hot
        sums = member.T @ fit  # one product, not a copy of each group
        moved = _unit(np.where(member.sum(0)[:, None] > 0, sums, centroids))
        if np.allclose(moved, centroids):
            break
        centroids = moved
    return centroids


def _silhouette(x: np.ndarray, distance: np.ndarray, centroids: np.ndarray) -> float:
    """Mean silhouette of unit rows `x` (`distance`: their pairwise cosine distances)
    grouped by nearest centroid: near 1 where the groups are tight and apart, near 0
    where one cloud is cut."""
    groups = np.argmax(x @ centroids.T, axis=1)
    member = np.eye(len(centroids))[groups]  # (n, k)
    sizes = member.sum(0)
    mean = distance @ member  # (n, k) summed distance to each group
    own = mean[np.arange(len(x)), groups] / np.maximum(sizes[groups] - 1, 1)
    other = np.where((member > 0) | (sizes == 0), np.inf, mean / np.maximum(sizes, 1)).min(1)
    width = np.maximum(own, other)
    score = (other - own) / np.maximum(width, 1e-12)
    score = np.where((sizes[groups] > 1) & np.isfinite(other), score, 0.0)
    return float(score.mean())


def assign_tasks(
    points: Float[ArrayLike, "n_samples dim"], centroids: Float[ArrayLike, "n_groups dim"]
) -> Int[np.ndarray, " n_samples"]:
    """Each input's group: the centroid of highest cosine."""
    points, centroids = np.asarray(points), np.asarray(centroids, np.float64).T
    return np.concatenate(
        [
            np.argmax(points[i : i + _ROWS].astype(np.float64) @ centroids, axis=1)
            for i in range(0, max(len(points), 1), _ROWS)
        ]
    )


def right_probability(
    codes: Int[ArrayLike, "n_samples n_models"], support: Float[ArrayLike, "n_samples n_models"]
) -> Float[np.ndarray, "n_samples n_models"]:
    """Per input, the probability that each model's answer is the right one, from the
    answer posterior's `support` normalised over the input's distinct answers (0 where a
    model gave none)."""
    codes, support = np.asarray(codes), np.asarray(support, np.float64)
    first = _by_position(codes) == np.arange(codes.shape[1])  # one column per answer
    norm = logsumexp(np.where(first, support, -np.inf), axis=1, keepdims=True)
    norm = np.where(np.isfinite(norm), norm, 0.0)  # no answers at all: every p is 0
    return np.where(np.isfinite(support), np.exp(support - norm), 0.0)


def plurality(
    codes: Int[ArrayLike, "n_samples n_models"],
) -> Float[np.ndarray, "n_samples n_models"]:
    """1.0 where a model gave its input's most common answer (ties: each), 0 elsewhere
    and where it gave none.

    >>> plurality(np.array([[0, 0, 1, -1]])).tolist()
    [[1.0, 1.0, 0.0, 0.0]]
    """
    codes = np.asarray(codes)  # counted column by column: (n, m), not agreements' (n, m, m)
    support = sum((codes == codes[:, [j]]).astype(np.int32) for j in range(codes.shape[1]))
    support = np.where(codes >= 0, support, 0)  # (n, m) models giving each one's answer
    return ((support >= support.max(axis=1, keepdims=True)) & (codes >= 0)).astype(np.float64)


def task_best(
    right: Float[ArrayLike, "n_samples n_models"],
    groups: Int[ArrayLike, " n_samples"],
    n_groups: int,
    overall: int,
    z: float = TASK_Z,
) -> Int[np.ndarray, " n_groups"]:
    """Each group's best model: the one with the highest mean `right` in the group where
    its paired advantage over `overall` exceeds `z` standard errors, else `overall`."""
    right, groups = np.asarray(right, np.float64), np.asarray(groups)
    best = np.full(n_groups, overall, np.int32)
    for g in range(n_groups):
        rows = right[groups == g]
        if len(rows) < MIN_TASK:
            continue
        challenger = int(np.argmax(rows.mean(axis=0)))
        diff = rows[:, challenger] - rows[:, overall]
        se = diff.std(ddof=1) / np.sqrt(len(diff))
        if challenger != overall and np.isfinite(z) and diff.mean() > z * se:
            best[g] = challenger
    return best


@dataclasses.dataclass(frozen=True, eq=False)  # holds arrays
class Evidence:
    """What the answers of a batch say, overall and per group of inputs.

    Attributes:
        model: the answer model fitted on every input (`fit_answers`).
        support: (n_samples, n_models) each output's support under it
            (`answer_posterior`; -inf where its model gave no answer).
        centroids: (n_groups, dim) unit centroids of the groups (`find_tasks`).
        groups: (n_samples,) each input's group.
        own_support: (n_samples, n_models) the support under the input's group's own
            answer model (the overall one for a group under `MIN_TASK` inputs).
        right: (n_samples, n_models) from it, the probability that each model's answer
            is right (`right_probability`).
        plurality: (n_samples, n_models) 1 where a model gave its input's most common
            answer (`plurality`), a reading that fits nothing.
        overall: the overall leader (`leader`): of the models the answers cannot rule
            out as the most accurate, the one most often of its input's plurality.
    """

    model: AnswerModel
    support: np.ndarray
    centroids: np.ndarray
    groups: np.ndarray
    own_support: np.ndarray
    right: np.ndarray
    plurality: np.ndarray
    overall: int

    @property
    def accuracy(self) -> np.ndarray:
        """(n_models,) the fitted accuracies ranked with `overall` first: lifted to the
        top, any other model there kept 1e-4 under it (a tie-break, not an estimate)."""
        top = self.model.accuracy.max()
        ranked = np.minimum(self.model.accuracy, top - 1e-4)
        ranked[self.overall] = top
        return ranked

    def best(self, z: float = TASK_Z) -> np.ndarray:
        """(n_groups,) each group's best model: its own only where both readings, by the
        group's own answer model and by plurality, find the same challenger beyond `z`
        (`task_best`). The group's own fit alone departs on single tasks too (CRUXEval);
        plurality is the second reading because it fits nothing: the overall model, fitted
        across tasks, reads every group by the largest task's accuracies."""
        n = len(self.centroids)
        own = task_best(self.right, self.groups, n, self.overall, z)
        agreed = task_best(self.plurality, self.groups, n, self.overall, z)
        return np.where(own == agreed, own, self.overall).astype(np.int32)

    def group_right(self) -> np.ndarray:
        """(n_groups, n_models) each model's mean `right` over each group's inputs, kept
        in [0.001, 0.999] as the fitted accuracies are."""
        means = np.stack(
            [
                self.right[self.groups == g].mean(0)
                if np.any(self.groups == g)
                else self.right.mean(0)
                for g in range(len(self.centroids))
            ]
        )
        return np.clip(means, _FLOOR, 1 - _FLOOR)


def read_answers(
    codes: Int[ArrayLike, "n_samples n_models"], points: Float[ArrayLike, "n_samples dim"]
) -> Evidence:
    """The answer model overall and per group of the inputs (`find_tasks` on `points`):
    the overall model misreads a mix whose tasks have different best models (their
    errors correlate across tasks), so each group is also read by its own."""
    codes = np.asarray(codes)
    model = fit_answers(codes)
    support = np.asarray(answer_posterior(codes, model)[1], np.float64)
    centroids = find_tasks(points)
    groups = assign_tasks(points, centroids)
    own = support.copy()
    for g in range(len(centroids)):
        rows = groups == g
        if MIN_TASK <= rows.sum() < len(codes):
            group = fit_answers(codes[rows], model.families)
            own[rows] = np.asarray(answer_posterior(codes[rows], group)[1])
    right = right_probability(codes, own)
    agreed = plurality(codes)
    return Evidence(
        model, support, centroids, groups, own, right, agreed, leader(codes, model, agreed)
    )


def leader(
    codes: Int[np.ndarray, "n_samples n_models"],
    model: AnswerModel,
    agreed: Float[np.ndarray, "n_samples n_models"],
) -> int:
    """The overall leader: among the models the answers cannot rule out as the most
    accurate (the smallest set holding `LEADER_LEVEL` of the bootstrap's P(best),
    `_agreement.answer_prob_best` with key 0, the "how sure" `route` prints), the one that
    most often gives its input's most common answer (`agreed`, `plurality`).

    Why: where the fitted accuracies of a few models lie within their noise, the fit's
    point estimate picks among them little better than chance, and plurality, which fits
    nothing, breaks the tie; a copied family's weaker member owns the plurality, but its
    fitted accuracy mostly keeps it out of the set. The level is chosen as `TASK_Z` is
    (`benchmarks/answer_constants.py --leader-level`): the best worst change, against the
    fitted leader, over GSM8K, CRUXEval and their mix in both regimes; 0.8 (GSM8K train
    -0.002) over 0.9 (CRUXEval train -0.003), with test-time G on CRUXEval 0.888 -> 0.914,
    GSM8K 1.084 -> 1.098 (docs/results/routing.md)."""
    prob = answer_prob_best(codes, jax.random.key(0), model=model)
    order = np.argsort(-prob, kind="stable")
    size = int(np.searchsorted(np.cumsum(prob[order]), LEADER_LEVEL - 1e-9) + 1)
    contenders = order[:size]
    return int(contenders[np.argmax(np.asarray(agreed).mean(axis=0)[contenders])])


def answer_choice(
    evidence: Evidence, bonus: float = BEST_BONUS, z: float = TASK_Z
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Test-time choice by answers: per input, the favoured model's answer (its group's
    best, `Evidence.best`) unless the answer posterior's odds against it exceed
    e^`bonus`, then the answer most probably right; the most accurate model giving the
    chosen answer. Inputs of a group with its own best model are read by the group's own
    answer model.

    Why the bonus: the posterior treats models as independent given the truth, so models
    that share mistakes overstate the evidence against the best one
    (`benchmarks/router_dev.py` prints the choice of both constants).

    Returns:
        (choice, score, favoured): the chosen model per input (-1 where no model
        answered), each output's log-odds score (-inf where its model gave no answer),
        and each input's favoured model.
    """
    favoured = evidence.best(z)[evidence.groups]
    departed = (favoured != evidence.overall)[:, None]  # a task of its own: its own answers
    support = np.where(departed, evidence.own_support, evidence.support)
    m = support.shape[1]
    score = support + bonus * (np.arange(m) == favoured[:, None])
    top = np.max(score, axis=1, keepdims=True)
    tied = np.isfinite(score) & (score >= top - 1e-6)  # outputs giving the chosen answer
    choice = np.argmax(np.where(tied, evidence.accuracy, -np.inf), axis=1)
    choice = np.where(np.isfinite(top[:, 0]), choice, -1)
    return choice, score, favoured


@dataclasses.dataclass(frozen=True, eq=False)  # holds arrays
class VoteTasks:
    """Groups of the inputs, and which of them the label-free decisions read on their own.

    Attributes:
        centroids: (n_groups, dim) unit centroids of the groups (`find_tasks`).
        groups: (n_samples,) each input's group.
        top: the top model of all inputs.
        best: (n_groups,) each group's top model: its own where it departs, else `top`.
    """

    centroids: np.ndarray
    groups: np.ndarray
    top: int
    best: np.ndarray

    @property
    def departed(self) -> np.ndarray:
        """(n_groups,) True where a group is read on its own."""
        return self.best != self.top

    def reading(self) -> np.ndarray:
        """(n_samples,) which reading each input belongs to: its group where the group
        departed, else n_groups (the other inputs, read together)."""
        return np.where(self.departed[self.groups], self.groups, len(self.best))


def vote_rates(
    votes: Float[ArrayLike, "n_samples n_models"],
    groups: Int[ArrayLike, " n_samples"],
    n_groups: int,
    observed: Bool[ArrayLike, "n_samples n_models"] | None = None,
) -> Float[np.ndarray, "n_groups n_models"]:
    """Each model's share of the decisions (`votes`: one-hot per input) over each group's
    inputs it answered (`observed`, or None: all)."""
    votes = np.asarray(votes, np.float64)
    answered = np.ones_like(votes) if observed is None else np.asarray(observed, np.float64)
    member = np.eye(n_groups)[np.asarray(groups)]  # (n_samples, n_groups)
    return (member.T @ votes) / np.maximum(member.T @ answered, 1.0)


def vote_tasks(
    votes: Float[ArrayLike, "n_samples n_models"],
    points: Float[ArrayLike, "n_samples dim"],
    observed: Bool[ArrayLike, "n_samples n_models"] | None = None,
    z: float = VOTE_Z,
) -> VoteTasks:
    """The groups of the inputs (`find_tasks` on `points`) whose label-free decisions
    (`votes`: one-hot per input, 0 where no model answered) show another top model than
    all inputs' by more than `z` standard errors, paired input by input (`task_best`),
    as answers show a task of its own; `observed` (or None): where each model answered.

    `VOTE_Z` stays at 2, the answers' z of 0.8: at the answers' 1.5 of 0.9, label-free
    train-time G on v1 falls from 0.873 to 0.860 (`benchmarks/router_dev.py`).

    >>> x = np.r_[np.tile([1.0, 0.0], (60, 1)), np.tile([0.0, 1.0], (60, 1))]
    >>> votes = np.eye(3)[[0] * 70 + [2] * 50]
    >>> sorted(vote_tasks(votes, x).best.tolist())
    [0, 2]
    """
    votes = np.asarray(votes, np.float64)
    centroids = find_tasks(points)
    groups = assign_tasks(points, centroids)
    top = int(np.argmax(vote_rates(votes, np.zeros(len(votes), int), 1, observed)[0]))
    best = task_best(votes, groups, len(centroids), top, z)
    return VoteTasks(centroids, groups, top, best)


def task_points(batch: Batch) -> np.ndarray:
    """What groups a batch's inputs into tasks: their embeddings where given, else the
    mean of their outputs' unit embeddings (outputs of one task resemble each other)."""
    if batch.inputs is not None:
        return np.asarray(batch.inputs)
    points = np.empty((batch.n_samples, batch.dim))
    for i in range(0, batch.n_samples, _ROWS):  # (rows, n_models, dim) float64 at a time
        unit = _unit(np.asarray(batch.embeddings[i : i + _ROWS], np.float64))
        if batch.observed is not None:
            unit = unit * np.asarray(batch.observed[i : i + _ROWS])[:, :, None]
        points[i : i + _ROWS] = unit.sum(axis=1)
    return points


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def _spread_start(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k starting centroids (k-means++): a random input, then each next drawn with
    probability growing with its distance to the chosen ones (distinct tasks each get one
    with high probability, a lone outlier rarely)."""
    chosen = [int(rng.integers(len(x)))]
    for _ in range(k - 1):
        far = np.clip(1.0 - np.max(x @ x[chosen].T, axis=1), 0.0, None)
        total = far.sum()
        chosen.append(int(rng.choice(len(x), p=far / total)) if total > 0 else chosen[0])
    return x[chosen]

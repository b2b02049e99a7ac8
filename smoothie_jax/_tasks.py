"""Tasks found in the inputs, and each one's best model where the answers show it.

A mix of tasks (maths word problems, code, trivia) can have a different best model per
task, and no router is told the task. `find_tasks` proposes up to `N_TASKS` groups of
inputs (spherical k-means on the input embeddings); `read_answers` reads the answers
overall and, per group, by the group's own answer model (`fit_answers` with the families
found on all inputs); `Evidence.best` gives a group its own best model only where both
readings find the same challenger whose probability of a right answer, input by input,
beats the overall best's by more than `TASK_Z` standard errors (`task_best`). Elsewhere
the overall best stands: one task, or tasks that share their best model, route as
without groups. `answer_choice` then keeps each input's favoured model's answer unless
the posterior's odds against it exceed e^`BEST_BONUS`. Without answers the same groups
are read by the label-free decisions (`vote_tasks`, used by `_signals.read_tasks`).

Measured (`benchmarks/answer_constants.py`, 40 ensembles of 5; G test / train): on
GSM8K, CRUXEval and their mix, whose tasks share their best model, groups change G by
at most 0.003; on the mix with CRUXEval's model columns reversed (each task its own best
model) they lift it from 1.06 / 0.81 to 1.13 / 0.99. The bonus lifts test-time G from
1.05 to 1.08 (GSM8K) and 0.78 to 0.85 (CRUXEval). Both constants are chosen there; N_TASKS
and MIN_TASK were set by hand (4 groups find 2 or 3 tasks; 50 inputs per group fit).
"""

from __future__ import annotations

import dataclasses

import numpy as np
from jaxtyping import Bool, Float, Int
from scipy.special import logsumexp

from ._agreement import _FLOOR, AnswerModel, _by_position, answer_posterior, fit_answers
from ._batch import Batch
from ._validate import ArrayLike

N_TASKS = 4  # groups proposed at most (each needs MIN_TASK inputs)
MIN_TASK = 50  # inputs a group needs to be tested at all
TASK_Z = 2.0  # paired z a group's own best must reach over the overall best
BEST_BONUS = 3.0  # log-odds against the favoured model's answer that overrule it
_ITERS = 30  # k-means rounds
_SAMPLE = 20_000  # inputs the centroids are fitted on (all are assigned)
_ROWS = 4096  # inputs converted to float64 at a time (memory stays flat at a million)


def find_tasks(
    points: Float[ArrayLike, "n_samples dim"], n_tasks: int = N_TASKS, *, seed: int = 0
) -> Float[np.ndarray, "n_groups dim"]:
    """Unit centroids of up to `n_tasks` groups of inputs (spherical k-means, seeded);
    one group where there are too few inputs for two of `MIN_TASK`.

    >>> x = np.r_[np.tile([1.0, 0.0], (60, 1)), np.tile([0.0, 1.0], (60, 1))]
    >>> sorted(assign_tasks(x, find_tasks(x, 2)).tolist()) == [0] * 60 + [1] * 60
    True
    """
    points = np.asarray(points)
    k = int(min(n_tasks, max(1, len(points) // MIN_TASK)))
    rng = np.random.default_rng(seed)
    if len(points) > _SAMPLE:  # sampled before the float64 copy
        points = points[rng.choice(len(points), _SAMPLE, replace=False)]
    fit = _unit(points.astype(np.float64))
    centroids = _spread_start(fit, k, rng)
    for _ in range(_ITERS):
        member = np.eye(k)[np.argmax(fit @ centroids.T, axis=1)]  # (n, k) one-hot
        sums = member.T @ fit  # one product, not a copy of each group
        moved = _unit(np.where(member.sum(0)[:, None] > 0, sums, centroids))
        if np.allclose(moved, centroids):
            break
        centroids = moved
    return centroids.astype(np.float32)


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
        right_overall: the same under the overall answer model.
    """

    model: AnswerModel
    support: np.ndarray
    centroids: np.ndarray
    groups: np.ndarray
    own_support: np.ndarray
    right: np.ndarray
    right_overall: np.ndarray

    @property
    def overall(self) -> int:
        """The overall most accurate model."""
        return int(np.argmax(self.model.accuracy))

    def best(self, z: float = TASK_Z) -> np.ndarray:
        """(n_groups,) each group's best model: its own only where both readings, by the
        group's own answer model and by the overall one, find the same challenger beyond
        `z` (`task_best`); one reading alone departs on single tasks too (CRUXEval)."""
        n = len(self.centroids)
        own = task_best(self.right, self.groups, n, self.overall, z)
        overall = task_best(self.right_overall, self.groups, n, self.overall, z)
        return np.where(own == overall, own, self.overall).astype(np.int32)

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
    right, right_overall = right_probability(codes, own), right_probability(codes, support)
    return Evidence(model, support, centroids, groups, own, right, right_overall)


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
    choice = np.argmax(np.where(tied, evidence.model.accuracy, -np.inf), axis=1)
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
    z: float = TASK_Z,
) -> VoteTasks:
    """The groups of the inputs (`find_tasks` on `points`) whose label-free decisions
    (`votes`: one-hot per input, 0 where no model answered) show another top model than
    all inputs' by more than `z` standard errors, paired input by input (`task_best`),
    as answers show a task of its own; `observed` (or None): where each model answered.

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

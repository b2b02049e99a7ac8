"""Data of the evaluation tests (a helper module, not a test module).

Two tasks with opposite model rankings and judge score exp(-mean squared error of the
output), so Smoothie's assumptions hold and the oracle, medoid and Local differ visibly.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import smoothie_jax as sj

N, M, DIM, INPUT_DIM = 200, 6, 16, 8
NAMES = tuple(f"model-{j}" for j in range(M))
Data = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def make_data(seed: int = 0, n: int = N) -> Data:
    """(outputs, inputs, scores, lengths) with lengths coarse enough to tie often."""
    rng = np.random.default_rng(seed)
    task = rng.integers(0, 2, n)
    theta = np.array([[4.0, 2.0, 1.0, 0.5, 0.3, 3.0], [0.5, 1.0, 2.0, 4.0, 3.0, 0.3]])[task]
    inputs = rng.normal(size=(2, INPUT_DIM))[task] + 0.1 * rng.normal(size=(n, INPUT_DIM))
    truth = rng.normal(size=(n, 1, DIM))
    outputs = truth + rng.normal(size=(n, M, DIM)) / np.sqrt(2 * theta)[..., None]
    scores = np.exp(-np.mean((outputs - truth) ** 2, axis=-1))
    lengths = 100.0 * rng.integers(1, 4, size=(n, M))
    return outputs.astype(np.float32), inputs.astype(np.float32), scores, lengths


def one_ensemble_data(seed: int = 3, n: int = 120) -> Data:
    """Four models, two well separated input clusters; scores set by each test."""
    rng = np.random.default_rng(seed)
    cluster = np.arange(n) % 2
    inputs = (10.0 * cluster[:, None] + rng.normal(size=(n, INPUT_DIM))).astype(np.float32)
    outputs = rng.normal(size=(n, 4, DIM)).astype(np.float32)
    return outputs, inputs, np.zeros((n, 4)), np.ones((n, 4))


def routed(scores: np.ndarray, rows: tuple[int, ...], choose: dict[int, int]) -> float:
    """100 x mean over `rows` of the score of the model `choose[row]`."""
    return 100 * float(np.mean([scores[i, choose[i]] for i in rows]))


# The posterior tests' data: `simulate_tasks` with these qualities; the judge score of an
# output is its model's true theta on the input's task, scaled to [0, 1].
SIM_N, SIM_DIM, SIM_INPUT_DIM = 120, 16, 8
SIM_NAMES = ("a", "b", "c", "d", "e")
SIM_THETA = ((4.0, 2.0, 1.0, 0.6, 3.0), (0.6, 1.0, 3.0, 4.0, 2.0))


def simulate() -> tuple[jax.Array, jax.Array, np.ndarray, np.ndarray]:
    """(outputs, inputs, scores, lengths) from Smoothie's model; lengths carry no signal."""
    task_theta = jnp.array(SIM_THETA)
    outputs, inputs, task = sj.simulate_tasks(
        jax.random.key(0), task_theta, n_samples=SIM_N, dim=SIM_DIM, input_dim=SIM_INPUT_DIM
    )
    theta = np.asarray(task_theta)[np.asarray(task)]
    scores = theta / theta.max()
    return outputs, inputs, scores, np.ones_like(scores)

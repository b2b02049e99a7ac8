"""Data simulated from the paper's model, for demos, tests and benchmarks."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PRNGKeyArray


def simulate_outputs(
    key: PRNGKeyArray, theta: Float[Array, "*batch n_models"], *, dim: int
) -> Float[Array, "*batch n_models dim"]:
    """Model outputs lambda_i = y + N(0, 1 / (2 theta_i) I) around a true output y ~ N(0, I).

    >>> simulate_outputs(jax.random.key(0), jnp.ones((100, 3)), dim=8).shape
    (100, 3, 8)
    """
    key_y, key_e = jax.random.split(key)
    batch = theta.shape[:-1]
    y = jax.random.normal(key_y, (*batch, 1, dim))
    sigma = jnp.sqrt(1 / (2 * theta))[..., None]
    return y + sigma * jax.random.normal(key_e, (*theta.shape, dim))


def simulate_tasks(
    key: PRNGKeyArray,
    task_theta: Float[Array, "n_tasks n_models"],
    *,
    n_samples: int,
    dim: int,
    input_dim: int,
    spread: float = 0.1,
) -> tuple[
    Float[Array, "n_samples n_models dim"],
    Float[Array, "n_samples input_dim"],
    Int[Array, " n_samples"],
]:
    """A mixed-task data set where each task has its own best model.

    Inputs cluster around one random centre per task (unit distance apart on average,
    `spread` within a task), so a neighbourhood of inputs is a neighbourhood of tasks.

    Returns:
        (output embeddings, input embeddings, task of each sample).
    """
    key_task, key_centre, key_input, key_out = jax.random.split(key, 4)
    n_tasks = task_theta.shape[0]
    task = jax.random.randint(key_task, (n_samples,), 0, n_tasks)
    centres = jax.random.normal(key_centre, (n_tasks, input_dim)) / jnp.sqrt(input_dim)
    noise = spread / jnp.sqrt(input_dim) * jax.random.normal(key_input, (n_samples, input_dim))
    inputs = centres[task] + noise
    return simulate_outputs(key_out, task_theta[task], dim=dim), inputs, task

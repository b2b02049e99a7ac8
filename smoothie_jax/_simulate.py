"""Data simulated from the paper's model, for demos, tests and benchmarks."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PRNGKeyArray

from ._validate import ArrayLike


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


@functools.partial(jax.jit, static_argnames=("n_samples", "dim"))
def simulate_families(
    key: PRNGKeyArray,
    individual_var: Float[Array, " n_models"],
    family_var: Float[Array, " n_families"],
    # A list reaches the body (inside jit) as a list of traced integer scalars.
    families: Int[ArrayLike, " n_models"] | Sequence[int | Int[Array, ""]],
    *,
    n_samples: int,
    dim: int,
    heterogeneity: float | Float[Array, ""] = 0.0,  # traced too
) -> Float[Array, "n_samples n_models dim"]:
    """Outputs lambda_i = y + u_f(i) + e_i: truth, a shared family error, an individual one
    (jitted; `n_samples` and `dim` are static).

    y ~ N(0, I), u_f ~ N(0, family_var[f] I), e_i ~ N(0, individual_var[i] I), per input.
    Model i's own squared error is dim (individual_var[i] + family_var[f(i)]).

    Args:
        key: PRNG key.
        individual_var: per-axis variance of each model's own error.
        family_var: per-axis variance of each family's shared error (0: no family).
        families: family index of each model, into `family_var`.
        n_samples: inputs.
        dim: embedding dimension.
        heterogeneity: sd of a log-normal factor scaling every variance per input (the
            inputs differ in difficulty; additivity of E D still holds).

    >>> simulate_families(jax.random.key(0), jnp.ones(3), jnp.ones(2), [0, 0, 1],
    ...                   n_samples=10, dim=4).shape
    (10, 3, 4)
    """
    idx = jnp.asarray(families)
    k_y, k_u, k_e, k_h = jax.random.split(key, 4)
    n_fam = family_var.shape[0]
    m = individual_var.shape[0]
    scale = jnp.exp(heterogeneity * jax.random.normal(k_h, (n_samples, 1, 1)))
    y = jax.random.normal(k_y, (n_samples, 1, dim))
    u = jnp.sqrt(family_var)[None, :, None] * jax.random.normal(k_u, (n_samples, n_fam, dim))
    e = jnp.sqrt(individual_var)[None, :, None] * jax.random.normal(k_e, (n_samples, m, dim))
    return y + jnp.sqrt(scale) * (u[:, idx] + e)

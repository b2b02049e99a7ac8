"""Smoothie against a known truth: two simulated tasks with opposite model rankings.

The data follow the paper's Gaussian model (`simulate_tasks`), so the true quality of
every model on every input is known: Smoothie-Global can pick only one model for both
tasks, Smoothie-Local picks per input from its neighbours, and both are scored by the
true error variance of the model they choose. `smoothie-jax demo` prints this.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from .._simulate import simulate_tasks
from .._smoothie import fit_global, fit_local

N_TASKS = 2


@dataclasses.dataclass(frozen=True)
class SimulationResult:
    """What `evaluate_simulated` measured, beside the simulation's truth.

    Attributes:
        n_samples: inputs simulated.
        n_models: models simulated.
        dim: output embedding dimension.
        seed: seed of the simulation.
        k: neighbours of Smoothie-Local.
        true_global: per model, the normalised theta of the error variance pooled over
            both tasks (what Smoothie-Global estimates).
        fitted_global: Smoothie-Global's normalised weights.
        true_local: per task, each model's normalised true theta.
        fitted_local: per task, Smoothie-Local's weights averaged over its inputs.
        errors: per route (random, best single model, Smoothie-Global, Smoothie-Local,
            oracle), the mean true error variance of the chosen model (lower is better).
        local_accuracy: fraction of inputs for which Smoothie-Local chose the true best.
    """

    n_samples: int
    n_models: int
    dim: int
    seed: int
    k: int
    true_global: tuple[float, ...]
    fitted_global: tuple[float, ...]
    true_local: tuple[tuple[float, ...], ...]
    fitted_local: tuple[tuple[float, ...], ...]
    errors: dict[str, float]
    local_accuracy: float

    def to_text(self) -> str:
        """The report `smoothie-jax demo` prints."""

        def row(values: tuple[float, ...]) -> str:
            return " ".join(f"{w:7.3f}" for w in values)

        lines = [
            f"Simulated {self.n_samples} inputs, {self.n_models} models, dim {self.dim}, "
            f"{N_TASKS} tasks (seed {self.seed}).",
            "",
            "Smoothie-Global, normalised quality per model:",
            "  model   " + " ".join(f"{i:>7d}" for i in range(self.n_models)),
            "  true    " + row(self.true_global),
            "  fitted  " + row(self.fitted_global),
            "",
            f"Smoothie-Local (k={self.k}), per task, mean fitted vs true normalised quality:",
        ]
        for t, (true, fitted) in enumerate(zip(self.true_local, self.fitted_local)):
            lines += [f"  task {t} true    " + row(true), f"  task {t} fitted  " + row(fitted)]
        lines += ["", "Routing, mean true error variance of the chosen model (lower is better):"]
        lines += [f"  {name:<30s} {value:8.4f}" for name, value in self.errors.items()]
        lines += [
            "",
            f"Smoothie-Local picked the true best model for {100 * self.local_accuracy:.1f}% "
            "of inputs.",
        ]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_text()


def evaluate_simulated(
    *,
    n_samples: int = 5000,
    n_models: int = 5,
    dim: int = 64,
    ratio: float = 8.0,
    k: int = 20,
    seed: int = 0,
    input_dim: int = 32,
) -> SimulationResult:
    """Fits Smoothie-Global and -Local on two simulated tasks and scores them by the truth.

    Model qualities are spaced geometrically from 1 to `ratio` on the first task and
    reversed on the second, so the best model of one task is the worst of the other.
    A route is scored by the true error variance 1 / (2 theta) of the model it chooses
    per axis: lower is better, and it is what Smoothie-Global's theta estimates on
    pooled data.

    Args:
        n_samples: inputs to simulate.
        n_models: models to simulate (>= 3).
        dim: dimension of the output embeddings.
        ratio: best-to-worst quality ratio.
        k: neighbours of Smoothie-Local (<= n_samples).
        seed: seed of the simulation.
        input_dim: dimension of the input embeddings.

    Returns:
        A `SimulationResult`; `str(result)` is its report.

    Raises:
        ValueError: from the fits, on sizes they cannot use (fewer than 3 models, no
            inputs, k > n_samples, ...).

    >>> r = evaluate_simulated(n_samples=200, n_models=3, dim=8, k=10)
    >>> r.local_accuracy > 0.5
    True
    """
    # Two tasks with opposite model rankings: Global can only pick one model for both,
    # Local picks per input from its neighbours.
    base = jnp.geomspace(1.0, ratio, n_models)
    task_theta = jnp.stack([base, base[::-1]])
    embeddings, inputs, task = simulate_tasks(
        jax.random.key(seed), task_theta, n_samples=n_samples, dim=dim, input_dim=input_dim
    )
    true_theta = task_theta[task]

    smoothie_global = fit_global(embeddings)
    true_global = 1 / jnp.mean(1 / true_theta, axis=0)  # theta of the pooled error variance
    smoothie_local = fit_local(embeddings, inputs, k=k)
    true_best = jnp.argmax(true_theta, axis=-1)
    true_local, fitted_local = [], []
    for t in range(N_TASKS):
        fitted_local.append(_floats(jnp.mean(smoothie_local.weights[task == t], axis=0)))
        true_local.append(_floats(task_theta[t] / task_theta[t].sum()))

    true_var = 1 / (2 * true_theta)

    def error(route: jax.Array) -> float:
        return float(jnp.mean(jnp.take_along_axis(true_var, route[:, None], axis=1)))

    errors = {
        "random (expected)": float(jnp.mean(true_var)),
        "best single model": float(jnp.min(jnp.mean(true_var, axis=0))),
        "Smoothie-Global": error(jnp.broadcast_to(smoothie_global.route(), (n_samples,))),
        f"Smoothie-Local k={k}": error(smoothie_local.route()),
        "oracle (true best per input)": error(true_best),
    }
    return SimulationResult(
        n_samples=n_samples,
        n_models=n_models,
        dim=dim,
        seed=seed,
        k=k,
        true_global=_floats(true_global / true_global.sum()),
        fitted_global=_floats(smoothie_global.weights),
        true_local=tuple(true_local),
        fitted_local=tuple(fitted_local),
        errors=errors,
        local_accuracy=float(jnp.mean(smoothie_local.route() == true_best)),
    )


def _floats(x: jax.Array) -> tuple[float, ...]:
    return tuple(float(v) for v in x)

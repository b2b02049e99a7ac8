"""Input checks shared by the public entry points.

Every check runs before any work and raises `ValueError` naming what is wrong. Shape
checks always run; value checks (NaN, inf) run only on concrete arrays, so the public
functions still work inside a caller's `jax.jit`.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

ArrayLike = Array | np.ndarray  # NumPy arrays are accepted wherever JAX arrays are

MIN_MODELS = 3  # the triplet estimator needs a model i and a pair {j, k} without it


def is_int(x: object) -> bool:
    """An int or NumPy integer, not a bool (True is an int to Python, never a count here)."""
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


def is_number(x: object) -> bool:
    """An int or float (NumPy's too), not a bool."""
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool)


def check_int(name: str, value: object, low: int, high: float = math.inf) -> int:
    """`value` as an int in [low, high]; ValueError naming `name` otherwise."""
    if not is_int(value):
        raise ValueError(f"{name} must be an int, got {value!r}")
    if not low <= value <= high:
        bound = f">= {low}" if high == math.inf else f"in [{low}, {high}]"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return int(value)


def normalise(theta: Float[ArrayLike, "*batch n_models"]) -> Float[Array, "*batch n_models"]:
    """Quality scores scaled to sum to 1 over models (the last axis)."""
    return theta / jnp.sum(theta, axis=-1, keepdims=True)


def _is_concrete(x: object) -> bool:
    return not isinstance(x, jax.core.Tracer)


def check_finite(name: str, x: jax.Array | np.ndarray) -> None:
    if _is_concrete(x) and not bool(jnp.all(jnp.isfinite(x))):
        raise ValueError(f"{name} contains NaN or inf values")


def check_array(name: str, x: object, ndim: int, axis_names: str) -> jax.Array:
    """Converts to a float array and checks rank, emptiness and finiteness."""
    if not hasattr(x, "shape"):
        x = np.asarray(x)
    if len(x.shape) != ndim:
        raise ValueError(
            f"{name} must have shape ({axis_names}), a {ndim}-d array; got shape {tuple(x.shape)}"
        )
    if any(s == 0 for s in x.shape):
        raise ValueError(f"{name} is empty: shape {tuple(x.shape)} ({axis_names})")
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.float32)
    check_finite(name, x)
    return x


def check_embeddings(x: object, *, ndim: int = 3) -> jax.Array:
    """Model-output embeddings: (n_samples, n_models, dim), or with a generations axis."""
    axis_names = {
        3: "n_samples, n_models, dim",
        4: "n_samples, n_generations, n_models, dim",
    }[ndim]
    x = check_array("embeddings", x, ndim, axis_names)
    n_models = x.shape[-2]
    if n_models < MIN_MODELS:
        raise ValueError(
            f"embeddings has {n_models} models (axis -2 of shape {tuple(x.shape)}); "
            f"Smoothie needs at least {MIN_MODELS}"
        )
    return x


def check_inputs(x: object, n_samples: int, *, name: str = "inputs") -> jax.Array:
    """Input embeddings (n_samples, input_dim), aligned with the model embeddings."""
    x = check_array(name, x, 2, "n_samples, input_dim")
    if x.shape[0] != n_samples:
        raise ValueError(
            f"{name} has {x.shape[0]} rows but embeddings has {n_samples} samples; "
            "they must describe the same inputs in the same order"
        )
    return x


def check_k(k: object, n_samples: int, *, clip: bool = False) -> int:
    """k as an int in [1, n_samples]; with `clip`, a larger k becomes n_samples."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise ValueError(f"k must be an int, got {k!r}")
    if clip and k > n_samples:
        return int(n_samples)
    if not 1 <= k <= n_samples:
        raise ValueError(f"k must be in [1, n_samples={n_samples}], got k={k}")
    return int(k)


def check_positive(name: str, value: float) -> float:
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def check_eps(eps: object) -> object:
    """The floor on delta: > 0, or theta = dim / (2 eps) is inf. Tracers pass unchecked."""
    if _is_concrete(eps) and not (np.isfinite(eps) and eps > 0):
        raise ValueError(f"eps must be a finite number > 0, got {eps!r}")
    return eps


def check_block_size(block_size: object) -> int:
    if isinstance(block_size, bool) or not isinstance(block_size, (int, np.integer)):
        raise ValueError(f"block_size must be an int, got {block_size!r}")
    if block_size < 1:
        raise ValueError(f"block_size must be >= 1, got {block_size}")
    return int(block_size)


def check_lengths(lengths: object, shape: tuple[int, int]) -> jax.Array:
    """Output lengths (n_samples, n_models): finite and >= 0 (an empty output has 0)."""
    lengths = check_array("lengths", lengths, 2, "n_samples, n_models")
    if tuple(lengths.shape) != tuple(shape):
        raise ValueError(
            f"lengths must have shape (n_samples, n_models) = {tuple(shape)} like the "
            f"embeddings; got {tuple(lengths.shape)}"
        )
    if _is_concrete(lengths) and bool(jnp.any(lengths < 0)):
        raise ValueError("lengths must be >= 0 (characters of each output)")
    return lengths


def check_answers(answers: object, shape: tuple[int, int]) -> jax.Array:
    """Answer codes (n_samples, n_models): integers, equal in a row for the same final
    answer, -1 where none was extracted (`data.answer_codes` makes them)."""
    codes = np.asarray(answers)
    if codes.shape != tuple(shape):
        raise ValueError(
            f"answers must have shape (n_samples, n_models) = {tuple(shape)} like the "
            f"embeddings; got {codes.shape}"
        )
    if codes.dtype.kind not in "iu":
        raise ValueError(
            f"answers must be integer codes (sj.data.answer_codes), got dtype {codes.dtype}"
        )
    if codes.size and int(codes.min()) < -1:
        raise ValueError("answers must be >= -1 (-1: no answer extracted)")
    return jnp.asarray(codes, jnp.int32)


def check_observed(observed: object, shape: tuple[int, int]) -> jax.Array:
    """Which models answered which inputs: a bool (n_samples, n_models) mask.

    Every input needs an answer, and every model an input that two other models answered
    too (a complete triplet), or its quality cannot be estimated.
    """
    observed = np.asarray(observed)
    if observed.dtype != bool:
        raise ValueError(f"observed must be a bool array, got dtype {observed.dtype}")
    if observed.shape != tuple(shape):
        raise ValueError(
            f"observed must have shape (n_samples, n_models) = {tuple(shape)} like the "
            f"embeddings; got {observed.shape}"
        )
    unanswered = np.flatnonzero(~observed.any(axis=1))
    if unanswered.size:
        raise ValueError(
            f"{unanswered.size} inputs have no answer from any model (first: row "
            f"{int(unanswered[0])}); drop them before routing"
        )
    with_two_others = observed & (observed.sum(axis=1, keepdims=True) >= MIN_MODELS)
    lonely = np.flatnonzero(~with_two_others.any(axis=0))
    if lonely.size:
        counts = observed.sum(axis=0)
        raise ValueError(
            "every model needs an input that two other models answered too; models "
            + ", ".join(f"{int(j)} (answered {int(counts[j])})" for j in lonely)
            + " have none: drop them or add data"
        )
    return jnp.asarray(observed)

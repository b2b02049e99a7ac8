"""Input checks shared by the public entry points.

Every check runs before any work and raises `ValueError` naming what is wrong. Shape
checks always run; value checks (NaN, inf) run only on concrete arrays, so the public
functions still work inside a caller's `jax.jit`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

MIN_MODELS = 3  # the triplet estimator needs a model i and a pair {j, k} without it


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


def check_k(k: object, n_samples: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise ValueError(f"k must be an int, got {k!r}")
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

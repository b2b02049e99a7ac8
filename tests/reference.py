"""A slow, obviously-correct NumPy float64 Smoothie, written from the paper's formulas.

The oracle for the parity tests and the baseline for `benchmarks/bench_local.py`. It
follows the shape of the reference implementation (Guha et al., 2024): a Python loop over
samples, and for each sample a loop over models i and pairs {j < k} without i, where each
squared distance is averaged over the neighbourhood directly from the embeddings:

    delta_i = mean_{j<k, j,k != i} (D_ij + D_ik - D_jk) / 2,  D_ij = E||lambda_i - lambda_j||^2
    theta_i = dim / (2 max(delta_i, eps))

Nothing here is vectorised beyond one (samples, dim) difference, on purpose: it is meant
to be read against the paper, not to be fast.
"""

from __future__ import annotations

import itertools

import numpy as np

DEFAULT_EPS = 1e-6


def mean_squared_distance(a: np.ndarray, b: np.ndarray, weights: np.ndarray | None = None) -> float:
    """(Weighted) mean over samples of ||a_s - b_s||^2; a, b: (n_samples, dim)."""
    per_sample = np.sum((a - b) ** 2, axis=-1)
    if weights is None:
        return float(np.mean(per_sample))
    return float(np.sum(weights * per_sample) / np.sum(weights))


def reference_theta(
    embeddings: np.ndarray, weights: np.ndarray | None = None, *, eps: float = DEFAULT_EPS
) -> np.ndarray:
    """theta of one neighbourhood: embeddings (n_neighbourhood, n_models, dim).

    Loops over every model i and every pair {j < k} not containing i, as the paper writes it.
    `weights` (n_neighbourhood,) makes every mean a weighted mean (kernel smoothing).
    """
    embeddings = np.asarray(embeddings, np.float64)
    _, m, dim = embeddings.shape
    delta = np.zeros(m)
    for i in range(m):
        others = [j for j in range(m) if j != i]
        pairs = list(itertools.combinations(others, 2))
        total = 0.0
        for j, k in pairs:
            lam_i, lam_j, lam_k = embeddings[:, i], embeddings[:, j], embeddings[:, k]
            d_ij = mean_squared_distance(lam_i, lam_j, weights)
            d_ik = mean_squared_distance(lam_i, lam_k, weights)
            d_jk = mean_squared_distance(lam_j, lam_k, weights)
            total += (d_ij + d_ik - d_jk) / 2
        delta[i] = total / len(pairs)
    return dim / (2 * np.maximum(delta, eps))


def brute_force_knn(
    queries: np.ndarray, points: np.ndarray, k: int, *, include_self: bool = False
) -> np.ndarray:
    """k nearest points per query by float64 Euclidean distance, nearest first.

    Ties go to the lower index (stable sort). With `include_self`, queries are `points` and
    query q is forced to be its own first neighbour.
    """
    queries = np.asarray(queries, np.float64)
    points = np.asarray(points, np.float64)
    out = np.zeros((len(queries), k), np.int64)
    for q, x in enumerate(queries):
        order = np.argsort(np.sum((points - x) ** 2, axis=-1), kind="stable")
        if include_self:
            order = np.concatenate([[q], order[order != q]])
        out[q] = order[:k]
    return out


def reference_global(embeddings: np.ndarray, *, eps: float = DEFAULT_EPS) -> np.ndarray:
    """Smoothie-Global: one theta (n_models,) from all samples."""
    return reference_theta(embeddings, eps=eps)


def reference_local(
    embeddings: np.ndarray, inputs: np.ndarray, k: int, *, eps: float = DEFAULT_EPS
) -> np.ndarray:
    """Smoothie-Local: theta (n_samples, n_models) from each sample's k nearest inputs."""
    embeddings = np.asarray(embeddings, np.float64)
    neighbours = brute_force_knn(inputs, inputs, k, include_self=True)
    return np.stack([reference_theta(embeddings[nb], eps=eps) for nb in neighbours])


def reference_kernel(
    embeddings: np.ndarray, inputs: np.ndarray, bandwidth: float, *, eps: float = DEFAULT_EPS
) -> np.ndarray:
    """Smoothie-Local with weights exp(-||x_q - x_j||^2 / (2 bandwidth^2)) over all samples."""
    embeddings = np.asarray(embeddings, np.float64)
    inputs = np.asarray(inputs, np.float64)
    theta = []
    for x in inputs:
        sq = np.sum((inputs - x) ** 2, axis=-1)
        weights = np.exp(-(sq - sq.min()) / (2 * bandwidth**2))  # shift: same normalised weights
        theta.append(reference_theta(embeddings, weights, eps=eps))
    return np.stack(theta)


def reference_generations(embeddings: np.ndarray, *, eps: float = DEFAULT_EPS) -> np.ndarray:
    """Smoothie over generations: embeddings (n_samples, n_generations, n_models, dim)."""
    embeddings = np.asarray(embeddings, np.float64)
    return np.stack([reference_theta(per_input, eps=eps) for per_input in embeddings])


def reference_router(
    train_embeddings: np.ndarray,
    train_inputs: np.ndarray,
    queries: np.ndarray,
    k: int,
    *,
    eps: float = DEFAULT_EPS,
) -> np.ndarray:
    """Train-time Smoothie: theta (n_queries, n_models) from each query's k nearest
    training inputs (no self-forcing: a query is not a training sample)."""
    train_embeddings = np.asarray(train_embeddings, np.float64)
    neighbours = brute_force_knn(queries, train_inputs, k)
    return np.stack([reference_theta(train_embeddings[nb], eps=eps) for nb in neighbours])


def random_problem(
    seed: int,
    *,
    n_samples: int = 200,
    n_models: int = 5,
    dim: int = 32,
    input_dim: int = 8,
    sigma_range: tuple[float, float] = (0.6, 1.0),
) -> tuple[np.ndarray, np.ndarray]:
    """Test data: float32 (embeddings, inputs) from the paper's Gaussian model.

    Each model's outputs scatter around a shared true output y with its own sigma; the
    default sigma range and dim keep even one sample's delta well above 0, so float32 and
    float64 agree to ~1e-6 relative. Inputs are independent Gaussians (no neighbour ties).
    """
    rng = np.random.default_rng(seed)
    y = rng.normal(size=(n_samples, 1, dim))
    sigma = rng.uniform(*sigma_range, size=(1, n_models, 1))
    embeddings = y + sigma * rng.normal(size=(n_samples, n_models, dim))
    inputs = rng.normal(size=(n_samples, input_dim))
    return embeddings.astype(np.float32), inputs.astype(np.float32)


def reference_masked_theta(
    embeddings: np.ndarray, observed: np.ndarray, *, eps: float = DEFAULT_EPS
) -> np.ndarray:
    """theta of one neighbourhood where model j answered sample s only if observed[s, j].

    Each pair's mean squared distance is taken over the samples both models answered;
    delta_i averages (D_ij + D_ik - D_jk) / 2 over the pairs {j, k} whose three
    distances all exist. A model with no such pair gets theta 0.
    """
    embeddings = np.asarray(embeddings, np.float64)
    _, m, dim = embeddings.shape

    def d(a: int, b: int) -> float | None:
        both = observed[:, a] & observed[:, b]
        if not both.any():
            return None
        return mean_squared_distance(embeddings[both, a], embeddings[both, b])

    theta = np.zeros(m)
    for i in range(m):
        terms = []
        for j, k in itertools.combinations([j for j in range(m) if j != i], 2):
            d_ij, d_ik, d_jk = d(i, j), d(i, k), d(j, k)
            if d_ij is not None and d_ik is not None and d_jk is not None:
                terms.append((d_ij + d_ik - d_jk) / 2)
        if terms:
            theta[i] = dim / (2 * max(float(np.mean(terms)), eps))
    return theta


def grid_points(seed: int, n: int, dim: int = 3) -> np.ndarray:
    """Small-integer points with many duplicates and equal distances.

    On small integers every distance and every knn score is exact in float32, so ties are
    real ties and the tie order (lower index first) is checked exactly.
    """
    rng = np.random.default_rng(seed)
    points = rng.integers(-2, 3, size=(n, dim)).astype(np.float32)
    points[n // 2] = points[1]  # at least one exact duplicate
    return points

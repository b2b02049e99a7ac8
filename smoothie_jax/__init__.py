"""smoothie_jax: label-free LLM routing with Smoothie, in JAX.

Data flows one way: embeddings (n_samples, n_models, dim) -> per-sample distances D
-> smoothing (global | k nearest inputs | kernel | generations) -> theta -> route.
"""

from ._distances import squared_distances as squared_distances
from ._estimator import theta_from_distances as theta_from_distances
from ._estimator import triplet_delta as triplet_delta
from ._neighbours import kernel_mean as kernel_mean
from ._neighbours import knn as knn
from ._neighbours import neighbour_mean as neighbour_mean
from ._router import Router as Router
from ._router import fit_router as fit_router
from ._router import load_router as load_router
from ._router import save_router as save_router
from ._simulate import simulate_outputs as simulate_outputs
from ._simulate import simulate_tasks as simulate_tasks
from ._smoothie import Smoothie as Smoothie
from ._smoothie import fit_generations as fit_generations
from ._smoothie import fit_global as fit_global
from ._smoothie import fit_kernel as fit_kernel
from ._smoothie import fit_local as fit_local
from ._smoothie import sample_distances as sample_distances

__version__ = "0.1.0"

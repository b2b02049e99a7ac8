"""smoothie_jax: label-free LLM routing with Smoothie, in JAX.

Data flows one way: text -> embeddings (n_samples, n_models, dim) -> per-sample
distances D -> smoothing (global | k nearest inputs | kernel | generations) -> theta,
or posterior draws of theta -> policy -> decision.
"""

from ._bayes import Posterior as Posterior
from ._bayes import dispersion_dim as dispersion_dim
from ._bayes import effective_dim as effective_dim
from ._bayes import fit_posterior as fit_posterior
from ._bayes import smoothie_model as smoothie_model
from ._data import DataError as DataError
from ._data import RoutingData as RoutingData
from ._data import convert_alpaca_eval as convert_alpaca_eval
from ._data import read_jsonl as read_jsonl
from ._data import read_reference_layout as read_reference_layout
from ._data import read_routing as read_routing
from ._data import write_jsonl as write_jsonl
from ._data import write_routing as write_routing
from ._distances import squared_distances as squared_distances
from ._embed import clean_generation as clean_generation
from ._embed import default_cache_dir as default_cache_dir
from ._embed import embed as embed
from ._embed import embed_stats as embed_stats
from ._embed import prepare_mpnet as prepare_mpnet
from ._estimator import theta_from_distances as theta_from_distances
from ._estimator import triplet_delta as triplet_delta
from ._evaluate import EvaluationResult as EvaluationResult
from ._evaluate import evaluate as evaluate
from ._evaluate import plot_evaluation as plot_evaluation
from ._evaluate import write_result_json as write_result_json
from ._evaluate_uncertainty import UncertaintyResult as UncertaintyResult
from ._evaluate_uncertainty import credible_set as credible_set
from ._evaluate_uncertainty import evaluate_uncertainty as evaluate_uncertainty
from ._evaluate_uncertainty import plot_uncertainty as plot_uncertainty
from ._evaluate_uncertainty import write_uncertainty_json as write_uncertainty_json
from ._families import Diagnosis as Diagnosis
from ._families import FamilyRoute as FamilyRoute
from ._families import FamilySmoothie as FamilySmoothie
from ._families import Identifiability as Identifiability
from ._families import diagnose as diagnose
from ._families import evaluate_families as evaluate_families
from ._families import family_labels as family_labels
from ._families import fit_families as fit_families
from ._families import identifiability as identifiability
from ._families import route_families as route_families
from ._families import simulate_families as simulate_families
from ._neighbours import kernel_mean as kernel_mean
from ._neighbours import knn as knn
from ._neighbours import knn_recall as knn_recall
from ._neighbours import neighbour_mean as neighbour_mean
from ._policies import abstain as abstain
from ._policies import cost_aware as cost_aware
from ._policies import expected_quality as expected_quality
from ._policies import most_probable as most_probable
from ._policies import posterior_mean as posterior_mean
from ._policies import thompson as thompson
from ._policies import tradeoff_sweep as tradeoff_sweep
from ._router import Router as Router
from ._router import fit_router as fit_router
from ._router import load_router as load_router
from ._router import save_router as save_router
from ._sharding import default_mesh as default_mesh
from ._sharding import sharded_fit_local as sharded_fit_local
from ._sharding import sharded_knn as sharded_knn
from ._sharding import sharded_route as sharded_route
from ._sharding import sharded_router_theta as sharded_router_theta
from ._simulate import simulate_outputs as simulate_outputs
from ._simulate import simulate_tasks as simulate_tasks
from ._smoothie import Smoothie as Smoothie
from ._smoothie import fit_generations as fit_generations
from ._smoothie import fit_global as fit_global
from ._smoothie import fit_kernel as fit_kernel
from ._smoothie import fit_local as fit_local
from ._smoothie import sample_distances as sample_distances
from ._stream import fit_local_stream as fit_local_stream
from ._stream import route_stream as route_stream
from ._stream import write_decisions as write_decisions

__version__ = "0.1.0"

"""smoothie_jax: label-free LLM routing with Smoothie, in JAX.

Data flows one way, one stage per module (the numbers give the order):
files (`_0_data`) -> text embeddings (`_1_embed`) -> per-sample distances D
(`_2_distances`) -> smoothing over neighbours (`_3_neighbours`) -> theta by the triplet
closed form (`_4_estimator`) -> fitted quality: test-time `Smoothie`, train-time `Router`,
NumPyro `Posterior` (`_5_*`) -> policies over posterior draws (`_6_policies`) -> the
`Decision` (`_7_decision`). Themes beside the pipeline are submodules: `data`, `text`,
`families`, `eval`, `scale`.

>>> import jax, smoothie_jax as sj
>>> x = jax.random.normal(jax.random.key(0), (100, 3, 8))
>>> sj.fit_global(x).theta.shape
(3,)
"""

from . import data as data
from . import eval as eval  # noqa: A004 - a theme's name, as optax.losses
from . import families as families
from . import scale as scale
from . import text as text
from ._0_data import read_routing as read_routing
from ._1_embed import embed as embed
from ._2_distances import sample_distances as sample_distances
from ._2_distances import squared_distances as squared_distances
from ._3_neighbours import Search as Search
from ._3_neighbours import kernel_mean as kernel_mean
from ._3_neighbours import knn as knn
from ._3_neighbours import knn_recall as knn_recall
from ._3_neighbours import local_distances as local_distances
from ._3_neighbours import neighbour_mean as neighbour_mean
from ._4_estimator import theta_from_distances as theta_from_distances
from ._4_estimator import triplet_delta as triplet_delta
from ._5_bayes import Posterior as Posterior
from ._5_bayes import dispersion_dim as dispersion_dim
from ._5_bayes import effective_dim as effective_dim
from ._5_bayes import fit_posterior as fit_posterior
from ._5_bayes import nuts_sampler as nuts_sampler
from ._5_bayes import smoothie_model as smoothie_model
from ._5_router import Router as Router
from ._5_router import fit_router as fit_router
from ._5_router import load_router as load_router
from ._5_router import save_router as save_router
from ._5_smoothie import Smoothie as Smoothie
from ._5_smoothie import fit_generations as fit_generations
from ._5_smoothie import fit_global as fit_global
from ._5_smoothie import fit_kernel as fit_kernel
from ._5_smoothie import fit_local as fit_local
from ._6_policies import abstain as abstain
from ._6_policies import cost_aware as cost_aware
from ._6_policies import expected_quality as expected_quality
from ._6_policies import most_probable as most_probable
from ._6_policies import posterior_mean as posterior_mean
from ._6_policies import thompson as thompson
from ._6_policies import tradeoff_sweep as tradeoff_sweep
from ._7_decision import Decision as Decision
from ._7_decision import route as route
from ._simulate import simulate_families as simulate_families
from ._simulate import simulate_outputs as simulate_outputs
from ._simulate import simulate_tasks as simulate_tasks

# Names the README and examples used before the themes existed: kept at top level.
from .data import RoutingData as RoutingData
from .data import read_reference_layout as read_reference_layout
from .data import write_jsonl as write_jsonl
from .eval import credible_set as credible_set
from .eval import evaluate as evaluate
from .families import diagnose as diagnose
from .families import fit_families as fit_families
from .families import route_families as route_families
from .scale import default_mesh as default_mesh
from .scale import fit_local_stream as fit_local_stream
from .scale import sharded_fit_local as sharded_fit_local
from .scale import sharded_knn as sharded_knn
from .scale import sharded_route as sharded_route

__version__ = "0.2.0"

__all__ = [
    "Decision",
    "Posterior",
    "Router",
    "Search",
    "RoutingData",
    "Smoothie",
    "abstain",
    "cost_aware",
    "credible_set",
    "data",
    "default_mesh",
    "diagnose",
    "dispersion_dim",
    "effective_dim",
    "embed",
    "eval",
    "evaluate",
    "expected_quality",
    "families",
    "fit_families",
    "fit_generations",
    "fit_global",
    "fit_kernel",
    "fit_local",
    "fit_local_stream",
    "fit_posterior",
    "fit_router",
    "kernel_mean",
    "knn",
    "knn_recall",
    "load_router",
    "local_distances",
    "most_probable",
    "neighbour_mean",
    "nuts_sampler",
    "posterior_mean",
    "read_reference_layout",
    "read_routing",
    "route",
    "route_families",
    "sample_distances",
    "save_router",
    "scale",
    "sharded_fit_local",
    "sharded_knn",
    "sharded_route",
    "simulate_families",
    "simulate_outputs",
    "simulate_tasks",
    "smoothie_model",
    "squared_distances",
    "text",
    "theta_from_distances",
    "thompson",
    "tradeoff_sweep",
    "triplet_delta",
    "write_jsonl",
]

"""smoothie_jax: label-free LLM routing with Smoothie, in JAX.

Data flow from text to a routing decision, one module per stage:

1. `data/` reads routing files (inputs, every model's outputs, optional scores);
2. `text/` embeds inputs and outputs (offline sentence-transformers, SQLite cache);
3. `_distances` turns each input's output embeddings into the statistic D;
4. `_search` finds each input's nearest inputs (`_knn`: exact and two-stage brute force;
   `_inverted_file`: approximate, on a CPU with faiss where installed, `_faiss_ivf`),
   and `_neighbours` smooths D over them;
5. `_estimator` gives quality theta from D in closed form (the paper's triplets);
6. `_smoothie` fits test-time quality (`Smoothie`), `_router` the train-time `Router`,
   `posterior/` its uncertainty (NumPyro) and the policies that route under it;
7. `_signals` holds the recommended router's signals, and `_route` the decision stage:
   one call from embeddings to a `Decision` (which model, how sure, why).

Themes beside the pipeline: `families` (the independence test and family-aware
routing), `eval` (the label-based evaluation protocol), `scale` (sharding, streaming),
`serve` (deployment: routing text with a saved router, the gateway), `cli` (the
`smoothie-jax` command).

>>> import jax, smoothie_jax as sj
>>> x = jax.random.normal(jax.random.key(0), (100, 3, 8))
>>> sj.fit_global(x).theta.shape
(3,)
"""

from . import data as data
from . import eval as eval  # noqa: A004 - a theme's name, as optax.losses
from . import families as families
from . import posterior as posterior
from . import scale as scale
from . import serve as serve
from . import text as text
from ._decision import Decision as Decision
from ._distances import sample_distances as sample_distances
from ._distances import squared_distances as squared_distances
from ._estimator import theta_from_distances as theta_from_distances
from ._estimator import triplet_delta as triplet_delta
from ._neighbours import kernel_mean as kernel_mean
from ._neighbours import local_distances as local_distances
from ._neighbours import neighbour_mean as neighbour_mean
from ._route import route as route
from ._route import route_auto as route_auto
from ._route import route_global as route_global
from ._route import route_local as route_local
from ._route import route_posterior as route_posterior
from ._router import Router as Router
from ._router import fit_router as fit_router
from ._router import load_router as load_router
from ._router import save_router as save_router
from ._search import Search as Search
from ._search import knn as knn
from ._search import knn_recall as knn_recall
from ._signals import Recipe as Recipe
from ._simulate import simulate_families as simulate_families
from ._simulate import simulate_outputs as simulate_outputs
from ._simulate import simulate_tasks as simulate_tasks
from ._smoothie import Smoothie as Smoothie
from ._smoothie import fit_generations as fit_generations
from ._smoothie import fit_global as fit_global
from ._smoothie import fit_kernel as fit_kernel
from ._smoothie import fit_local as fit_local

# Names the README and examples used before the themes existed: kept at top level.
from .data import RoutingData as RoutingData
from .data import read_reference_layout as read_reference_layout
from .data import read_routing as read_routing
from .data import write_jsonl as write_jsonl
from .eval import credible_set as credible_set
from .eval import evaluate as evaluate
from .families import diagnose as diagnose
from .families import fit_families as fit_families
from .families import route_families as route_families
from .posterior import Posterior as Posterior
from .posterior import abstain as abstain
from .posterior import cost_aware as cost_aware
from .posterior import dispersion_dim as dispersion_dim
from .posterior import effective_dim as effective_dim
from .posterior import expected_quality as expected_quality
from .posterior import fit_posterior as fit_posterior
from .posterior import most_probable as most_probable
from .posterior import nuts_sampler as nuts_sampler
from .posterior import posterior_mean as posterior_mean
from .posterior import smoothie_model as smoothie_model
from .posterior import suggest_labels as suggest_labels
from .posterior import thompson as thompson
from .posterior import tradeoff_sweep as tradeoff_sweep
from .scale import default_mesh as default_mesh
from .scale import fit_local_stream as fit_local_stream
from .scale import sharded_fit_local as sharded_fit_local
from .scale import sharded_knn as sharded_knn
from .scale import sharded_route as sharded_route
from .text import embed as embed

__version__ = "0.3.0"  # the one place the version lives (pyproject.toml reads it)

__all__ = [
    "Decision",
    "Posterior",
    "Recipe",
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
    "posterior",
    "posterior_mean",
    "read_reference_layout",
    "read_routing",
    "route",
    "route_auto",
    "route_global",
    "route_local",
    "route_posterior",
    "route_families",
    "sample_distances",
    "save_router",
    "scale",
    "serve",
    "sharded_fit_local",
    "sharded_knn",
    "sharded_route",
    "simulate_families",
    "simulate_outputs",
    "simulate_tasks",
    "smoothie_model",
    "squared_distances",
    "suggest_labels",
    "text",
    "theta_from_distances",
    "thompson",
    "tradeoff_sweep",
    "triplet_delta",
    "write_jsonl",
]

"""smoothie_jax: label-free LLM routing with Smoothie, in JAX.

Data flow from text to a routing decision, one module per stage:

1. `data/` reads routing files (inputs, every model's outputs, optional scores);
2. `text/` embeds inputs and outputs (offline sentence-transformers, SQLite cache);
3. `_batch` validates a batch once and computes each input's statistic D (`_distances`);
4. `_search` finds each input's nearest inputs (`_knn`: exact and two-stage brute force;
   `_inverted_file`: approximate, on a CPU with faiss where installed, `_faiss_ivf`),
   and `_neighbours` smooths D over them;
5. `_estimator` gives quality theta from D in closed form (the paper's triplets);
   `_independence` tests the independence it assumes (families: `_family_*`);
6. `_smoothie` fits test-time quality (`Smoothie`), `_router` the train-time routers
   (`Router` and its variants; saved by `_router_io`), `posterior/` its uncertainty
   (NumPyro) and the policies that route under it;
7. `_signals`, `_agreement` and `_label_model` hold the recommended router's signals,
   and `_route` the decision stage: one call from embeddings to a `Decision` (which
   model, how sure, why).

Themes beside the pipeline: `families` (the independence test and family-aware
routing), `eval` (the label-based evaluation protocol), `scale` (sharding, streaming),
`serve` (deployment: routing text with a saved router, the gateway), `cli` (the
`smoothie-jax` command).

>>> import jax, smoothie_jax as sj
>>> x = jax.random.normal(jax.random.key(0), (100, 3, 8))
>>> sj.fit_global(x).theta.shape
(3,)
"""

import importlib
import warnings

from . import data as data
from . import eval as eval  # noqa: A004 - a theme's name, as optax.losses
from . import families as families
from . import posterior as posterior
from . import scale as scale
from . import serve as serve
from . import text as text
from ._batch import Batch as Batch
from ._batch import make_batch as make_batch
from ._decision import Decision as Decision
from ._distances import sample_distances as sample_distances
from ._distances import squared_distances as squared_distances
from ._estimator import theta_from_distances as theta_from_distances
from ._estimator import triplet_delta as triplet_delta
from ._fit_router import fit_router as fit_router
from ._neighbours import kernel_mean as kernel_mean
from ._neighbours import local_distances as local_distances
from ._neighbours import neighbour_mean as neighbour_mean
from ._route import route as route
from ._route import route_auto as route_auto
from ._route import route_global as route_global
from ._route import route_local as route_local
from ._router import AnswerRouter as AnswerRouter
from ._router import ConsensusRouter as ConsensusRouter
from ._router import Router as Router
from ._router import SmoothieRouter as SmoothieRouter
from ._router_io import load_router as load_router
from ._router_io import save_router as save_router
from ._search import Search as Search
from ._search import SearchIndex as SearchIndex
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

__version__ = "0.10.0"  # the one place the version lives (pyproject.toml reads it)

# Names that were also at the top level before 0.4, twins of a theme's: they still work
# for one release, with a DeprecationWarning naming where they live now.
_MOVED = {
    "RoutingData": "data",
    "read_reference_layout": "data",
    "read_routing": "data",
    "write_jsonl": "data",
    "credible_set": "eval",
    "evaluate": "eval",
    "diagnose": "families",
    "fit_families": "families",
    "route_families": "families",
    "Posterior": "posterior",
    "abstain": "posterior",
    "cost_aware": "posterior",
    "dispersion_dim": "posterior",
    "effective_dim": "posterior",
    "expected_quality": "posterior",
    "fit_posterior": "posterior",
    "most_probable": "posterior",
    "nuts_sampler": "posterior",
    "posterior_mean": "posterior",
    "route_posterior": "posterior",
    "smoothie_model": "posterior",
    "suggest_labels": "posterior",
    "thompson": "posterior",
    "tradeoff_sweep": "posterior",
    "default_mesh": "scale",
    "fit_local_stream": "scale",
    "sharded_fit_local": "scale",
    "sharded_knn": "scale",
    "sharded_route": "scale",
    "embed": "text",
}


_RENAMED = {"posterior_mean": "highest_mean"}  # it returns an argmax, not a mean


def __getattr__(name: str) -> object:
    theme = _MOVED.get(name)
    if theme is None:
        raise AttributeError(f"module 'smoothie_jax' has no attribute {name!r}")
    new = _RENAMED.get(name, name)
    warnings.warn(
        f"sj.{name} is sj.{theme}.{new} since smoothie_jax 0.4; the top-level twin goes in 0.5",
        DeprecationWarning,
        stacklevel=2,
    )
    return getattr(importlib.import_module(f".{theme}", __name__), new)


__all__ = [
    "AnswerRouter",
    "Batch",
    "ConsensusRouter",
    "Decision",
    "Recipe",
    "Router",
    "Search",
    "SearchIndex",
    "Smoothie",
    "SmoothieRouter",
    "data",
    "eval",
    "families",
    "fit_generations",
    "fit_global",
    "fit_kernel",
    "fit_local",
    "fit_router",
    "kernel_mean",
    "knn",
    "knn_recall",
    "load_router",
    "local_distances",
    "make_batch",
    "neighbour_mean",
    "posterior",
    "route",
    "route_auto",
    "route_global",
    "route_local",
    "sample_distances",
    "save_router",
    "scale",
    "serve",
    "simulate_families",
    "simulate_outputs",
    "simulate_tasks",
    "squared_distances",
    "text",
    "theta_from_distances",
    "triplet_delta",
]

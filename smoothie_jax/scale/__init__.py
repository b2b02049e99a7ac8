"""Scale: approximate neighbour search (an inverted file, in JAX or on faiss), routing
over a device mesh, and data larger than memory.

>>> import smoothie_jax as sj
>>> sj.scale.default_mesh().axis_names
('devices',)
"""

from .._decision_records import write_decisions as write_decisions
from .._faiss_ivf import faiss_knn as faiss_knn
from .._faiss_ivf import faiss_self_knn as faiss_self_knn
from .._inverted_file import IVFIndex as IVFIndex
from .._inverted_file import build_index as build_index
from .._inverted_file import index_knn as index_knn
from .._inverted_file import index_self_knn as index_self_knn
from .._search import Search as Search
from ._sharding import default_mesh as default_mesh
from ._sharding import sharded_fit_local as sharded_fit_local
from ._sharding import sharded_knn as sharded_knn
from ._sharding import sharded_route as sharded_route
from ._sharding import sharded_router_theta as sharded_router_theta
from ._stream import fit_local_stream as fit_local_stream
from ._stream import route_stream as route_stream

__all__ = [
    "IVFIndex",
    "Search",
    "build_index",
    "default_mesh",
    "faiss_knn",
    "faiss_self_knn",
    "index_knn",
    "index_self_knn",
    "fit_local_stream",
    "route_stream",
    "sharded_fit_local",
    "sharded_knn",
    "sharded_route",
    "sharded_router_theta",
    "write_decisions",
]

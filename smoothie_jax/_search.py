"""How neighbours are found: one `Search` vocabulary, and `knn`, which dispatches on it.

Three methods, one function each:

- "exact" (`exact_knn`): float32 scores of every point, tile by tile; the default.
- "two-stage" (`two_stage_knn`): every point scored cheaply (bf16 or tf32 matmul, or
  `lax.approx_max_k`), a few candidates re-ranked exactly: for accelerators.
- "approximate": an inverted file, k-means cells of which `nprobe` are scored per
  query: for a million inputs. Two backends with the same cells and searches: faiss
  (`faiss_self_knn` / `faiss_knn`, the optional extra `smoothie-jax[faiss]`) on a CPU,
  the JAX index (`build_index` + `index_self_knn` / `index_knn`) on accelerators and
  where faiss is missing; `Search.backend` chooses.

The library's fits, the router, the evaluation and every command take a `Search` or one
of the names `Search.parse` reads ("exact", "bf16", "tf32", "bf16-chunks", "approx-max-k",
"approximate" and the alias "ivf"). `find_knn` is the one place that decides how a search
runs (jitted, or eagerly for the inverted file); `Search.index` builds a `SearchIndex`, the
points a router keeps and searches for every new query.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import final

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from . import _faiss_ivf
from ._inverted_file import DEFAULT_NPROBE, IVFIndex, build_index, index_knn, index_self_knn
from ._knn import DEFAULT_BLOCK_SIZE, DEFAULT_TILE_SIZE, exact_knn, two_stage_knn
from ._validate import ArrayLike, check_int, is_int

METHODS = ("exact", "two-stage", "approximate")
# Names a command line or a config gives a search, and the `Search` each stands for.
NAMES = {
    "exact": {"method": "exact"},
    "bf16": {"method": "two-stage", "dtype": "bfloat16"},
    "tf32": {"method": "two-stage", "dtype": "tf32"},
    # The accelerators' fastest at recall >= 0.99: 1M inputs in 5.8 s on one H200.
    "bf16-chunks": {"method": "two-stage", "dtype": "bfloat16", "chunks": 2048},
    "approx-max-k": {"method": "two-stage", "dtype": None, "recall_target": 0.95},
    "approximate": {"method": "approximate"},
    "ivf": {"method": "approximate"},
}
_TWO_STAGE_DTYPES = ("bfloat16", "float16", "float32", "tf32")
BACKENDS = ("auto", "jax", "faiss")


@dataclasses.dataclass(frozen=True)
class Search:
    """How to find each query's nearest points: a method and the options of that method.

    Options of another method must stay at their defaults (a `ValueError` says which),
    so a spec never carries a setting that does nothing. Hashable: it can be a static
    argument of a jitted function.

    Attributes:
        method: "exact" (default), "two-stage" or "approximate" (the inverted file).
        n_cells: approximate: k-means cells (default about sqrt(n)).
        nprobe: approximate: cells probed per query.
        tile_size: exact: points per tile; memory is block_size x tile_size scores.
        dtype: two-stage: stage-1 matmul dtype ("bfloat16", "float16", "float32",
            "tf32"); default "bfloat16", or float32 where only `recall_target` is set.
        recall_target: two-stage: stage 1 uses `lax.approx_max_k` at this recall.
        candidates: two-stage: stage-1 candidates per query, >= k (default max(2 k, 64)).
        chunks: two-stage: stage 1 keeps the best point of each of this many interleaved
            chunks (a max, no sort: for accelerators), then the best `candidates`.
        backend: approximate: "faiss" (faiss's IndexIVFFlat, trained with the same cells),
            "jax" (the JAX inverted file), or "auto" (default): faiss where it is
            installed and the points are on the CPU, else JAX. It is the engine of the
            one-shot searches (`knn`, `fit_local`, `fit_local_stream`, `route`); a
            `Router` always keeps and searches the JAX index (`Search.index`), a pytree
            that saves with it and runs on any device.

    >>> Search.parse("bf16").dtype
    'bfloat16'
    """

    method: str = "exact"
    n_cells: int | None = None
    nprobe: int = DEFAULT_NPROBE
    _: dataclasses.KW_ONLY
    tile_size: int = DEFAULT_TILE_SIZE
    dtype: str | None = None
    recall_target: float | None = None
    candidates: int | None = None
    chunks: int | None = None
    backend: str = "auto"

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"search method must be one of {METHODS}, got {self.method!r}")
        defaults = {f.name: f.default for f in dataclasses.fields(Search)}  # KW_ONLY is no field
        own = {
            "exact": ("tile_size",),
            "two-stage": ("dtype", "recall_target", "candidates", "chunks"),
            "approximate": ("n_cells", "nprobe", "backend"),
        }[self.method]
        for name, default in defaults.items():
            if name != "method" and name not in own and getattr(self, name) != default:
                raise ValueError(f"{name} applies to another search method than {self.method!r}")
        check_int("tile_size", self.tile_size, 1)
        check_int("nprobe", self.nprobe, 1)
        if self.n_cells is not None:
            check_int("n_cells", self.n_cells, 1)
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {self.backend!r}")
        if self.dtype is not None and self.dtype not in _TWO_STAGE_DTYPES:
            raise ValueError(
                f"dtype must be one of {_TWO_STAGE_DTYPES} or None, got {self.dtype!r}"
            )
        if self.method == "two-stage" and self.dtype is None and self.recall_target is None:
            object.__setattr__(self, "dtype", "bfloat16")  # the cheap stage's usual choice
        if self.recall_target is not None and not 0 < self.recall_target <= 1:
            raise ValueError(f"recall_target must be in (0, 1], got {self.recall_target!r}")
        if self.candidates is not None and not is_int(self.candidates):
            raise ValueError(f"candidates must be an int, got {self.candidates!r}")
        if self.chunks is not None:
            check_int("chunks", self.chunks, 1)

    @classmethod
    def parse(cls, spec: Search | str) -> Search:
        """A `Search` from itself or from one of the names in `NAMES`."""
        if isinstance(spec, Search):
            return spec
        if isinstance(spec, str) and spec in NAMES:
            return cls(**NAMES[spec])
        raise ValueError(f"search must be a Search or one of {tuple(NAMES)}, got {spec!r}")

    @property
    def exact(self) -> bool:
        return self.method == "exact"

    def engine(self, points: Float[ArrayLike, "n_points input_dim"]) -> str:
        """The approximate search's backend for these points: "faiss" or "jax".

        "auto" takes faiss where it is installed and the points live on the CPU (a NumPy
        array: where JAX's default device is the CPU); under a trace, on an accelerator
        or without faiss, the JAX index.
        """
        if self.method != "approximate":
            raise ValueError(f"a {self.method!r} search has no backend")
        if self.backend != "auto":
            return self.backend
        if isinstance(points, jax.core.Tracer) or not _faiss_ivf.available():
            return "jax"
        if isinstance(points, jax.Array):
            on_cpu = all(d.platform == "cpu" for d in points.devices())
        else:
            on_cpu = jax.default_backend() == "cpu"
        return "faiss" if on_cpu else "jax"

    def index(
        self,
        points: Float[ArrayLike, "n_points input_dim"],
        *,
        block_size: int = DEFAULT_BLOCK_SIZE,
    ) -> SearchIndex:
        """The points, kept to be searched this way: an "approximate" search builds its
        inverted file over them once (the JAX index: a pytree that saves with a router
        and runs on any device)."""
        points = jnp.asarray(points)
        ivf = build_index(points, n_cells=self.n_cells) if self.method == "approximate" else None
        return SearchIndex(points=points, ivf=ivf, search=self, block_size=block_size)


@final
class SearchIndex(eqx.Module):
    """Points and how to search them, built once by `Search.index` and queried many times.

    Attributes:
        points: the points searched (a router's past inputs).
        ivf: with an "approximate" search, its inverted file over `points`; else None.
        search: how they are searched.
        block_size: queries per block of the brute-force searches.

    >>> x = jnp.array([[0.0], [1.0], [3.0]])
    >>> Search().index(x).query(jnp.array([[2.9]]), 2)
    Array([[2, 1]], dtype=int32)
    """

    points: Float[Array, "n_points input_dim"]
    ivf: IVFIndex | None = None
    search: Search = eqx.field(static=True, default=Search())
    block_size: int = eqx.field(static=True, default=DEFAULT_BLOCK_SIZE)

    def __check_init__(self) -> None:
        if (self.ivf is not None) != (self.search.method == "approximate"):
            raise ValueError("an approximate search needs its inverted file, and only it has one")

    @property
    def n_points(self) -> int:
        return self.points.shape[0]

    @property
    def input_dim(self) -> int:
        return self.points.shape[1]

    def query(
        self, queries: Float[ArrayLike, "n_queries input_dim"], k: int
    ) -> Int[Array, "n_queries k"]:
        """Each query's k nearest points, nearest first."""
        if self.ivf is not None:
            return index_knn(self.ivf, queries, k, nprobe=self.search.nprobe)
        return find_knn(queries, self.points, k, search=self.search, block_size=self.block_size)

    def self_query(self, k: int) -> Int[Array, "n_points k"]:
        """Each point's k nearest points, itself first."""
        if self.ivf is not None:
            return index_self_knn(self.ivf, k, nprobe=self.search.nprobe)
        return find_knn(
            self.points,
            self.points,
            k,
            search=self.search,
            include_self=True,
            block_size=self.block_size,
        )

    def with_search(self, search: Search | str) -> SearchIndex:
        """The same points searched another way; an inverted file keeps its own search."""
        search = Search.parse(search)
        if search == self.search:
            return self
        if self.ivf is not None or search.method == "approximate":
            raise ValueError(
                "an inverted file is built at fit time and searched as it was built; fit "
                "again to search otherwise"
            )
        return dataclasses.replace(self, search=search)


def find_knn(
    queries: Float[ArrayLike, "n_queries input_dim"],
    points: Float[ArrayLike, "n_points input_dim"],
    k: int,
    *,
    search: Search,
    include_self: bool = False,
    block_size: int = DEFAULT_BLOCK_SIZE,
) -> Int[Array, "n_queries k"]:
    """`knn` as the library runs it: jitted for the brute-force searches, eagerly for the
    inverted file (its cells have data-dependent sizes)."""
    if search.method == "approximate":
        return knn(queries, points, k, search=search, include_self=include_self)
    return _jitted_knn(
        queries, points, k=k, search=search, include_self=include_self, block_size=block_size
    )


@functools.partial(jax.jit, static_argnames=("k", "search", "include_self", "block_size"))
def _jitted_knn(
    queries: Array, points: Array, *, k: int, search: Search, include_self: bool, block_size: int
) -> Array:
    return knn(queries, points, k, search=search, include_self=include_self, block_size=block_size)


def knn(
    queries: Float[ArrayLike, "n_queries input_dim"],
    points: Float[ArrayLike, "n_points input_dim"],
    k: int,
    *,
    search: Search | str = "exact",
    include_self: bool = False,
    query_ids: Int[ArrayLike, " n_queries"] | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
    method: str | None = None,
) -> Int[Array, "n_queries k"]:
    """k nearest neighbours by Euclidean distance, by the method `search` names.

    Exact by default (`exact_knn`: ties go to the lower point index, deterministically);
    "two-stage" (`two_stage_knn`) and "approximate" (the inverted file) trade a little
    recall for speed: measure it with `knn_recall`. The inverted file is built eagerly,
    so an "approximate" search cannot run under a caller's `jax.jit`; build it once with
    `build_index` and call `index_knn` to reuse it. Its backend (`Search.engine`) is
    faiss on a CPU where faiss is installed, else the JAX index: the same cells and
    probes, the same output (int32, nearest first, the query itself first with
    `include_self` / `query_ids`, an error where the probed cells hold fewer than k).

    Args:
        queries: points to find neighbours for.
        points: candidates.
        k: neighbours per query (static).
        search: a `Search`, or a name `Search.parse` reads ("exact", "bf16", ...).
        include_self: queries are `points` in the same order, and query i must be its
            own first neighbour even where rounding or duplicate points say otherwise.
        query_ids: the general form of `include_self`: query i is point query_ids[i]
            (forced first), or no point where it is -1. Lets a chunk of the points be
            searched on its own (streaming) with the neighbours of the whole search.
        block_size: queries per block of the brute-force searches (static).
        method: shorthand for `Search(method)`, e.g. `knn(q, p, k, method="approximate")`.

    Returns:
        Indices into `points`, nearest first.

    >>> x = jnp.array([[0.0], [1.0], [3.0]])
    >>> knn(x, x, 2, include_self=True)
    Array([[0, 1],
           [1, 0],
           [2, 1]], dtype=int32)
    """
    spec = Search.parse(search) if method is None else Search(method)
    if method is not None and search != "exact":
        raise ValueError("give search or method, not both")
    queries, points = jnp.asarray(queries), jnp.asarray(points)
    if include_self and query_ids is not None:
        raise ValueError("give include_self or query_ids, not both")
    if spec.method == "approximate":
        if spec.engine(points) == "faiss":
            if include_self and queries.shape[0] == points.shape[0]:
                return _faiss_ivf.faiss_self_knn(
                    points, k, n_cells=spec.n_cells, nprobe=spec.nprobe
                )
            return _faiss_ivf.faiss_knn(
                queries,
                points,
                k,
                n_cells=spec.n_cells,
                nprobe=spec.nprobe,
                include_self=include_self,
                query_ids=query_ids,
            )
        index = build_index(points, n_cells=spec.n_cells)
        if include_self and queries.shape[0] == points.shape[0]:
            return index_self_knn(index, k, nprobe=spec.nprobe)
        return index_knn(
            index, queries, k, nprobe=spec.nprobe, include_self=include_self, query_ids=query_ids
        )
    if include_self:
        query_ids = jnp.arange(queries.shape[0], dtype=jnp.int32)
    if spec.method == "exact":
        return exact_knn(
            queries, points, k, query_ids=query_ids, block_size=block_size, tile_size=spec.tile_size
        )
    if spec.candidates is not None and spec.candidates < k:
        raise ValueError(f"candidates must be >= k={k}, got {spec.candidates}")
    return two_stage_knn(
        queries,
        points,
        k,
        query_ids=query_ids,
        block_size=block_size,
        dtype=spec.dtype,
        recall_target=spec.recall_target,
        candidates=spec.candidates,
        chunks=spec.chunks,
    )


def knn_recall(
    found: Int[ArrayLike, "n_queries k"], exact: Int[ArrayLike, "n_queries k"]
) -> Float[Array, ""]:
    """Mean fraction of each query's exact neighbours that `found` contains (order ignored).

    >>> knn_recall(jnp.array([[0, 1], [2, 5]]), jnp.array([[1, 0], [2, 3]]))
    Array(0.75, dtype=float32)
    """
    hits = jnp.any(exact[:, :, None] == found[:, None, :], axis=-1)
    return jnp.mean(hits.astype(jnp.float32))

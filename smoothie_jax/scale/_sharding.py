"""Routing sharded over a device mesh: each device holds 1/P of the queries and points.

Queries, points (and the per-point statistics D) are split along one mesh axis with
`NamedSharding`. Inside `shard_map`, the point shards travel round a ring with
`lax.ppermute`: at step s, device i scores its queries against the shard of device
i - s and merges a running top-k whose ties go to the lower global index. After P steps
every query has met every point, and memory per device stays O(n / P): no device ever
holds all points, all embeddings or an n x n matrix.

Every (query block, point tile) pair is scored with the same shapes as in `knn`, so the
neighbours are bit-identical to the single-device search, not merely close.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P
from jaxtyping import Array, Float, Int

from .. import _validate
from .._distances import sample_distances
from .._estimator import DEFAULT_EPS, theta_from_distances
from .._knn import (
    DEFAULT_BLOCK_SIZE,
    DEFAULT_TILE_SIZE,
    effective_tile,
    init_top_k,
    merge_top_k,
    point_tiles,
    scan_tiles,
)
from .._router import SmoothieRouter
from .._smoothie import Smoothie

try:  # jax >= 0.6
    _shard_map = functools.partial(jax.shard_map, check_vma=False)
except AttributeError:  # pragma: no cover - older jax
    from jax.experimental.shard_map import shard_map as _old_shard_map

    _shard_map = functools.partial(_old_shard_map, check_rep=False)


def default_mesh(axis: str = "devices") -> Mesh:
    """A one-axis mesh over every device of every process (`jax.devices()`).

    >>> default_mesh().axis_names
    ('devices',)
    """
    return Mesh(np.array(jax.devices()), (axis,))


def _mesh_axis(mesh: Mesh | None, axis: str | None) -> tuple[Mesh, str]:
    mesh = default_mesh() if mesh is None else mesh
    axis = mesh.axis_names[0] if axis is None else axis
    if axis not in mesh.axis_names:
        raise ValueError(f"axis {axis!r} is not an axis of the mesh {mesh.axis_names}")
    return mesh, axis


def _pad_rows(x: Array, rows: int) -> Array:
    return jnp.pad(x, ((0, rows - x.shape[0]),) + ((0, 0),) * (x.ndim - 1))


@functools.partial(
    jax.jit, static_argnames=("mesh", "axis", "k", "block", "tile", "include_self", "dim")
)
def _ring_search(
    queries: Array,
    points: Array,
    values: Array | None,
    eps: Array | None,
    *,
    mesh: Mesh,
    axis: str,
    k: int,
    block: int,
    tile: int,
    include_self: bool,
    dim: int | None,
) -> tuple[Array, Array | None]:
    """Neighbour ids of every query, and theta from `values` (per-point D) if given."""
    n_dev = mesh.shape[axis]
    n_q, n_p = queries.shape[0], points.shape[0]
    # Shards are whole query blocks and whole point tiles, so every matmul has the shape
    # it has in `knn`, and block / tile boundaries fall where they fall there.
    q_per = math.ceil(math.ceil(n_q / block) / n_dev) * block
    tiles_per = math.ceil(math.ceil(n_p / tile) / n_dev)
    p_per = tiles_per * tile
    rows = NamedSharding(mesh, P(axis))
    queries = jax.lax.with_sharding_constraint(_pad_rows(queries, n_dev * q_per), rows)
    points = jax.lax.with_sharding_constraint(_pad_rows(points, n_dev * p_per), rows)
    ring = [(i, (i + 1) % n_dev) for i in range(n_dev)]  # device i sends to i + 1

    def per_device(q: Array, x: Array, v: Array | None) -> tuple[Array, Array]:
        me = jax.lax.axis_index(axis)
        q_ids = (me * q_per + jnp.arange(q_per, dtype=jnp.int32)).reshape(-1, block)
        q_blocks = q.reshape(-1, block, q.shape[-1])

        def search_step(s: Array, carry: tuple) -> tuple:
            best, best_ids, x = carry
            owner = (me - s) % n_dev  # whose points this device holds at step s
            tiles = point_tiles(x, tile, tiles_per, first_id=owner * p_per, n_points=n_p)

            def one_block(args: tuple[Array, Array]) -> tuple[Array, Array]:
                qb, ids = args
                return scan_tiles(qb, ids if include_self else None, tiles, k)

            new, new_ids = jax.lax.map(one_block, (q_blocks, q_ids))
            best, best_ids = merge_top_k(
                best.reshape(q_per, k),
                best_ids.reshape(q_per, k),
                new.reshape(q_per, -1),
                new_ids.reshape(q_per, -1),
                k,
            )
            x = jax.lax.ppermute(x, axis, ring)
            return best, best_ids, x

        best, best_ids = init_top_k(q_per, k, jnp.result_type(q, x))
        _, ids, _ = jax.lax.fori_loop(0, n_dev, search_step, (best, best_ids, x))
        if v is None:
            return ids, jnp.zeros((q_per, 0), q.dtype)

        # Second ring: fetch each neighbour's statistic from the shard that holds it,
        # into the same (queries, k, ...) array `neighbour_mean` averages.
        def gather_step(s: Array, carry: tuple[Array, Array]) -> tuple[Array, Array]:
            found, v = carry
            local = ids - ((me - s) % n_dev) * p_per
            inside = (local >= 0) & (local < p_per)
            fetched = v[jnp.clip(local, 0, p_per - 1)]
            found = jnp.where(inside.reshape(inside.shape + (1,) * (v.ndim - 1)), fetched, found)
            return found, jax.lax.ppermute(v, axis, ring)

        found = jnp.zeros((q_per, k, *v.shape[1:]), v.dtype)
        found, _ = jax.lax.fori_loop(0, n_dev, gather_step, (found, v))
        return ids, theta_from_distances(jnp.mean(found, axis=1), dim, eps=eps)

    if values is None:
        fn = _shard_map(
            lambda q, x: per_device(q, x, None),
            mesh=mesh,
            in_specs=(P(axis), P(axis)),
            out_specs=(P(axis), P(axis)),
        )
        ids, _ = fn(queries, points)
        return ids[:n_q], None
    values = jax.lax.with_sharding_constraint(_pad_rows(values, n_dev * p_per), rows)
    fn = _shard_map(
        per_device, mesh=mesh, in_specs=(P(axis), P(axis), P(axis)), out_specs=(P(axis), P(axis))
    )
    ids, theta = fn(queries, points, values)
    return ids[:n_q], theta[:n_q]


def sharded_knn(
    queries: Float[_validate.ArrayLike, "n_queries input_dim"],
    points: Float[_validate.ArrayLike, "n_points input_dim"],
    k: int,
    *,
    mesh: Mesh | None = None,
    axis: str | None = None,
    include_self: bool = False,
    block_size: int = DEFAULT_BLOCK_SIZE,
    tile_size: int = DEFAULT_TILE_SIZE,
) -> Int[Array, "n_queries k"]:
    """`knn` (exact) with queries and points split across the devices of a mesh (jitted).

    Returns the same indices as `knn(queries, points, k, ...)` on one device, bit for
    bit, with O((n_queries + n_points) / P) memory per device.

    Args:
        queries: points to find neighbours for; any sharding (resharded by rows).
        points: candidates; any sharding (resharded by rows).
        k: neighbours per query, 1 <= k <= n_points (static).
        mesh: device mesh; default a one-axis mesh over all devices (`default_mesh`).
        axis: mesh axis to split rows along; default the mesh's first axis. Devices
            along other axes repeat the work.
        include_self: as in `knn`: queries are `points`, each query first.
        block_size: queries per block (static), as in `knn`.
        tile_size: points per tile (static), as in `knn`.

    Returns:
        Indices into `points`, nearest first, sharded by rows over `axis`.

    >>> from smoothie_jax import knn
    >>> x = jax.random.normal(jax.random.key(0), (100, 8))
    >>> bool((sharded_knn(x, x, 5) == knn(x, x, 5)).all())
    True
    """
    mesh, axis = _mesh_axis(mesh, axis)
    queries = _validate.check_array("queries", queries, 2, "n_queries, input_dim")
    points = _validate.check_array("points", points, 2, "n_points, input_dim")
    if queries.shape[1] != points.shape[1]:
        raise ValueError(f"queries have dim {queries.shape[1]}, points {points.shape[1]}")
    if include_self and queries.shape[0] != points.shape[0]:
        raise ValueError("include_self needs queries to be the points, in the same order")
    k = _validate.check_k(k, points.shape[0])
    block = min(_validate.check_block_size(block_size), queries.shape[0])
    tile = effective_tile(_validate.check_block_size(tile_size), k, points.shape[0])
    ids, _ = _ring_search(
        queries,
        points,
        None,
        None,
        mesh=mesh,
        axis=axis,
        k=k,
        block=block,
        tile=tile,
        include_self=include_self,
        dim=None,
    )
    return ids


def sharded_fit_local(
    embeddings: Float[_validate.ArrayLike, "n_samples n_models dim"],
    inputs: Float[_validate.ArrayLike, "n_samples input_dim"],
    *,
    k: int,
    mesh: Mesh | None = None,
    axis: str | None = None,
    eps: float = DEFAULT_EPS,
    block_size: int = DEFAULT_BLOCK_SIZE,
    tile_size: int = DEFAULT_TILE_SIZE,
) -> Smoothie:
    """`fit_local` with samples split across the devices of a mesh (jitted).

    Each device turns its own samples' embeddings into per-sample D (n / P, m, m), then
    finds neighbours and fetches their D round the ring; the embeddings never leave
    their device. Same neighbours as `fit_local` bit for bit; theta to float32 rounding.

    Args:
        embeddings: embedding of each model's output for each sample.
        inputs: embedding of each sample's input.
        k: neighbourhood size, 1 <= k <= n_samples (static).
        mesh: device mesh; default one axis over all devices.
        axis: mesh axis to split samples along; default the first.
        eps: floor on the estimated squared error; see `theta_from_distances`.
        block_size: queries per block of the neighbour search (static).
        tile_size: points per tile of the neighbour search (static).

    Returns:
        `Smoothie` with theta of shape (n_samples, n_models), sharded by rows.

    >>> x = jax.random.normal(jax.random.key(0), (100, 3, 8))
    >>> sharded_fit_local(x, x[:, 0], k=10).theta.shape
    (100, 3)
    """
    mesh, axis = _mesh_axis(mesh, axis)
    embeddings = _validate.check_embeddings(embeddings)
    inputs = _validate.check_inputs(inputs, embeddings.shape[0])
    n = embeddings.shape[0]
    k = _validate.check_k(k, n)
    eps_ = jnp.asarray(_validate.check_eps(eps), embeddings.dtype)
    block = min(_validate.check_block_size(block_size), n)
    tile = effective_tile(_validate.check_block_size(tile_size), k, n)
    distances = _sharded_distances(embeddings, mesh=mesh, axis=axis)
    _, theta = _ring_search(
        inputs,
        inputs,
        distances,
        eps_,
        mesh=mesh,
        axis=axis,
        k=k,
        block=block,
        tile=tile,
        include_self=True,
        dim=embeddings.shape[-1],
    )
    return Smoothie(theta)


@functools.partial(jax.jit, static_argnames=("mesh", "axis"))
def _sharded_distances(embeddings: Array, *, mesh: Mesh, axis: str) -> Array:
    """Per-sample D computed where each sample's embeddings live."""
    n_dev = mesh.shape[axis]
    n = embeddings.shape[0]
    padded = _pad_rows(embeddings, math.ceil(n / n_dev) * n_dev)
    padded = jax.lax.with_sharding_constraint(padded, NamedSharding(mesh, P(axis)))
    fn = _shard_map(sample_distances, mesh=mesh, in_specs=P(axis), out_specs=P(axis))
    return fn(padded)[:n]


def sharded_router_theta(
    router: SmoothieRouter,
    queries: Float[_validate.ArrayLike, "n_queries input_dim"],
    *,
    mesh: Mesh | None = None,
    axis: str | None = None,
) -> Float[Array, "n_queries n_models"]:
    """`router.theta(queries)` with queries and training data split across a mesh (jitted).

    Args:
        router: a fitted `Router`; its inputs and distances are split by rows.
        queries: query input embeddings; split by rows.
        mesh: device mesh; default one axis over all devices.
        axis: mesh axis to split rows along; default the first.

    Returns:
        Quality of each model for each query: `router.theta(queries)` to float32 rounding.

    >>> from smoothie_jax import fit_router
    >>> x = jax.random.normal(jax.random.key(0), (100, 3, 8))
    >>> router = fit_router(x, x[:, 0], k=10)
    >>> sharded_router_theta(router, x[:5, 1]).shape
    (5, 3)
    """
    mesh, axis = _mesh_axis(mesh, axis)
    if not isinstance(router, SmoothieRouter) or router.observed is not None:
        raise ValueError(
            "only the paper's router fitted on complete logs (a SmoothieRouter without "
            "observed=) is sharded; route this one with router.route(queries)"
        )
    queries = router.check_queries(queries)
    n = router.n_samples
    _, theta = _ring_search(
        queries,
        router.index.points,
        router.distances,
        jnp.asarray(router.eps, router.distances.dtype),
        mesh=mesh,
        axis=axis,
        k=router.k,
        block=min(router.block_size, queries.shape[0]),
        tile=effective_tile(DEFAULT_TILE_SIZE, router.k, n),
        include_self=False,
        dim=router.dim,
    )
    return theta


def sharded_route(
    router: SmoothieRouter,
    queries: Float[_validate.ArrayLike, "n_queries input_dim"],
    *,
    mesh: Mesh | None = None,
    axis: str | None = None,
) -> Int[Array, " n_queries"]:
    """`router.route(queries)` split across a mesh: the model index to call per query.

    >>> from smoothie_jax import fit_router
    >>> x = jax.random.normal(jax.random.key(0), (100, 3, 8))
    >>> sharded_route(fit_router(x, x[:, 0], k=10), x[:5, 1]).shape
    (5,)
    """
    return jnp.argmax(sharded_router_theta(router, queries, mesh=mesh, axis=axis), axis=-1)

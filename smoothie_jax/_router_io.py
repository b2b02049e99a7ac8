"""Saving and loading train-time routers: a JSON header line, then the arrays.

The header names the router's variant (`Router.kind`) and every setting needed to shape
an empty router of that variant; `eqx.tree_deserialise_leaves` then fills its arrays.
Routers saved by smoothie_jax 0.3 (one `Router` class, formats /2 and /3) load into the
variant they were (the paper's, or the answer router): their arrays are read in the old
order and moved into the new fields; 0.3's recommended router without answers is refused
with how to refit (its rule, consensus and length, is not this release's), as is the one
of 0.4 to 0.6 (the averaged weighted consensus, now a vote). Routers saved before tasks
were found (answer routers of 0.3 to 0.5, vote routers of 0.7) load as one task.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, BinaryIO

import equinox as eqx
import jax
import jax.numpy as jnp

from ._atomic import atomic_write
from ._embedder import Embedder
from ._inverted_file import IVFIndex
from ._router import AnswerRouter, ConsensusRouter, Router, SmoothieRouter
from ._search import Search, SearchIndex
from ._signals import Recipe

FORMAT = "smoothie_jax.Router/4"
_V3, _V2 = "smoothie_jax.Router/3", "smoothie_jax.Router/2"  # one class, smoothie_jax 0.3


def save_router(path: str | os.PathLike, router: Router) -> None:
    """Saves a router atomically: a JSON header line (its variant, settings, and its
    `embedder` where known), then `eqx.tree_serialise_leaves`."""
    index = router.index
    header = {
        "format": FORMAT,
        "router": router.kind,
        "n_samples": index.n_points,
        "input_dim": index.input_dim,
        "n_models": router.n_models,
        "k": router.k,
        "block_size": index.block_size,
        "models": list(router.models),
        "search": dataclasses.asdict(index.search),
        "index": None if index.ivf is None else _ivf_header(index.ivf),
        "embedder": None if router.embedder is None else router.embedder.to_json(),
        "settings": router.settings(),
    }
    with atomic_write(path, "wb") as f:
        f.write((json.dumps(header) + "\n").encode())
        eqx.tree_serialise_leaves(f, router)


def _ivf_header(ivf: IVFIndex) -> dict[str, int]:
    return {
        "n_cells": ivf.n_cells,
        "n_blocks": ivf.blocks.shape[0],
        "block_size": ivf.block_size,
        "max_cell_blocks": ivf.max_cell_blocks,
    }


def _ivf_like(spec: dict | None, n: int, dim: int) -> IVFIndex | None:
    """A zero inverted file shaped as the saved one, for `tree_deserialise_leaves`."""
    if spec is None:
        return None
    c, b, size = spec["n_cells"], spec["n_blocks"], spec["block_size"]
    return IVFIndex(
        centroids=jnp.zeros((c, dim), jnp.float32),
        blocks=jnp.zeros((b, size, dim), jnp.float32),
        block_ids=jnp.zeros((b, size), jnp.int32),
        half_sq_norms=jnp.zeros((b, size), jnp.float32),
        cell_start=jnp.zeros(c, jnp.int32),
        cell_blocks=jnp.zeros(c, jnp.int32),
        cell_sizes=jnp.zeros(c, jnp.int32),
        n_points=n,
        n_cells=c,
        block_size=size,
        max_cell_blocks=spec["max_cell_blocks"],
    )


def _search_of(header: dict) -> Search:
    """The saved search; routers saved before it was recorded keep nprobe in the index."""
    if "search" in header:
        return Search(**header["search"])
    index = header.get("index")
    return Search() if index is None else Search("approximate", nprobe=index["nprobe"])


def _index_like(header: dict) -> SearchIndex:
    n, dim = header["n_samples"], header["input_dim"]
    return SearchIndex(
        points=jnp.zeros((n, dim), jnp.float32),
        ivf=_ivf_like(header.get("index"), n, dim),
        search=_search_of(header),
        block_size=header["block_size"],
    )


VARIANTS: dict[str, type[Router]] = {
    cls.kind: cls for cls in (SmoothieRouter, ConsensusRouter, AnswerRouter)
}


def _router_like(header: dict) -> Router:
    """An empty router of the saved variant, shaped as the saved one."""
    variant = VARIANTS.get(header["router"])
    if variant is None:
        raise ValueError(f"unknown router variant {header['router']!r}")
    return variant.empty(
        header["n_samples"],
        header["n_models"],
        header["settings"],
        **_common(header, _index_like(header)),
    )


def _common(header: dict, index: SearchIndex) -> dict[str, Any]:
    """The fields every router variant shares: its index (or one shaped as it), and the saved k,
    model names and embedder."""
    return {
        "index": index,
        "k": header["k"],
        "models": tuple(header.get("models", ())),
        "embedder": _embedder_of(header),
    }


def _embedder_of(header: dict) -> Embedder | None:
    """The recorded embedder; None for routers saved before it was recorded."""
    record = header.get("embedder")
    return None if record is None else Embedder.from_json(record)


def load_router(path: str | os.PathLike) -> Router:
    """Loads a router written by `save_router` (this release's, or smoothie_jax 0.3's)."""
    with open(path, "rb") as f:
        try:
            header = json.loads(f.readline())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ValueError(f"{path} is not a saved smoothie_jax router: {e}") from None
        formats = (FORMAT, _V3, _V2)
        if not isinstance(header, dict) or header.get("format") not in formats:
            raise ValueError(f"{path} is not a saved smoothie_jax router (format {FORMAT})")
        if header["format"] == _V2 and header.get("method") == "auto":
            raise ValueError(
                f"{path} holds a recommended router saved by smoothie_jax < 0.3, whose rule "
                "has changed since: fit it again (route --train ... --save-router)"
            )
        if header["format"] != FORMAT:
            return _load_v3(path, f, header)
        if header.get("router") == ConsensusRouter.kind and "rule" not in header.get(
            "settings", {}
        ):
            raise ValueError(
                f"{path} holds a recommended router without answers saved by smoothie_jax "
                "0.4 to 0.6, whose rule has changed since (it now votes the past inputs' "
                "test-time decisions): fit it again (route --train ... --save-router, or "
                "sj.fit_router(..., method='auto'))"
            )
        try:
            before_tasks = header["router"] in (AnswerRouter.kind, ConsensusRouter.kind) and (
                "tasks" not in header["settings"]
            )
            like = _one_task_like(header) if before_tasks else _router_like(header)
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{path} has a bad smoothie_jax router header: {e!r}") from None
        router = _deserialise(path, f, like)
    return _one_task(header, router) if before_tasks else router


def _deserialise(path: str | os.PathLike, f: BinaryIO, like: Any) -> Any:
    try:
        loaded = eqx.tree_deserialise_leaves(f, like)
    except (RuntimeError, ValueError, EOFError) as e:  # eqx wraps errors in RuntimeError
        raise ValueError(f"{path} is a truncated or corrupt smoothie_jax router: {e}") from None
    # Deserialising does not check shapes (nor run __check_init__): compare with the header.
    shapes = [x.shape for x in jax.tree.leaves(like)]
    if [x.shape for x in jax.tree.leaves(loaded)] != shapes:
        raise ValueError(f"{path} is a corrupt smoothie_jax router: arrays do not match its header")
    return loaded


def _load_v3(path: str | os.PathLike, f: BinaryIO, header: dict) -> Router:
    """A router saved by smoothie_jax 0.3: the arrays of its one class, in their order
    (inputs, distances, observed, inverted file, signals), moved into the variant."""
    try:
        n, m, dim = header["n_samples"], header["n_models"], header["input_dim"]
        signals = header.get("signals")
        rows, scalar = jnp.zeros((n, m), jnp.float32), jnp.zeros((), jnp.float32)
        old_signals = None
        if signals is not None:
            lengths = signals["lengths"]
            old_signals = (
                rows,
                scalar,
                rows if lengths else None,
                scalar if lengths else None,
                jnp.zeros(m, jnp.float32) if signals["answers"] else None,
            )
        like = (
            jnp.zeros((n, dim), jnp.float32),
            jnp.zeros((n, m, m), jnp.float32),
            jnp.zeros((n, m), bool) if header.get("masked") else None,
            _ivf_like(header.get("index"), n, dim),
            old_signals,
        )
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{path} has a bad smoothie_jax router header: {e!r}") from None
    inputs, distances, observed, ivf, old = _deserialise(path, f, like)
    index = SearchIndex(
        points=inputs, ivf=ivf, search=_search_of(header), block_size=header["block_size"]
    )
    common = _common(header, index)
    if signals is None:
        return SmoothieRouter(
            distances=distances, observed=observed, dim=header["dim"], eps=header["eps"], **common
        )
    accuracy = old[-1]
    if accuracy is None:
        raise ValueError(
            f"{path} holds a recommended router saved by smoothie_jax 0.3, whose rule has "
            "changed since (the weighted consensus, no lengths): fit it again (route --train "
            "... --save-router, or sj.fit_router(..., method='auto'))"
        )
    return _one_task_answers(accuracy, **common)


def _one_task_like(header: dict) -> tuple:
    """The arrays of a router saved before tasks were found, in their order: an answer
    router of 0.3 to 0.5 (its index, one accuracy per model) or a vote router of 0.7
    (index, votes, one rate per model, scale, observed)."""
    index, m = _index_like(header), header["n_models"]
    if header["router"] == AnswerRouter.kind:
        return index, jnp.zeros(m, jnp.float32)
    n, masked = header["n_samples"], header["settings"]["masked"]
    rows = jnp.zeros((n, m), jnp.float32)
    observed = jnp.zeros((n, m), bool) if masked else None
    return index, rows, jnp.zeros(m, jnp.float32), jnp.zeros((), jnp.float32), observed


def _one_task(header: dict, arrays: tuple) -> Router:
    """A router saved before tasks were found: its one rate (or accuracy) per model serves
    every query."""
    common = _common(header, arrays[0])
    if header["router"] == AnswerRouter.kind:
        return _one_task_answers(arrays[1], **common)
    _, votes, share, scale, observed = arrays
    return ConsensusRouter(
        votes=votes,
        share=share[None],
        centroids=_no_tasks(arrays[0]),
        scale=scale,
        observed=observed,
        recipe=Recipe(**header["settings"]["recipe"]),
        **common,
    )


def _one_task_answers(accuracy: jax.Array, **common: Any) -> AnswerRouter:
    """An answer router saved before tasks were found (0.3 to 0.5): its one accuracy per
    model serves every query."""
    return AnswerRouter(accuracy=accuracy[None], centroids=_no_tasks(common["index"]), **common)


def _no_tasks(index: SearchIndex) -> jax.Array:
    """The centroids of one task (every query joins it)."""
    return jnp.zeros((1, index.input_dim), jnp.float32)

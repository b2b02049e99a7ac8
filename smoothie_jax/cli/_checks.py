"""Checks before the work: output paths and the embedder, before any file is read.

Each raises `ValueError` (or `RuntimeError` for a missing optional dependency) naming the
option and the problem, so a failed run writes nothing and embeds nothing.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..text import cache_file, resolve_model


def check_file_target(path: str, option: str) -> None:
    """An output file's path: not a folder, in a folder that exists. Nothing is created."""
    target = Path(path)
    if target.is_dir():
        raise ValueError(f"{option} {path}: is a folder; give a file name")
    _check_parent(target, option)


def check_dir_target(path: str, option: str) -> None:
    """An output folder's path: a folder, or a new one in a folder that exists."""
    target = Path(path)
    if target.exists():
        if not target.is_dir():
            raise ValueError(f"{option} {path}: is a file, not a folder")
        if not os.access(target, os.W_OK):
            raise ValueError(f"{option} {path}: the folder is not writable")
        return
    _check_parent(target, option)


def _check_parent(target: Path, option: str) -> None:
    parent = target.parent
    if not parent.exists():
        raise ValueError(f"{option} {target}: the folder {parent} does not exist; create it first")
    if not parent.is_dir():
        raise ValueError(f"{option} {target}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK):
        raise ValueError(f"{option} {target}: the folder {parent} is not writable")


def check_embedder(args: argparse.Namespace) -> None:
    """Resolves --embedder and the cache before any file is read; sets args.model_path."""
    try:
        # mpnet is looked up in the default cache even with --cache-dir: that option
        # moves the embeddings, not a model prepared once.
        args.model_path = resolve_model(args.embedder)
    except ImportError as e:
        raise RuntimeError(f"--embedder {args.embedder}: {e}") from None
    if args.no_cache:
        return
    cache = cache_file(args.cache_dir)
    source = "--cache-dir" if args.cache_dir else "$SMOOTHIE_JAX_CACHE"
    if cache.parent.exists() and not cache.parent.is_dir():
        raise ValueError(f"the embedding cache folder {cache.parent} ({source}) is a file")
    if cache.is_dir():
        raise ValueError(f"the embedding cache {cache} is a folder, not a file")

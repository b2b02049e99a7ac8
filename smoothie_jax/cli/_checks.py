"""Checks before the work: output paths and the embedder, before any file is read.

Each raises `ValueError` (or `RuntimeError` for a missing optional dependency) naming the
option and the problem, so a failed run writes nothing and embeds nothing.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..text import default_cache_dir
from ..text._cache import CACHE_FILE
from ..text._models import resolve_model


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
    root = Path(args.cache_dir).expanduser() if args.cache_dir else default_cache_dir()
    source = "--cache-dir" if args.cache_dir else "$SMOOTHIE_JAX_CACHE"
    if root.exists() and not root.is_dir():
        raise ValueError(f"the embedding cache folder {root} ({source}) is a file")
    if (root / CACHE_FILE).is_dir():
        raise ValueError(f"the embedding cache {root / CACHE_FILE} is a folder, not a file")

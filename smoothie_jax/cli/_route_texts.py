"""`smoothie-jax route --router SAVED QUERIES.jsonl -o OUT`: text queries, a saved router.

The route command adds these options with `add_arguments(route_parser)` and hands a
namespace with `--router` set to `run`, which calls `serve.route_texts`: each chunk of
instructions is embedded with the router's own embedder and routed, in bounded memory.

`add_arguments` marks the route parser's `--embedder` and `--search` defaults as not
typed by the user (`Unnamed`: the same string, recognisable), so that here a saved
router's own embedder and search are used unless the user names others: a named
embedder must be the router's (its fingerprint is checked); a named search is refused.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .._embedder import text_encoder
from .._router import load_router
from ..serve._route_texts import DEFAULT_CHUNK_SIZE, route_texts
from ._args import positive

EXIT_OK = 0

# Route options that train or decide otherwise: none applies to a saved router.
_NOT_WITH_ROUTER = {
    "train": "--train",
    "save_router": "--save-router",
    "posterior": "--posterior",
    "families": "--families",
    "default_model": "--default-model",
    "strict": "--strict",
    "no_family_check": "--no-family-check",
    "k": "-k",
    "whole_text": "--whole-text",
    "clean": "--clean",
    "labels": "--labels",
    "answer_pattern": "--answer-pattern",
}


class Unnamed(str):
    """An option's default that the user did not type: equal to the string it holds."""

    __slots__ = ()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds --router and --chunk-size to the route command's parser."""
    parser.add_argument(
        "--router",
        metavar="SAVED",
        default=None,
        help="route DATA's instructions (no outputs needed) with a router saved by "
        "--save-router: each is embedded with the router's own embedder, in chunks, in "
        "bounded memory; one line per query with the model, its score and every "
        "model's weight",
    )
    parser.add_argument(
        "--chunk-size",
        type=positive,
        default=DEFAULT_CHUNK_SIZE,
        metavar="N",
        help=f"with --router: queries embedded and routed at once (default {DEFAULT_CHUNK_SIZE})",
    )
    parser.set_defaults(embedder=Unnamed("minilm"), search=Unnamed("exact"))


def _named(args: argparse.Namespace, name: str) -> str | None:
    value = getattr(args, name, None)
    return None if value is None or isinstance(value, Unnamed) else value


def _check_output(path: str) -> None:
    target = Path(path)
    if target.is_dir():
        raise ValueError(f"-o {path}: is a folder; give a file name")
    if not target.parent.is_dir():
        raise ValueError(f"-o {path}: the folder {target.parent} does not exist; create it first")


def run(args: argparse.Namespace) -> int:
    """Routes DATA's instructions with the saved router; says how many it wrote."""
    if args.router is None:
        raise ValueError("give --router SAVED (a router saved by route --save-router)")
    given = [flag for dest, flag in _NOT_WITH_ROUTER.items() if getattr(args, dest, None)]
    if given:
        raise ValueError(f"{', '.join(given)} do not apply to a saved router (--router)")
    if _named(args, "search") is not None:
        raise ValueError("--search does not apply with --router: the saved router's own is used")
    _check_output(args.output)
    router = load_router(args.router)
    cache_dir = getattr(args, "cache_dir", None)
    encoder = text_encoder(
        router.embedder,
        _named(args, "embedder"),
        cache_dir=cache_dir,
        cache=not getattr(args, "no_cache", False),
    )
    n = route_texts(router, args.data, args.output, encoder=encoder, chunk_size=args.chunk_size)
    how = "" if router.embedder is None else f", embedded with {router.embedder.describe()}"
    print(
        f"Routed {n} queries of {args.data} with the router {args.router}{how}; "
        f"wrote {args.output}."
    )
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    """A stand-alone `route` parser holding what `run` reads (for tests and scripts)."""
    parser = argparse.ArgumentParser(prog="smoothie-jax route")
    parser.add_argument("data", metavar="QUERIES", help="jsonl(.gz), one instruction a line")
    parser.add_argument("-o", "--output", required=True, metavar="OUT.jsonl")
    parser.add_argument("--embedder", default="minilm", metavar="MODEL")
    cache = parser.add_mutually_exclusive_group()
    cache.add_argument("--cache-dir", metavar="DIR", default=None)
    cache.add_argument("--no-cache", action="store_true")
    parser.add_argument("--search", default="exact")
    add_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    """`python -m smoothie_jax.cli._route_texts ...`, until the route command calls `run`."""
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except (ValueError, OSError, RuntimeError) as e:
        print(f"smoothie-jax route: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

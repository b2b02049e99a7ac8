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

from .._router_io import load_router
from ..serve import TEXT_CHUNK_SIZE, route_texts
from ..text import text_encoder
from ._args import positive
from ._checks import check_file_target
from ._exit import EXIT_OK

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
    "no_answers": "--no-answers",
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
        default=TEXT_CHUNK_SIZE,
        metavar="N",
        help=f"with --router: queries embedded and routed at once (default {TEXT_CHUNK_SIZE})",
    )
    parser.set_defaults(embedder=Unnamed("minilm"), search=Unnamed("exact"))


def _named(args: argparse.Namespace, name: str) -> str | None:
    value = getattr(args, name, None)
    return None if value is None or isinstance(value, Unnamed) else value


def run(args: argparse.Namespace) -> int:
    """Routes DATA's instructions with the saved router (`args.router`); says how many
    it wrote."""
    given = [flag for dest, flag in _NOT_WITH_ROUTER.items() if getattr(args, dest, None)]
    if given:
        raise ValueError(f"{', '.join(given)} do not apply to a saved router (--router)")
    if _named(args, "search") is not None:
        raise ValueError("--search does not apply with --router: the saved router's own is used")
    check_file_target(args.output, "-o")
    router = load_router(args.router)
    encoder = text_encoder(
        router.embedder, _named(args, "embedder"), cache_dir=args.cache_dir, cache=not args.no_cache
    )
    n = route_texts(router, args.data, args.output, encoder=encoder, chunk_size=args.chunk_size)
    how = "" if router.embedder is None else f", embedded with {router.embedder.describe()}"
    print(
        f"Routed {n} queries of {args.data} with the router {args.router}{how}; "
        f"wrote {args.output}."
    )
    return EXIT_OK

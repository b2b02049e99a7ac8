"""`smoothie-jax route-stream`: route precomputed embeddings larger than memory.

Train-time calls `sj.scale.route_stream` with a saved router; test-time calls
`sj.fit_local_stream` and writes its weights with the library's record writer. The
records are those of `route` without ids: `idx` is the 0-based row of the `.npy` file.
"""

from __future__ import annotations

import argparse
import sys

from .._decision_records import DEFAULT_CHUNK_SIZE
from .._route import DEFAULT_K
from .._router_io import load_router
from ..scale import fit_local_stream, route_stream, write_decisions
from ._args import SUBCOMMAND, Subcommands, add_search_options, examples, help_text, search_of
from ._checks import check_file_target
from ._exit import EXIT_OK


def add_parser(commands: Subcommands) -> None:
    """Adds `route-stream` to the subcommands."""
    stream = commands.add_parser(
        "route-stream",
        help="route precomputed embeddings larger than memory, chunk by chunk",
        description=help_text(
            "Reads .npy embeddings memory-mapped, routes them chunk by chunk and writes "
            "the decisions as it goes (.npy of weights, or JSON lines), completing the "
            "file atomically. Train-time: --router SAVED --queries Q.npy. Test-time: "
            "--embeddings E.npy (n, models, dim) --inputs X.npy (n, input_dim) -k K."
        ),
        epilog=examples(
            "smoothie-jax route-stream --router router.eqx --queries queries.npy -o weights.npy"
        ),
        **SUBCOMMAND,
    )
    stream.add_argument("--router", default=None, help="a router saved by route --save-router")
    stream.add_argument("--queries", default=None, help=".npy of query input embeddings")
    stream.add_argument("--embeddings", default=None, help=".npy of output embeddings")
    stream.add_argument("--inputs", default=None, help=".npy of input embeddings")
    stream.add_argument(
        "-k", type=int, default=DEFAULT_K, help=f"neighbours, test-time (default {DEFAULT_K})"
    )
    add_search_options(stream, default=None)  # None: a saved router's own search
    stream.add_argument(
        "--chunk-size",
        type=int,
        default=DEFAULT_CHUNK_SIZE,
        help=f"rows in memory at once (default {DEFAULT_CHUNK_SIZE})",
    )
    stream.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUT",
        help=".npy for the weights, anything else for JSON lines "
        '{"idx" (the 0-based row), "model", "weights"}',
    )
    stream.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Routes the stream and says how many rows it wrote."""
    check_file_target(args.output, "-o")
    if args.router is not None:
        # Train-time: a saved router, a query stream read from a memory-mapped .npy.
        if args.queries is None:
            raise ValueError("give --queries with --router")
        n = route_stream(
            load_router(args.router),
            args.queries,
            args.output,
            chunk_size=args.chunk_size,
            progress=sys.stderr.isatty(),
            search=None if args.search is None else search_of(args),
        )
        print(f"Routed {n} queries with the router {args.router}; wrote {args.output}.")
        return EXIT_OK
    if args.embeddings is None or args.inputs is None:
        raise ValueError("give --embeddings and --inputs (test-time), or --router and --queries")
    # Test-time: output embeddings larger than memory stay on disk, read chunk by chunk.
    smoothie = fit_local_stream(
        args.embeddings,
        args.inputs,
        k=args.k,
        chunk_size=args.chunk_size,
        progress=sys.stderr.isatty(),
        search="exact" if args.search is None else search_of(args),
    )
    n = write_decisions(args.output, smoothie.weights, chunk_size=args.chunk_size)
    print(f"Routed {n} inputs with Smoothie-Local (k={args.k}); wrote {args.output}.")
    return EXIT_OK

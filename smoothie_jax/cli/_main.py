"""The `smoothie-jax` command: the parser, assembled from one module per command, and
`main`, which runs the chosen command and turns its errors into exit codes.

Exit codes: 0 success; 1 bad data or a failed run (the message says what); 2 bad usage;
130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from . import (
    _convert,
    _convert_zeroeval,
    _demo,
    _evaluate,
    _examples,
    _label,
    _prepare_mpnet,
    _route,
    _route_stream,
    _serve,
)
from ._exit import EXIT_ERROR as EXIT_ERROR
from ._exit import EXIT_INTERRUPTED as EXIT_INTERRUPTED
from ._exit import EXIT_OK as EXIT_OK
from ._exit import EXIT_USAGE as EXIT_USAGE

# In the order of `smoothie-jax --help`.
COMMANDS = (
    _route,
    _route_stream,
    _label,
    _serve,
    _evaluate,
    _convert,
    _convert_zeroeval,
    _prepare_mpnet,
    _examples,
    _demo,
)


def build_parser() -> argparse.ArgumentParser:
    """The whole command line: each command module adds its own subcommand."""
    parser = argparse.ArgumentParser(
        prog="smoothie-jax",
        description="Label-free LLM routing with Smoothie (Guha et al., NeurIPS 2024): "
        "estimate each model's quality from how much its outputs agree with the other "
        "models' outputs (no labels), then send each input to the best model.",
        epilog="Data files are jsonl (optionally .gz), one input a line: "
        '{"instruction": ..., "outputs": {model: text}, "scores": {model: number|null}}. '
        "Exit codes: 0 success, 1 bad data or failed run, 2 bad usage, 130 interrupted.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `smoothie-jax` and `python -m smoothie_jax`."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach the model hub
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except KeyboardInterrupt as e:
        # One line, no traceback. Output files are written atomically at the end, so an
        # interrupted run leaves them as they were; finished embeddings stay cached.
        what = str(e) if type(e).__name__ == "EmbedInterrupted" else "interrupted"
        print(f"smoothie-jax {args.command}: {what}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (ValueError, OSError, RuntimeError) as e:
        print(f"smoothie-jax {args.command}: error: {e}", file=sys.stderr)
        return EXIT_ERROR

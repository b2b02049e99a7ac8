"""`smoothie-jax convert-alpaca-eval`: an alpaca_eval results/ folder to a routing file.

One call of `sj.data.convert_alpaca_eval`.
"""

from __future__ import annotations

import argparse

from ..data import convert_alpaca_eval
from ._args import SUBCOMMAND, Subcommands, examples, help_text
from ._checks import check_file_target
from ._exit import EXIT_OK


def add_output(parser: argparse.ArgumentParser) -> None:
    """-o OUT: the routing file a converter writes (both converters share it)."""
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUT.jsonl.gz",
        help="the routing file to write (gzipped if it ends in .gz; written atomically)",
    )


def add_parser(commands: Subcommands) -> None:
    """Adds `convert-alpaca-eval` to the subcommands."""
    convert = commands.add_parser(
        "convert-alpaca-eval",
        help="convert an alpaca_eval results/ folder to routing format",
        description=help_text(
            "Reads results/<model>/model_outputs.json and the judge's annotations for "
            "each model, aligns them by instruction text, and writes a routing file with "
            "score = preference - 1 (a draw, 1.5 or 0, scores 0.5; a null preference "
            "stays null). An empty output is "
            "kept as an answer."
        ),
        epilog=examples(
            "smoothie-jax convert-alpaca-eval alpaca_eval/results -o alpaca_eval.jsonl.gz "
            "--models gpt4_turbo claude-3-opus Mixtral-8x7B-Instruct-v0.1"
        ),
        **SUBCOMMAND,
    )
    convert.add_argument(
        "results",
        metavar="RESULTS_DIR",
        help="the alpaca_eval results/ folder, one sub-folder per model",
    )
    add_output(convert)
    convert.add_argument(
        "--models",
        nargs="+",
        default=None,
        metavar="MODEL",
        help="model folders to include, in column order (default: every folder holding "
        "a model_outputs.json, sorted by name)",
    )
    convert.add_argument(
        "--annotator",
        default="weighted_alpaca_eval_gpt4_turbo",
        help="the annotations' sub-folder of each model (default weighted_alpaca_eval_gpt4_turbo)",
    )
    convert.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Converts and says how many inputs it wrote."""
    check_file_target(args.output, "-o")
    rows = convert_alpaca_eval(
        args.results, args.output, models=args.models, annotator=args.annotator
    )
    print(f"Wrote {rows} inputs to {args.output}.")
    return EXIT_OK

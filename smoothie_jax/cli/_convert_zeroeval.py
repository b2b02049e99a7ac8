"""`smoothie-jax convert-zeroeval`: a ZeroEval result folder (gsm or crux) to a routing file.

One call of `sj.data.convert_zeroeval`.
"""

from __future__ import annotations

import argparse

from ..data import convert_zeroeval
from ._args import SUBCOMMAND, Subcommands, examples, help_text
from ._checks import check_file_target
from ._convert import add_output
from ._exit import EXIT_OK


def model_column(text: str) -> tuple[str, str]:
    """`FILE` or `FILE=COLUMN`: a model's file name (without .json) and its column."""
    stem, _, column = text.partition("=")
    if not stem or (not column and text.endswith("=")):
        raise argparse.ArgumentTypeError(f"expected FILE or FILE=COLUMN, got {text!r}")
    return stem, column or stem


def add_parser(commands: Subcommands) -> None:
    """Adds `convert-zeroeval` to the subcommands."""
    convert = commands.add_parser(
        "convert-zeroeval",
        help="convert a ZeroEval result folder (gsm or crux) to routing format",
        description=help_text(
            "Reads <model>.json for each model of one ZeroEval task folder "
            "(result_dirs/gsm or result_dirs/crux), aligns the records by id, keeps the "
            "inputs every model has, and writes a routing file with each model's reply, "
            "its final answer as ZeroEval extracts it (null where none) and score 1 if "
            "ZeroEval judges it right, else 0, plus the gold answer as reference_output.",
        ),
        epilog=examples(
            "smoothie-jax convert-zeroeval ZeroEval/result_dirs/gsm -o gsm.jsonl.gz "
            "--models gpt-4o-2024-08-06 gemma-2-9b-it "
            "Llama-3.1-405B-Inst@sambanova=Meta-Llama-3.1-405B-Instruct"
        ),
        **SUBCOMMAND,
    )
    convert.add_argument(
        "results",
        metavar="RESULTS_DIR",
        help="a ZeroEval task folder, one <model>.json per model",
    )
    add_output(convert)
    convert.add_argument(
        "--models",
        nargs="+",
        type=model_column,
        default=None,
        metavar="FILE[=COLUMN]",
        help="model files to include (names without .json), in column order, each "
        "optionally renamed as FILE=COLUMN (default: every .json file, sorted by name)",
    )
    convert.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Converts and says how many inputs it wrote."""
    check_file_target(args.output, "-o")
    models = None
    if args.models is not None:
        stems = [stem for stem, _ in args.models]
        if len(set(stems)) != len(stems):
            raise ValueError(f"--models: a file is named twice in {stems}")
        models = dict(args.models)
    rows = convert_zeroeval(args.results, args.output, models=models)
    print(f"Wrote {rows} inputs to {args.output}.")
    return EXIT_OK

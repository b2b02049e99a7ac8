"""`smoothie-jax demo`: route data simulated from the paper's model, compare with truth.

One call of `sj.eval.evaluate_simulated`; prints its report.
"""

from __future__ import annotations

import argparse

from .._route import DEFAULT_K
from ..eval import evaluate_simulated
from ._args import SUBCOMMAND, Subcommands, examples, help_text
from ._exit import EXIT_OK


def add_parser(commands: Subcommands) -> None:
    """Adds `demo` to the subcommands."""
    demo = commands.add_parser(
        "demo",
        help="route data simulated from the paper's model and compare with the truth",
        description=help_text(
            "Simulates a two-task data set from Smoothie's Gaussian model, fits "
            "Smoothie-Global and -Local, and prints recovered against true quality."
        ),
        epilog=examples("smoothie-jax demo -n 2000 --models 5 --seed 0"),
        **SUBCOMMAND,
    )
    demo.add_argument("-n", type=int, default=5000, help="inputs to simulate (default 5000)")
    demo.add_argument("--models", type=int, default=5, help="number of models (default 5)")
    demo.add_argument("--dim", type=int, default=64, help="output embedding dim (default 64)")
    demo.add_argument(
        "--ratio", type=float, default=8.0, help="best-to-worst quality ratio (default 8)"
    )
    demo.add_argument(
        "-k", type=int, default=DEFAULT_K, help=f"neighbours for Local (default {DEFAULT_K})"
    )
    demo.add_argument("--seed", type=int, default=0, help="PRNG seed (default 0)")
    demo.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Simulates, fits and prints recovered against true quality."""
    result = evaluate_simulated(
        n_samples=args.n,
        n_models=args.models,
        dim=args.dim,
        ratio=args.ratio,
        k=args.k,
        seed=args.seed,
    )
    print(result.to_text())
    return EXIT_OK

"""`smoothie-jax evaluate`: the paper's AlpacaEval protocol on a scored file.

Every check runs first; then one call of `sj.eval.run_evaluation`, which runs the
analyses and writes their files; this module prints its table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from .._route import DEFAULT_K
from .._validate import MIN_MODELS, is_number
from ..data import read_labels
from ..eval import draw_splits, evaluate_labels, held_out_recipe, run_evaluation, write_json
from ._args import (
    DATA_HELP,
    SUBCOMMAND,
    Subcommands,
    add_answer_options,
    add_embedder_options,
    add_search_options,
    examples,
    families_arg,
    help_text,
    ks,
    natural,
    positive,
    search_of,
)
from ._checks import check_dir_target, check_embedder
from ._exit import EXIT_OK
from ._inputs import answers_of, data_notes, embed_inputs, embed_outputs, mask, read, say


def add_parser(commands: Subcommands) -> None:
    """Adds `evaluate` to the subcommands."""
    evaluate = commands.add_parser(
        "evaluate",
        help="the paper's AlpacaEval protocol on a scored file",
        description=help_text(
            "Draws seeded random ensembles of models and compares, per ensemble, the mean "
            "judge score of the outputs each method picks: random, best single model, "
            "per-input oracle, longest output, embedding medoid, Smoothie-Global, "
            "Smoothie-Local, and the labelled baselines Best-on-Val and labelled kNN. "
            "Prints a table and writes OUT/evaluation.json and OUT/evaluation.png.",
            DATA_HELP + " An input a model of an ensemble did not answer (or whose "
            "score is null) is left out of that ensemble.",
        ),
        epilog=examples(
            "smoothie-jax evaluate data/alpaca_eval_dev.jsonl.gz --ensembles 10 "
            "--size 5 --out results/alpaca_eval",
            cache=True,
        ),
        **SUBCOMMAND,
    )
    evaluate.add_argument("data", metavar="DATA", help="scored jsonl(.gz)")
    evaluate.add_argument("--ensembles", type=positive, default=10, help="ensembles (default 10)")
    evaluate.add_argument(
        "--size", type=positive, default=5, help="models per ensemble, >= 3 (default 5)"
    )
    evaluate.add_argument("--seed", type=natural, default=0, help="seed of the draws (default 0)")
    evaluate.add_argument(
        "--n-labelled",
        type=positive,
        default=50,
        metavar="N",
        help="labelled inputs per ensemble for Best-on-Val and labelled kNN (default 50); "
        "each ensemble needs more than 2 x N inputs with every score present",
    )
    evaluate.add_argument(
        "--ks",
        type=ks,
        default=[5, 20, 50],
        help="Smoothie-Local neighbourhood sizes (default 5,20,50)",
    )
    evaluate.add_argument(
        "--out",
        default="smoothie_evaluation",
        metavar="DIR",
        help="folder for the JSON and PNG (default smoothie_evaluation)",
    )
    evaluate.add_argument(
        "--posterior",
        action="store_true",
        help="also score the uncertainty-aware policies (posterior mean, most probably "
        "best, Thompson, abstention curve, quality-cost curve) and the label-budget curve "
        "(the posterior with 0-50 labels against the labelled baselines); writes "
        "uncertainty.json/.png and label_budget.json/.png",
    )
    evaluate.add_argument(
        "--costs",
        default=None,
        metavar="COSTS.json",
        help="cost per model, a JSON object {model: number}, for the quality-cost curves: "
        "the train-time frontier of the recommended router, and with --posterior the "
        "Local posterior's (example: examples/alpaca_eval_costs.json; default: none)",
    )
    evaluate.add_argument(
        "--families",
        metavar="JSON",
        default=None,
        help="model families, {model: family} inline or in a file, for the family-aware "
        "rows 'given' (rows 'found' use the independence test's groups)",
    )
    evaluate.add_argument(
        "--labels",
        metavar="FILE",
        default=None,
        help="scores a person gave a few inputs (a filled file of `smoothie-jax label`): "
        "scores the recommended router with them on the same ensembles, test-time (the "
        "labels among each ensemble's inputs, scored on the held-out inputs not labelled) "
        "and train-time (the labels among its past inputs), beside the label-free router "
        "and Best-on-Val on the same labels; writes OUT/labels.json",
    )
    evaluate.add_argument(
        "--posterior-model",
        choices=("additive", "wishart"),
        default="additive",
        help="posterior of --posterior: additive (default; D = a_i + a_j + a lack-of-fit "
        "term, honest where families break the consensus) or wishart (the earlier model "
        "that takes the paper's story as true)",
    )
    evaluate.add_argument(
        "--posterior-k",
        type=positive,
        default=DEFAULT_K,
        help=f"neighbours of the Local posteriors (default {DEFAULT_K})",
    )
    add_answer_options(evaluate)
    add_embedder_options(evaluate)
    add_search_options(evaluate)
    evaluate.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Checks, embeds, runs the protocol and prints its table."""
    start = time.perf_counter()
    # Every check first: a bad argument, path or file fails before any embedding.
    check_dir_target(args.out, "--out")
    families = families_arg(args.families)
    check_embedder(args)
    data = read(args.data, "DATA")
    if data.scores is None:
        raise ValueError(f"{args.data} has no scores: evaluate needs a judge score per output")
    m = len(data.models)
    if args.size < MIN_MODELS:
        raise ValueError(f"--size {args.size}: an ensemble needs at least {MIN_MODELS} models")
    if args.size > m:
        raise ValueError(
            f"--size {args.size} is more models per ensemble than {args.data} has ({m}: "
            f"{list(data.models)}); use --size {m} or fewer"
        )
    costs = read_costs(args.costs) if args.costs is not None else None
    if costs is not None and any(name not in costs for name in data.models):
        missing = [name for name in data.models if name not in costs]
        raise ValueError(f"--costs {args.costs} has no cost for models {missing}")
    observed = mask(data)
    scores = data.scores if observed is None else np.where(observed, data.scores, np.nan)
    try:  # the splits fail early on small files, before any embedding
        draw_splits(
            scores, ensembles=args.ensembles, size=args.size, seed=args.seed,
            n_labelled=args.n_labelled,
        )  # fmt: skip
    except ValueError as e:
        raise ValueError(
            f"{args.data} ({len(data)} inputs, --n-labelled {args.n_labelled}): {e}"
        ) from None
    labels = None if args.labels is None else read_labels(args.labels, data)
    if labels is not None and not len(labels[0]):
        say(f"No score is filled in {args.labels} yet: evaluating without labels.")
        labels = None
    held_out, held_out_note = held_out_recipe(args.data)
    outputs, inputs = embed_outputs(data, args), embed_inputs(data, args)
    answers = answers_of(data, args)
    result = run_evaluation(
        outputs,
        inputs,
        scores,
        data.lengths(),
        data.models,
        args.out,
        observed=observed,
        ensembles=args.ensembles,
        size=args.size,
        seed=args.seed,
        ks=args.ks,
        n_labelled=args.n_labelled,
        families=families,
        costs=costs,
        posterior=args.posterior,
        posterior_model=args.posterior_model,
        posterior_k=args.posterior_k,
        search=search_of(args),
        answers=answers,
        held_out_recipe=held_out,
        progress=sys.stderr.isatty(),
        log=say,
    )
    print(result.to_text())
    written = list(map(str, result.written))
    if labels is not None:
        scored = evaluate_labels(result.result, outputs, inputs, scores, labels, answers=answers)
        path = Path(args.out) / "labels.json"
        write_json(scored, path)
        written.append(str(path))
        print(f"\nWith the labels of {args.labels} (same ensembles; G = gap closed):")
        print(scored.to_text())
    print(f"\nLeave-one-set-out: {held_out_note}")
    notes = data_notes(data)
    if notes:
        print(f"\n{args.data}: {notes}.")
    print(
        f"\nEmbedder: {args.embedder}. Wrote {', '.join(written)} in "
        f"{time.perf_counter() - start:.0f} s."
    )
    return EXIT_OK


def read_costs(path: str) -> dict[str, float]:
    """--costs: a JSON object {model: cost}."""
    try:
        with open(path) as f:
            costs = json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON: {e}") from None
    if not isinstance(costs, dict) or not all(is_number(v) for v in costs.values()):
        raise ValueError(f"{path}: expected a JSON object {{model: number}}")
    return {str(k): float(v) for k, v in costs.items()}

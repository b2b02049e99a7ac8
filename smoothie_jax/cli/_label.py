"""`smoothie-jax label`: choose a few inputs for a person to score.

Writes them with every model's output and an empty score per output (the labels drop
only the models they show to be worse, so a model nobody scored can never be dropped);
`smoothie-jax route DATA --labels FILE` then reads whatever rows were filled.
"""

from __future__ import annotations

import argparse

import jax

from ..data import label_records, read_labels, write_jsonl
from ..posterior import certainty, suggest_labels
from ._args import (
    DATA_HELP,
    SUBCOMMAND,
    Subcommands,
    add_answer_options,
    add_embedder_options,
    examples,
    help_text,
    positive,
)
from ._checks import check_embedder, check_file_target
from ._exit import EXIT_OK
from ._inputs import answers_of, embed_outputs, mask, read


def add_parser(commands: Subcommands) -> None:
    """Adds `label` to the subcommands."""
    label = commands.add_parser(
        "label",
        help="choose a few inputs for a person to score (labels only drop worse models)",
        description=help_text(
            "Chooses inputs for a person to score (a fair draw; with answers, among the "
            "inputs where the models still in contention answer differently) and writes "
            "each with its instruction, every model's output and an empty score per "
            "output. Fill the scores (numbers, any scale, higher is better; leave null "
            "what you skip), then route with them: smoothie-jax route DATA --labels FILE. "
            "Labels only drop models they show to be worse.",
            DATA_HELP,
        ),
        epilog=examples(
            "smoothie-jax label data.jsonl --budget 10 -o to_label.jsonl",
            "smoothie-jax route data.jsonl --labels to_label.jsonl -o routes.jsonl",
            "smoothie-jax label data.jsonl --labels to_label.jsonl --budget 10 -o more.jsonl",
        ),
        **SUBCOMMAND,
    )
    label.add_argument("data", metavar="DATA", help="jsonl(.gz) of inputs and outputs")
    label.add_argument("--budget", type=positive, default=10, help="inputs to choose (10)")
    label.add_argument("-o", "--output", required=True, metavar="OUT", help="JSON lines")
    label.add_argument(
        "--labels",
        metavar="FILE",
        default=None,
        help="inputs scored already (a filled label file): they are not chosen again, and "
        "the models they drop no longer count as contenders",
    )
    label.add_argument("--seed", type=int, default=0, help="PRNG seed (ties, the posterior)")
    add_answer_options(label)
    add_embedder_options(label)
    label.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Chooses, writes the file to fill, says what to do next."""
    check_file_target(args.output, "-o")
    check_embedder(args)
    data = read(args.data, "DATA")
    if mask(data) is not None:
        raise ValueError(
            f"{args.data} has missing outputs: label needs every model's answer to every input"
        )
    labels = None if args.labels is None else read_labels(args.labels, data)
    if labels is not None and not len(labels[0]):
        labels = None  # nothing filled yet: as if none were given
    answers = answers_of(data, args)
    outputs = embed_outputs(data, args)
    key_sure = jax.random.key(args.seed)  # as `route` prints it
    key_suggest = jax.random.fold_in(key_sure, 1)
    unlabelled = len(data) - (0 if labels is None else len(labels[0]))
    rows = suggest_labels(
        outputs,
        min(args.budget, unlabelled),
        key=key_suggest,
        labels=labels,
        lengths=data.lengths(),
        answers=answers,
    )
    sure = certainty(outputs, key=key_sure, answers=answers, labels=labels)
    every = list(range(len(data.models)))
    write_jsonl(args.output, label_records(data, [int(i) for i in rows], every))
    print(sure.to_text(data.models, args.data).split(". To tell")[0] + ".")
    print(
        f"Wrote {len(rows)} inputs to score to {args.output} (the outputs of all "
        f'{len(every)} models). Fill each "scores" with numbers (higher is better; null to '
        "skip), then route with them:\n"
        f"  smoothie-jax route {args.data} --labels {args.output} -o routes.jsonl"
    )
    return EXIT_OK

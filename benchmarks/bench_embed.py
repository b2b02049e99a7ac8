"""Embedding throughput: outputs per second of a sentence-transformers model, CPU or GPU.

Texts are the outputs of a routing file (real LLM answers, so real lengths), embedded
as the library embeds them: longest first, the first `max_seq_length` word pieces of
each (256 for MiniLM), unit-norm. With `--fp16` the model runs in half precision; the
script then also embeds a sample in float32 and prints the cosine between the two, so
the speed-up is read beside what it costs in agreement.

    python benchmarks/bench_embed.py --data ../shared/data/alpaca_eval_v1_dev.jsonl.gz
    python benchmarks/bench_embed.py --model FOLDER --device cuda --fp16 --data FILE.jsonl.gz
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def load_texts(path: str | None, n: int) -> list[str]:
    """Up to n model outputs of a routing file; synthetic sentences without one."""
    if not path:
        words = "the model answers each question with a short and careful explanation".split()
        rng = np.random.default_rng(0)
        return [" ".join(rng.choice(words, size=rng.integers(20, 300))) for _ in range(n)]
    import smoothie_jax as sj

    data = sj.data.read_routing(path)
    texts = [o for row in data.outputs for o in row if o]
    return (texts * (n // max(len(texts), 1) + 1))[:n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="minilm", help="minilm, mpnet or a model folder")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--fp16", action="store_true", help="run the model in half precision")
    parser.add_argument("--data", default=None, help="routing file whose outputs are embedded")
    parser.add_argument("--n", type=int, default=8000, help="texts to embed (cycled)")
    parser.add_argument("--batch-size", type=int, default=None, help="default 32 CPU, 256 GPU")
    args = parser.parse_args()
    os.environ["HF_HUB_OFFLINE"] = "1"
    import torch
    from sentence_transformers import SentenceTransformer

    from smoothie_jax.text import resolve_model

    path = resolve_model(args.model) if args.model in ("minilm", "mpnet") else args.model
    st = SentenceTransformer(str(path), device=args.device, local_files_only=True)
    if args.fp16:
        st = st.half()
    batch = args.batch_size or (256 if args.device != "cpu" else 32)
    texts = sorted(load_texts(args.data, args.n), key=len, reverse=True)
    tokens = st.tokenizer(texts, truncation=True, max_length=st.max_seq_length)["input_ids"]
    n_tokens = sum(len(t) for t in tokens)

    def run(xs: list[str]) -> np.ndarray:
        out = st.encode(xs, batch_size=batch, normalize_embeddings=True, convert_to_numpy=True)
        if args.device != "cpu":
            torch.cuda.synchronize()
        return out

    run(texts[: 2 * batch])  # warm-up: kernels, allocator
    start = time.perf_counter()
    vectors = run(texts)
    seconds = time.perf_counter() - start
    name = torch.cuda.get_device_name() if args.device != "cpu" else f"{os.cpu_count()} CPU cores"
    print(
        f"{args.model} on {name}, "
        f"{'fp16' if args.fp16 else 'fp32'}, batch {batch}, max_seq_length {st.max_seq_length}: "
        f"{len(texts):,} outputs ({n_tokens / len(texts):.0f} word pieces each, mean) in "
        f"{seconds:.2f} s = {len(texts) / seconds:,.0f} outputs/s, {n_tokens / seconds:,.0f} "
        "word pieces/s"
    )
    if args.fp16:
        sample = texts[:: max(len(texts) // 500, 1)]
        st32 = SentenceTransformer(str(path), device=args.device, local_files_only=True).float()
        exact = st32.encode(sample, batch_size=batch, normalize_embeddings=True)
        half = vectors[:: max(len(texts) // 500, 1)][: len(sample)]
        cos = np.sum(exact * half, axis=1)
        print(f"fp16 against fp32 arithmetic, same weights, {len(sample)} outputs: cosine "
              f"min {cos.min():.5f}, mean {cos.mean():.6f}")  # fmt: skip


if __name__ == "__main__":
    main()

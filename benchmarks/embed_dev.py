"""Embed a routing file once and save what the dev benchmarks read (a .npz).

    python benchmarks/embed_dev.py data/alpaca_eval_dev.jsonl.gz OUT.npz

Saves `embeddings` (n, m, dim) of the outputs, `inputs` (n, dim) of the instructions,
`scores` (n, m, NaN unjudged), `lengths` (n, m characters), `observed` (n, m), `models`
and, where the file has final answers, `answers` (n, m integer codes, -1 none), with the
library's embedder (MiniLM by default, first 256 word pieces) and its
on-disk cache, so a second run embeds nothing. An output that is missing (null) is
embedded as the empty text and marked unobserved.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
from pathlib import Path

import numpy as np

import smoothie_jax as sj


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data", help="routing file (JSONL, optionally .gz) with outputs")
    parser.add_argument("out", help="the .npz to write")
    parser.add_argument("--embedder", default="minilm", help="minilm, mpnet or a folder")
    parser.add_argument("--rows", type=int, default=None, help="only the first N inputs")
    args = parser.parse_args()
    out = Path(args.out)
    if not out.parent.is_dir():
        parser.error(f"the folder of {out} does not exist")
    data = sj.data.read_routing(args.data)
    if args.rows is not None:  # a slow embedder's sample: the first N inputs
        cut = slice(0, args.rows)
        data = dataclasses.replace(
            data,
            **{
                f: getattr(data, f)[cut]
                for f in ("instructions", "outputs", "scores", "ids", "extra")
            },
            answers=None if data.answers is None else data.answers[cut],
        )
    if data.scores is None:
        parser.error(f"{args.data} has no scores: the dev benchmarks need judge scores")
    n, m = len(data), len(data.models)
    texts = [o or "" for row in data.outputs for o in row]
    embeddings = sj.text.embed(texts, model=args.embedder, progress=True).reshape(n, m, -1)
    inputs = sj.text.embed(data.instructions, model=args.embedder, progress=True)
    # Written beside the target and renamed: an interrupted run leaves the old file whole.
    fd, tmp = tempfile.mkstemp(dir=out.parent, suffix=".npz")
    with os.fdopen(fd, "wb") as f:
        np.savez(
            f,
            embeddings=embeddings,
            inputs=inputs,
            scores=data.scores,
            lengths=data.lengths(),
            observed=data.observed,
            models=np.array(data.models),
            **({} if data.answers is None else {"answers": data.answer_codes()}),
        )
    os.replace(tmp, out)
    print(f"{out}: {n} inputs x {m} models, dim {embeddings.shape[-1]}")


if __name__ == "__main__":
    main()

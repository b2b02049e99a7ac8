"""Plot search time against recall, one panel per data set, from bench_search.py's JSON.

`bench_search.py` calls `plot` at the end of a run; to redraw from its JSON:

    python benchmarks/plot_search.py benchmarks/results/search.json \
        -o benchmarks/results/search.png
"""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

STYLE = {  # method: (marker, colour, legend)
    "exact": ("X", "black", "exact (ours)"),
    "faiss-flat": ("P", "grey", "faiss flat (exact)"),
    "ours": ("*", "crimson", "ours (nlist/nprobe)"),
    "ours-jax": ("o", "crimson", "ours, backend=jax"),
    "ours-faiss": ("D", "darkorange", "ours, backend=faiss"),
    "ours-q": ("v", "darkorange", "ours, any queries"),
    "ours-q-jax": ("v", "crimson", "ours, any queries, backend=jax"),
    "ivf": ("s", "royalblue", "faiss IVF-Flat (nlist/nprobe)"),
    "hnsw": ("^", "seagreen", "faiss HNSW"),
}


def plot(rows: list[dict], out: str) -> None:
    """Time (build + search, log scale) against recall@k, one panel per (n, dim, data)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = [r for r in rows if "time_s" in r]
    panels = sorted({(r["n"], r["dim"], r["data"]) for r in rows})
    cols = min(2, len(panels))  # two a row: readable at a page's width
    nrows = -(-len(panels) // cols)
    fig = Figure(figsize=(max(4.2 * cols, 6.0), 3.6 * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, cols, squeeze=False).ravel()
    for ax, (n, dim, data) in zip(axes, panels):
        seen = set()
        low = min(r["recall"] for r in rows if (r["n"], r["dim"], r["data"]) == (n, dim, data))
        for r in rows:
            if (r["n"], r["dim"], r["data"]) != (n, dim, data):
                continue
            marker, colour, name = STYLE[r["method"]]
            hollow = r.get("extrapolated")
            ax.plot(
                r["recall"],
                r["time_s"],
                marker,
                color=colour,
                markerfacecolor="none" if hollow else colour,
                markersize=11 if marker == "*" else 7,
                label=None if r["method"] in seen else name,
            )
            seen.add(r["method"])
            if r["method"] in ("ivf", "ours"):
                note = f"{r['n_cells']}/{r['nprobe']}"
                ax.annotate(
                    note,
                    (r["recall"], r["time_s"]),
                    fontsize=7,
                    xytext=(4, -3),
                    textcoords="offset points",
                )
        ax.set_yscale("log")
        margin = 0.1 * (1 - low) + 0.001  # recalls near 1 spread over the panel
        ax.set_xlim(max(0.0, low - margin), 1 + margin / 2)
        if low < 0.95:
            ax.axvline(0.95, color="grey", ls=":", lw=1)
        ax.set_title(f"n = {n:,}, dim {dim}, {data}", fontsize="medium")
        ax.set_xlabel("recall@k (on the sample)")
        ax.set_ylabel("build + search (s)")
        ax.legend(fontsize="x-small", loc="best")
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    fig.suptitle("k-NN of every point, CPU (hollow: extrapolated from a sample)")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    Path(out).write_bytes(buffer.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json", help="bench_search.py's --json output")
    parser.add_argument("-o", "--out", required=True)
    args = parser.parse_args()
    plot(json.loads(Path(args.json).read_text())["rows"], args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

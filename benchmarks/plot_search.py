"""Plot fit_local time against n for the exact and the approximate (IVF) search.

Reads the JSON rows that `bench_approx.py --json` wrote (and, for exact beyond what that
script ran, `bench_scaling.py`'s rows), writes one PNG:

    python benchmarks/plot_search.py benchmarks/results/approx.json \
        benchmarks/results/approx_more.json --scaling benchmarks/results/scaling.json \
        -o benchmarks/results/search_scaling.png
"""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", nargs="+", help="bench_approx.py --json outputs")
    parser.add_argument("--scaling", default=None, help="bench_scaling.py --json output")
    parser.add_argument("-o", "--out", required=True)
    args = parser.parse_args()

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    series: dict[str, dict[int, float]] = {}
    for path in args.rows:
        for row in json.loads(Path(path).read_text()):
            name = (
                "exact"
                if row["method"] == "exact"
                else row["method"].replace("ivf", "approximate,")
            )
            series.setdefault(name, {})[row["n"]] = row["fit_s"]
    if args.scaling:
        for row in json.loads(Path(args.scaling).read_text())["rows"]:
            series.setdefault("exact (bench_scaling.py)", {})[row["n"]] = row["fit_s"]

    fig = Figure(figsize=(7, 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    for name, points in sorted(series.items()):
        ns = sorted(points)
        ax.plot(ns, [points[n] for n in ns], "o-", label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.axhline(600, color="grey", ls=":", lw=1)
    ax.text(1.1e4, 650, "10 minutes", color="grey", fontsize="small")
    ax.set_xlabel("n (inputs)")
    ax.set_ylabel("fit_local wall time (s), compilation included")
    ax.set_title("Smoothie-Local on a 2-core CPU: m=5, dim=384, k=20")
    ax.legend(fontsize="small")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=150)
    Path(args.out).write_bytes(buffer.getvalue())
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

"""The `smoothie-jax` command. It only calls the library's stages; nothing here computes."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


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
    print(f"Simulated {args.n} inputs, {args.models} models, dim {args.dim}, 2 tasks "
          f"(seed {args.seed}).")

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="smoothie-jax",
        description="Label-free LLM routing with Smoothie: estimate each model's quality "
        "from the agreement between models' outputs, then route each input to the best.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser(
        "demo",
        help="route data simulated from the paper's model and compare with the truth",
        description="Simulates a two-task data set from Smoothie's Gaussian model, fits "
        "Smoothie-Global and -Local, and prints recovered against true quality.",
    )
    demo.add_argument("-n", type=int, default=5000, help="inputs to simulate (default 5000)")
    demo.add_argument("--models", type=int, default=5, help="number of models (default 5)")
    demo.add_argument("--dim", type=int, default=64, help="output embedding dim (default 64)")
    demo.add_argument("--ratio", type=float, default=8.0,
                      help="best-to-worst quality ratio (default 8)")
    demo.add_argument("-k", type=int, default=20, help="neighbours for Local (default 20)")
    demo.add_argument("--seed", type=int, default=0, help="PRNG seed (default 0)")
    demo.set_defaults(run=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point. Exit codes: 0 success, 1 bad data or failed run, 2 bad usage."""
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except ValueError as e:
        print(f"smoothie-jax {args.command}: error: {e}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())

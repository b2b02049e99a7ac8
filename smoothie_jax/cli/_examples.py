"""`smoothie-jax examples DIR`: copies the example files that ship with the package.

A newcomer who installed the wheel has no clone: the quiz files (a small routing file,
its past traffic and new queries) and the gateway's upstream table travel inside the
wheel (`smoothie_jax/_examples`, pyproject.toml's force-include); a clone reads them from
`examples/`. Existing files are never overwritten.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from ._args import SUBCOMMAND, Subcommands, examples, help_text
from ._exit import EXIT_OK

FILES = (
    "quiz.jsonl",
    "quiz_train.jsonl",
    "quiz_queries.jsonl",
    "upstreams.toml",
    "upstreams_fake.toml",
)


def example_dir() -> Path:
    """Where the shipped examples are: inside the installed wheel, else in the clone."""
    package = Path(__file__).resolve().parents[1]
    inside = package / "_examples"
    if inside.is_dir():
        return inside
    clone = package.parent / "examples"
    if (clone / "data" / FILES[0]).is_file():
        return clone
    raise FileNotFoundError(
        f"the example files are neither in {inside} (a wheel) nor in {clone} (a clone)"
    )


def example_file(name: str) -> Path:
    """One shipped example file by name (the clone keeps the data files in data/)."""
    root = example_dir()
    return root / name if (root / name).is_file() else root / "data" / name


def add_parser(commands: Subcommands) -> None:
    """Adds `examples` to the subcommands."""
    parser = commands.add_parser(
        "examples",
        help="copy the example files (a quiz to route, past traffic, upstreams) into DIR",
        description=help_text(
            "Copies the example files that ship with the package into DIR: quiz.jsonl (60 "
            "questions answered by 5 models), quiz_train.jsonl and quiz_queries.jsonl (past "
            "traffic and new queries, for train-time routing and the gateway), "
            "upstreams.toml (where a gateway sends each model) and upstreams_fake.toml "
            "(every model served by the fake upstream that ships, to try the gateway "
            "without keys). Existing files are kept."
        ),
        epilog=examples(
            "smoothie-jax examples try && smoothie-jax route try/quiz.jsonl -o try/routes.jsonl"
        ),
        **SUBCOMMAND,
    )
    parser.add_argument("dir", help="the folder to copy them into (made if missing)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Copies each file not already in DIR and says what to run next."""
    target = Path(args.dir)
    target.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        destination = target / name
        if destination.exists():
            print(f"kept {destination} (already there)")
            continue
        shutil.copyfile(example_file(name), destination)
        print(f"wrote {destination}")
    print(
        f"\nNext: smoothie-jax route {target / 'quiz.jsonl'} -o {target / 'routes.jsonl'}\n"
        f"      smoothie-jax route {target / 'quiz_queries.jsonl'} --train "
        f"{target / 'quiz_train.jsonl'} -o {target / 'new_routes.jsonl'} "
        f"--save-router {target / 'router.eqx'}"
    )
    return EXIT_OK

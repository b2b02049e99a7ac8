"""Arguments shared by the commands (`cli._args`): bad values are named, as usage errors
(exit 2) or, where a file or the data must be read, as errors of the run (exit 1)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

import smoothie_jax as sj
from smoothie_jax.cli._args import families_arg, ks, level, natural, positive, search_of
from smoothie_jax.cli._exit import EXIT_USAGE
from smoothie_jax.cli._main import main


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--ensembles", "0", "--ensembles: must be >= 1, got 0"),
        ("--ensembles", "x", "--ensembles: expected an int, got 'x'"),
        ("--seed", "-1", "--seed: must be >= 0, got -1"),
        ("--ks", "0,5", "--ks: every k must be >= 1, got '0,5'"),
        ("--ks", "5,a", "--ks: expected comma-separated ints, got '5,a'"),
    ],
)
def test_bad_counts_are_named(
    capsys: pytest.CaptureFixture, flag: str, value: str, message: str
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", "x.jsonl", flag, value])
    assert exit_info.value.code == EXIT_USAGE
    assert message in capsys.readouterr().err


def test_value_types() -> None:
    assert positive("3") == 3 and natural("0") == 0 and ks("5,20") == [5, 20]
    assert level("0.95") == 0.95
    for parse, text in [(positive, "0"), (natural, "-1"), (level, "1"), (level, "x")]:
        with pytest.raises(argparse.ArgumentTypeError):
            parse(text)


def test_families_inline_or_in_a_file(tmp_path: Path) -> None:
    assert families_arg(None) is None
    assert families_arg('{"a": "f", "b": 2}') == {"a": "f", "b": "2"}
    path = tmp_path / "families.json"
    path.write_text(json.dumps({"a": "f"}))
    assert families_arg(str(path)) == {"a": "f"}
    with pytest.raises(ValueError, match="not a JSON object"):
        families_arg("{a")
    with pytest.raises(ValueError, match="must be a JSON object"):
        families_arg("[1]")


def _search_args(
    search: str | None, cells: int | None = None, nprobe: int | None = None
) -> argparse.Namespace:
    return argparse.Namespace(search=search, cells=cells, nprobe=nprobe)


def test_search_names_and_the_inverted_files_options() -> None:
    assert search_of(_search_args("exact")) == sj.Search.parse("exact")
    assert search_of(_search_args("approx")) == sj.Search.parse("approx-max-k")  # old alias
    spec = search_of(_search_args("ivf", cells=16, nprobe=2))
    assert spec.method == "approximate" and spec.n_cells == 16 and spec.nprobe == 2
    with pytest.raises(ValueError, match="--cells and --nprobe apply to --search approximate"):
        search_of(_search_args("bf16", cells=4))

"""The alpaca_eval converter: a `results/` folder of outputs and annotations -> one routing file."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from .._validate import MIN_MODELS, is_number
from ._read import read_json
from ._schema import PathLike, data_error
from ._write import nullable, write_jsonl

DEFAULT_ANNOTATOR = "weighted_alpaca_eval_gpt4_turbo"


def _short(text: str, limit: int = 80) -> str:
    """A one-line excerpt for error messages; instructions can be pages long."""
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _score(pref: float | None) -> float:
    """A model's score from its preference: NaN if unjudged, 0.5 for a draw (1.5 or 0).

    alpaca_eval codes a baseline win as 1, a model win as 2 and a draw as 1.5 or 0 (its
    `metrics/winrate.py`); older annotators such as `alpaca_eval_gpt4` write 0.
    """
    if pref is None:
        return math.nan
    return 0.5 if pref == 0 else float(pref) - 1.0


def _records_by_instruction(path: Path, model: str, required: Sequence[str]) -> dict[str, dict]:
    """Loads a JSON list of objects keyed by instruction, one object per instruction."""
    content = read_json(path)
    if not isinstance(content, list):
        raise data_error(path, None, f"expected a JSON list, got {type(content).__name__}")
    by_instruction: dict[str, dict] = {}
    for i, item in enumerate(content):
        if not isinstance(item, dict):
            raise data_error(path, None, f"item {i} is not an object")
        for key in required:
            if not isinstance(item.get(key), str):
                raise data_error(path, None, f"item {i} has no string {key!r}")
        instruction = item["instruction"]
        if instruction in by_instruction:
            raise data_error(
                path,
                None,
                f"model {model!r} has two entries for instruction "
                f"{_short(instruction)}; alignment by instruction needs exactly one",
            )
        by_instruction[instruction] = item
    if not by_instruction:
        raise data_error(path, None, "empty list")
    return by_instruction


def _check_same_instructions(
    path: Path, model: str, have: Mapping[str, Any], want: Sequence[str], against: str
) -> None:
    missing = [s for s in want if s not in have]
    if missing:
        raise data_error(
            path,
            None,
            f"model {model!r} lacks {len(missing)} instruction(s) of {against}, "
            f"e.g. {_short(missing[0])}",
        )
    wanted = set(want)
    extra = [s for s in have if s not in wanted]
    if extra:
        raise data_error(
            path,
            None,
            f"model {model!r} has {len(extra)} instruction(s) not in {against}, "
            f"e.g. {_short(extra[0])}",
        )


def convert_alpaca_eval(
    results_dir: PathLike,
    out_path: PathLike,
    *,
    models: Sequence[str] | None = None,
    annotator: str = DEFAULT_ANNOTATOR,
) -> int:
    """Converts an alpaca_eval `results/` folder to one routing file.

    Reads `results/<model>/model_outputs.json` and
    `results/<model>/<annotator>/annotations.json` for each model and aligns them by
    instruction text, not position. A model's score is the annotator's preference minus 1
    (preference in [1, 2], `output_2` being the model's output; null stays null), except
    that a preference of 0, alpaca_eval's other code for a draw, scores 0.5. Each line
    also keeps `dataset`, and the baseline's `output_1` and `generator_1` as
    `reference_output` and `reference_generator`. Rows follow the first model's order.

    Args:
        results_dir: the alpaca_eval `results` folder.
        out_path: the routing file to write (gzipped if it ends in `.gz`), atomically.
        models: model folder names, in column order; by default every folder holding a
            `model_outputs.json`, sorted by name.
        annotator: the annotations' sub-folder.

    Returns:
        The number of lines written.

    Raises:
        DataError: a file is malformed, a model has no entry or two entries for an
            instruction, instruction sets differ between models or between a model's
            outputs and its annotations, an annotation's `output_2` differs from the
            model's output, a preference is neither 0 nor in [1, 2], or fewer than 3
            models.
        FileNotFoundError: a missing folder or file.
    """
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise FileNotFoundError(f"{results_dir}: no such folder")
    if models is None:
        models = sorted(p.parent.name for p in results_dir.glob("*/model_outputs.json"))
    if len(models) < MIN_MODELS:
        raise data_error(
            results_dir,
            None,
            f"{len(models)} models {list(models)}; Smoothie needs at least {MIN_MODELS}",
        )

    order: list[str] = []  # instructions, in the first model's order
    outputs: dict[str, dict[str, str]] = {}
    scores: dict[str, dict[str, float]] = {}
    first_items: dict[str, dict] = {}
    references: dict[str, dict] = {}
    for name in models:
        out_file = results_dir / name / "model_outputs.json"
        items = _records_by_instruction(out_file, name, ("instruction", "output"))
        if not order:
            order, first_items = list(items), items
            empty = [s for s in order if not s.strip()]
            if empty:
                raise data_error(out_file, None, f"model {name!r} has an empty instruction")
        else:
            _check_same_instructions(out_file, name, items, order, f"model {models[0]!r}")
        ann_file = results_dir / name / annotator / "annotations.json"
        annotations = _records_by_instruction(
            ann_file, name, ("instruction", "output_1", "output_2")
        )
        _check_same_instructions(ann_file, name, annotations, order, "its model_outputs.json")
        outputs[name], scores[name] = {}, {}
        for instruction in order:
            # An empty output is an answer (a poor one): it is kept, not refused.
            text, ann = items[instruction]["output"], annotations[instruction]
            if ann["output_2"] != text:
                raise data_error(
                    ann_file,
                    None,
                    f"model {name!r}: output_2 for instruction "
                    f"{_short(instruction)} differs from model_outputs.json",
                )
            pref = ann.get("preference")
            if pref is not None and not (is_number(pref) and (pref == 0 or 1 <= pref <= 2)):
                raise data_error(
                    ann_file,
                    None,
                    f"model {name!r}: preference {pref!r} for instruction "
                    f"{_short(instruction)} is not a number in [1, 2] nor 0 (a draw)",
                )
            outputs[name][instruction] = text
            scores[name][instruction] = _score(pref)
            references.setdefault(instruction, ann)

    def records() -> Iterator[dict]:
        for idx, instruction in enumerate(order):
            ann = references[instruction]
            record: dict[str, Any] = {"idx": idx, "instruction": instruction}
            if "dataset" in first_items[instruction]:
                record["dataset"] = first_items[instruction]["dataset"]
            record["outputs"] = {name: outputs[name][instruction] for name in models}
            record["scores"] = {name: nullable(scores[name][instruction]) for name in models}
            record["reference_output"] = ann["output_1"]
            if "generator_1" in ann:
                record["reference_generator"] = ann["generator_1"]
            yield record

    return write_jsonl(out_path, records())

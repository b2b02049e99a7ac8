"""The reference Smoothie code's layout: an inputs jsonl plus one generations file per model."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .._validate import MIN_MODELS
from ._read import check_answer, check_id, check_text, iter_jsonl, read_json
from ._schema import RESERVED, PathLike, RoutingData, data_error

# Fields tried, in order, for the input text of the reference code's per-dataset jsonl.
_TEXT_FIELDS = ("instruction", "embedding_input", "input")


def read_reference_layout(
    inputs_path: PathLike,
    outputs_dir: PathLike,
    *,
    models: Sequence[str] | None = None,
    text_field: str | None = None,
    suffix: str = "",
) -> RoutingData:
    """Reads the reference Smoothie code's layout: an inputs jsonl plus one file per model.

    The inputs file has one JSON object per line holding the input text under
    `text_field`; by default the first of `instruction`, `embedding_input` (the field
    the reference code embeds) or `input` present on line 1, then required on every
    line. Each model's outputs are in `outputs_dir/{model}{suffix}.json` as
    `{"generations": [text, ...]}`, aligned by position with the input lines.

    Args:
        inputs_path: the inputs jsonl (gzipped or not).
        outputs_dir: folder of per-model generation files.
        models: model names, in column order; by default every `*{suffix}.json` in
            `outputs_dir`, sorted by name.
        text_field: the inputs' text field; see above.
        suffix: file-name suffix, e.g. `"_test"` for the reference's `{model}_test.json`.

    Returns:
        Routing data without scores; the other keys of each input line go to `extra`.
        A null generation is a model that did not answer (None, `observed` False).

    Raises:
        DataError: a malformed inputs or generations file, generations not aligned
            with the inputs (a different count), or fewer than 3 models.
        FileNotFoundError: a missing file or folder.
    """
    inputs_path, outputs_dir = Path(inputs_path), Path(outputs_dir)
    if not outputs_dir.is_dir():
        raise FileNotFoundError(f"{outputs_dir}: no such folder")
    if models is None:
        ending = f"{suffix}.json"
        models = sorted(p.name[: -len(ending)] for p in outputs_dir.glob(f"*{ending}"))
    if len(models) < MIN_MODELS:
        raise data_error(
            outputs_dir,
            None,
            f"{len(models)} models {list(models)}; "
            f"Smoothie needs at least {MIN_MODELS} ({{model}}{suffix}.json files)",
        )
    if len(set(models)) != len(models):
        raise ValueError(f"models must be distinct, got {list(models)}")

    instructions: list[str] = []
    ids: list = []
    extra: list[dict] = []
    seen_ids: dict = {}
    for line, record in iter_jsonl(inputs_path):
        if text_field is None:
            text_field = next((f for f in _TEXT_FIELDS if f in record), None)
            if text_field is None:
                raise data_error(inputs_path, line, f"no input text field (one of {_TEXT_FIELDS})")
        if text_field not in record:
            raise data_error(inputs_path, line, f"missing {text_field!r}")
        instructions.append(check_text(inputs_path, line, record[text_field], repr(text_field)))
        ids.append(check_id(inputs_path, line, record, seen_ids))
        rest = {k: v for k, v in record.items() if k not in (text_field, "idx")}
        clash = [k for k in RESERVED if k in rest]
        if clash:
            raise data_error(
                inputs_path, line, f"key {clash[0]!r} beside the text field {text_field!r}"
            )
        extra.append(rest)
    if not instructions:
        raise data_error(inputs_path, None, "file is empty (no JSON lines)")

    columns = []
    for name in models:
        path = outputs_dir / f"{name}{suffix}.json"
        content = read_json(path)
        generations = content.get("generations") if isinstance(content, dict) else None
        if not isinstance(generations, list):
            raise data_error(path, None, "expected an object with a 'generations' list")
        if len(generations) != len(instructions):
            raise data_error(
                path,
                None,
                f"model {name!r} has {len(generations)} generations but "
                f"{inputs_path} has {len(instructions)} inputs; they must align line by line",
            )
        for i, text in enumerate(generations):
            if isinstance(text, list):
                raise data_error(path, None, f"generations[{i}] is a list; one text per input only")
            # Name the input line too: that is where a reader will look. "" is an answer,
            # null means the model did not answer this input.
            check_answer(path, None, text, f"generations[{i}] (input {ids[i]!r}) of model {name!r}")
        columns.append(generations)
    outputs = [list(row) for row in zip(*columns, strict=True)]
    return RoutingData(instructions, tuple(models), outputs, None, ids, extra)

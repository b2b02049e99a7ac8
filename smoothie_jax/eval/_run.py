"""One evaluation run end to end: every analysis on the same splits, and the files.

`run_evaluation` is what `smoothie-jax evaluate` does once the file is read and
embedded: the routing table (`evaluate`) with the family-aware rows
(`evaluate_families`), the independence test on all models, and, with
`posterior=True`, the posterior policies (`evaluate_uncertainty`) and the label-budget
curve (`label_budget`). Each stage's JSON and PNG are written atomically as soon as it
is done, so an interrupted run keeps the files of the stages it finished.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from jaxtyping import Float, Real

from .. import _validate
from .._family_design import Families
from .._search import Search
from .._signals import Recipe
from ..data import write_jsonl
from ..families import Diagnosis, diagnose
from ._families import evaluate_families
from ._json import write_json
from ._labels import LabelBudgetResult, label_budget
from ._plots import plot_evaluation, plot_label_budget, plot_uncertainty
from ._protocol import evaluate
from ._result import EvaluationResult
from ._uncertainty import UncertaintyResult, evaluate_uncertainty

LABEL_BUDGETS = (0, 5, 10, 20, 50)  # labelled inputs of the curve, up to n_labelled
POSTERIOR_MODELS = ("additive", "wishart")


@dataclasses.dataclass(frozen=True)
class EvaluationRun:
    """What `run_evaluation` measured, and the files it wrote.

    Attributes:
        result: the routing table, family-aware rows included.
        families: per ensemble, the family diagnosis and what each family-aware policy
            did (the lines of families.jsonl).
        diagnosis: the independence test on all models together, over the inputs every
            model answered; None when it could not run.
        diagnosis_error: why the independence test could not run ("" when it ran).
        uncertainty: the posterior policies (with `posterior=True`, else None).
        label_budget: the label-budget curve (with `posterior=True`, else None).
        written: the files written, in the order the report lists them.
    """

    result: EvaluationResult
    families: tuple[dict, ...]
    diagnosis: Diagnosis | None
    diagnosis_error: str
    uncertainty: UncertaintyResult | None
    label_budget: LabelBudgetResult | None
    written: tuple[Path, ...]

    def to_text(self) -> str:
        """The report: the table, the independence test, and the posterior sections."""
        sections = [self.result.to_text()]
        if self.diagnosis is not None:
            test = self.diagnosis.to_text(self.result.models)
            sections.append(f"\nAll models together:\n{test}")
        else:
            why = self.diagnosis_error
            sections.append(f"\nAll models together: no independence test ({why}).")
        if self.uncertainty is not None:
            sections += [
                "\nRouting under uncertainty (same ensembles and held-out inputs):\n",
                self.uncertainty.to_text(),
            ]
        if self.label_budget is not None:
            sections += [
                "\nA few labels (same splits; labels drawn from each ensemble's labelled rows):\n",
                self.label_budget.to_text(),
            ]
        return "\n".join(sections)

    def __str__(self) -> str:
        return self.to_text()


def run_evaluation(
    outputs: Float[_validate.ArrayLike, "n_samples n_models dim"],
    inputs: Float[_validate.ArrayLike, "n_samples input_dim"],
    scores: Float[np.ndarray, "n_samples n_models"],
    lengths: Real[np.ndarray, "n_samples n_models"],
    models: Sequence[str],
    out: str | os.PathLike,
    *,
    observed: np.ndarray | None = None,
    ensembles: int = 10,
    size: int = 5,
    seed: int = 0,
    ks: Sequence[int] = (5, 20, 50),
    n_labelled: int = 50,
    families: Families | None = None,
    costs: Mapping[str, float] | None = None,
    posterior: bool = False,
    posterior_model: Literal["additive", "wishart"] = "additive",
    posterior_k: int = 20,
    search: str | Search = "exact",
    answers: np.ndarray | None = None,
    held_out_recipe: Recipe | None = None,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
) -> EvaluationRun:
    """Runs every analysis of the evaluation on one set of splits and writes the files.

    Writes, in `out` (created if needed): families.jsonl, evaluation.json and
    evaluation.png; with `posterior`, also uncertainty.json/.png and
    label_budget.json/.png. Every file is written atomically.

    Args:
        outputs: embedding of each model's output for each input.
        inputs: embedding of each input.
        scores: judge score of each output, higher is better; NaN where missing.
        lengths: length of each output (e.g. in characters).
        models: one name per model (column).
        out: the folder of the files.
        observed: True where model j answered input i; an unanswered output counts as a
            missing score, and the independence test reads only inputs every model
            answered.
        ensembles: as in `evaluate`.
        size: as in `evaluate`.
        seed: as in `evaluate`.
        ks: as in `evaluate`.
        n_labelled: as in `evaluate`.
        families: known families {model: family} for the family-aware rows "given" (and
            the independence test's family check).
        costs: cost of one call to each model, by name: the train-time quality-cost
            frontier and, with `posterior`, the Local posterior's cost curve (every
            cost 1 when None, and no frontier).
        posterior: also score the posterior policies and the label-budget curve (on
            the budgets of `LABEL_BUDGETS` up to `n_labelled`).
        posterior_model: the posterior, "additive" or "wishart" (`fit_posterior`).
        posterior_k: neighbours of the Local posteriors.
        search: as in `evaluate`.
        answers: as in `evaluate`.
        held_out_recipe: as in `evaluate`.
        progress: as in `evaluate`.
        log: called with a line before each long posterior stage (e.g. print to stderr).

    Returns:
        An `EvaluationRun`; `str(run)` is the report.

    Raises:
        ValueError: on bad arguments, before any work, as `evaluate` does.
    """
    if posterior_model not in POSTERIOR_MODELS:
        raise ValueError(
            f"posterior_model must be one of {POSTERIOR_MODELS}, got {posterior_model!r}"
        )
    posterior_k = _validate.check_int("posterior_k", posterior_k, 1)
    models = tuple(str(name) for name in models)
    if costs is not None:
        missing = [name for name in models if name not in costs]
        if missing:
            raise ValueError(f"costs has no entry for models {missing}")
    say = log if log is not None else _quiet
    scores = np.asarray(scores, np.float64)
    if observed is not None:  # no answer, no score: for every analysis, not only evaluate
        scores = np.where(observed, scores, np.nan)

    result = evaluate(
        outputs,
        inputs,
        scores,
        lengths,
        models,
        ensembles=ensembles,
        size=size,
        seed=seed,
        ks=ks,
        n_labelled=n_labelled,
        progress=progress,
        observed=observed,
        search=search,
        costs=None if costs is None else [costs[name] for name in models],
        answers=answers,
        held_out_recipe=held_out_recipe,
    )
    rows, detail = evaluate_families(
        outputs, scores, models, splits=result.splits, families=families
    )
    result = result.with_rows(rows)
    out = Path(out)
    write_jsonl(out / "families.jsonl", detail)
    write_json(result, out / "evaluation.json")
    plot_evaluation(result, out / "evaluation.png")
    written = [out / "evaluation.json", out / "evaluation.png", out / "families.jsonl"]

    complete = np.arange(len(scores)) if observed is None else np.flatnonzero(observed.all(1))
    diagnosis, diagnosis_error = None, ""
    try:  # the independence test needs inputs every model answered
        diagnosis = diagnose(outputs[complete], families=families, models=models)
    except ValueError as e:
        diagnosis_error = str(e)

    uncertainty = budget = None
    if posterior:
        import jax

        say(f"Fitting {posterior_model} posteriors per ensemble (Global and Local)...")
        uncertainty = evaluate_uncertainty(
            result,
            outputs,
            inputs,
            scores,
            costs=costs if costs is not None else dict.fromkeys(models, 1.0),
            key=jax.random.key(seed),
            k=posterior_k,
            model=posterior_model,
        )
        write_json(uncertainty, out / "uncertainty.json")
        plot_uncertainty(uncertainty, out / "uncertainty.png")
        say("Label-budget curve: the posterior with n labels against the labelled baselines...")
        budget = label_budget(
            result,
            outputs,
            inputs,
            scores,
            lengths,
            key=jax.random.key(seed),
            budgets=tuple(b for b in LABEL_BUDGETS if b <= result.n_labelled),
            answers=answers,
        )
        write_json(budget, out / "label_budget.json")
        plot_label_budget(budget, out / "label_budget.png")
        written += [
            out / "uncertainty.json",
            out / "uncertainty.png",
            out / "label_budget.json",
            out / "label_budget.png",
        ]
    return EvaluationRun(
        result=result,
        families=tuple(detail),
        diagnosis=diagnosis,
        diagnosis_error=diagnosis_error,
        uncertainty=uncertainty,
        label_budget=budget,
        written=tuple(written),
    )


def _quiet(message: str) -> None:
    del message  # no log asked for

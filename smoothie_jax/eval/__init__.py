"""Evaluation: the paper's AlpacaEval protocol over arrays, in both regimes.

>>> import smoothie_jax as sj
>>> sj.eval.draw_ensembles(10, ensembles=2, size=5, seed=0)
((2, 3, 4, 5, 7), (4, 6, 7, 8, 9))
"""

# The modules, for readers of the code:
# From the bottom up: `_names` (the score scale and the rows' names), `_split` (one
# `Split` of rows per ensemble), `_stats` (routed scores, Spearman), `_json` (strict JSON),
# `_baselines` (the labelled baselines), `_result` (`MethodResult`, `EvaluationResult`);
# then the analyses on the same splits: `_protocol` (`evaluate`, both regimes),
# `_families` (family-aware rows), `_uncertainty` (posterior policies), `_labels` (the
# label-budget curve); `_plots` draws them, `_run` runs them all and writes the files
# (`run_evaluation`, what `smoothie-jax evaluate` does), and `_simulated` scores Smoothie
# against a simulated truth (`smoothie-jax demo`). A module imports only modules listed
# before it.

from ._families import evaluate_families as evaluate_families
from ._json import json_safe as json_safe
from ._json import write_json as write_json
from ._labels import LabelBudgetResult as LabelBudgetResult
from ._labels import LabelsResult as LabelsResult
from ._labels import evaluate_labels as evaluate_labels
from ._labels import label_budget as label_budget
from ._plots import plot_evaluation as plot_evaluation
from ._plots import plot_label_budget as plot_label_budget
from ._plots import plot_uncertainty as plot_uncertainty
from ._protocol import evaluate as evaluate
from ._protocol import held_out_recipe as held_out_recipe
from ._result import EvaluationResult as EvaluationResult
from ._result import MethodResult as MethodResult
from ._run import EvaluationRun as EvaluationRun
from ._run import run_evaluation as run_evaluation
from ._simulated import SimulationResult as SimulationResult
from ._simulated import evaluate_simulated as evaluate_simulated
from ._split import REGIMES as REGIMES
from ._split import TEST_TIME as TEST_TIME
from ._split import TRAIN_TIME as TRAIN_TIME
from ._split import Split as Split
from ._split import draw_ensembles as draw_ensembles
from ._split import draw_splits as draw_splits
from ._split import split_ensemble as split_ensemble
from ._stats import spearman as spearman
from ._uncertainty import UncertaintyResult as UncertaintyResult
from ._uncertainty import credible_set as credible_set
from ._uncertainty import evaluate_uncertainty as evaluate_uncertainty

__all__ = [
    "REGIMES",
    "TEST_TIME",
    "TRAIN_TIME",
    "EvaluationResult",
    "EvaluationRun",
    "LabelBudgetResult",
    "LabelsResult",
    "MethodResult",
    "SimulationResult",
    "Split",
    "UncertaintyResult",
    "credible_set",
    "draw_ensembles",
    "draw_splits",
    "evaluate",
    "held_out_recipe",
    "evaluate_families",
    "evaluate_labels",
    "evaluate_simulated",
    "evaluate_uncertainty",
    "json_safe",
    "label_budget",
    "plot_evaluation",
    "plot_label_budget",
    "plot_uncertainty",
    "run_evaluation",
    "spearman",
    "split_ensemble",
    "write_json",
]

"""Evaluation: the paper's AlpacaEval protocol over arrays, in both regimes.

One `Split` per ensemble (`_split`) gives every evaluation its rows; `_protocol` scores
the routers (test-time and train-time) into an `EvaluationResult`; `_families` and
`_uncertainty` add the family-aware rows and the posterior policies on the same splits;
`_report` writes JSON and plots.

>>> import smoothie_jax as sj
>>> sj.eval.draw_ensembles(10, ensembles=2, size=5, seed=0)
((2, 3, 4, 5, 7), (4, 6, 7, 8, 9))
"""

from ._families import evaluate_families as evaluate_families
from ._labels import LabelBudgetResult as LabelBudgetResult
from ._labels import label_budget as label_budget
from ._labels import plot_label_budget as plot_label_budget
from ._protocol import EvaluationResult as EvaluationResult
from ._protocol import MethodResult as MethodResult
from ._protocol import evaluate as evaluate
from ._protocol import spearman as spearman
from ._report import json_safe as json_safe
from ._report import plot_evaluation as plot_evaluation
from ._report import plot_uncertainty as plot_uncertainty
from ._report import write_json as write_json
from ._split import REGIMES as REGIMES
from ._split import TEST_TIME as TEST_TIME
from ._split import TRAIN_TIME as TRAIN_TIME
from ._split import Split as Split
from ._split import draw_ensembles as draw_ensembles
from ._split import draw_splits as draw_splits
from ._split import split_ensemble as split_ensemble
from ._uncertainty import UncertaintyResult as UncertaintyResult
from ._uncertainty import credible_set as credible_set
from ._uncertainty import evaluate_uncertainty as evaluate_uncertainty

__all__ = [
    "REGIMES",
    "TEST_TIME",
    "TRAIN_TIME",
    "EvaluationResult",
    "LabelBudgetResult",
    "MethodResult",
    "Split",
    "UncertaintyResult",
    "credible_set",
    "draw_ensembles",
    "draw_splits",
    "evaluate",
    "evaluate_families",
    "evaluate_uncertainty",
    "json_safe",
    "label_budget",
    "plot_evaluation",
    "plot_label_budget",
    "plot_uncertainty",
    "spearman",
    "split_ensemble",
    "write_json",
]

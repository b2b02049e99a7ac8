"""The evaluation's vocabulary: the score scale, the kinds of method and the rows' names.

Every table, JSON file and plot names its rows with these, so a row written by one
module (`evaluate`, `evaluate_families`, `label_budget`) is found by name in another.

>>> local_name(20), f"{SCALE:g}"
('Smoothie-Local k=20', '100')
"""

from __future__ import annotations

SCALE = 100.0  # scores are reported x100: a win probability becomes a win rate in percent

# What a method reads: scored labels as bounds (reference), no score (label-free), or the
# labelled inputs' scores only (labelled).
REFERENCE, LABEL_FREE, LABELLED = "reference", "label-free", "labelled"

RANDOM = "random (expected)"
BEST_SINGLE = "best single model (all labels)"
ORACLE = "per-input oracle"
LONGEST = "longest output"
LONGEST_PAST = "longest past outputs"
MEDOID = "embedding medoid (MBR)"
GLOBAL = "Smoothie-Global"
ROUTER = "sj.route (recommended)"
AUTO_ROUTER = "sj.fit_router auto (recommended)"
BEST_ON_VAL = "Best-on-Val"
ROUTER_HELD_OUT = "sj.route (recommended), leave-one-set-out"
AUTO_ROUTER_HELD_OUT = "sj.fit_router auto (recommended), leave-one-set-out"
MAJORITY = "majority vote (answers)"
AGREEING_PAST = "most agreeing past model (answers)"


def local_name(k: int) -> str:
    """Row name of Smoothie-Local with `k` neighbours (the requested k, before clipping)."""
    return f"Smoothie-Local k={k}"


def router_name(k: int) -> str:
    """Row name of the paper's train-time router with `k` neighbours."""
    return f"Smoothie router k={k}"


def labelled_knn_name(k: int) -> str:
    """Row name of the labelled kNN baseline with `k` labelled neighbours."""
    return f"labelled kNN k={k}"

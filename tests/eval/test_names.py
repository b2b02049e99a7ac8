"""The rows' names: distinct, and the same whichever module writes or reads a row."""

from __future__ import annotations

from smoothie_jax.eval import _labels, _names


def test_row_names_are_distinct() -> None:
    fixed = [
        _names.RANDOM,
        _names.BEST_SINGLE,
        _names.ORACLE,
        _names.LONGEST,
        _names.LONGEST_PAST,
        _names.MEDOID,
        _names.GLOBAL,
        _names.ROUTER,
        _names.AUTO_ROUTER,
        _names.BEST_ON_VAL,
    ]
    made = [_names.local_name(5), _names.router_name(5), _names.labelled_knn_name(5)]
    assert len(set(fixed + made)) == len(fixed + made)
    assert len({_names.REFERENCE, _names.LABEL_FREE, _names.LABELLED}) == 3


def test_label_budget_names_best_on_val_as_the_table_does() -> None:
    # label_budget's Best-on-Val is comparable with the table's row of the same name.
    assert _names.BEST_ON_VAL in _labels.METHODS

"""The routing data schema: `RoutingData` normalises, freezes and checks what it holds."""

from __future__ import annotations

import numpy as np
import pytest
from routing_samples import MODELS, sample_data

from smoothie_jax.data import RoutingData


def test_routing_data_normalises_and_freezes() -> None:
    data = RoutingData(["x", "y"], ["a", "b", "c"], [["1", "22", "333"], ["4", "5", "6"]])
    assert data.models == MODELS
    assert data.ids == [1, 2] and data.extra == [{}, {}]
    assert data.scores is None and len(data) == 2
    np.testing.assert_array_equal(data.lengths(), [[1, 2, 3], [1, 1, 1]])
    assert data.lengths().dtype == np.int64
    with pytest.raises(AttributeError):
        data.models = ("z",)  # type: ignore[misc]
    scored = sample_data()
    with pytest.raises(ValueError, match="read-only"):
        scored.scores[0, 0] = 3.0  # type: ignore[index]


def test_subset_reorders_columns() -> None:
    data = sample_data(models=("a", "b", "c"), outputs=[["1", "2", "3"], ["4", "5", "6"]])
    sub = data.subset(["c", "a", "b"])
    assert sub.models == ("c", "a", "b")
    assert sub.outputs == [["3", "1", "2"], ["6", "4", "5"]]
    np.testing.assert_array_equal(sub.scores, data.scores[:, [2, 0, 1]])
    assert sub.ids == data.ids and sub.extra == data.extra
    with pytest.raises(ValueError, match=r"unknown models \['zz'\]"):
        data.subset(["a", "zz", "b"])
    with pytest.raises(ValueError, match="at least 3"):
        data.subset(["a", "b"])


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (dict(models=("a", "a", "c")), "distinct"),
        (dict(models=("a", "b"), outputs=[["1", "2"], ["3", "4"]], scores=None), "at least 3"),
        (dict(outputs=[["1", "2", "3"]]), "2 rows of 3"),
        (dict(scores=np.zeros((2, 2))), "shape"),
        (dict(ids=[1]), "one entry per instruction"),
        (dict(extra=[{"outputs": 1}, {}]), "clash"),
    ],
)
def test_routing_data_checks(overrides: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        sample_data(**overrides)


def test_lengths_needs_outputs() -> None:
    with pytest.raises(ValueError, match="no outputs"):
        RoutingData(["x"]).lengths()

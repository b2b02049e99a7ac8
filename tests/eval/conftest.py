"""Fixtures of the evaluation tests: two data sets and one `evaluate` run on each, shared
by every eval test module (computed once per session, when a test first asks)."""

from __future__ import annotations

import pytest

from smoothie_jax.eval import EvaluationResult, evaluate

from .tasks import NAMES, SIM_NAMES, Data, make_data, simulate


@pytest.fixture(scope="session")
def data() -> Data:
    return make_data()


@pytest.fixture(scope="session")
def result(data: Data) -> EvaluationResult:
    """Five ensembles of five of the six models, both regimes, 50 labelled inputs."""
    return evaluate(*data, NAMES, ensembles=5, size=5, seed=0, ks=(1, 20), n_labelled=50)


@pytest.fixture(scope="session")
def sim_data() -> Data:
    return simulate()


@pytest.fixture(scope="session")
def sim_result(sim_data: Data) -> EvaluationResult:
    """Two ensembles of four of the five simulated models, 20 labelled inputs each."""
    return evaluate(*sim_data, SIM_NAMES, ensembles=2, size=4, ks=(20,), n_labelled=20)

"""`evaluate_simulated`: Smoothie against the truth of two simulated tasks."""

from __future__ import annotations

import numpy as np
import pytest

from smoothie_jax.eval import SimulationResult, evaluate_simulated


@pytest.fixture(scope="module")
def simulated() -> SimulationResult:
    return evaluate_simulated(n_samples=600, n_models=4, dim=16, ratio=6.0, k=20, seed=1)


@pytest.mark.slow
def test_local_recovers_each_task(simulated: SimulationResult) -> None:
    for true, fitted in zip(simulated.true_local, simulated.fitted_local, strict=True):
        assert np.argmax(fitted) == np.argmax(true)
        np.testing.assert_allclose(sum(true), 1.0, rtol=1e-5)
    assert simulated.local_accuracy > 0.9
    errors = simulated.errors
    assert list(errors) == [
        "random (expected)",
        "best single model",
        "Smoothie-Global",
        "Smoothie-Local k=20",
        "oracle (true best per input)",
    ]
    # Per input, Local nearly matches the oracle; one model for both tasks cannot.
    assert errors["oracle (true best per input)"] <= errors["Smoothie-Local k=20"]
    local, best = errors["Smoothie-Local k=20"], errors["best single model"]
    assert local < best <= errors["random (expected)"]
    assert errors["Smoothie-Global"] >= errors["best single model"]


@pytest.mark.slow
def test_report(simulated: SimulationResult) -> None:
    lines = simulated.to_text().splitlines()
    assert lines[0] == "Simulated 600 inputs, 4 models, dim 16, 2 tasks (seed 1)."
    assert lines[3] == "  model   " + " ".join(f"{i:>7d}" for i in range(4))
    assert lines[4] == "  true    " + " ".join(f"{w:7.3f}" for w in simulated.true_global)
    assert lines[-1].startswith("Smoothie-Local picked the true best model for ")
    assert str(simulated) == simulated.to_text()
    assert len(simulated.fitted_global) == 4 and len(simulated.fitted_local) == 2


@pytest.mark.slow
def test_bad_sizes_raise_from_the_fits() -> None:
    with pytest.raises(ValueError, match="Smoothie needs at least 3"):
        evaluate_simulated(n_samples=50, n_models=2, dim=4)
    with pytest.raises(ValueError, match="k must be in"):
        evaluate_simulated(n_samples=50, n_models=3, dim=4, k=100)

"""Every `>>>` example in the package runs and prints what its docstring says."""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import pkgutil
from pathlib import Path

import pytest

import smoothie_jax

ROOT = Path(__file__).resolve().parents[1]
MODULES = sorted(
    name
    for _, name, _ in pkgutil.walk_packages(smoothie_jax.__path__, "smoothie_jax.")
    if not name.endswith("__main__")
) + ["smoothie_jax"]


def test_every_module_is_listed() -> None:
    assert "smoothie_jax._estimator" in MODULES and "smoothie_jax._family_fit" in MODULES


SLOW = {  # compile-heavy examples: NUTS, a whole evaluation, the index, a device mesh, posteriors
    "smoothie_jax.posterior._fit_posterior",
    "smoothie_jax.posterior._wishart",
    "smoothie_jax.eval._protocol",
    "smoothie_jax._inverted_file",
    "smoothie_jax.scale._sharding",
    "smoothie_jax._route",
    "smoothie_jax._simulate",
    "smoothie_jax.eval._simulated",
    "smoothie_jax.posterior._suggest",
    "smoothie_jax.posterior._certainty",
}


# Examples of an optional backend: run where it is installed (CI installs it with dev).
NEEDS = {"smoothie_jax._faiss_ivf": "faiss"}


def _marks(name: str) -> list[pytest.MarkDecorator]:
    marks = [pytest.mark.slow] if name in SLOW else []
    if name in NEEDS and importlib.util.find_spec(NEEDS[name]) is None:
        marks.append(pytest.mark.skip(reason=f"{NEEDS[name]} is not installed"))
    return marks


@pytest.mark.parametrize("name", [pytest.param(n, marks=_marks(n)) for n in MODULES])
def test_doctests(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.chdir(ROOT)  # examples read the shipped data by relative path
    # Embedding examples cache in a fresh folder named like the default one.
    monkeypatch.setenv("SMOOTHIE_JAX_CACHE", str(tmp_path / "smoothie_jax"))
    module = importlib.import_module(name)
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    result = doctest.testmod(module, optionflags=flags, report=True)
    assert result.failed == 0, capsys.readouterr().out

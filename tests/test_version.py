"""One version, read from one place: the package's `__version__` is what pip installed."""

from __future__ import annotations

from importlib.metadata import version

import smoothie_jax as sj


def test_installed_version_is_the_package_version() -> None:
    assert version("smoothie-jax") == sj.__version__

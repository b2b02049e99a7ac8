"""Fixtures of the command-line tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One embedding cache for the session: each generated text is embedded once."""
    return tmp_path_factory.mktemp("cache")

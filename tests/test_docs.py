"""The documentation site builds cleanly, and covers the public API and the README's commands.

`mkdocs build --strict` fails on a broken link or anchor, a missing page, an unresolved
API cross-reference and a docstring griffe cannot read (an Args entry for a parameter
that does not exist, two parameters on one line). It needs the docs extra
(`pip install -e ".[docs]"`, part of `[dev]`); without it that test is skipped.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import smoothie_jax

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
THEMES = ("data", "text", "families", "posterior", "eval", "scale", "serve")


@pytest.mark.slow  # about 5 s: griffe reads the whole package
def test_site_builds_strict(tmp_path: Path) -> None:
    for package in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python"):
        pytest.importorskip(package)
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q"]
        + ["-f", str(ROOT / "mkdocs.yml"), "-d", str(tmp_path / "site")],
        cwd=tmp_path,  # paths in mkdocs.yml are relative to it, not to the caller
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "site" / "api" / "core" / "index.html").is_file()
    assert (tmp_path / "site" / "figures" / "scaling.png").is_file()  # the figures hook
    # A reader has the repository, not the machine that built the site: no page may name
    # a path outside it (the development machine's data folder, or an absolute path here).
    outside = ("../shared", str(ROOT), str(Path.home()) + "/")
    for page in (tmp_path / "site").rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        named = [p for p in outside if p in text]
        assert not named, f"{page.relative_to(tmp_path)} names {named}"


def _api_page(name: str) -> str:
    return (DOCS / "api" / f"{name}.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("theme", THEMES)
def test_each_theme_page_renders_its_module(theme: str) -> None:
    # `::: smoothie_jax.THEME` renders every name of the theme's __all__.
    assert re.search(rf"^::: smoothie_jax\.{theme}$", _api_page(theme), re.MULTILINE)


def test_core_page_lists_every_public_name() -> None:
    page = _api_page("core")
    missing = []
    for name in smoothie_jax.__all__:
        if name in THEMES:
            continue
        rendered = re.search(rf"^::: smoothie_jax\.{name}$", page, re.MULTILINE)
        kept = any(
            f"[`{name}`][smoothie_jax.{theme}.{name}]" in page
            and name in importlib.import_module(f"smoothie_jax.{theme}").__all__
            for theme in THEMES
        )
        if not (rendered or kept):
            missing.append(name)
    assert not missing, f"sj names missing from docs/api/core.md: {missing}"


def _bash_blocks(text: str) -> list[str]:
    return re.findall(r"```bash\n(.*?)```", text, re.DOTALL)


def test_readme_commands_are_the_getting_started_ones() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    install, tests = _bash_blocks(readme)[:2]  # the two commands
    page = (DOCS / "getting-started.md").read_text(encoding="utf-8")
    assert install in page and tests in page
    assert len(readme.splitlines()) < 250  # a screen per topic; the rest is in docs/


def test_doctest_fences() -> None:
    pytest.importorskip("griffe")
    spec = importlib.util.spec_from_file_location(
        "doctest_fences", DOCS / "hooks" / "doctest_fences.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    text = "Sums.\n\n>>> 1 + 1\n2\n\nAfter.\n    >>> x\n    3"
    assert module.fence_doctests(text) == (
        "Sums.\n\n```pycon\n>>> 1 + 1\n2\n```\n\nAfter.\n    ```pycon\n    >>> x\n    3\n    ```"
    )

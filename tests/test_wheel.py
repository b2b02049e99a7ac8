"""The package as a newcomer installs it: a wheel and an sdist build, and the wheel,
installed into a fresh virtual environment, routes the quiz it carries."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

import smoothie_jax as sj
from smoothie_jax.cli._examples import FILES

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel and sdist of this checkout, built offline with the installed backend."""
    pytest.importorskip("build")
    pytest.importorskip("hatchling")
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    return out


@pytest.mark.slow
def test_the_wheel_and_sdist_carry_what_they_must(dist: Path) -> None:
    (wheel,) = dist.glob(f"smoothie_jax-{sj.__version__}-py3-none-any.whl")
    (sdist,) = dist.glob(f"smoothie_jax-{sj.__version__}.tar.gz")
    names = set(zipfile.ZipFile(wheel).namelist())
    for example in FILES:
        assert f"smoothie_jax/_examples/{example}" in names
    assert "smoothie_jax/py.typed" in names
    assert not any(n.startswith(("tests/", "benchmarks/")) for n in names)
    members = tarfile.open(sdist).getnames()
    for part in ("pyproject.toml", "README.md", "CHANGELOG.md", "tests/test_wheel.py"):
        assert f"smoothie_jax-{sj.__version__}/{part}" in members


@pytest.mark.slow
def test_the_installed_wheel_routes_the_quiz_it_carries(dist: Path, tmp_path: Path) -> None:
    """A fresh venv: the wheel installed without its dependencies, which it borrows from
    this environment by a .pth line (no network); this checkout is not on its path."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    Path(site, "borrowed.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    (wheel,) = dist.glob("*.whl")
    pip = [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)]
    subprocess.run(pip, check=True, timeout=300)
    env = {**os.environ, "SMOOTHIE_JAX_CACHE": str(tmp_path / "cache")}
    env.pop("PYTHONPATH", None)
    cli = venv / "bin" / "smoothie-jax"
    where = tmp_path / "try"

    def run(*args: str) -> str:
        done = subprocess.run(
            [str(cli), *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    run("examples", str(where))
    run("route", str(where / "quiz.jsonl"), "-o", str(where / "routes.jsonl"))
    routes = [json.loads(line) for line in (where / "routes.jsonl").read_text().splitlines()]
    assert len(routes) == 60 and all(r["model"] for r in routes)
    located = subprocess.run(
        [str(python), "-c", "import smoothie_jax; print(smoothie_jax.__file__)"],
        env=env, cwd=tmp_path, check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    assert located.startswith(str(venv)), f"not the wheel's copy: {located}"

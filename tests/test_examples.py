"""Every examples/*.py script runs in a fresh process, from another folder, and says what it should.

New scripts are picked up automatically (exit status 0 and some output); the scripts
listed in CHECKS also have their printed claims checked.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # every test here takes tens of seconds

EXAMPLES = Path(__file__).parents[1] / "examples"
TIMEOUT_S = 600


def _percentages(label: str, stdout: str) -> list[float]:
    return [float(p) for p in re.findall(rf"{re.escape(label)}.*?([\d.]+)%", stdout)]


def _functional_jit(stdout: str) -> None:
    assert "hand-written local_route matches sj.fit_local" in stdout
    hits = [
        float(p) for p in re.findall(r"data set \d: true best model chosen for ([\d.]+)%", stdout)
    ]
    assert len(hits) == 8 and min(hits) > 60  # 2 tasks x 4 models: chance is 25%


def _train_time_routing(stdout: str) -> None:
    lines = [line for line in stdout.splitlines() if " -> " in line]
    assert len(lines) == 30  # one line per query, with its chosen model
    found = re.search(r"best at the query's task for (\d+) of 30 queries", stdout)
    assert found and int(found.group(1)) >= 20


def _prompt_templates(stdout: str) -> None:
    (global_hit,) = _percentages("Global (one template)", stdout)
    (local_hit,) = _percentages("Local (per input)", stdout)
    assert local_hit > 90 and local_hit > global_hit + 30
    assert "Oracle" in stdout


def _uncertainty(stdout: str) -> None:
    assert "Default model (Smoothie-Global):" in stdout
    abstention = [
        (float(t), float(a), float(all_))
        for t, a, _, all_ in re.findall(
            r"^\s*(\d\.\d)\s+(\d+)%\s+(\S+)\s+([\d.]+)\s*$", stdout, re.MULTILINE
        )
    ]
    assert [t for t, _, _ in abstention] == [0.0, 0.5, 0.7, 0.9]
    abstained = [a for _, a, _ in abstention]
    assert abstained[0] == 0 and abstained == sorted(abstained)  # a higher bar abstains more
    costs = [
        (float(t), float(c), float(acc))
        for t, c, acc in re.findall(
            r"^\s*(\d\.\d\d)\s+([\d.]+)\s+([\d.]+)  \S", stdout, re.MULTILINE
        )
    ]
    assert [t for t, _, _ in costs] == [0.0, 0.02, 0.04, 0.06, 1.0]
    mean_cost = [c for _, c, _ in costs]
    assert mean_cost == sorted(mean_cost, reverse=True) and mean_cost[-1] < mean_cost[0]
    assert costs[0][2] > 0.8  # quality only: the Local posterior routes well on the quiz


CHECKS: dict[str, Callable[[str], None]] = {
    "uncertainty.py": _uncertainty,
    "functional_jit.py": _functional_jit,
    "train_time_routing.py": _train_time_routing,
    "prompt_templates.py": _prompt_templates,
}


@pytest.mark.parametrize("script", sorted(EXAMPLES.glob("*.py")), ids=lambda path: path.name)
def test_example_runs(
    script: Path, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    env = dict(
        os.environ,
        HF_HUB_OFFLINE="1",
        # An embedding cache private to this test session (shared with test_notebooks.py).
        SMOOTHIE_JAX_CACHE=str(tmp_path_factory.getbasetemp() / "cache"),
    )
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,  # scripts must find their data relative to their own file
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert result.returncode == 0, f"{script.name} exited {result.returncode}:\n{result.stderr}"
    assert result.stdout.strip(), f"{script.name} printed nothing"
    if script.name in CHECKS:
        CHECKS[script.name](result.stdout)
    assert sorted(p.name for p in tmp_path.iterdir()) == [], f"{script.name} left files behind"

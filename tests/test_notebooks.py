"""Every notebook in notebooks/ runs top to bottom in a fresh kernel of this interpreter.

The notebooks are stored without outputs; executing them here is their test (they assert
what they claim). New notebooks are picked up automatically.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbclient
import nbformat
import pytest
from ipykernel.kernelspec import install as install_kernelspec

pytestmark = pytest.mark.slow  # every test here takes tens of seconds

NOTEBOOKS = Path(__file__).parents[1] / "notebooks"
KERNEL = "smoothie-jax-tests"
TIMEOUT_S = 600  # per cell


@pytest.fixture(scope="session")
def jupyter_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A jupyter data folder holding one kernelspec that runs *this* interpreter.

    A "python3" kernelspec found elsewhere (user or system folders) may belong to another
    Python without smoothie_jax; a spec of our own name, written by ipykernel for
    sys.executable, cannot be shadowed and works in a fresh virtual environment too.
    """
    prefix = tmp_path_factory.mktemp("jupyter")
    install_kernelspec(kernel_name=KERNEL, prefix=str(prefix), display_name="smoothie_jax tests")
    spec = prefix / "share" / "jupyter"
    assert (spec / "kernels" / KERNEL / "kernel.json").read_text().count(sys.executable) == 1
    return spec


def _outputs(nb: nbformat.NotebookNode) -> str:
    text = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            text.append(output.get("text", "") or output.get("data", {}).get("text/plain", ""))
    return "".join(text)


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda path: path.name)
def test_notebook_runs(
    path: Path,
    jupyter_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    nb = nbformat.read(path, as_version=4)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code, f"{path.name} has no code"
    assert all(not cell.outputs and cell.execution_count is None for cell in code), (
        f"{path.name} is stored with outputs: clear them before committing"
    )
    # The kernel inherits this environment: our kernelspec, no network, and an embedding
    # cache private to this test session (shared with tests/test_examples.py).
    monkeypatch.setenv("JUPYTER_PATH", str(jupyter_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("SMOOTHIE_JAX_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
    nb.cells.append(nbformat.v4.new_code_cell("import sys; print(sys.executable, end='')"))
    client = nbclient.NotebookClient(
        nb,
        kernel_name=KERNEL,
        timeout=TIMEOUT_S,
        resources={"metadata": {"path": str(NOTEBOOKS)}},  # cwd of the kernel
    )
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as e:
        pytest.fail(f"{path.name} failed:\n{e}", pytrace=False)
    assert "Traceback" not in _outputs(nb)
    assert nb.cells[-1].outputs[0]["text"] == sys.executable, "the kernel ran another Python"

"""The eval package's modules form layers: each imports only modules below it.

Every import counts: top level, under TYPE_CHECKING and inside functions, since a lazy
import that goes back up is still a circle of ideas.
"""

from __future__ import annotations

import ast
from pathlib import Path

import smoothie_jax.eval

PACKAGE = "smoothie_jax.eval"
ROOT = Path(smoothie_jax.eval.__file__).parent
# Bottom first: a module may import only those before it.
LAYERS = (
    "_names",
    "_split",
    "_json",
    "_stats",
    "_baselines",
    "_result",
    "_protocol",
    "_families",
    "_uncertainty",
    "_labels",
    "_plots",
    "_run",
    "_simulated",
)


def eval_imports(path: Path) -> set[str]:
    """The eval modules `path` imports, by their short names ("_result")."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1:  # from .x import y / from . import x
                names = [node.module] if node.module else [a.name for a in node.names]
            elif node.level == 0 and (node.module or "").startswith(PACKAGE + "."):
                names = [node.module.removeprefix(PACKAGE + ".")]
            else:
                continue
        elif isinstance(node, ast.Import):
            names = [a.name.removeprefix(PACKAGE + ".") for a in node.names]
        else:
            continue
        found.update(name.split(".")[0] for name in names if name.split(".")[0] in LAYERS)
    return found


def test_every_module_has_a_layer() -> None:
    modules = {p.stem for p in ROOT.glob("_*.py")} - {"__init__"}
    assert modules == set(LAYERS)


def test_each_module_imports_only_modules_below_it() -> None:
    upward = {
        name: sorted(
            other
            for other in eval_imports(ROOT / f"{name}.py")
            if LAYERS.index(other) >= LAYERS.index(name)
        )
        for name in LAYERS
    }
    assert {name: up for name, up in upward.items() if up} == {}


def test_init_only_re_exports() -> None:
    # __init__ sits above every layer and defines nothing itself.
    tree = ast.parse((ROOT / "__init__.py").read_text())
    assert all(isinstance(node, (ast.ImportFrom, ast.Assign, ast.Expr)) for node in tree.body), (
        "eval/__init__.py should only re-export"
    )

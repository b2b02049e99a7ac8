"""The package reads as the pipeline: one idea per file (none over 600 lines), and no
module imports another that imports it back, directly or through others.

Every import counts: top level, under TYPE_CHECKING and inside functions, since a lazy
import that goes back up is still a circle of ideas. A package's `__init__` re-exports
its modules, so importing a package counts as importing its `__init__` only.
"""

from __future__ import annotations

import ast
from pathlib import Path

import smoothie_jax

ROOT = Path(smoothie_jax.__file__).parent
MAX_LINES = 600


def module_name(path: Path) -> str:
    parts = ["smoothie_jax", *path.relative_to(ROOT).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in ROOT.rglob("*.py")}


def imports(path: Path) -> set[str]:
    """The package's modules that `path` imports (resolved to module names)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            # "from pkg import mod" imports the module mod; "from pkg import name" the
            # package's __init__.
            subs = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in MODULES]
            candidates = subs or [target]
        elif isinstance(node, ast.Import):
            candidates = [a.name for a in node.names]
        else:
            continue
        found.update(c for c in candidates if c in MODULES and c != name)
    return found


def test_no_library_file_is_over_600_lines() -> None:
    long = {
        str(p.relative_to(ROOT)): n
        for p in MODULES.values()
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def test_no_import_circle() -> None:
    graph = {name: imports(path) for name, path in MODULES.items()}
    cycles = []
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert cycles == []


THEMES = {p.name for p in ROOT.iterdir() if p.is_dir() and (p / "__init__.py").exists()}


def theme_of(module: str) -> str | None:
    """The theme (public subpackage) a module belongs to; None for the core."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in THEMES else None


def test_the_core_imports_no_theme_and_no_theme_another_themes_private_module() -> None:
    crossings = []
    for name, path in MODULES.items():
        if name in ("smoothie_jax", "smoothie_jax.__main__"):  # the namespace and the entry
            continue
        own = theme_of(name)
        for target in imports(path):
            theme = theme_of(target)
            if theme is None or theme == own:
                continue
            private = any(part.startswith("_") for part in target.split(".")[2:])
            if own is None or private:
                crossings.append(f"{name} -> {target}")
    assert crossings == []


def test_the_flat_namespace_stays_small() -> None:
    assert len(smoothie_jax.__all__) <= 45

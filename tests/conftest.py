"""Test configuration: strict numpy rank promotion, fixed keys, runtime shape checks.

Every module of `smoothie_jax` is imported through jaxtyping's import hook, so every call
in the suite checks its arguments and results against their annotations (beartype, as
configured in `runtime_checks.py`): a wrong axis fails loudly instead of broadcasting.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import importlib  # noqa: E402
import pkgutil  # noqa: E402
import signal  # noqa: E402
from collections.abc import Iterator  # noqa: E402

import jaxtyping  # noqa: E402

# Before anything imports smoothie_jax: the hook decorates modules only as they are imported
# inside this block, so every submodule is imported here, including those the package does
# not import itself (the CLI). `__main__` is skipped: importing it runs the command.
with jaxtyping.install_import_hook("smoothie_jax", "runtime_checks.typechecker"):
    import smoothie_jax

    for _module in pkgutil.walk_packages(smoothie_jax.__path__, "smoothie_jax."):
        if _module.name != "smoothie_jax.__main__":
            importlib.import_module(_module.name)

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "unchecked: runs without the runtime checks, for a test of the library's own "
        "ValueError on an argument that breaks its annotation (the checker would answer "
        "first with a TypeCheckError)",
    )


@pytest.fixture(autouse=True)
def _runtime_checks(request: pytest.FixtureRequest) -> Iterator[None]:
    """Checks on, except in tests marked `unchecked`."""
    if request.node.get_closest_marker("unchecked") is None:
        yield
        return
    jaxtyping.config.update("jaxtyping_disable", True)
    try:
        yield
    finally:
        jaxtyping.config.update("jaxtyping_disable", False)


@pytest.fixture
def key() -> jax.Array:
    return jax.random.key(0)


@pytest.fixture
def ctrl_c() -> Iterator[None]:
    """SIGINT raises KeyboardInterrupt, in this process and in the processes it starts.

    A shell without job control starts a background job (`pytest &`, `nohup ... &`)
    with SIGINT ignored; Python then installs no handler, and children inherit the
    ignore. A test of Ctrl-C would hang. Under a Python handler a child starts with
    the default disposition, and its own Python installs the handler again.
    """
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)

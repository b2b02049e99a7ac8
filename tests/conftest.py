"""Test configuration: strict numpy rank promotion, fixed keys, runtime shape checks.

The pipeline's pure stages are imported through jaxtyping's import hook, so every call
in the suite checks its arguments and results against their shape annotations (beartype)
and a wrong axis fails loudly instead of broadcasting.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from jaxtyping import install_import_hook  # noqa: E402

# Before anything imports smoothie_jax: the hook decorates modules as they are imported.
with install_import_hook(
    ["smoothie_jax._distances", "smoothie_jax._neighbours", "smoothie_jax._estimator"],
    "beartype.beartype",
):
    import smoothie_jax  # noqa: F401

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture
def key() -> jax.Array:
    return jax.random.key(0)

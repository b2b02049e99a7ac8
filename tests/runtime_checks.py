"""The runtime type checker the suite applies to every function of smoothie_jax.

conftest.py installs jaxtyping's import hook with `typechecker` (beartype) below.
"""

from __future__ import annotations

import beartype
import numpy as np

# Numbers as the package counts them (`_validate.is_int`, `is_number`): a NumPy scalar is
# one, and an int is a valid float (PEP 484's numeric tower, as for mypy and pyright).
CONF = beartype.BeartypeConf(
    hint_overrides=beartype.FrozenDict(
        {int: int | np.integer, float: float | int | np.integer | np.floating}
    )
)

typechecker = beartype.beartype(conf=CONF)

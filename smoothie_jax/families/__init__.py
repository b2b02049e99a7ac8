"""Correlated model families: test Smoothie's independence assumption, correct for shared
errors, and route safely when the consensus cannot be trusted.

>>> import jax, smoothie_jax as sj
>>> sj.families.diagnose(jax.random.normal(jax.random.key(0), (200, 5, 8))).groups
()
"""

# For readers of the code (the API pages show only the docstring above):
# The code lives in the core, because every decision reports the independence test and
# Smoothie-Global's family check decides with it (as `jax.numpy` re-exports `jax._src`):
# `_family_design` (the family model of E D and its sufficient statistics),
# `_independence` (the test and the group search), `_family_fit` (the family-aware fit and
# what it identifies), `_family_route` (the safe Global route).

from .._family_design import DEFAULT_ALPHA as DEFAULT_ALPHA
from .._family_design import DEFAULT_POLICY_ALPHA as DEFAULT_POLICY_ALPHA
from .._family_design import Families as Families
from .._family_design import family_labels as family_labels
from .._family_fit import FamilySmoothie as FamilySmoothie
from .._family_fit import Identifiability as Identifiability
from .._family_fit import fit_families as fit_families
from .._family_fit import identifiability as identifiability
from .._family_route import FamilyRoute as FamilyRoute
from .._family_route import route_families as route_families
from .._independence import Diagnosis as Diagnosis
from .._independence import can_diagnose as can_diagnose
from .._independence import confounded as confounded
from .._independence import diagnose as diagnose
from .._independence import diagnose_answered as diagnose_answered

__all__ = [
    "DEFAULT_ALPHA",
    "DEFAULT_POLICY_ALPHA",
    "Diagnosis",
    "Families",
    "FamilyRoute",
    "FamilySmoothie",
    "Identifiability",
    "can_diagnose",
    "confounded",
    "diagnose",
    "diagnose_answered",
    "family_labels",
    "fit_families",
    "identifiability",
    "route_families",
]

"""Correlated model families: test Smoothie's independence assumption, correct for shared
errors, and route safely when the consensus cannot be trusted.

One idea per file, in the order data flows: `_design` (the family model of E D and its
sufficient statistics), `_diagnosis` (the independence test and the group search),
`_fit` (the family-aware fit and what it identifies), `_policy` (the safe Global route).

>>> import jax, smoothie_jax as sj
>>> sj.families.diagnose(jax.random.normal(jax.random.key(0), (200, 5, 8))).groups
()
"""

from ._design import DEFAULT_ALPHA as DEFAULT_ALPHA
from ._design import DEFAULT_POLICY_ALPHA as DEFAULT_POLICY_ALPHA
from ._design import family_labels as family_labels
from ._diagnosis import Diagnosis as Diagnosis
from ._diagnosis import can_diagnose as can_diagnose
from ._diagnosis import confounded as confounded
from ._diagnosis import diagnose as diagnose
from ._diagnosis import diagnose_answered as diagnose_answered
from ._fit import FamilySmoothie as FamilySmoothie
from ._fit import Identifiability as Identifiability
from ._fit import fit_families as fit_families
from ._fit import identifiability as identifiability
from ._policy import FamilyRoute as FamilyRoute
from ._policy import route_families as route_families

__all__ = [
    "DEFAULT_ALPHA",
    "DEFAULT_POLICY_ALPHA",
    "Diagnosis",
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

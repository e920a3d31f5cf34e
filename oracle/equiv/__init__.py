"""The judge: semantic equivalence of two splits, each on its own base (see :mod:`.compare`).

Public API: :func:`equivalent` / :func:`equivalent_bytes` (the verdict with routes to each local
difference), :func:`type_difference` (two types, one line), :func:`only_at` (every difference at or
below given types) and :func:`difference_class` (a finding's difference with names and numbers blanked).
"""

from btfspec.oracle.equiv.compare import (
    MAX_DIFFERENCES,
    EquivResult,
    difference_class,
    equivalent,
    equivalent_bytes,
    only_at,
    type_difference,
)

__all__ = ["MAX_DIFFERENCES", "EquivResult", "difference_class", "equivalent", "equivalent_bytes", "only_at",
           "type_difference"]

"""A failing case reduced at the universe level (:mod:`btfspec.btfgen.reduce`) while its finding stays the same.

Used by a campaign's slot (for every property with a :attr:`~btfspec.oracle.fuzz.property.Property.reduction`,
a failure found on the seeded path is reduced instead of being replayed for hypothesis to shrink, and
a hypothesis run ends at such a failure, which is reduced too) and by ``btfspec bench shrink``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from btfspec.btfgen.reduce import Reduced, reduce
from btfspec.oracle.fuzz.property import Context, Finding, Property, PropertyFailure


def reduce_failure(prop: Property, case: Any, finding: Finding, ctx: Context, seconds: float,
                   max_checks: int | None = None, stop: Callable[[], bool] | None = None,
                   other: Callable[[Finding, Any], None] | None = None) -> tuple[Finding, Reduced[Any]]:
    """``case`` (on which ``prop`` fails with ``finding``) reduced for at most ``seconds`` (and ``max_checks``
    checks, until ``stop()``) while the check still fails with ``finding``'s signature: the finding of the
    smallest case reached, and how it was reached.  Without a reduction, ``finding`` and ``case`` as they are.
    A candidate failing with another signature is passed to ``other`` (finding, case): a bug the
    reduction met, as hypothesis's shrinking meets some."""
    if prop.reduction is None:
        return finding, Reduced(case)
    smallest = [finding]

    def fails(candidate: Any) -> bool:
        try:
            prop.check(candidate, ctx)
        except PropertyFailure as exc:
            if exc.finding.signature == finding.signature:
                smallest[0] = exc.finding
                return True
            if other is not None:
                other(exc.finding, candidate)
        return False

    reduced = reduce(case, prop.reduction, fails, time.monotonic() + seconds, max_checks, stop)
    return smallest[0], reduced

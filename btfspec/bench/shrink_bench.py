"""``btfspec bench shrink``: how small, and how fast, a failure found on the campaign's seeded path shrinks.

A campaign draws its cases on the seeded fast path.  A failure of a property with a reduction (P1-P4 and P6)
is reduced at the universe level (:mod:`btfspec.btfgen.reduce`); one of another property has its
recorded choices replayed and shrunk by hypothesis
(:func:`~btfspec.oracle.fuzz.campaign.hypothesis_glue.save_for_shrinking`).  This takes both paths
from the same P1 failures and reports, per failure, the universe's nodes as found, as hypothesis
shrank them and as the reducer reduced them, with the seconds and the checks each took.  Two groups
of failures:

* ``stand-in``: conditions on the generated universe alone (no implementation runs), each on large
  seeded P1 cases: a composite of three or more members, a module pointer to a kernel composite, a
  kernel enum.  Three or four nodes can satisfy each (the kernel's index INT is always made).
* ``finding``: P1 findings of a real implementation (libbpf by default), from seeded cases until
  ``findings`` distinct signatures are met; each shrinks while its signature stays the same.

A shrink stops after ``max_seconds`` (the row says so); a campaign gives each finding its share of the
time budget instead.  The figures are the noise a user sees in a finding: the fewer nodes, the sooner
its cause is read.
"""

from __future__ import annotations

import functools
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from btfspec.btfgen.universe import Composite, Enum, Ptr, Universe

MIN_FOUND_NODES = 40  # stand-in failures start from seeded cases at least this large
MAX_TRIES = 3000  # seeded cases drawn per group before giving up on more failures


def _universe(case: Any) -> Universe:
    return case.case.universe  # type: ignore[no-any-return]


def _many_members(u: Universe) -> bool:
    return any(isinstance(n, Composite) and len(n.members) >= 3 for n in u.nodes)


def _module_ptr_to_kernel_composite(u: Universe) -> bool:
    return any(isinstance(n, Ptr) and n.key in u.module and n.target not in u.module
               and isinstance(u.get(n.target), Composite) for n in u.nodes)


def _kernel_enum(u: Universe) -> bool:
    return any(isinstance(n, Enum) and n.key not in u.module for n in u.nodes)


STAND_INS: dict[str, Callable[[Universe], bool]] = {
    "composite with >= 3 members": _many_members,
    "module pointer to a kernel composite": _module_ptr_to_kernel_composite,
    "kernel enum": _kernel_enum,
}


@dataclass
class ShrinkRow:
    """One failure: its universe's nodes as found, as shrunk by hypothesis and as reduced, and what each cost."""

    group: str  # "stand-in" or "finding"
    what: str  # the stand-in's condition, or the finding's outcome and first difference
    profile: str
    found: int
    shrunk: int
    seconds: float
    checks: int
    stopped: bool = False  # the shrink reached max_seconds
    reduced: int = 0
    reduce_seconds: float = 0.0
    reduce_checks: int = 0
    reduce_stopped: bool = False

    def line(self) -> str:
        return (f"{self.group:<8} {self.profile:<12} {self.found:>3} -> hypothesis {self.shrunk:>3}"
                f"{'*' if self.stopped else ' '} {self.seconds:5.1f} s {self.checks:>5}  | reduced {self.reduced:>3}"
                f"{'*' if self.reduce_stopped else ' '} {self.reduce_seconds:5.1f} s {self.reduce_checks:>4}  "
                f"{self.what[:90]}")  # *: stopped at the time limit


class _OutOfTime(KeyboardInterrupt):
    """Ends one shrink at its time limit (hypothesis lets a KeyboardInterrupt through)."""


def reduce_found(case: Any, fails: Callable[[Any], bool], max_seconds: float) -> tuple[int, float, int, bool]:
    """Reduce the failing P1 ``case`` as a campaign does: (nodes of the smallest case that still ``fails``,
    seconds, checks, stopped at the limit)."""
    from btfspec.btfgen.reduce import reduce
    from btfspec.oracle.fuzz.relocation import REDUCTION

    t0 = time.perf_counter()
    done = reduce(case, REDUCTION, fails, time.monotonic() + max_seconds)
    return len(_universe(done.case).nodes), time.perf_counter() - t0, done.checks, done.stopped


def _row(group: str, what: str, case: Any, strategy: Any, choices: list[int], fails: Callable[[Any], bool],
         seed: int, max_seconds: float) -> ShrinkRow:
    """Both paths from one failure: hypothesis's shrink of its choices, the reducer from its case."""
    shrunk, secs, checks, stopped = shrink_recorded(strategy, choices, fails, seed, max_seconds)
    reduced, rsecs, rchecks, rstopped = reduce_found(case, fails, max_seconds)
    u = _universe(case)
    return ShrinkRow(group, what, u.profile, len(u.nodes), shrunk, secs, checks, stopped, reduced, rsecs, rchecks,
                     rstopped)


def shrink_recorded(strategy: Any, choices: list[int], fails: Callable[[Any], bool], seed: int,
                    max_seconds: float) -> tuple[int, float, int, bool]:
    """Shrink the failure whose recorded ``choices`` the seeded path drew from ``strategy``, as a campaign
    does: (nodes of the smallest case that still ``fails``, seconds, checks, stopped at the limit)."""
    from hypothesis.database import InMemoryExampleDatabase

    from btfspec.oracle.fuzz.campaign.hypothesis_glue import campaign_test, save_for_shrinking

    key = b"btfspec-bench-shrink"
    db = InMemoryExampleDatabase()
    save_for_shrinking(db, key, choices)
    smallest = [10**9]
    checks = [0]
    deadline = time.perf_counter() + max_seconds

    def body(case: Any) -> None:
        if time.perf_counter() > deadline:
            raise _OutOfTime
        checks[0] += 1
        if fails(case):
            smallest[0] = min(smallest[0], len(_universe(case).nodes))
            raise AssertionError("still fails")

    run = campaign_test(body, strategy, max_examples=1, seed=seed, database=db, database_key=key)
    t0 = time.perf_counter()
    stopped = False
    try:
        run()
    except _OutOfTime:
        stopped = True
    except AssertionError:
        pass
    return smallest[0], time.perf_counter() - t0, checks[0], stopped


def stand_in_rows(per_condition: int, seed: int, max_seconds: float,
                  on_row: Callable[[ShrinkRow], None] | None = None) -> list[ShrinkRow]:
    """Each stand-in condition on ``per_condition`` large seeded P1 cases (kernel-valid); ``on_row`` gets
    each row as it is measured."""
    from btfspec.oracle.fuzz.campaign.hypothesis_glue import seeded_example
    from btfspec.oracle.fuzz.property import RELOCATION, Context
    from btfspec.oracle.fuzz.registry import get_property

    strategy = get_property(RELOCATION).strategy(Context({}))
    rng = random.Random(seed)
    rows = []
    for what, cond in STAND_INS.items():
        met = 0
        for _ in range(MAX_TRIES):
            if met == per_condition:
                break
            case, choices = seeded_example(strategy, rng.getrandbits(64))
            u = _universe(case)
            if len(u.nodes) < MIN_FOUND_NODES or not cond(u):
                continue
            met += 1
            rows.append(_row("stand-in", what, case, strategy, choices, lambda c, cond=cond: cond(_universe(c)), seed,
                             max_seconds))
            if on_row:
                on_row(rows[-1])
    return rows


def finding_signature(prop: Any, ctx: Any, case: Any) -> tuple[str, ...] | None:
    """The signature of ``prop``'s finding on ``case``, or None when it holds."""
    from btfspec.oracle.fuzz.property import PropertyFailure

    try:
        prop.check(case, ctx)
    except PropertyFailure as exc:
        return exc.finding.signature
    return None


def finding_rows(impl: Any, count: int, seed: int, max_seconds: float,
                 on_row: Callable[[ShrinkRow], None] | None = None) -> list[ShrinkRow]:
    """P1 findings of ``impl`` on seeded cases (both profiles in turn), ``count`` distinct signatures;
    ``on_row`` gets each row as it is measured."""
    from btfspec.oracle.fuzz.campaign.hypothesis_glue import seeded_example
    from btfspec.oracle.fuzz.property import RELOCATION, Context
    from btfspec.oracle.fuzz.registry import get_property

    prop = get_property(RELOCATION)
    rng = random.Random(seed)
    rows: list[ShrinkRow] = []
    seen: set[tuple[str, ...]] = set()
    for k, profile in enumerate(("libbpf-valid", "kernel-valid")):
        ctx = Context({impl.name: impl}, profile=profile)
        strategy = prop.strategy(ctx)
        want = (count + 1 - k) // 2  # the first profile takes the odd one
        signature = functools.partial(finding_signature, prop, ctx)
        for _ in range(MAX_TRIES):
            if sum(r.profile == profile for r in rows) >= want:
                break
            case, choices = seeded_example(strategy, rng.getrandbits(64))
            sig = signature(case)
            if sig is None or sig in seen:
                continue
            seen.add(sig)
            rows.append(_row("finding", sig[3], case, strategy, choices,  # sig[3]: the first difference
                             lambda c, sig=sig, signature=signature: signature(c) == sig, seed, max_seconds))
            if on_row:
                on_row(rows[-1])
    return rows


def summary(rows: list[ShrinkRow]) -> list[str]:
    """Per group and path: failures, mean and largest size, total time and checks."""
    lines = []
    for group in ("stand-in", "finding"):
        g = [r for r in rows if r.group == group]
        if not g:
            continue
        found = sum(r.found for r in g) / len(g)
        for path, size, secs, checks in (("hypothesis shrink", [r.shrunk for r in g], [r.seconds for r in g],
                                          [r.checks for r in g]),
                                         ("reducer", [r.reduced for r in g], [r.reduce_seconds for r in g],
                                          [r.reduce_checks for r in g])):
            lines.append(f"{group}, {path}: {len(g)} failures to {sum(size) / len(g):.1f} nodes on average "
                         f"(largest {max(size)}, from {found:.1f}) in {sum(secs):.1f} s, {sum(checks)} checks")
    return lines


def as_dicts(rows: list[ShrinkRow]) -> list[dict[str, Any]]:
    return [asdict(r) for r in rows]

"""``btfspec bench oracle-strength``: the mutation score of the oracle.

Every mutant of :mod:`btfspec.bench.mutants` (one- or two-line behavioural changes of the Python
reference) runs as an external implementation -- ``--impl serve,libbpf`` with the mutant's server --
in a short campaign (default: 60 s on 2 workers, no example database, a throw-away corpus
directory, shrinking cut to 2% of the budget).  A mutant is *killed* by the first finding at fault
``serve``; the campaign then ends.
The unmutated copy (``control``) runs the same way for the whole budget and must report nothing of
its own: whatever it shares with libbpf is libbpf's finding, so a control finding is a false alarm
of the oracle.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from btfspec.bench.mutants import BY_ID, CONTROL, MUTANTS
from btfspec.oracle.fuzz.property import ACCEPTANCE, DIFFERENTIAL, RELOCATION, RELOCATION_INPUTS, ROUNDTRIP

DEFAULT_BUDGET = 60.0
DEFAULT_WORKERS = 2
DEFAULT_PROPERTIES = (RELOCATION, ROUNDTRIP, DIFFERENTIAL, ACCEPTANCE, RELOCATION_INPUTS)
UNDER_TEST = "serve"
SHRINK_SHARE = 0.02  # a kill is the first finding, not its smallest example: shrink briefly


@dataclass
class StrengthRow:
    """One mutant's campaign."""

    id: str
    op: str
    what: str
    bytes_only: bool
    killed: bool
    seconds: float | None  # time to the first finding at fault (None: none)
    wall: float  # the campaign's wall time, startup included
    finding: str = ""  # property and outcome of the first finding at fault
    examples: dict[str, int] = field(default_factory=dict)
    note: str = ""

    def line(self) -> str:
        verdict = (f"killed in {self.seconds:5.1f} s by {self.finding}" if self.killed
                   else "SURVIVED" if self.id != CONTROL else "clean")
        if self.id == CONTROL and self.killed:
            verdict = f"FALSE ALARM at {self.seconds:.1f} s: {self.finding}"
        ex = sum(self.examples.values())
        tail = f"  ({self.note})" if self.note else ""
        return f"{self.id:<34} {verdict:<80} {ex:>6} ex {self.wall:5.1f} s{tail}"


def server_command(mutant_id: str) -> str:
    """The ``--serve-cmd`` running mutant ``mutant_id`` (or ``control``)."""
    return f"{sys.executable} -m btfspec.bench.mutants {mutant_id}"


def run_one(mutant_id: str, budget: float = DEFAULT_BUDGET, workers: int = DEFAULT_WORKERS,
            properties: Sequence[str] = DEFAULT_PROPERTIES, seed: int = 1, profile: str = "mixed",
            timeout: float = 5.0) -> StrengthRow:
    """One campaign of ``serve`` (mutant ``mutant_id``) beside libbpf; stops at the first finding at fault
    unless it is the control."""
    from btfspec.oracle.fuzz.campaign import run_campaign

    is_control = mutant_id == CONTROL
    m = BY_ID.get(mutant_id)
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="btfspec-bench-strength-") as tmp:
        r = run_campaign(list(properties), [UNDER_TEST, "libbpf"], workers=workers, time_budget=budget, seed=seed,
                         db=None, corpus_dir=f"{tmp}/found", progress=False, profile=profile, timeout=timeout,
                         serve_cmd=server_command(mutant_id), shrink_share=SHRINK_SHARE,
                         stop_when=None if is_control else (lambda rec: rec.impl == UNDER_TEST))
    wall = time.monotonic() - start
    own = sorted((f for f in r.findings if f.impl == UNDER_TEST), key=lambda f: f.seconds)
    first = own[0] if own else None
    note = "; ".join(r.errors[:1]) or "; ".join(f"{k}: {v}" for k, v in {**r.unavailable, **r.skipped}.items())
    return StrengthRow(mutant_id, m.op if m else "-", m.what if m else "the unmutated reference",
                       bool(m and m.bytes_only), first is not None, first.seconds if first else None, wall,
                       f"{first.property} {first.outcome}" if first else "", dict(r.examples), note)


def run(mutant_ids: Sequence[str] | None = None, budget: float = DEFAULT_BUDGET, workers: int = DEFAULT_WORKERS,
        properties: Sequence[str] = DEFAULT_PROPERTIES, seed: int = 1, profile: str = "mixed",
        echo: Callable[[str], None] | None = None) -> list[StrengthRow]:
    """The control, then every selected mutant (default: all); ``echo`` gets each line as it is measured."""
    ids = [CONTROL] + [i for i in (mutant_ids or [m.id for m in MUTANTS]) if i != CONTROL]
    unknown = [i for i in ids if i != CONTROL and i not in BY_ID]
    if unknown:
        raise ValueError(f"unknown mutant(s) {', '.join(unknown)} (known: {', '.join(BY_ID)})")
    rows = []
    for i in ids:
        row = run_one(i, budget, workers, properties, seed, profile)
        rows.append(row)
        if echo:
            echo("  " + row.line())
    return rows


def summary(rows: Sequence[StrengthRow], budget: float) -> dict[str, Any]:
    """killed/total, the slowest kill, the survivors and the control's verdict."""
    mutants = [r for r in rows if r.id != CONTROL]
    killed = [r for r in mutants if r.killed]
    control = next((r for r in rows if r.id == CONTROL), None)
    return {"killed": len(killed), "total": len(mutants),
            "within_budget": sum(1 for r in killed if r.seconds is not None and r.seconds <= budget),
            "slowest_kill": max((r.seconds or 0.0 for r in killed), default=None),
            "survivors": [r.id for r in mutants if not r.killed],
            "control_clean": None if control is None else not control.killed}


def as_dicts(rows: Sequence[StrengthRow]) -> list[dict[str, Any]]:
    """JSON-friendly rows."""
    return [asdict(r) for r in rows]

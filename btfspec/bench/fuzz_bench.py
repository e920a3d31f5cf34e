"""``btfspec bench fuzz``: examples per second of one property per worker, and the speed-up from more workers.

Rows (each a short campaign with no example database and a throw-away corpus directory), for P1 by
default (any property with ``--property``):

* one in-process worker with ``python`` alone and with ``libbpf`` alone (P1 runs every selected
  implementation on each case, so these are the per-implementation rates), and with ``serve`` alone
  running the reference server (:mod:`btfspec.oracle.impls.serve_reference`): the cost of the persistent
  protocol, as a share of the in-process ``python`` rate;
* ``python`` and ``libbpf`` together with 1 and 2 local worker processes, and on a 2-worker
  ``LocalCluster``: examples per second over the campaign's wall time (startup included) and in
  steady state (the sum over workers of each one's examples over the time it spent running them),
  with the speed-up of each against one local worker.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from btfspec.oracle.fuzz.property import RELOCATION


@dataclass
class FuzzRow:
    """One measured configuration."""

    name: str
    workers: int
    examples: int
    seconds: float
    wall_rate: float  # examples / campaign wall time
    steady_rate: float  # sum over workers of examples / busy seconds
    speedup: float | None = None  # steady rate against one local worker
    note: str = ""

    def line(self) -> str:
        text = (f"{self.name:<38} {self.workers:>2} w {self.examples:>6} ex {self.seconds:6.1f} s "
                f"{self.wall_rate:8.1f} ex/s wall {self.steady_rate:8.1f} ex/s steady")
        if self.speedup is not None:
            text += f"  x{self.speedup:.2f}"
        return text + (f"  ({self.note})" if self.note else "")


REFERENCE_SERVER = f"{sys.executable} -m btfspec.oracle.impls.serve_reference"


def _campaign(prop: str, impls: list[str], workers: int, seconds: float, scheduler: str | None = None,
              serve_cmd: str | None = None) -> FuzzRow:
    from btfspec.oracle.fuzz.campaign import run_campaign

    with tempfile.TemporaryDirectory(prefix="btfspec-bench-fuzz-") as tmp:
        r = run_campaign([prop], impls, workers=workers, time_budget=seconds, seed=1, db=None, scheduler=scheduler,
                         corpus_dir=f"{tmp}/found", progress=False, serve_cmd=serve_cmd)
    ex = r.examples.get(prop, 0)
    steady = sum(s["examples"].get(prop, 0) / s["busy"][prop] for s in r.slots if s["busy"].get(prop))
    note = "; ".join(r.errors[:1]) or ("; ".join(f"{k}: {v}" for k, v in r.skipped.items()))
    mode = {"in-process": "in-process", "local": "local processes", "dask": "LocalCluster"}[r.mode]
    return FuzzRow(f"{prop} {'+'.join(impls)} ({mode})", r.workers, ex, r.elapsed,
                   ex / r.elapsed if r.elapsed else 0.0, steady, note=note)


def run(seconds: float = 10.0, cluster: bool = True, echo: Callable[[str], None] | None = None,
        prop: str = RELOCATION) -> list[FuzzRow]:
    """Measure every row (about ``6 * seconds`` plus startup); ``echo`` gets each line as it is measured."""
    rows: list[FuzzRow] = []
    both = ["python", "libbpf"]

    def add(row: FuzzRow) -> None:
        rows.append(row)
        if echo:
            echo("  " + row.line())

    python = _campaign(prop, ["python"], 0, seconds)
    add(python)
    add(_campaign(prop, ["libbpf"], 0, seconds))
    served = _campaign(prop, ["serve"], 0, seconds, serve_cmd=REFERENCE_SERVER)
    if python.wall_rate and not served.note:
        served.note = f"{served.wall_rate / python.wall_rate:.0%} of in-process python"
    add(served)
    one = _campaign(prop, both, 1, seconds)
    one.speedup = 1.0
    add(one)
    two = _campaign(prop, both, 2, seconds)
    two.speedup = two.steady_rate / one.steady_rate if one.steady_rate else None
    add(two)
    if cluster:
        try:
            from distributed import LocalCluster
        except ImportError:
            add(FuzzRow(f"{prop} python+libbpf (LocalCluster)", 2, 0, 0.0, 0.0, 0.0, note="distributed not installed"))
            return rows
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                          dashboard_address=None) as lc:
            row = _campaign(prop, both, 2, seconds, scheduler=lc.scheduler_address)
        row.speedup = row.steady_rate / one.steady_rate if one.steady_rate else None
        add(row)
    return rows


def as_dicts(rows: list[FuzzRow]) -> list[dict[str, Any]]:
    """JSON-friendly rows."""
    return [asdict(r) for r in rows]

"""``btfspec bench fuzz``: P3 throughput per worker, and the speed-up from more workers.

Rows (each a short campaign with no example database and a throw-away corpus directory):

* P3 examples per second in one in-process worker with ``python`` as the implementation under test
  (against libbpf), and with libbpf alone (case generation plus the libbpf calls: the floor);
* P3 (python vs libbpf) with 1 and 2 local worker processes, and on a 2-worker ``LocalCluster``:
  examples per second over the campaign's wall time (startup included) and in steady state (the sum
  over workers of each one's examples over the time it spent running them), with the speed-up of
  each against one local worker.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any


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


def _campaign(impls: list[str], workers: int, seconds: float, scheduler: str | None = None) -> FuzzRow:
    from oracle.campaign import run_campaign

    with tempfile.TemporaryDirectory(prefix="btfspec-bench-fuzz-") as tmp:
        r = run_campaign(["P3"], impls, workers=workers, time_budget=seconds, seed=1, db=None, scheduler=scheduler,
                         corpus_dir=f"{tmp}/found", progress=False)
    ex = r.examples.get("P3", 0)
    steady = sum(s["examples"].get("P3", 0) / s["busy"]["P3"] for s in r.slots if s["busy"].get("P3"))
    note = "; ".join(r.errors[:1]) or ("; ".join(f"{k}: {v}" for k, v in r.skipped.items()))
    mode = {"in-process": "in-process", "local": "local processes", "dask": "LocalCluster"}[r.mode]
    return FuzzRow(f"P3 {'+'.join(impls)} ({mode})", r.workers, ex, r.elapsed, ex / r.elapsed if r.elapsed else 0.0,
                   steady, note=note)


def _libbpf_only(seconds: float) -> FuzzRow:
    """P3's check with libbpf alone (no implementation under test): generation plus libbpf calls."""
    from hypothesis import HealthCheck, Phase, given, settings

    from oracle.impls import close_impls, make_impls
    from oracle.property import Context, get_property

    prop = get_property("P3")
    impls = {i.name: i for i in make_impls(["libbpf"])}
    ctx = Context(impls)
    count = [0]
    end = time.monotonic() + seconds

    class _Enough(Exception):
        pass

    @settings(max_examples=10**6, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(prop.strategy(ctx))
    def run(case: Any) -> None:
        if time.monotonic() > end:
            raise _Enough()
        count[0] += 1
        prop.check(case, ctx)

    start = time.monotonic()
    try:
        run()
    except _Enough:
        pass
    finally:
        close_impls(impls.values())
    elapsed = time.monotonic() - start
    rate = count[0] / elapsed if elapsed else 0.0
    return FuzzRow("P3 libbpf alone (in-process)", 1, count[0], elapsed, rate, rate)


def run(seconds: float = 10.0, cluster: bool = True, echo: Callable[[str], None] | None = None) -> list[FuzzRow]:
    """Measure every row (about ``5 * seconds`` plus startup); ``echo`` gets each line as it is measured."""
    rows: list[FuzzRow] = []

    def add(row: FuzzRow) -> None:
        rows.append(row)
        if echo:
            echo("  " + row.line())

    add(_campaign(["python", "libbpf"], 0, seconds))
    add(_libbpf_only(seconds))
    one = _campaign(["python", "libbpf"], 1, seconds)
    one.speedup = 1.0
    add(one)
    two = _campaign(["python", "libbpf"], 2, seconds)
    two.speedup = two.steady_rate / one.steady_rate if one.steady_rate else None
    add(two)
    if cluster:
        try:
            from distributed import LocalCluster
        except ImportError:
            add(FuzzRow("P3 python+libbpf (LocalCluster)", 2, 0, 0.0, 0.0, 0.0, note="distributed not installed"))
            return rows
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                          dashboard_address=None) as lc:
            row = _campaign(["python", "libbpf"], 2, seconds, scheduler=lc.scheduler_address)
        row.speedup = row.steady_rate / one.steady_rate if one.steady_rate else None
        add(row)
    return rows


def as_dicts(rows: list[FuzzRow]) -> list[dict[str, Any]]:
    """JSON-friendly rows."""
    return [asdict(r) for r in rows]

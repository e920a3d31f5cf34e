"""``btfspec bench fuzz``: examples per second of one property per worker, and the speed-up from more workers.

Rows (each a short campaign with no example database), for P1 by default (any property with
``--property``), each the best of ``repeat`` runs with the spread of the runs; the python+libbpf
configurations run in rounds (one run of each in turn, ``repeat`` times), so that a slow spell of the
shared machine weighs on all of them alike, and their speed-ups are given best against best and
within each round:

* ``python`` alone in one in-process worker: the reference's rate on one core;
* ``python`` and ``libbpf`` together with 1 and 2 local worker processes, and on a 2-worker
  ``LocalCluster``: examples per second per worker, and the speed-up of 2 workers against one;
* with ``per_impl``, also ``libbpf`` alone and ``serve`` alone running the reference server
  (:mod:`btfspec.oracle.impls.serve_reference`): the cost of the persistent protocol, as a share of
  the in-process ``python`` rate.

The rate of a run is its steady rate: the sum over workers of each one's examples over the seconds it
spent running them (startup excluded); the wall rate (examples over the campaign's wall time) is shown
beside it.  The figures measure generating and checking cases, not shrinking: every run is a campaign
with ``shrink_share=0`` (each finding is recorded as found, unshrunk; a campaign's shrinking takes
hypothesis's pace, about a third of the seeded one, for as long as its budget allows).  Every
implementation set first runs a warm-up campaign (not counted, same seeds, twice as long) that writes
its findings to the benchmark's corpus directory; the measured runs share that directory, so those
findings are known to them and cost no finding record.  Findings new in the measured runs are said in
the row's note.  The load average and the cores the machine kept busy during the run are printed
with the figures: this measures a shared machine.  The scaling lines also give the speed-up per busy
core, which is about 1 when the workers share nothing hot even where one worker already keeps more
than one core busy (python+libbpf overlaps its libbpf process with its own work).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from btfspec.bench.timing import busy_cpu_seconds
from btfspec.oracle.fuzz.property import RELOCATION

WARMUP_FACTOR = 2.0  # a warm-up campaign runs this many times the measured seconds
NO_SHRINKING = 0.0  # the campaigns' shrink_share: findings are recorded as found
BOTH = ["python", "libbpf"]


@dataclass
class FuzzRow:
    """One measured configuration: the best of its runs."""

    name: str
    workers: int
    examples: int
    seconds: float
    wall_rate: float  # examples / campaign wall time (of the best run)
    steady_rate: float  # sum over workers of examples / busy seconds (the best run's)
    speedup: float | None = None  # steady rate against one local worker (best run against best run)
    per_round: list[float] = field(default_factory=list)  # the speed-up within each round of runs
    note: str = ""
    runs: list[float] = field(default_factory=list)  # the steady rate of every run
    new_findings: int = 0  # findings not known from the warm-up, over all runs
    load: float = 0.0  # 1-minute load average when the row was measured (the highest over its runs)
    cores: float | None = None  # cores the machine kept busy during the best run (every process)
    impls: str = ""  # "python", "python+libbpf", ...
    mode: str = ""  # "in-process", "local processes", "LocalCluster"

    @property
    def per_worker(self) -> float:
        return self.steady_rate / self.workers if self.workers else 0.0

    @property
    def spread(self) -> float:
        """(best - worst) / best over the runs."""
        return (max(self.runs) - min(self.runs)) / max(self.runs) if self.runs and max(self.runs) else 0.0

    def line(self) -> str:
        text = (f"{self.name:<38} {self.workers:>2} w {self.steady_rate:8.1f} ex/s steady "
                f"({self.per_worker:6.1f} per worker) {self.wall_rate:7.1f} wall")
        if len(self.runs) > 1:
            text += f"  best of {len(self.runs)}, spread {self.spread:.0%}"
        if self.speedup is not None:
            text += f"  x{self.speedup:.2f}"
            if len(self.per_round) > 1:
                text += f" (by round {'/'.join(f'{x:.2f}' for x in self.per_round)})"
        text += f"  load {self.load:.1f}"
        if self.cores is not None:
            text += f"  {self.cores:.2f} cores busy"
        return text + (f"  ({self.note})" if self.note else "")


REFERENCE_SERVER = f"{sys.executable} -m btfspec.oracle.impls.serve_reference"


def _campaign(prop: str, impls: list[str], workers: int, seconds: float, corpus: str, scheduler: str | None = None,
              serve_cmd: str | None = None) -> tuple[FuzzRow, int]:
    """One campaign (no shrinking) as a row of one run, and how many findings it recorded as new."""
    from btfspec.oracle.fuzz.campaign import run_campaign

    cpu0, t0 = busy_cpu_seconds(), time.perf_counter()
    r = run_campaign([prop], impls, workers=workers, time_budget=seconds, seed=1, db=None, scheduler=scheduler,
                     corpus_dir=corpus, progress=False, serve_cmd=serve_cmd, shrink_share=NO_SHRINKING)
    cpu1, wall = busy_cpu_seconds(), time.perf_counter() - t0
    cores = (cpu1 - cpu0) / wall if cpu0 is not None and cpu1 is not None and wall > 0 else None
    ex = r.examples.get(prop, 0)
    steady = sum(s["examples"].get(prop, 0) / s["busy"][prop] for s in r.slots if s["busy"].get(prop))
    note = "; ".join(r.errors[:1]) or ("; ".join(f"{k}: {v}" for k, v in r.skipped.items()))
    mode = {"in-process": "in-process", "local": "local processes", "dask": "LocalCluster"}[r.mode]
    row = FuzzRow(f"{prop} {'+'.join(impls)} ({mode})", r.workers, ex, r.elapsed,
                  ex / r.elapsed if r.elapsed else 0.0, steady, note=note, runs=[steady], load=os.getloadavg()[0],
                  cores=cores, impls="+".join(impls), mode=mode)
    return row, sum(1 for f in r.findings if f.new)


def _best_of(rows: list[FuzzRow], new: int) -> FuzzRow:
    """The best of one configuration's runs: every run's rate in ``runs``, the findings new in any of them."""
    best = max(rows, key=lambda r: r.steady_rate)  # its ``cores`` stay those of its own run
    best.runs = [r.runs[0] for r in rows]
    best.new_findings = new
    best.load = max(r.load for r in rows)
    if new and not best.note:
        best.note = f"{new} new finding{'s' if new > 1 else ''} during the runs"
    return best


def _best(prop: str, impls: list[str], workers: int, seconds: float, corpus: str, repeat: int,
          serve_cmd: str | None = None) -> FuzzRow:
    """The best of ``repeat`` runs of one configuration (their rates in ``runs``)."""
    runs = [_campaign(prop, impls, workers, seconds, corpus, serve_cmd=serve_cmd) for _ in range(max(1, repeat))]
    return _best_of([row for row, _ in runs], sum(found for _, found in runs))


Run = Callable[[], tuple[FuzzRow, int]]


def _rounds(configs: list[Run], repeat: int, echo: Callable[[str], None] | None = None) -> list[FuzzRow]:
    """The best run of each configuration over ``repeat`` rounds of one run of each in turn, so that a slow
    spell of the shared machine falls on every configuration alike (``runs[i]`` of a row is its round i);
    ``echo`` gets a line per round."""
    rounds = max(1, repeat)
    runs: list[list[tuple[FuzzRow, int]]] = [[] for _ in configs]
    for n in range(rounds):
        for done, config in zip(runs, configs, strict=True):
            done.append(config())
        if echo:
            latest = [done[-1][0] for done in runs]
            rates = ", ".join(f"{row.workers} w {row.mode} {row.steady_rate:.1f}" for row in latest)
            echo(f"  round {n + 1}/{rounds}: {rates} ex/s")
    return [_best_of([row for row, _ in done], sum(found for _, found in done)) for done in runs]


def _speedup(row: FuzzRow, one: FuzzRow) -> None:
    """``row``'s speed-up against ``one``: best against best, and within each round."""
    row.speedup = row.steady_rate / one.steady_rate if one.steady_rate else None
    row.per_round = [r / o for r, o in zip(row.runs, one.runs, strict=False) if o]


def _warm_up(prop: str, impls: list[str], workers: int, seconds: float, corpus: str,
             serve_cmd: str | None = None) -> None:
    """A campaign (not measured) that writes the findings of ``impls`` to ``corpus``."""
    _campaign(prop, impls, workers, WARMUP_FACTOR * seconds, corpus, serve_cmd=serve_cmd)


def run(seconds: float = 10.0, cluster: bool = True, echo: Callable[[str], None] | None = None,
        prop: str = RELOCATION, repeat: int = 3, per_impl: bool = False) -> list[FuzzRow]:
    """Measure every row (about ``(4 * repeat + 4) * seconds`` plus startup, more with ``per_impl``);
    ``echo`` gets each line as it is measured."""
    rows: list[FuzzRow] = []

    def add(row: FuzzRow) -> None:
        rows.append(row)
        if echo:
            echo("  " + row.line())

    with tempfile.TemporaryDirectory(prefix="btfspec-bench-fuzz-") as tmp:
        corpus = f"{tmp}/found"
        _warm_up(prop, ["python"], 0, seconds, corpus)
        python = _best(prop, ["python"], 0, seconds, corpus, repeat)
        add(python)
        if per_impl:
            _warm_up(prop, ["libbpf"], 0, seconds, corpus)
            add(_best(prop, ["libbpf"], 0, seconds, corpus, repeat))
            _warm_up(prop, ["serve"], 0, seconds, corpus, serve_cmd=REFERENCE_SERVER)
            served = _best(prop, ["serve"], 0, seconds, corpus, repeat, serve_cmd=REFERENCE_SERVER)
            if python.steady_rate and not served.note:
                served.note = f"{served.steady_rate / python.steady_rate:.0%} of in-process python"
            add(served)
        _warm_up(prop, BOTH, 2, seconds, corpus)
        configs: list[Run] = [lambda: _campaign(prop, BOTH, 1, seconds, corpus),
                              lambda: _campaign(prop, BOTH, 2, seconds, corpus)]
        if cluster:
            configs.append(lambda: _cluster_run(prop, seconds, corpus))
        one, *more = _rounds(configs, repeat, echo)
        one.speedup = 1.0
        add(one)
        for row in more:
            _speedup(row, one)
            add(row)
    return rows


def _cluster_run(prop: str, seconds: float, corpus: str) -> tuple[FuzzRow, int]:
    """One python+libbpf run on a 2-worker LocalCluster of its own (its workers' idle work would
    otherwise weigh on the local runs of the same round)."""
    try:
        from distributed import LocalCluster
    except ImportError:
        return FuzzRow(f"{prop} {'+'.join(BOTH)} (LocalCluster)", 2, 0, 0.0, 0.0, 0.0, note="distributed not installed",
                       runs=[0.0], impls="+".join(BOTH), mode="LocalCluster"), 0
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as lc:
        return _campaign(prop, BOTH, 2, seconds, corpus, scheduler=lc.scheduler_address)


def summary(rows: list[FuzzRow]) -> list[str]:
    """The headline figures: python on one core, python+libbpf per worker, the two scaling ratios."""
    by = {(r.impls, r.mode, r.workers): r for r in rows}
    lines = []
    python = by.get(("python", "in-process", 1))
    if python:
        lines.append(f"python on one core: {python.steady_rate:.1f} ex/s")
    one = by.get(("python+libbpf", "local processes", 1))
    if one:
        lines.append(f"python+libbpf per worker: {one.steady_rate:.1f} ex/s")
    two = by.get(("python+libbpf", "local processes", 2))
    if two and two.speedup is not None:
        lines.append(f"2 local workers: x{two.speedup:.2f} of one{_by_round(two)}{_per_core(two, one)}")
    lc = by.get(("python+libbpf", "LocalCluster", 2))
    if lc and lc.speedup is not None:
        lines.append(f"2-worker LocalCluster: x{lc.speedup:.2f} of one local worker{_by_round(lc)}{_per_core(lc, one)}")
    return lines


def _by_round(row: FuzzRow) -> str:
    """The speed-ups within each round, and their median (the figure least moved by one slow run)."""
    if len(row.per_round) < 2:
        return ""
    return f", x{statistics.median(row.per_round):.2f} median by round"


def _per_core(row: FuzzRow, one: FuzzRow | None) -> str:
    """The speed-up per busy core: about 1 when the workers share nothing hot, whatever the cores
    one worker already keeps busy (python+libbpf runs its libbpf process beside its own work)."""
    if one is None or not row.cores or not one.cores or not one.steady_rate:
        return ""
    per_core = (row.steady_rate / row.cores) / (one.steady_rate / one.cores)
    return (f" (one worker kept {one.cores:.2f} cores busy, these {row.cores:.2f} of {os.cpu_count()}; "
            f"per busy core x{per_core:.2f})")


def as_dicts(rows: list[FuzzRow]) -> list[dict[str, Any]]:
    """JSON-friendly rows."""
    return [{**asdict(r), "per_worker": r.per_worker, "spread": r.spread} for r in rows]

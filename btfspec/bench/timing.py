"""Timing helpers shared by every benchmark."""

from __future__ import annotations

import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass


def interpreter() -> str:
    """The Python running the benchmark, named beside its figures: the interpreter's build moves them all
    (a default pyenv build, without profile-guided optimisation, runs campaigns slower than Debian's)."""
    return f"{platform.python_implementation()} {platform.python_version()} ({os.path.realpath(sys.executable)})"


class Timing(float):
    """Best-of-N seconds that also carries the spread of the N runs: (worst - best) / best."""

    spread: float

    def __new__(cls, best: float, spread: float = 0.0) -> Timing:
        obj = super().__new__(cls, best)
        obj.spread = spread
        return obj


@dataclass
class Row:
    """One measured operation: best-of-N seconds, and the baseline it is compared with."""

    name: str
    seconds: float
    baseline: str = ""
    baseline_seconds: float | None = None
    target: float | None = None  # the ratio to the baseline that meets the target
    target_seconds: float | None = None  # or a time that meets it, whatever the baseline

    @property
    def ratio(self) -> float | None:
        if not self.baseline_seconds:
            return None
        return self.seconds / self.baseline_seconds

    @property
    def spread(self) -> float | None:
        """The spread of the measured runs, when :func:`best_of` measured them."""
        return self.seconds.spread if isinstance(self.seconds, Timing) else None

    def line(self) -> str:
        """A printable line: time (and its spread), ratio against the baseline, and the target."""
        text = f"{self.name:<34} {self.seconds * 1000:10.1f} ms"
        text += f" (spread {self.spread:4.0%})" if self.spread is not None else " " * 15
        if self.ratio is not None:
            text += f"   {self.ratio:7.1f}x {self.baseline}"
        if self.target is not None and self.ratio is not None:
            text += f"   (target <= {self.target:g}x: {'met' if self.ratio <= self.target else 'NOT met'})"
        if self.target_seconds is not None:
            met = "met" if self.seconds <= self.target_seconds else "NOT met"
            text += f"   (target <= {self.target_seconds * 1000:g} ms: {met})"
        return text


def best_of(fn: Callable[[], object], repeat: int = 5) -> Timing:
    """Best wall time of ``repeat`` calls, in seconds, with their spread (this machine is noisy)."""
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    best = min(runs)
    return Timing(best, (max(runs) - best) / best if best > 0 else 0.0)


def as_dict(rows: list[Row]) -> list[dict[str, object]]:
    """Rows as JSON-ready dictionaries."""
    return [{"name": r.name, "seconds": float(r.seconds), "spread": r.spread, "baseline": r.baseline,
             "baseline_seconds": None if r.baseline_seconds is None else float(r.baseline_seconds),
             "ratio": r.ratio, "target": r.target, "target_seconds": r.target_seconds} for r in rows]


def busy_cpu_seconds() -> float | None:
    """CPU seconds the whole machine has spent busy since boot (every process; from ``/proc/stat``),
    or None where there is no ``/proc/stat``.  The difference over a run, divided by its wall time,
    is how many cores the run kept busy."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle and iowait
    busy = sum(fields[:8]) - idle  # user nice system idle iowait irq softirq steal (guest is in user)
    return busy / os.sysconf("SC_CLK_TCK")

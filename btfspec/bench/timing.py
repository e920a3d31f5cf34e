"""Timing helpers shared by every benchmark."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Row:
    """One measured operation: best-of-N seconds, and the baseline it is compared with."""

    name: str
    seconds: float
    baseline: str = ""
    baseline_seconds: float | None = None
    target: float | None = None

    @property
    def ratio(self) -> float | None:
        if not self.baseline_seconds:
            return None
        return self.seconds / self.baseline_seconds

    def line(self) -> str:
        """A printable line: time, ratio against the baseline, and the target."""
        text = f"{self.name:<34} {self.seconds * 1000:10.1f} ms"
        if self.ratio is not None:
            text += f"   {self.ratio:7.1f}x {self.baseline}"
        if self.target is not None and self.ratio is not None:
            text += f"   (target <= {self.target:g}x: {'met' if self.ratio <= self.target else 'NOT met'})"
        return text


def best_of(fn: Callable[[], object], repeat: int = 5) -> float:
    """Best wall time of ``repeat`` calls, in seconds."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def as_dict(rows: list[Row]) -> list[dict[str, object]]:
    """Rows as JSON-ready dictionaries."""
    return [{"name": r.name, "seconds": r.seconds, "baseline": r.baseline,
             "baseline_seconds": r.baseline_seconds, "ratio": r.ratio, "target": r.target} for r in rows]

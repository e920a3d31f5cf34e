"""Live campaign progress on stderr: a rich table on a TTY, plain lines otherwise."""

from __future__ import annotations

import contextlib
import sys
import time
from typing import Any, TextIO

from btfspec.oracle.fuzz.campaign.results import Parent


class Display:
    """Live progress on stderr: a rich table on a TTY, plain lines otherwise."""

    def __init__(self, parent: Parent, props: list[str], budget: float | None, stream: TextIO | None,
                 enabled: bool) -> None:
        self.parent, self.props, self.budget = parent, props, budget
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.live: Any = None
        self.interval = min(5.0, max(1.0, budget / 5)) if budget else 5.0
        self.last = time.monotonic()
        if enabled and getattr(self.stream, "isatty", lambda: False)():
            with contextlib.suppress(Exception):
                from rich.console import Console
                from rich.live import Live

                self.live = Live(self.render(), console=Console(file=self.stream), refresh_per_second=4,
                                 transient=False)
                self.live.start()

    def line(self) -> str:
        ex, busy = self.parent.totals()
        elapsed = time.monotonic() - self.parent.start
        parts = []
        for p in self.props:
            n = ex.get(p, 0)
            parts.append(f"{p} {n} ({n / elapsed if elapsed > 0 else 0:.0f}/s)")
        cov = self.parent.coverage_summary()
        new = len([f for f in self.parent.result.findings if f.new])
        covtext = ", ".join(f"{n} {c}" for c, n in cov.items()) or "-"
        return (f"[{elapsed:5.0f}s] {'; '.join(parts)}; findings {new}; coverage: {covtext}")

    def render(self) -> Any:
        from rich.table import Table

        ex, busy = self.parent.totals()
        elapsed = max(time.monotonic() - self.parent.start, 1e-3)
        left = f", {max(0.0, self.budget - elapsed):.0f}s left" if self.budget else ""
        table = Table(title=f"btfspec fuzz: {elapsed:.0f}s{left}", expand=False)
        for col in ("property", "examples", "ex/s", "ex/s/worker"):
            table.add_column(col, justify="right" if col != "property" else "left")
        for p in self.props:
            n = ex.get(p, 0)
            per = n / busy[p] if busy.get(p) else 0.0
            table.add_row(p, str(n), f"{n / elapsed:.1f}", f"{per:.1f}")
        new = len([f for f in self.parent.result.findings if f.new])
        cov = ", ".join(f"{n} {c}" for c, n in self.parent.coverage_summary().items()) or "-"
        table.caption = f"findings: {new} new; coverage: {cov}"
        return table

    def tick(self, force: bool = False) -> None:
        if not self.enabled:
            return
        if self.live is not None:
            self.live.update(self.render())
            return
        now = time.monotonic()
        if force or now - self.last >= self.interval:
            self.last = now
            print(self.line(), file=self.stream, flush=True)

    def close(self) -> None:
        if self.live is not None:
            with contextlib.suppress(Exception):
                self.live.update(self.render())
                self.live.stop()
        elif self.enabled:
            self.tick(force=True)

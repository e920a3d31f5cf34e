"""Pausing the cyclic garbage collector over a bulk allocation.

Decoding or parsing a whole vmlinux allocates hundreds of thousands of small objects that hold no
cycles worth collecting meanwhile; each collection the allocations trigger rescans the young objects
made so far, which costs a full decode 2-2.5x and a Construct parse or build 1.25-1.5x its time
(measured on 125.9k types). The objects that survive are scanned once by the next collection after
the pause, as they would have been without it.
"""

from __future__ import annotations

import gc
from types import TracebackType


class gc_paused:  # noqa: N801 - used like a function: ``with gc_paused(): ...``
    """Run a ``with`` block with the cyclic collector off; it is on again after (if it was on before).

    A class, not a generator: leaving allocates nothing, so the collection the block's objects are
    due does not run at the exit itself but at the caller's next allocation, as with the collector
    on (a short-lived result freed first costs nothing to collect).
    """

    def __enter__(self) -> None:
        self._was_enabled = gc.isenabled()
        gc.disable()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._was_enabled:
            gc.enable()

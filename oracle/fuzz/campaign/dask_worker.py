"""What a slot changes on the dask worker it runs on: the worker's statistical profiler is paused.

A dask worker samples the stacks of its running tasks every ``distributed.worker.profile.interval``
(10 ms by default) on its event loop, for the dashboard's profile page.  A slot's stacks are deep, and
walking them 100 times a second took 10-17% of a python+libbpf slot's examples (paired runs of a
seeded P1 loop in a 1-worker ``LocalCluster``, profiler on and off).  The slot pauses the sampling
while it runs and resumes it when the last slot of the worker ends, so the worker is left as found.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

PROFILER = "profile"  # the worker's periodic callback that samples the stacks
LOOP_WAIT = 5.0  # seconds to wait for the worker's event loop to stop or start the sampling

_lock = threading.Lock()
_pauses: dict[int, int] = {}  # id(worker) -> slots of that worker running with the sampling paused


def _on_loop(worker: Any, fn: Callable[[], None]) -> None:
    """Run ``fn`` on the worker's event loop (tornado callbacks are not thread-safe) and wait for it."""
    done = threading.Event()

    def call() -> None:
        try:
            fn()
        finally:
            done.set()

    worker.loop.add_callback(call)
    done.wait(LOOP_WAIT)


def _current_worker() -> Any | None:
    try:
        from distributed import get_worker

        return get_worker()
    except (ImportError, ValueError):  # not inside a dask task
        return None


@contextlib.contextmanager
def profiler_paused() -> Iterator[bool]:
    """Pause the current dask worker's stack sampling for the block; yields whether it was running."""
    worker = _current_worker()
    pc = worker.periodic_callbacks.get(PROFILER) if worker is not None else None
    if pc is None:
        yield False
        return
    with _lock:
        first = _pauses.get(id(worker), 0) == 0
        running = pc.is_running() if first else True
        if running:
            _pauses[id(worker)] = _pauses.get(id(worker), 0) + 1
            if first:
                _on_loop(worker, pc.stop)
    try:
        yield running
    finally:
        if running:
            with _lock:
                _pauses[id(worker)] -= 1
                if not _pauses[id(worker)]:
                    del _pauses[id(worker)]
                    _on_loop(worker, pc.start)

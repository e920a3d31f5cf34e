"""Run one function over many items in a process pool whose workers each set up once (``init``).

Used by ``btfspec stats`` and ``stats --cross``: each worker loads the vmlinux BTF(s) once and keeps one
implementation.  A worker process that dies takes only its item down: such items are retried one per
fresh process and reported through ``crashed`` if that dies too; an exception in ``work`` is reported
the same way, never silently dropped.  ``jobs == 1`` runs everything in this process.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def _round(items: list[tuple[int, T]], jobs: int, work: Callable[[T], R], init: Callable[..., None],
           initargs: tuple[Any, ...], crashed: Callable[[T, str], R],
           done: Callable[[int, R], None]) -> list[tuple[int, T]]:
    """Run ``items`` in one pool; returns those whose worker died (the pool broke under them)."""
    broken: list[tuple[int, T]] = []
    with ProcessPoolExecutor(max_workers=jobs, initializer=init, initargs=initargs) as pool:
        futures: dict[Future[R], tuple[int, T]] = {pool.submit(work, x): (i, x) for i, x in items}
        for fut in as_completed(futures):
            i, x = futures[fut]
            try:
                done(i, fut.result())
            except BrokenProcessPool:
                broken.append((i, x))
            except Exception as e:  # a bug in work(): reported per item
                done(i, crashed(x, f"{type(e).__name__}: {e}"))
    return broken


def run_each(items: Sequence[T], work: Callable[[T], R], *, jobs: int, init: Callable[..., None],
             initargs: tuple[Any, ...], close: Callable[[], None], crashed: Callable[[T, str], R],
             progress: Callable[[R], None] | None = None, state: list[Any] | None = None) -> list[R]:
    """``work(item)`` for every item, results in item order.

    ``init(*initargs)`` sets up a worker (in this process too when ``jobs == 1``, then ``close()``
    tears it down and the module-level ``state`` list it fills is restored); ``crashed(item, why)``
    makes the result of an item whose worker died or raised; ``progress`` sees each result as it comes.
    """
    results: dict[int, R] = {}

    def done(i: int, r: R) -> None:
        results[i] = r
        if progress:
            progress(r)

    indexed = list(enumerate(items))
    if jobs <= 1 or len(indexed) <= 1:
        saved = list(state) if state is not None else []
        try:
            init(*initargs)
            for i, x in indexed:
                done(i, work(x))
        finally:
            close()
            if state is not None:
                state[:] = saved
    else:
        broken = _round(indexed, min(jobs, len(indexed)), work, init, initargs, crashed, done)
        for item in broken:
            for i, x in _round([item], 1, work, init, initargs, crashed, done):
                done(i, crashed(x, "the worker process died (even when run alone)"))
    return [results[i] for i in sorted(results)]

"""The forked helper behind the parallel raw dump: its bytes, its failures, when it may run."""

from __future__ import annotations

import os
import threading
import time

import pytest

from btfspec.spec.forked import ForkedCall, can_fork


def test_the_helper_returns_its_bytes_whole() -> None:
    big = bytes(range(256)) * 20_000  # more than a pipe holds: the child blocks until the parent reads
    pieces = ForkedCall(lambda: big).result()
    assert pieces is not None and b"".join(pieces) == big
    assert ForkedCall(lambda: b"").result() == []


def test_a_failing_helper_gives_none() -> None:
    def raises() -> bytes:
        raise ValueError("no")

    def exits() -> bytes:
        os._exit(3)

    def killed() -> bytes:
        os.kill(os.getpid(), 9)
        return b"never"

    for fn in (raises, exits, killed):
        assert ForkedCall(fn).result() is None, fn.__name__


def test_close_ends_a_helper_that_still_runs() -> None:
    def sleeps() -> bytes:
        time.sleep(60)
        return b"late"

    call = ForkedCall(sleeps)
    pid = call.pid
    start = time.monotonic()
    call.close()
    assert time.monotonic() - start < 5 and call.pid is None
    try:
        os.kill(pid, 0)  # type: ignore[arg-type]
        gone = False
    except ProcessLookupError:
        gone = True
    assert gone  # killed and reaped, not left as a zombie
    assert call.result() is None  # nothing more to wait for


def test_no_fork_while_another_thread_runs() -> None:
    if not can_fork():
        pytest.skip("no forked helper here: one usable core, or no fork on this platform")
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert not can_fork()
    finally:
        stop.set()
        other.join()
    assert can_fork()

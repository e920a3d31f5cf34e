"""Half of a long, pure computation on the second core: run it in a forked child, collect its bytes.

Used by the raw dump of large objects (:func:`btfspec.spec.text.dump_raw`): the child formats the
second half of the records while the parent formats the first, so a vmlinux dump takes about the
wall time of half of it. A fork shares the parent's parsed data without copying or pickling it.

Only where it is safe and pays: a platform with ``fork``, at least two usable cores, and no other
Python thread (a fork copies only the calling thread; a lock another thread holds would stay held
in the child). The child never returns into the caller's code: it writes its result to a pipe and
leaves with :func:`os._exit` (no atexit handlers, no flushing of the parent's buffers). Whatever goes
wrong in the child (an exception, a signal, a short write) the parent sees ``None`` and computes
the half itself, so the result never depends on the fork.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Callable

PIPE_BYTES = 1 << 20  # the pipe's buffer (Linux's default limit for users): fewer, larger hand-overs


def usable_cores() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def can_fork() -> bool:
    """True when a forked helper can run beside this process now (see the module docstring)."""
    return hasattr(os, "fork") and usable_cores() >= 2 and threading.active_count() == 1


class ForkedCall:
    """``fn()`` running in a forked child; :meth:`result` waits for its bytes."""

    def __init__(self, fn: Callable[[], bytes]) -> None:
        read_fd, write_fd = os.pipe()
        try:
            fcntl.fcntl(write_fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        except (AttributeError, OSError):  # not Linux, or over the system's limit: the default pipe
            pass
        pid = os.fork()
        if pid == 0:  # the child: compute, write, leave without returning
            status = 1
            try:
                os.close(read_fd)
                data = memoryview(fn())
                while data:
                    data = data[os.write(write_fd, data):]
                status = 0
            except BaseException:  # noqa: BLE001 - any failure only means the parent does the work
                pass
            finally:
                os._exit(status)
        os.close(write_fd)
        self.pid: int | None = pid
        self._read_fd = read_fd

    def result(self) -> list[bytes] | None:
        """The child's bytes, in the pieces they were read in (not joined: the caller writes them one
        after the other), or ``None`` when it did not finish cleanly (or was closed)."""
        if self.pid is None:
            return None
        chunks = []
        try:
            while chunk := os.read(self._read_fd, 1 << 20):
                chunks.append(chunk)
        except OSError:
            self.close()
            return None
        ok = self._reap(block=True)
        return chunks if ok else None

    def close(self) -> None:
        """Give up on the child: end it if it still runs, and reap it."""
        self._reap(block=False)

    def _reap(self, *, block: bool) -> bool:
        """Close the pipe and wait for the child (killing it first unless ``block``); True on exit 0."""
        if self.pid is None:
            return False
        pid, self.pid = self.pid, None
        os.close(self._read_fd)
        if not block:
            os.kill(pid, 9)
        _, status = os.waitpid(pid, 0)
        return os.waitstatus_to_exitcode(status) == 0

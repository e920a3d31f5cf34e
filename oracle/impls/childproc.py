"""Process handling shared by the implementations that run a child program (libbpf worker, ``cmd``, ``serve``).

* :func:`signal_name` -- how a child ended (``SIGSEGV``, ``exit status 3``);
* :func:`kill` -- SIGKILL a child (its whole process group when it leads one) and reap it;
* :func:`file_tail` -- the last bytes written to a child's stderr file, from an offset on;
* :func:`read_line` -- one ``\\n``-terminated line from a pipe, with a deadline.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import time
from typing import IO, Any

STDERR_TAIL = 4000


class ReadTimeout(Exception):
    """The child did not answer before the deadline."""


def signal_name(returncode: int | None) -> str:
    """``SIGSEGV`` for a child killed by a signal, ``exit status N`` otherwise."""
    if returncode is None:
        return "unknown exit"
    if returncode < 0:
        try:
            return signal.Signals(-returncode).name
        except ValueError:
            return f"signal {-returncode}"
    return f"exit status {returncode}"


def kill(proc: subprocess.Popen[Any], *, group: bool = False) -> None:
    """SIGKILL ``proc`` (with ``group``: the process group it leads, so its children go too), then reap it."""
    if group:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    try:
        proc.kill()
    except OSError:
        pass
    try:
        proc.wait(timeout=10.0)
    except subprocess.TimeoutExpired:
        pass


def file_tail(file: IO[bytes] | None, start: int = 0, limit: int = STDERR_TAIL) -> str:
    """The text written to ``file`` from offset ``start`` on, at most its last ``limit`` bytes."""
    if file is None:
        return ""
    try:
        fd = file.fileno()
        size = os.fstat(fd).st_size
        begin = max(start, size - limit)
        return os.pread(fd, size - begin, begin).decode("utf-8", "replace") if size > begin else ""
    except OSError:
        return ""


def read_line(fd: int, pending: bytearray, deadline: float, limit: int = 1 << 16) -> bytes | None:
    """One line (without ``\\n``) from ``fd``; bytes after it stay in ``pending``.

    None at EOF; raises :class:`ReadTimeout` at ``deadline`` (``time.monotonic``) and
    :class:`ValueError` for a line longer than ``limit``.
    """
    while True:
        nl = pending.find(b"\n")
        if nl >= 0:
            line = bytes(pending[:nl])
            del pending[:nl + 1]
            return line
        if len(pending) > limit:
            raise ValueError(f"a reply line longer than {limit} bytes")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ReadTimeout
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            continue
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return None
        pending += chunk

"""``serve``: an external program that starts once and answers requests on stdin/stdout.

The protocol (``oracle/impls/PROTOCOL.md`` has the page with a worked example) is one text line per
message, so a C, Go or Rust port implements it with ``fgets``/``printf``:

* the program prints ``ready OP...`` first (the operations it supports: ``distill``, ``relocate``);
* each request is ``distill SPLIT BASE OUT_BASE OUT_SPLIT`` or ``relocate SPLIT DISTILLED_BASE BASE
  OUT`` -- absolute paths of raw BTF files in a private per-program directory (never containing
  whitespace); the program writes the output files and answers ``ok``, or ``error ERRNO [TEXT]``
  (an integer or an ``EXXX`` name; made negative);
* whatever it writes to stderr during a request becomes that outcome's ``log``.

:class:`ServeImpl` starts the program in its own process group, once (the constructor reads the
``ready`` line, so a program that cannot start is :class:`ImplUnavailable`-style ``ValueError``).
A request not answered within ``timeout`` seconds kills the group (``status="timeout"``); EOF on the
program's stdout, a malformed reply or an ``ok`` without every output file is a ``crash``; the
program is restarted on the next call, so a campaign never dies with it.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

from btfspec.oracle.impls import childproc
from btfspec.oracle.impls.external import errno_from_stdout
from btfspec.oracle.impls.outcome import CRASH, DEFAULT_TIMEOUT, ERROR, OK, TIMEOUT, Outcome

IMPL = "serve"
STARTUP_TIMEOUT = 30.0
OPERATIONS = ("distill", "relocate")
_INPUTS = {"distill": ("split", "base"), "relocate": ("split", "distilled_base", "base")}
_OUTPUTS = {"distill": ("out_base", "out_split"), "relocate": ("out",)}
_ROLE = {"out_base": "base", "out_split": "split", "out": "split"}


def _die_with_parent() -> None:
    """In the child before exec (Linux): SIGKILL when the process that started it dies, so a program
    hanging in a request cannot outlive a worker that was killed."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL
    except (OSError, AttributeError):
        pass


def _scratch_root() -> str | None:
    """Where the per-program directory goes: a RAM-backed ``/dev/shm`` when this system has one (writing
    small files there costs microseconds; on a disk file system it can cost milliseconds per request),
    else the default temporary directory."""
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK | os.X_OK) else None


class ServeError(ValueError):
    """The program cannot be started or did not greet with ``ready`` (the message says why)."""


def parse_command(command: str) -> list[str]:
    """``--serve-cmd`` split like a shell would (no shell runs it); ServeError when empty or unbalanced."""
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise ServeError(f"--serve-cmd {command!r}: {exc}") from None
    if not argv:
        raise ServeError("--serve-cmd is empty")
    return argv


class ServeImpl:
    """A persistent external implementation (see the module docstring)."""

    def __init__(self, command: str, *, timeout: float = DEFAULT_TIMEOUT, name: str = IMPL,
                 startup_timeout: float = STARTUP_TIMEOUT, env: dict[str, str] | None = None) -> None:
        self.argv = parse_command(command)
        self.command = command
        self.name = name
        self.timeout = timeout
        self.startup_timeout = startup_timeout
        self.env = env
        self.starts = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._errfile: Any = None
        self._pending = bytearray()
        self._lock = threading.Lock()
        self._owner_pid = os.getpid()
        self._dir = tempfile.mkdtemp(prefix="btfspec-serve-", dir=_scratch_root())
        if any(c.isspace() for c in self._dir):
            shutil.rmtree(self._dir, ignore_errors=True)
            raise ServeError(f"the temporary directory {self._dir!r} contains whitespace (set TMPDIR)")
        try:
            caps = self._start()
        except ServeError:
            self.close()
            raise
        self.capabilities: frozenset[str] = frozenset(caps)

    def __repr__(self) -> str:
        return f"ServeImpl({self.command!r}, capabilities={sorted(self.capabilities)})"

    # --- lifecycle ---------------------------------------------------------------------------------

    def _start(self) -> list[str]:
        """Start the program and read its ``ready`` line; the operations it names."""
        self._errfile = tempfile.TemporaryFile(prefix="btfspec-serve-stderr-", dir=_scratch_root())
        try:
            proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._errfile,
                                    bufsize=0, close_fds=True, cwd=self._dir, start_new_session=True,
                                    env=self.env, preexec_fn=_die_with_parent if sys.platform == "linux" else None)
        except OSError as exc:
            raise ServeError(f"cannot run {self.argv[0]!r}: {exc}") from None
        self._proc, self._pending = proc, bytearray()
        self.starts += 1
        assert proc.stdout is not None
        try:
            line = childproc.read_line(proc.stdout.fileno(), self._pending, time.monotonic() + self.startup_timeout)
        except (childproc.ReadTimeout, ValueError):
            self._stop()
            raise ServeError(f"{self.argv[0]!r} did not print 'ready' within {self.startup_timeout:g} s") from None
        if line is None:
            proc.wait()
            tail = childproc.file_tail(self._errfile).strip()
            self._stop()
            raise ServeError(f"{self.argv[0]!r} ended before 'ready' ({childproc.signal_name(proc.returncode)})"
                             + (f": {tail.splitlines()[-1]}" if tail else ""))
        words = line.decode("utf-8", "replace").split()
        if not words or words[0] != "ready":
            self._stop()
            raise ServeError(f"{self.argv[0]!r} greeted with {line[:80]!r}, not 'ready OP...'")
        unknown = [w for w in words[1:] if w not in OPERATIONS]
        caps = [w for w in words[1:] if w in OPERATIONS]
        if unknown or not caps:
            self._stop()
            raise ServeError(f"{self.argv[0]!r}: 'ready' must name distill and/or relocate, got {words[1:]}")
        return caps

    def _stop(self) -> None:
        """Kill the program (its process group) and drop its pipes and stderr file."""
        proc, self._proc = self._proc, None
        if proc is not None:
            childproc.kill(proc, group=True)
            for f in (proc.stdin, proc.stdout):
                with contextlib.suppress(OSError):
                    if f:
                        f.close()
        if self._errfile is not None:
            with contextlib.suppress(OSError):
                self._errfile.close()
            self._errfile = None

    def close(self) -> None:
        """Stop the program (EOF on its stdin, SIGKILL after 2 s) and remove the directory."""
        if os.getpid() != self._owner_pid:
            return  # a forked copy: the program belongs to the parent
        proc = self._proc
        if proc is not None and proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=2.0)
        self._stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> ServeImpl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()

    # --- operations --------------------------------------------------------------------------------

    def distill(self, split: bytes, base: bytes, *, timeout: float | None = None) -> Outcome:
        """``distill``; outputs ``base`` and ``split``."""
        return self._call("distill", (split, base), timeout)

    def relocate(self, split: bytes, distilled_base: bytes, base: bytes, *, timeout: float | None = None) -> Outcome:
        """``relocate``; output ``split``."""
        return self._call("relocate", (split, distilled_base, base), timeout)

    def accept(self, blob: bytes, base: bytes | None = None, *, timeout: float | None = None) -> Outcome:
        """Not part of the protocol."""
        raise NotImplementedError(f"{self.name}: accept is not part of the serve protocol")

    def _call(self, op: str, inputs: tuple[bytes, ...], timeout: float | None) -> Outcome:
        if op not in self.capabilities:
            raise NotImplementedError(f"{self.name}: the program does not serve {op!r} "
                                      f"(it serves: {', '.join(sorted(self.capabilities))})")
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                self._stop()
                try:
                    self._start()
                except ServeError as exc:
                    return Outcome(CRASH, log=f"btfspec: {exc}\n", impl=self.name, detail="cannot restart")
            return self._exchange(op, inputs, self.timeout if timeout is None else timeout)

    def _exchange(self, op: str, inputs: tuple[bytes, ...], limit: float) -> Outcome:
        proc = self._proc
        assert proc is not None and proc.stdin is not None and proc.stdout is not None
        paths: list[str] = []
        for field, data in zip(_INPUTS[op], inputs, strict=True):
            path = os.path.join(self._dir, f"{field}.btf")
            with open(path, "wb") as f:
                f.write(data)
            paths.append(path)
        outs = [os.path.join(self._dir, f"{field}.btf") for field in _OUTPUTS[op]]
        for path in outs:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        err_start = os.fstat(self._errfile.fileno()).st_size
        request = " ".join((op, *paths, *outs)) + "\n"
        try:
            proc.stdin.write(request.encode())
            line = childproc.read_line(proc.stdout.fileno(), self._pending, time.monotonic() + limit)
        except childproc.ReadTimeout:
            log = childproc.file_tail(self._errfile, err_start)
            self._stop()
            return Outcome(TIMEOUT, log=log, impl=self.name, detail=f"killed after {limit:g} s")
        except (BrokenPipeError, ConnectionResetError):
            line = None
        except ValueError as exc:
            return self._crash(f"protocol: {exc}", err_start)
        if line is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5.0)
            return self._crash(childproc.signal_name(proc.poll()), err_start,
                               f"btfspec: {self.argv[0]} (pid {proc.pid}) ended during {op!r}\n")
        log = childproc.file_tail(self._errfile, err_start)
        words = line.decode("utf-8", "replace").split(maxsplit=2)
        if words[:1] == ["ok"] and len(words) == 1:
            results: dict[str, bytes] = {}
            for field, path in zip(_OUTPUTS[op], outs, strict=True):
                try:
                    with open(path, "rb") as f:
                        results[_ROLE[field]] = f.read()
                except OSError:
                    return self._crash(f"no output {field}", err_start, f"btfspec: 'ok' but no {path}\n")
            return Outcome(OK, outputs=results, log=log, impl=self.name)
        if words[:1] == ["error"] and len(words) >= 2:
            text = words[2] if len(words) > 2 else ""
            return Outcome(ERROR, errno_from_stdout(words[1]), log=log + (f"{text}\n" if text else ""),
                           impl=self.name, detail=text[:80])
        return self._crash("protocol: bad reply", err_start, f"btfspec: reply {line[:200]!r} is not "
                           "'ok' or 'error ERRNO [TEXT]'\n")

    def _crash(self, detail: str, err_start: int, note: str = "") -> Outcome:
        """A crash outcome with the program's stderr since ``err_start``; the program is stopped."""
        log = childproc.file_tail(self._errfile, err_start) + note
        self._stop()
        return Outcome(CRASH, log=log, impl=self.name, detail=detail)

"""libbpf in a crash- and hang-proof child process, the parent's side: :class:`LibbpfWorker`.

The child (``python -m btfspec.oracle.impls.libbpf_worker``, started with :mod:`subprocess`, so it also
works inside daemonic dask workers) runs :class:`~btfspec.oracle.impls.libbpf.LibBpf`; this module
holds the wire format both sides use (the operation table, frames, the blob cache mirrored on both
sides).  Every call returns an :class:`~btfspec.oracle.impls.outcome.Outcome`; a hang becomes
``status="timeout"`` (the child is killed and lazily restarted) and a crash ``status="crash"`` with the
signal name and the child's stderr tail.  A step expected to hang runs in a fork of the child, which
then lives on (``fork_below``).
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import os
import pickle
import select
import struct
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

from btfspec.locations import IMPORT_ROOT
from btfspec.oracle.impls import childproc
from btfspec.oracle.impls.batch import Output, Step, resolve
from btfspec.oracle.impls.childproc import signal_name
from btfspec.oracle.impls.libbpf import IMPL, BytesLike, LibbpfUnavailable, as_bytes
from btfspec.oracle.impls.outcome import CRASH, DEFAULT_TIMEOUT, TIMEOUT, Outcome


class WorkerError(RuntimeError):
    """The worker process could not be started or misbehaved (not caused by the BTF input)."""


_FRAME = struct.Struct("<Q")
# op -> (min args, max args)
_OPS: dict[str, tuple[int, int]] = {
    "parse": (1, 2), "roundtrip": (1, 2), "distill": (2, 2), "relocate": (3, 3), "dedup": (2, 2),
    "version": (0, 0), "ping": (0, 0), "crash": (0, 0), "sleep": (0, 1),
}
_BYTES_OPS = ("parse", "roundtrip", "distill", "relocate", "dedup")
BLOB_MIN_SIZE = 16 << 10  # arguments this large travel once, then by content hash ...
BLOB_CACHE = 4  # ... while they are among the last BLOB_CACHE such blobs sent to this worker process
FORK_GRACE = 1.0  # seconds a worker has past a forked step's limit to report it, before it is killed itself
_MISSING = ("missing",)  # a step input from an earlier step that failed: the worker skips the step
_STDERR_TAIL = 4000


class _Sent:
    """A request on its way to the worker: the process, the first step it holds, when it was sent."""

    def __init__(self, proc: subprocess.Popen[bytes], first: int, at: float) -> None:
        self.proc, self.first, self.at = proc, first, at
        self.broken = False  # the pipe was closed while sending (the worker died)


class _Timeout(Exception):
    pass


class LibbpfWorker:
    """libbpf in a long-lived child process: crash- and hang-proof calls returning :class:`Outcome`.

    ``call("distill", split, base)``, ``call("relocate", split, distilled_base, base)``,
    ``call("parse", data[, base])``, ``call("roundtrip", data[, base])``, plus ``"version"``,
    ``"ping"`` and the test-only ``"crash"`` (segfaults) and ``"sleep"`` (hangs); :meth:`batch` runs
    several in one request.  An argument of :data:`BLOB_MIN_SIZE` or more (a kernel's base) is sent
    once and then named by its content hash.  Calls are serialized; the child starts lazily, is
    reused, restarted after a timeout or crash, and closed by :meth:`close`, the context manager, or
    at interpreter exit.

    With ``fork_below``, a step whose limit is shorter (a caller that expects a hang, as the reference's
    Q5 prediction does) runs in a fork of the worker, which enforces the limit itself, in CPU time: its
    hang or crash is the step's outcome as usual, but the worker is not restarted, and a slow answer on a
    loaded machine is not taken for a hang.
    """

    def __init__(self, *, timeout: float = DEFAULT_TIMEOUT, startup_timeout: float = 60.0,
                 python: str | None = None, fork_below: float | None = None) -> None:
        self.timeout = timeout
        self.fork_below = fork_below
        self.startup_timeout = startup_timeout
        self.python = python or sys.executable
        self.version: str | None = None
        self.starts = 0
        self.last_worker_seconds: float | None = None  # time spent inside the worker by the last call
        self._proc: subprocess.Popen[bytes] | None = None
        self._errfile: Any = None
        self._progress: Any = None  # the file the worker writes each step's outcome to (see libbpf_worker)
        self._owner_pid = os.getpid()
        self._lock = threading.Lock()
        self._spare: tuple[subprocess.Popen[bytes], Any, Any] | None = None  # the next worker, starting
        self._begun: Callable[[], None] | None = None  # settles a begun batch whose outcomes nobody read yet
        self._worker_blobs: OrderedDict[str, None] = OrderedDict()  # what the running worker holds
        self._digests: OrderedDict[int, tuple[bytes, str]] = OrderedDict()
        _live_workers.add(self)

    # --- lifecycle ---------------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """The child's pid, or None when no child is running."""
        return self._proc.pid if self._proc is not None else None

    def __enter__(self) -> LibbpfWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def close(self) -> None:
        """Stop the child (EOF on its stdin, then SIGKILL after 2 s) and the spare."""
        self._drop_spare()
        proc, self._proc = self._proc, None
        if proc is not None and os.getpid() != self._owner_pid:
            self._errfile = self._progress = None  # a forked copy: the child process belongs to the parent
            return
        if proc is not None:
            try:
                if proc.stdin:
                    proc.stdin.close()
                proc.wait(timeout=2.0)
            except (OSError, subprocess.TimeoutExpired):
                self._kill(proc)
        self._release_files(proc)

    def _release_files(self, proc: subprocess.Popen[bytes] | None) -> None:
        if proc is not None:
            for f in (proc.stdin, proc.stdout):
                try:
                    if f:
                        f.close()
                except OSError:
                    pass
        for f in (self._errfile, self._progress):
            try:
                if f is not None:
                    f.close()
            except OSError:
                pass
        self._errfile = self._progress = None

    @staticmethod
    def _kill(proc: subprocess.Popen[bytes]) -> None:
        childproc.kill(proc)

    def _spawn(self) -> tuple[subprocess.Popen[bytes], Any, Any]:
        """A new worker process (not waited for) with its stderr and progress files."""
        env = dict(os.environ)
        root = str(IMPORT_ROOT)
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        env.setdefault("PYTHONDONTWRITEBYTECODE", "1")
        errfile = tempfile.TemporaryFile(prefix="btfspec-libbpf-worker-")
        progress = tempfile.TemporaryFile(prefix="btfspec-libbpf-progress-")
        progress_fd = progress.fileno()
        proc = subprocess.Popen(
            [self.python, "-m", "btfspec.oracle.impls.libbpf_worker", str(progress_fd)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errfile,
            bufsize=0, close_fds=True, pass_fds=(progress_fd,), env=env, cwd=root,
        )
        return proc, errfile, progress

    def _drop_spare(self) -> None:
        spare, self._spare = self._spare, None
        if spare is not None:
            self._discard(spare)

    def _discard(self, spare: tuple[subprocess.Popen[bytes], Any, Any]) -> None:
        """End a worker that never served (a spare) and close its files."""
        proc, errfile, progress = spare
        if os.getpid() == self._owner_pid:
            self._kill(proc)
            for f in (proc.stdin, proc.stdout, errfile, progress):
                with contextlib.suppress(OSError):
                    if f is not None:
                        f.close()

    def _start(self) -> subprocess.Popen[bytes]:
        """The next worker, ready: the spare started when the one before died, else a new one. Once a
        worker has died, a spare is kept starting meanwhile, so that a campaign whose cases crash or hang
        libbpf does not wait for a process start (70 ms) after each."""
        spare, self._spare = self._spare, None
        if spare is not None and spare[0].poll() is None:
            proc, self._errfile, self._progress = spare
        else:
            if spare is not None:  # it died before serving
                self._discard(spare)
            proc, self._errfile, self._progress = self._spawn()
        self._proc = proc
        self._worker_blobs.clear()
        self.starts += 1
        try:
            msg = self._recv(proc, time.monotonic() + self.startup_timeout)
        except _Timeout:
            self._kill(proc)
            self._proc = None
            self._release_files(proc)
            raise WorkerError(f"libbpf worker did not start within {self.startup_timeout} s") from None
        if msg is None:
            proc.wait(timeout=10.0)
            tail = self._stderr_tail()
            self._proc = None
            self._release_files(proc)
            raise WorkerError(f"libbpf worker died on startup ({signal_name(proc.returncode)}): {tail}")
        if msg[0] == "unavailable":
            self.close()
            raise LibbpfUnavailable(msg[1])
        if msg[0] != "ready":
            self.close()
            raise WorkerError(f"unexpected worker greeting {msg!r}")
        self.version = msg[1]
        if self.starts > 1:
            self._spare = self._spawn()
        return proc

    # --- protocol ----------------------------------------------------------------------------------

    @staticmethod
    def _send(proc: subprocess.Popen[bytes], obj: object) -> None:
        payload = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
        view = memoryview(_FRAME.pack(len(payload)) + payload)
        assert proc.stdin is not None
        while view:
            n = proc.stdin.write(view)
            view = view[n or 0:]

    @staticmethod
    def _read_exact(fd: int, n: int, deadline: float) -> bytes | None:
        buf = bytearray()
        while len(buf) < n:
            remaining = deadline - time.monotonic()
            ready, _, _ = select.select([fd], [], [], max(0.0, remaining))  # late: what already came
            if not ready:
                if remaining <= 0:
                    raise _Timeout
                continue
            chunk = os.read(fd, min(n - len(buf), 1 << 20))
            if not chunk:
                return None
            buf += chunk
        return bytes(buf)

    def _recv(self, proc: subprocess.Popen[bytes], deadline: float) -> Any:
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        head = self._read_exact(fd, _FRAME.size, deadline)
        if head is None:
            return None
        body = self._read_exact(fd, _FRAME.unpack(head)[0], deadline)
        if body is None:
            return None
        return pickle.loads(body)

    def _stderr_tail(self) -> str:
        return childproc.file_tail(self._errfile, limit=_STDERR_TAIL)

    # --- calls -------------------------------------------------------------------------------------

    @staticmethod
    def _check(op: str, args: tuple[Any, ...]) -> tuple[Any, ...]:
        if op not in _OPS:
            raise ValueError(f"unknown libbpf worker operation {op!r} (known: {', '.join(_OPS)})")
        lo, hi = _OPS[op]
        if not lo <= len(args) <= hi:
            raise TypeError(f"operation {op!r} takes {lo}..{hi} arguments, got {len(args)}")
        if op in _BYTES_OPS:
            return tuple(a if isinstance(a, Output) or (a is None and op in ("parse", "roundtrip") and i == 1)
                         else as_bytes(a, f"{op} argument {i}") for i, a in enumerate(args))
        return args

    def call(self, op: str, *args: Any, timeout: float | None = None) -> Outcome:
        """Run ``op`` in the worker; never raises for bad BTF input (hang -> timeout, crash -> crash).

        Raises ``ValueError``/``TypeError`` for an unknown op or non-bytes arguments,
        :class:`LibbpfUnavailable` / :class:`WorkerError` when the worker cannot be started.
        """
        out = self.batch([Step(op, args, timeout)])[0]
        assert out is not None  # a step without Output arguments always runs
        return out

    def batch(self, steps: Sequence[Step]) -> list[Outcome | None]:
        """Run the steps (worker operations, see :class:`LibbpfWorker`) in one request; their outcomes.

        A step whose :class:`~btfspec.oracle.impls.batch.Output` input is missing is not run (None).
        Each step has its own time limit, counted from the end of the step before; a step that hangs or
        crashes gets that outcome, the worker is restarted, and the steps after it run in the new one.
        """
        return self.begin_batch(steps)()

    def begin_batch(self, steps: Sequence[Step]) -> Callable[[], list[Outcome | None]]:
        """:meth:`batch` in two halves: the request is sent now, and the returned function waits for the
        outcomes (the caller works meanwhile while the worker runs). A later call settles a batch begun
        before whose outcomes were not asked for yet, so requests never interleave."""
        checked = [Step(s.op, self._check(s.op, tuple(s.args)), s.timeout) for s in steps]
        for i, step in enumerate(checked):
            if any(isinstance(a, Output) and not 0 <= a.step < i for a in step.args):
                raise ValueError(f"step {i} ({step.op}) takes an Output of a step that does not come before it")
        outcomes: list[Outcome | None] = []
        settled: list[bool] = []

        def settle() -> None:  # under the lock
            if settled:
                return
            settled.append(True)
            if self._begun is settle:
                self._begun = None
            if sent is not None:
                self._receive(checked, outcomes, sent)
            while len(outcomes) < len(checked):
                self._run_from(checked, outcomes)

        def finish() -> list[Outcome | None]:
            with self._lock:
                settle()
            return outcomes

        with self._lock:
            if self._begun is not None:
                self._begun()
            self.last_worker_seconds = 0.0
            sent = self._send_from(checked, outcomes) if checked else None
            self._begun = settle
        return finish

    def _running(self) -> subprocess.Popen[bytes]:
        if os.getpid() != self._owner_pid:  # forked: the pipes belong to the parent's worker
            self._proc, self._errfile, self._progress, self._spare = None, None, None, None
            self._owner_pid = os.getpid()
        proc = self._proc if self._proc is not None and self._proc.poll() is None else None
        if proc is None:
            if self._proc is not None:
                self.close()
            proc = self._start()
        return proc

    def _wire(self, arg: Any, outcomes: list[Outcome | None]) -> Any:
        """An argument as sent: an earlier-batch Output resolved here, a large blob named by its hash
        once the worker holds it (the worker keeps the last :data:`BLOB_CACHE` large blobs, as we do)."""
        if isinstance(arg, Output) and arg.step < len(outcomes):
            arg = (resolve((arg,), outcomes) or (None,))[0]
            if arg is None:
                return _MISSING
        if not isinstance(arg, bytes) or len(arg) < BLOB_MIN_SIZE:
            return arg
        digest = self._digest(arg)
        if digest in self._worker_blobs:
            self._worker_blobs.move_to_end(digest)
            return ("ref", digest)
        self._worker_blobs[digest] = None
        if len(self._worker_blobs) > BLOB_CACHE:
            self._worker_blobs.popitem(last=False)
        return ("blob", digest, arg)

    def _digest(self, blob: bytes) -> str:
        """The blob's content hash, remembered for the blob objects seen last (no rehash per call)."""
        known = self._digests.get(id(blob))
        if known is not None and known[0] is blob:
            return known[1]
        digest = hashlib.blake2b(blob, digest_size=16).hexdigest()
        self._digests[id(blob)] = (blob, digest)
        if len(self._digests) > 2 * BLOB_CACHE:
            self._digests.popitem(last=False)
        return digest

    def _run_from(self, steps: list[Step], outcomes: list[Outcome | None]) -> None:
        """Send ``steps[len(outcomes):]`` to the worker and append their outcomes until the batch ends or
        a step hangs or crashes (then its outcome is the last appended).

        The worker writes each step's outcome to the progress file and answers only at the end, so a
        batch costs one wake-up each way; on a timeout the file says whether the step still running is
        the one that started last (each step's limit counts from the end of the step before)."""
        self._receive(steps, outcomes, self._send_from(steps, outcomes))

    def _send_from(self, steps: list[Step], outcomes: list[Outcome | None]) -> _Sent:
        """The first half of :meth:`_run_from`: the request for ``steps[len(outcomes):]`` is sent."""
        first = len(outcomes)
        proc = self._running()
        request = [(s.op, tuple(self._wire(a, outcomes) for a in s.args), self._fork(s)) for s in steps[first:]]
        os.ftruncate(self._progress.fileno(), 0)
        sent = _Sent(proc, first, time.monotonic())
        try:
            self._send(proc, ("batch", first, request))
        except (BrokenPipeError, ConnectionResetError):
            sent.broken = True
        return sent

    def _receive(self, steps: list[Step], outcomes: list[Outcome | None], sent: _Sent) -> None:
        """The second half of :meth:`_run_from`: the answer to the request ``sent``."""
        proc, first = sent.proc, sent.first
        reply: Any = None
        try:
            if sent.broken:
                raise BrokenPipeError
            done: list[tuple[Outcome | None, float, float]] = []
            while True:
                current = first + len(done)
                if current >= len(steps):  # every step is done: the answer is on its way
                    deadline = time.monotonic() + self.startup_timeout
                else:
                    deadline = (done[-1][2] if done else sent.at) + self._allowance(steps[current])
                # a later step with a shorter limit may start unseen: look at the progress file meanwhile
                later = [self._limit(s) for s in steps[current + 1:]]
                wake = min(deadline, time.monotonic() + min(later) / 4) if later else deadline
                try:
                    reply = self._recv(proc, wake)
                    break
                except _Timeout:
                    progressed = self._progress_frames()
                    if len(progressed) > len(done):
                        done = progressed
                    elif time.monotonic() >= deadline:
                        self._take(progressed, outcomes)
                        self._kill(proc)
                        self._proc = None
                        self._release_files(proc)
                        limit = self._limit(steps[min(current, len(steps) - 1)])
                        outcomes.append(Outcome(TIMEOUT, impl=IMPL, detail=f"killed after {limit:g} s"))
                        return
        except (BrokenPipeError, ConnectionResetError):
            reply = None
        self._take(self._progress_frames(), outcomes)
        if reply is None:  # died: during the first step without an outcome (or after the last one)
            crash = self._crashed(proc, steps[min(len(outcomes), len(steps) - 1)].op)
            if len(outcomes) < len(steps):
                outcomes.append(crash)
        elif reply[0] != "done":
            raise WorkerError(f"libbpf worker failed on {steps[len(outcomes)].op!r}: {reply[1]}")

    def _progress_frames(self) -> list[tuple[Outcome | None, float, float]]:
        """The complete ``(outcome, seconds inside the worker, monotonic end time)`` frames written so far."""
        fd = self._progress.fileno()
        data = os.pread(fd, os.fstat(fd).st_size, 0)
        frames, pos = [], 0
        while pos + _FRAME.size <= len(data):
            (size,) = _FRAME.unpack_from(data, pos)
            if pos + _FRAME.size + size > len(data):
                break  # the worker died while writing it
            frames.append(pickle.loads(data[pos + _FRAME.size:pos + _FRAME.size + size]))
            pos += _FRAME.size + size
        return frames

    def _take(self, frames: list[tuple[Outcome | None, float, float]], outcomes: list[Outcome | None]) -> None:
        for outcome, seconds, _ in frames:
            outcomes.append(outcome)
            self.last_worker_seconds = (self.last_worker_seconds or 0.0) + seconds

    def _limit(self, step: Step) -> float:
        return self.timeout if step.timeout is None else step.timeout

    def _fork(self, step: Step) -> tuple[float, float] | None:
        """For a step run in a fork (see ``fork_below``): its limit in CPU seconds and the worker's own
        limit as a cap in wall seconds (a fork that a loaded machine starves is not called hung early);
        None for a step run in the worker itself."""
        limit = self._limit(step)
        return (limit, max(limit, self.timeout)) if self.fork_below is not None and limit < self.fork_below else None

    def _allowance(self, step: Step) -> float:
        """How long the worker may take over ``step`` before it is killed: its limit, or for a forked step
        the cap and :data:`FORK_GRACE` more, for the worker to end the fork and answer."""
        fork = self._fork(step)
        return self._limit(step) if fork is None else fork[1] + FORK_GRACE

    def _crashed(self, proc: subprocess.Popen[bytes], op: str) -> Outcome:
        try:
            proc.wait(timeout=10.0)
        except subprocess.TimeoutExpired:
            self._kill(proc)
        how = signal_name(proc.returncode)
        tail = self._stderr_tail()
        if tail and not tail.endswith("\n"):
            tail += "\n"
        tail += f"btfspec: libbpf worker (pid {proc.pid}) died ({how}) during {op!r}\n"
        self._proc = None
        self._release_files(proc)
        return Outcome(CRASH, log=tail, impl=IMPL, detail=how)

    # --- convenience wrappers ----------------------------------------------------------------------

    def parse(self, data: BytesLike, base: BytesLike | None = None, *,
              timeout: float | None = None) -> Outcome:
        """Parse raw BTF; ``detail`` is ``type_cnt=N`` on success."""
        return self.call("parse", data, base, timeout=timeout)

    def roundtrip(self, data: BytesLike, base: BytesLike | None = None, *,
                  timeout: float | None = None) -> Outcome:
        """Parse and re-serialize; ``outputs["raw"]``."""
        return self.call("roundtrip", data, base, timeout=timeout)

    def distill(self, split: BytesLike, base: BytesLike, *, timeout: float | None = None) -> Outcome:
        """``btf__distill_base``; ``outputs["base"]``, ``outputs["split"]``."""
        return self.call("distill", split, base, timeout=timeout)

    def relocate(self, split: BytesLike, distilled_base: BytesLike, base: BytesLike, *,
                 timeout: float | None = None) -> Outcome:
        """``btf__relocate``; ``outputs["split"]``."""
        return self.call("relocate", split, distilled_base, base, timeout=timeout)

    def dedup(self, split: BytesLike, base: BytesLike, *, timeout: float | None = None) -> Outcome:
        """``btf__dedup`` of a split; ``outputs["split"]``."""
        return self.call("dedup", split, base, timeout=timeout)


_live_workers: weakref.WeakSet[LibbpfWorker] = weakref.WeakSet()


@atexit.register
def _close_all_workers() -> None:
    for worker in list(_live_workers):
        try:
            worker.close()
        except Exception:
            pass

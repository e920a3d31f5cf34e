"""Main loop of the libbpf worker process (``python -m btfspec.oracle.impls.libbpf_worker``).

Protocol (driven by :class:`btfspec.oracle.impls.libbpf_process.LibbpfWorker`): every message is an 8-byte
little-endian length followed by a pickle.  The worker first sends ``("ready", version, pid)`` (or
``("unavailable", reason)`` and exits); then a request ``("batch", first, [(op, args, fork), ...])``
(the steps numbered from ``first``) is answered by ``("done", n)``, or ``("exception", text)`` for a
bug in the request.  ``fork`` is None, or ``(limit, cap)`` for a step the parent suspects of
hanging: it runs in a fork of this worker, a hang once it has used ``limit`` CPU seconds or ``cap``
wall seconds (:func:`_forked`).  The outcomes go to the progress
file (its descriptor is the one argument; the parent empties it before each batch): one frame
``(Outcome | None, seconds_spent, monotonic end time)`` per step as soon as the step is done (None:
an input it takes from an earlier step is missing, so it did not run), so that the parent knows what
finished when a later step hangs or crashes.  An argument is bytes, None, an
:class:`~btfspec.oracle.impls.batch.Output` of an earlier step of the batch, ``("blob", digest,
bytes)`` (kept in a small cache) or ``("ref", digest)`` (a cached blob).  EOF on stdin ends the
worker.  The protocol channel is a private duplicate of the original stdout; fd 1 is pointed at
stderr so stray C output cannot corrupt it.
"""

from __future__ import annotations

import ctypes
import faulthandler
import os
import pickle
import resource
import select
import signal
import sys
import threading
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, BinaryIO

from btfspec.oracle.impls.batch import resolve
from btfspec.oracle.impls.childproc import file_tail, signal_name
from btfspec.oracle.impls.libbpf import IMPL, LibBpf, LibbpfUnavailable, unavailable_reason
from btfspec.oracle.impls.libbpf_process import _FRAME, _MISSING, BLOB_CACHE
from btfspec.oracle.impls.outcome import CRASH, OK, TIMEOUT, Outcome

_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None)  # this process's C library: prctl, clock_getcpuclockid
_RAISED = 70  # exit status of a fork whose step raised (EX_SOFTWARE)


def _handlers(lib: LibBpf) -> dict[str, Callable[..., Outcome]]:
    def crash() -> Outcome:
        ctypes.string_at(0)  # dereferences NULL: SIGSEGV
        return Outcome(OK, impl=IMPL)

    def sleep(seconds: float = 86400.0) -> Outcome:
        time.sleep(float(seconds))
        return Outcome(OK, impl=IMPL)

    return {
        "parse": lambda *a: lib.run("parse", *a),
        "roundtrip": lambda *a: lib.run("roundtrip", *a),
        "distill": lib.distill_outcome,
        "relocate": lib.relocate_outcome,
        "dedup": lib.dedup_outcome,
        "version": lambda: lib.run("version"),
        "ping": lambda: Outcome(OK, impl=IMPL),
        "crash": crash,
        "sleep": sleep,
    }


class BlobCache:
    """The last :data:`BLOB_CACHE` large blobs received, by content hash (the parent mirrors it)."""

    def __init__(self) -> None:
        self._blobs: OrderedDict[str, bytes] = OrderedDict()

    def arg(self, wire: Any) -> Any:
        """The argument ``wire`` stands for (see the module docstring)."""
        if not isinstance(wire, tuple) or wire == _MISSING:
            return wire
        if wire[0] == "blob":
            _, digest, data = wire
            self._blobs[digest] = data
            if len(self._blobs) > BLOB_CACHE:
                self._blobs.popitem(last=False)
            return data
        _, digest = wire
        self._blobs.move_to_end(digest)  # KeyError: the parent's mirror is out of step, a bug
        return self._blobs[digest]


def _die_with_parent(parent: int) -> None:
    """SIGKILL this process when ``parent`` ends (``PR_SET_PDEATHSIG``), so a hung fork never outlives it."""
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # it ended before the call
        os._exit(3)


class _CpuClock:
    """A process's CPU time (``clock_getcpuclockid``), or its wall time where that clock is not to be had."""

    def __init__(self, pid: int) -> None:
        self._start = time.monotonic()
        self._clock: int | None = None
        clock = ctypes.c_int()
        try:
            if _libc.clock_getcpuclockid(pid, ctypes.byref(clock)) == 0:
                self._clock = clock.value
        except (OSError, AttributeError):
            pass

    def seconds(self) -> float:
        """CPU seconds the process has used (wall seconds since it started without a CPU clock)."""
        if self._clock is not None:
            try:
                return time.clock_gettime(self._clock)
            except OSError:  # it has just ended: its answer is on the pipe
                return 0.0
        return time.monotonic() - self._start


def _await_fork(pid: int, answer: int, limit: float, cap: float) -> bytes | str:
    """What the fork ``pid`` writes to ``answer`` until it closes it, or why it was killed as hung
    (text): it ran ``limit`` seconds on a CPU (a fork starved by a loaded machine is given more wall
    time, so a slow answer is not taken for a hang), or ``cap`` seconds of wall time went by."""
    data = bytearray()
    clock = _CpuClock(pid)
    now = time.monotonic()
    wall_end, check = now + cap, now + limit
    why = f"killed after {cap:g} s of wall time"
    while now < wall_end:
        if select.select([answer], [], [], max(0.0, min(check, wall_end) - now))[0]:
            chunk = os.read(answer, 1 << 16)
            if not chunk:
                return bytes(data)
            data += chunk
        now = time.monotonic()
        if now >= check:
            used = clock.seconds()
            if used >= limit:
                why = f"killed after {limit:g} s"
                break
            check = now + limit - used  # the soonest it can have used its limit
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return why


def _forked(run: Callable[..., Outcome], args: tuple[Any, ...], op: str, limit: float, cap: float) -> Outcome:
    """``run(*args)`` in a fork of this worker, killed as hung after ``limit`` CPU seconds (or ``cap`` wall
    seconds, :func:`_await_fork`): a hang or crash there is the step's outcome (as
    :class:`~btfspec.oracle.impls.libbpf_process.LibbpfWorker` reports it) and this worker lives on, so a campaign
    pays a fork (a few milliseconds) per predicted hang, not a worker start (about 90 ms of CPU)."""
    err_start = os.fstat(2).st_size
    parent = os.getpid()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the fork: answer through the pipe, never return into the worker's loop
        code = 0
        try:
            os.close(r)
            _die_with_parent(parent)
            with os.fdopen(w, "wb") as answer:
                answer.write(pickle.dumps(run(*args), pickle.HIGHEST_PROTOCOL))
        except BaseException:
            traceback.print_exc()
            code = _RAISED
        finally:
            os._exit(code)
    os.close(w)
    try:
        data = _await_fork(pid, r, limit, cap)
    finally:
        os.close(r)
    if isinstance(data, str):
        return Outcome(TIMEOUT, impl=IMPL, detail=data)
    status = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    if status == 0 and data:
        return pickle.loads(data)
    tail = file_tail(sys.stderr, err_start)
    if status == _RAISED:  # a bug in the request, as in an unforked step
        raise RuntimeError(f"{op!r} raised in a fork of the worker:\n{tail}")
    how = signal_name(status)
    if tail and not tail.endswith("\n"):
        tail += "\n"
    tail += f"btfspec: libbpf worker (pid {pid}, forked for this step) died ({how}) during {op!r}\n"
    return Outcome(CRASH, log=tail, impl=IMPL, detail=how)


def _run_batch(progress: int, handlers: dict[str, Callable[..., Outcome]], blobs: BlobCache, first: int,
               request: list[tuple[str, tuple[Any, ...], tuple[float, float] | None]]) -> int:
    """Run the steps, writing each one's outcome to the progress file as soon as it is known."""
    steps = [(op, tuple(blobs.arg(a) for a in args), fork) for op, args, fork in request]
    outcomes: list[Outcome | None] = [None] * first
    offset = 0
    for op, args, fork in steps:
        resolved = None if _MISSING in args else resolve(args, outcomes)
        start = time.perf_counter()
        if resolved is None:
            outcome = None
        elif fork is None:
            outcome = handlers[op](*resolved)
        else:
            outcome = _forked(handlers[op], resolved, op, *fork)
        outcomes.append(outcome)
        frame = pickle.dumps((outcome, time.perf_counter() - start, time.monotonic()), pickle.HIGHEST_PROTOCOL)
        offset += os.pwrite(progress, _FRAME.pack(len(frame)) + frame, offset)
    return len(steps)


def _read_exact(stream: BinaryIO, n: int) -> bytes | None:
    data = stream.read(n)
    if data is None or len(data) < n:
        return None
    return data


def _send(out: BinaryIO, obj: Any) -> None:
    payload = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    out.write(_FRAME.pack(len(payload)) + payload)
    out.flush()


def _watch_parent(parent: int) -> None:
    """Exit when the parent goes away, even while the main thread is stuck inside libbpf."""
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os._exit(3)


STACK_LIMIT = 8 << 20  # libbpf's recursion depth (quirk Q17) depends on it: make it the usual 8 MiB


def _pin_stack_limit() -> None:
    """Use an 8 MiB stack whatever ``ulimit -s`` says, so deep-chain crashes (Q17) are reproducible."""
    soft, hard = resource.getrlimit(resource.RLIMIT_STACK)
    want = STACK_LIMIT if hard == resource.RLIM_INFINITY else min(STACK_LIMIT, hard)
    if soft != want:
        resource.setrlimit(resource.RLIMIT_STACK, (want, hard))


def main() -> int:
    """Serve requests on stdin/stdout until EOF (the progress file descriptor is ``sys.argv[1]``)."""
    progress = int(sys.argv[1])
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    inp = sys.stdin.buffer
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop
    _pin_stack_limit()
    faulthandler.enable(file=sys.stderr)
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()

    reason = unavailable_reason()
    if reason:
        _send(out, ("unavailable", reason))
        return 1
    try:
        lib = LibBpf()
    except LibbpfUnavailable as exc:
        _send(out, ("unavailable", str(exc)))
        return 1
    handlers = _handlers(lib)
    blobs = BlobCache()
    _send(out, ("ready", lib.version(), os.getpid()))

    while True:
        head = _read_exact(inp, _FRAME.size)
        if head is None:
            return 0
        body = _read_exact(inp, _FRAME.unpack(head)[0])
        if body is None:
            return 0
        try:
            kind, first, request = pickle.loads(body)
            assert kind == "batch", kind
            _send(out, ("done", _run_batch(progress, handlers, blobs, first, request)))
        except Exception:
            _send(out, ("exception", traceback.format_exc(limit=5)))


if __name__ == "__main__":
    sys.exit(main())

"""Main loop of the libbpf worker process (``python -m btfspec.oracle.impls.libbpf_worker``).

Protocol (driven by :class:`btfspec.oracle.impls.libbpf.LibbpfWorker`): every message is an 8-byte little-endian
length followed by a pickle.  The worker first sends ``("ready", version, pid)`` (or
``("unavailable", reason)`` and exits); then for each request ``(op, args)`` it answers
``("outcome", Outcome.to_dict(), seconds_spent)`` or ``("exception", text)`` for a bug in the
request.  EOF on stdin ends the worker.  The protocol channel is a private duplicate of the original
stdout; fd 1 is pointed at stderr so stray C output cannot corrupt it.
"""

from __future__ import annotations

import ctypes
import faulthandler
import os
import pickle
import resource
import signal
import struct
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any, BinaryIO

from btfspec.oracle.impls.libbpf import IMPL, LibBpf, LibbpfUnavailable, unavailable_reason
from btfspec.oracle.impls.outcome import OK, Outcome

_FRAME = struct.Struct("<Q")


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
        "version": lambda: lib.run("version"),
        "ping": lambda: Outcome(OK, impl=IMPL),
        "crash": crash,
        "sleep": sleep,
    }


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
    """Serve requests on stdin/stdout until EOF."""
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
    _send(out, ("ready", lib.version(), os.getpid()))

    while True:
        head = _read_exact(inp, _FRAME.size)
        if head is None:
            return 0
        body = _read_exact(inp, _FRAME.unpack(head)[0])
        if body is None:
            return 0
        try:
            op, args = pickle.loads(body)
            start = time.perf_counter()
            outcome = handlers[op](*args)
            spent = time.perf_counter() - start
            reply: tuple[Any, ...] = ("outcome", outcome.to_dict(), spent)
        except Exception:
            reply = ("exception", traceback.format_exc(limit=5))
        _send(out, reply)


if __name__ == "__main__":
    sys.exit(main())

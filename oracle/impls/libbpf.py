"""libbpf v1.6 as a BTF oracle, driven through ctypes on raw BTF bytes.

The PyPI wheel ``pylibbpf==0.0.6`` ships an extension module that links libbpf v1.6 statically and
exports its C API; we load that ``.so`` with :mod:`ctypes` (the ``pylibbpf`` Python package itself is
never imported, its dependencies are not installed).

Two layers:

* :class:`LibBpf` -- a thin in-process wrapper (parse / raw round trip / distill / relocate), one
  instance per process (:func:`get_libbpf`).  Fast, but an input that makes libbpf hang (quirk Q5) or
  crash (Q11, Q17) takes the calling process with it.
* :class:`LibbpfWorker` -- the same operations in a long-lived child process
  (``python -m btfspec.oracle.impls.libbpf_worker``, started with :mod:`subprocess`, so it also works inside daemonic
  dask workers).  Every call returns an :class:`~btfspec.oracle.impls.outcome.Outcome`; a hang becomes
  ``status="timeout"`` (the child is killed and lazily restarted) and a crash ``status="crash"`` with
  the signal name and the child's stderr tail.  A step expected to hang runs in a fork of the child,
  which then lives on (``fork_below``).

Relocation follows the reference's advice for Q13: the split is parsed from raw bytes on top of the
parsed distilled base, relocated onto the separately parsed target base, and only then serialized
with ``btf__raw_data`` (its header is unchanged by relocation; libbpf edits the cached raw buffer).

Why one module of ~800 lines: the ctypes layer and the crash-proof worker that hosts it share one wire
format (the op table, frames, the blob cache mirrored on both sides); the two halves are checked
against each other and against ``libbpf_worker.py``, the child side.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import errno as _errno
import functools
import hashlib
import importlib.util
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
from pathlib import Path
from typing import Any

from btfspec.locations import IMPORT_ROOT
from btfspec.oracle.impls import childproc
from btfspec.oracle.impls.batch import Output, Step, resolve
from btfspec.oracle.impls.childproc import signal_name
from btfspec.oracle.impls.outcome import CRASH, DEFAULT_TIMEOUT, ERROR, OK, TIMEOUT, Outcome
from btfspec.spec.errors import errno_text

IMPL = "libbpf"
EXPECTED_VERSION = "v1.6"
PIP_PIN = "pylibbpf==0.0.6"
_SO_NAME = "pylibbpf.cpython-311-x86_64-linux-gnu.so"
_LOG_BUF_SIZE = 8192

_P = ctypes.c_void_p
_U32 = ctypes.c_uint32
# int (*libbpf_print_fn_t)(enum libbpf_print_level level, const char *fmt, va_list args);
# On x86-64 a va_list parameter decays to a pointer, so it travels as c_void_p to vsnprintf.
_PRINT_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)

BytesLike = bytes | bytearray | memoryview


class LibbpfUnavailable(RuntimeError):
    """The libbpf shared object cannot be found or loaded (see :func:`unavailable_reason`)."""


class LibbpfError(Exception):
    """A libbpf call failed; ``errno`` is negative, ``log`` holds libbpf's messages."""

    def __init__(self, errno: int, log: str, detail: str = "") -> None:
        super().__init__(f"{errno_text(errno)}: {detail or log.strip()}")
        self.errno = errno
        self.log = log
        self.detail = detail


class WorkerError(RuntimeError):
    """The worker process could not be started or misbehaved (not caused by the BTF input)."""


# --------------------------------------------------------------------------------------------------
# locating the shared object
# --------------------------------------------------------------------------------------------------

def libbpf_path() -> str | None:
    """Path of the libbpf-carrying ``.so`` from the pylibbpf wheel, or None if it is not installed."""
    try:
        spec = importlib.util.find_spec("pylibbpf")  # does not import the package
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for loc in spec.submodule_search_locations:
        cand = Path(loc) / _SO_NAME
        if cand.is_file():
            return str(cand)
        found = sorted(Path(loc).glob("pylibbpf*.so"))
        if found:
            return str(found[0])
    return None


@functools.cache
def unavailable_reason() -> str | None:
    """Why libbpf cannot be used here (human text), or None when it can. Cached."""
    return _probe()


def _probe() -> str | None:
    path = libbpf_path()
    if path is None:
        return f"{PIP_PIN} is not installed: run `pip install --no-deps {PIP_PIN}`"
    try:
        lib = ctypes.CDLL(path, use_errno=True)
        fn = lib.libbpf_version_string
        fn.restype, fn.argtypes = ctypes.c_char_p, []
        version = (fn() or b"").decode()
    except (OSError, AttributeError) as exc:
        return f"cannot load libbpf from {path}: {exc}"
    if version != EXPECTED_VERSION:
        return f"{path} provides libbpf {version or '?'}, expected {EXPECTED_VERSION} ({PIP_PIN})"
    return None


# --------------------------------------------------------------------------------------------------
# in-process layer
# --------------------------------------------------------------------------------------------------

_log_lines: list[str] = []
_lock = threading.RLock()


class _ParseFailed(Exception):
    def __init__(self, role: str, errno: int) -> None:
        super().__init__(role)
        self.role = role
        self.errno = errno


class _Objects:
    """Collects ``struct btf *`` handles and frees them (newest first) on exit."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        self._lib = lib
        self._ptrs: list[int] = []

    def keep(self, ptr: int | None) -> int | None:
        if ptr:
            self._ptrs.append(ptr)
        return ptr

    def __enter__(self) -> _Objects:
        return self

    def __exit__(self, *exc: object) -> None:
        while self._ptrs:
            self._lib.btf__free(self._ptrs.pop())


def _as_bytes(value: object, what: str) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    raise TypeError(f"{what} must be bytes, not {type(value).__name__}")


class LibBpf:
    """Thin ctypes layer over libbpf v1.6 working on raw BTF bytes (one instance per process).

    Operations serialize on a process-wide lock (libbpf's print callback is global).  Each public
    method captures libbpf's log (all levels: parse errors are printed at debug level).
    """

    def __init__(self, path: str | None = None) -> None:
        path = path or libbpf_path()
        if path is None:
            raise LibbpfUnavailable(unavailable_reason() or "libbpf not found")
        try:
            lib = ctypes.CDLL(path, use_errno=True)
        except OSError as exc:
            raise LibbpfUnavailable(f"cannot load libbpf from {path}: {exc}") from exc
        self.path = path
        self._lib = lib
        U32P = ctypes.POINTER(_U32)
        PP = ctypes.POINTER(_P)
        for name, res, args in [
            ("libbpf_version_string", ctypes.c_char_p, []),
            ("libbpf_set_print", _P, [_P]),
            ("btf__new", _P, [ctypes.c_char_p, _U32]),
            ("btf__new_split", _P, [ctypes.c_char_p, _U32, _P]),
            ("btf__free", None, [_P]),
            ("btf__type_cnt", _U32, [_P]),
            ("btf__raw_data", _P, [_P, U32P]),
            ("btf__distill_base", ctypes.c_int, [_P, PP, PP]),
            ("btf__relocate", ctypes.c_int, [_P, _P]),
            ("btf__dedup", ctypes.c_int, [_P, _P]),
        ]:
            fn = getattr(lib, name)
            fn.restype, fn.argtypes = res, args
        libc = ctypes.CDLL(None, use_errno=True)
        self._vsnprintf = libc.vsnprintf
        self._vsnprintf.restype = ctypes.c_int
        self._vsnprintf.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_void_p]
        self._print_cb = _PRINT_FN(self._on_print)  # keep a reference: libbpf holds the raw pointer
        lib.libbpf_set_print(ctypes.cast(self._print_cb, _P))

    # --- logging -----------------------------------------------------------------------------------

    def _on_print(self, level: int, fmt: bytes | None, args: int | None) -> int:
        try:
            buf = ctypes.create_string_buffer(_LOG_BUF_SIZE)
            self._vsnprintf(buf, _LOG_BUF_SIZE, fmt, args)
            text = buf.value.decode("utf-8", "replace")
            _log_lines.append(text if text.endswith("\n") else text + "\n")
        except Exception:  # never let an exception cross into C
            pass
        return 0

    @staticmethod
    def _take_log() -> str:
        text = "".join(_log_lines)
        _log_lines.clear()
        return text

    # --- primitives --------------------------------------------------------------------------------

    def version(self) -> str:
        """libbpf's version string, e.g. ``"v1.6"``."""
        return (self._lib.libbpf_version_string() or b"").decode()

    def _new(self, objs: _Objects, data: bytes, base: int | None, role: str) -> int:
        ctypes.set_errno(0)
        if base is None:
            ptr = self._lib.btf__new(data, len(data))
        else:
            ptr = self._lib.btf__new_split(data, len(data), base)
        if not ptr:
            err = ctypes.get_errno() or _errno.EINVAL
            raise _ParseFailed(role, -err)
        objs.keep(ptr)
        return ptr

    def _raw(self, btf: int) -> bytes:
        size = _U32()
        ptr = self._lib.btf__raw_data(btf, ctypes.byref(size))
        if not ptr:
            raise MemoryError("btf__raw_data failed")
        return ctypes.string_at(ptr, size.value)

    def _parse_failure(self, exc: _ParseFailed) -> Outcome:
        log = self._take_log()
        last = log.strip().splitlines()[-1] if log.strip() else "no libbpf message"
        log += f"btfspec: {exc.role} BTF failed to parse ({errno_text(exc.errno)}): {last}\n"
        return Outcome(ERROR, exc.errno, {}, log, IMPL, f"parse failed: {exc.role}")

    def _result(self, rc: int, outputs: dict[str, bytes], detail: str = "") -> Outcome:
        log = self._take_log()
        if rc < 0:
            return Outcome(ERROR, rc, {}, log, IMPL, detail)
        return Outcome(OK, 0, outputs, log, IMPL, detail)

    # --- operations returning Outcomes -------------------------------------------------------------

    def _with_input(self, data: BytesLike, base: BytesLike | None, use: Callable[[int], Outcome]) -> Outcome:
        """Parse ``data`` on its own (role ``input``) or as a split on ``base`` (parsed first) and return
        ``use(btf)``, or the parse failure."""
        data_b = _as_bytes(data, "data")
        base_b = None if base is None else _as_bytes(base, "base")
        with _lock, _Objects(self._lib) as objs:
            self._take_log()
            try:
                base_ptr = None if base_b is None else self._new(objs, base_b, None, "base")
                btf = self._new(objs, data_b, base_ptr, "split" if base_ptr else "input")
            except _ParseFailed as exc:
                return self._parse_failure(exc)
            return use(btf)

    def _parse_op(self, data: BytesLike, base: BytesLike | None = None) -> tuple[Outcome, int]:
        counted: list[int] = []

        def count(btf: int) -> Outcome:
            counted.append(int(self._lib.btf__type_cnt(btf)))
            return self._result(0, {}, f"type_cnt={counted[0]}")

        out = self._with_input(data, base, count)
        return out, counted[0] if counted else 0

    def roundtrip_outcome(self, data: BytesLike, base: BytesLike | None = None) -> Outcome:
        """Parse ``data`` (on ``base`` if given) and return ``btf__raw_data`` as ``outputs["raw"]``."""
        return self._with_input(data, base, lambda btf: self._result(0, {"raw": self._raw(btf)}))

    def distill_outcome(self, split: BytesLike, base: BytesLike) -> Outcome:
        """``btf__distill_base`` of ``split`` parsed on ``base``; outputs ``base`` and ``split``."""
        split_b, base_b = _as_bytes(split, "split"), _as_bytes(base, "base")
        with _lock, _Objects(self._lib) as objs:
            self._take_log()
            try:
                base_ptr = self._new(objs, base_b, None, "base")
                split_ptr = self._new(objs, split_b, base_ptr, "split")
            except _ParseFailed as exc:
                return self._parse_failure(exc)
            new_base, new_split = _P(), _P()
            rc = self._lib.btf__distill_base(split_ptr, ctypes.byref(new_base), ctypes.byref(new_split))
            objs.keep(new_base.value)  # freed after the split (newest first)
            objs.keep(new_split.value)
            if rc < 0:
                return self._result(rc, {})
            return self._result(0, {"base": self._raw(new_base.value), "split": self._raw(new_split.value)})

    def dedup_outcome(self, split: BytesLike, base: BytesLike) -> Outcome:
        """``btf__dedup`` (default options) of ``split`` parsed on ``base``; output ``split``."""
        split_b, base_b = _as_bytes(split, "split"), _as_bytes(base, "base")
        with _lock, _Objects(self._lib) as objs:
            self._take_log()
            try:
                base_ptr = self._new(objs, base_b, None, "base")
                split_ptr = self._new(objs, split_b, base_ptr, "split")
            except _ParseFailed as exc:
                return self._parse_failure(exc)
            rc = self._lib.btf__dedup(split_ptr, None)
            if rc < 0:
                return self._result(rc, {})
            return self._result(0, {"split": self._raw(split_ptr)})

    def relocate_outcome(self, split: BytesLike, distilled_base: BytesLike, base: BytesLike) -> Outcome:
        """``btf__relocate`` of ``split`` (parsed on ``distilled_base``) onto ``base``; output ``split``.

        The raw bytes are requested only after relocation (Q13).
        """
        split_b = _as_bytes(split, "split")
        dist_b = _as_bytes(distilled_base, "distilled_base")
        base_b = _as_bytes(base, "base")
        with _lock, _Objects(self._lib) as objs:
            self._take_log()
            try:
                dist_ptr = self._new(objs, dist_b, None, "distilled_base")
                split_ptr = self._new(objs, split_b, dist_ptr, "split")
                base_ptr = self._new(objs, base_b, None, "base")
            except _ParseFailed as exc:
                return self._parse_failure(exc)
            rc = self._lib.btf__relocate(split_ptr, base_ptr)
            if rc < 0:
                return self._result(rc, {})
            return self._result(0, {"split": self._raw(split_ptr)})

    def run(self, op: str, *args: Any) -> Outcome:
        """Run one operation in-process: ``parse``, ``roundtrip``, ``distill``, ``relocate``, ``dedup``,
        ``version``.

        Unsafe for inputs that hang or crash libbpf (Q5, Q11, Q17); use :class:`LibbpfWorker` for those.
        """
        if op == "parse":
            return self._parse_op(*args)[0]
        if op == "roundtrip":
            return self.roundtrip_outcome(*args)
        if op == "distill":
            return self.distill_outcome(*args)
        if op == "relocate":
            return self.relocate_outcome(*args)
        if op == "dedup":
            return self.dedup_outcome(*args)
        if op == "version":
            return Outcome(OK, impl=IMPL, detail=self.version())
        raise ValueError(f"unknown libbpf operation {op!r}")

    # --- tuple API ---------------------------------------------------------------------------------

    def parse(self, data: BytesLike, base: BytesLike | None = None) -> tuple[bool, int, int, str]:
        """Parse raw BTF (as split on ``base`` if given): ``(ok, errno<=0, type_cnt, log)``."""
        out, cnt = self._parse_op(data, base)
        return out.ok, out.errno, cnt, out.log

    def raw_roundtrip(self, data: BytesLike, base: BytesLike | None = None) -> bytes:
        """``btf__raw_data`` of the parsed input; raises :class:`LibbpfError` if it does not parse."""
        out = self.roundtrip_outcome(data, base)
        if not out.ok:
            raise LibbpfError(out.errno, out.log, out.detail)
        return out.outputs["raw"]

    def distill(self, split: BytesLike, base: BytesLike) -> tuple[int, bytes | None, bytes | None, str]:
        """``(rc, new_base, new_split, log)``; the bytes are None unless rc == 0."""
        out = self.distill_outcome(split, base)
        return out.errno, out.outputs.get("base"), out.outputs.get("split"), out.log

    def relocate(self, split: BytesLike, distilled_base: BytesLike,
                 base: BytesLike) -> tuple[int, bytes | None, str]:
        """``(rc, relocated_split, log)``; the bytes are None unless rc == 0."""
        out = self.relocate_outcome(split, distilled_base, base)
        return out.errno, out.outputs.get("split"), out.log


_instance: list[LibBpf] = []


def get_libbpf() -> LibBpf:
    """The process-wide :class:`LibBpf` (raises :class:`LibbpfUnavailable`)."""
    with _lock:
        if not _instance:
            reason = unavailable_reason()
            if reason:
                raise LibbpfUnavailable(reason)
            _instance.append(LibBpf())
        return _instance[0]


# --------------------------------------------------------------------------------------------------
# worker process
# --------------------------------------------------------------------------------------------------

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
                         else _as_bytes(a, f"{op} argument {i}") for i, a in enumerate(args))
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

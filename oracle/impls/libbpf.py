"""libbpf v1.6 as a BTF oracle, driven through ctypes on raw BTF bytes.

The PyPI wheel ``pylibbpf==0.0.6`` ships an extension module that links libbpf v1.6 statically and
exports its C API; we load that ``.so`` with :mod:`ctypes` (the ``pylibbpf`` Python package itself is
never imported, its dependencies are not installed).

This is the in-process layer, :class:`LibBpf` (parse / raw round trip / distill / relocate / dedup),
one instance per process (:func:`get_libbpf`).  It is fast, but an input that makes libbpf hang (quirk
Q5) or crash (Q11, Q17) takes the calling process with it; :mod:`btfspec.oracle.impls.libbpf_process`
runs it in a crash- and hang-proof child process (:class:`~btfspec.oracle.impls.libbpf_process.LibbpfWorker`).

Relocation follows the reference's advice for Q13: the split is parsed from raw bytes on top of the
parsed distilled base, relocated onto the separately parsed target base, and only then serialized
with ``btf__raw_data`` (its header is unchanged by relocation; libbpf edits the cached raw buffer).
"""

from __future__ import annotations

import ctypes
import errno as _errno
import functools
import importlib.util
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from btfspec.oracle.impls.outcome import ERROR, OK, Outcome
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


def as_bytes(value: object, what: str) -> bytes:
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
        data_b = as_bytes(data, "data")
        base_b = None if base is None else as_bytes(base, "base")
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
        split_b, base_b = as_bytes(split, "split"), as_bytes(base, "base")
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
        split_b, base_b = as_bytes(split, "split"), as_bytes(base, "base")
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
        split_b = as_bytes(split, "split")
        dist_b = as_bytes(distilled_base, "distilled_base")
        base_b = as_bytes(base, "base")
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

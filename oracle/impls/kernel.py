"""Kernel acceptance of BTF through ``bpf(BPF_BTF_LOAD)``.

The syscall validates *user* BTF: header and section layout, every type's metadata, and the full
resolve pass (cycles, sizes, members that fit); see the reference §4.4.  It has no base-BTF argument,
so callers must pass **standalone** BTF: to check a split, merge it with its base into one
standalone BTF first (a split blob on its own is rejected with "Invalid string section").

:func:`kernel_load` returns an :class:`~btfspec.oracle.impls.outcome.Outcome` with ``impl="kernel"``: ``"ok"`` when
the kernel accepted the BTF (the returned fd is closed at once), or ``"error"`` with the negative
errno and the tail of the kernel's verifier log.  It never raises for bad input.
"""

from __future__ import annotations

import ctypes
import errno as _errno
import functools
import os
import platform
import struct
import sys

from btfspec.oracle.impls.outcome import ERROR, OK, Outcome
from btfspec.spec.errors import errno_text

IMPL = "kernel"
BPF_BTF_LOAD = 18
_NR_BPF = {"x86_64": 321, "amd64": 321, "aarch64": 280, "arm64": 280}
_ATTR_SIZE = 128  # >= the BTF_LOAD part of union bpf_attr; the tail is zero as newer kernels require
# union bpf_attr, BPF_BTF_LOAD member: __u64 btf; __u64 btf_log_buf; __u32 btf_size;
# __u32 btf_log_size; __u32 btf_log_level; (__u32 btf_log_true_size; __u32 btf_flags;
# __s32 btf_token_fd -- left 0)
_ATTR = struct.Struct("=QQIII")
LOG_BUF_SIZE = 16 << 20  # a whole vmlinux's BTF log overflows 64 KiB
LOG_TAIL_LINES = 12

# [1] INT 'int' size=4 nr_bits=32 SIGNED -- the smallest BTF every kernel with BTF accepts.
_PROBE_BTF = bytes.fromhex(
    "9feb010018000000000000001000000010000000050000000100000000000001040000002000000100696e7400"
)

_libc: ctypes.CDLL | None = None


def _syscall_nr() -> int | None:
    return _NR_BPF.get(platform.machine().lower())


def _get_libc() -> ctypes.CDLL:
    global _libc
    if _libc is None:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        libc.syscall.argtypes = [ctypes.c_long, ctypes.c_int, ctypes.c_void_p, ctypes.c_uint]
        _libc = libc
    return _libc


def _btf_load(data: bytes, log_level: int, log_size: int) -> tuple[int, str]:
    """One BPF_BTF_LOAD call: ``(fd or -errno, log text)``; a returned fd is closed."""
    nr = _syscall_nr()
    if nr is None:
        return -_errno.ENOSYS, ""
    buf = ctypes.create_string_buffer(data, len(data)) if data else ctypes.create_string_buffer(1)
    log = ctypes.create_string_buffer(log_size) if log_size else None
    attr = ctypes.create_string_buffer(_ATTR_SIZE)
    _ATTR.pack_into(attr, 0, ctypes.addressof(buf), ctypes.addressof(log) if log is not None else 0,
                    len(data), log_size, log_level)
    libc = _get_libc()
    ctypes.set_errno(0)
    ret = libc.syscall(nr, BPF_BTF_LOAD, ctypes.addressof(attr), _ATTR_SIZE)
    err = ctypes.get_errno()
    text = log.value.decode("utf-8", "replace") if log is not None else ""
    if ret >= 0:
        os.close(ret)
        return int(ret), text
    return -(err or _errno.EINVAL), text


def _log_tail(text: str, lines: int = LOG_TAIL_LINES) -> str:
    kept = [line.rstrip() for line in text.splitlines() if line.strip()]
    return "\n".join(kept[-lines:]) + ("\n" if kept else "")


@functools.cache
def unavailable_reason() -> str | None:
    """Why BPF_BTF_LOAD cannot be used here (human text), or None. Probes once and caches."""
    return _probe()


def _probe() -> str | None:
    if not sys.platform.startswith("linux"):
        return f"not Linux (platform {sys.platform})"
    if _syscall_nr() is None:
        return f"unsupported architecture {platform.machine()!r} (bpf syscall number unknown)"
    try:
        rc, _ = _btf_load(_PROBE_BTF, 0, 0)
    except OSError as exc:
        return f"cannot call bpf(): {exc}"
    if rc >= 0:
        return None
    if rc in (-_errno.EPERM, -_errno.EACCES):
        return "needs root (CAP_BPF/CAP_SYS_ADMIN)"
    if rc == -_errno.ENOSYS:
        return "the bpf() syscall is not available (ENOSYS)"
    return f"a minimal valid BTF was rejected by BPF_BTF_LOAD with {errno_text(rc)}"


def kernel_load(data: bytes | bytearray | memoryview) -> Outcome:
    """Load standalone BTF with ``bpf(BPF_BTF_LOAD)``; ok, or error with errno and the log's tail.

    The first attempt runs without a log; only a rejected input is loaded again with log level 1 and
    a 16 MiB buffer to obtain the reason.  The errno reported is the first attempt's.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"BTF data must be bytes, not {type(data).__name__}")
    data = bytes(data)
    try:
        rc, _ = _btf_load(data, 0, 0)
    except OSError as exc:  # libc itself unusable
        return Outcome(ERROR, -_errno.ENOSYS, log=f"btfspec: cannot call bpf(): {exc}\n", impl=IMPL)
    if rc >= 0:
        return Outcome(OK, impl=IMPL)
    _, log = _btf_load(data, 1, LOG_BUF_SIZE)
    tail = _log_tail(log)
    if not tail:
        tail = f"btfspec: BPF_BTF_LOAD failed with {errno_text(rc)} and no log\n"
    return Outcome(ERROR, rc, log=tail, impl=IMPL)

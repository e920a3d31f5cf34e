"""``kernel-vm``: the real kernel module loader (Debian 6.12 in QEMU) as a relocation implementation.

``relocate(split, distilled_base, base)`` carries the split and the distilled base in the guest's
carrier module, loads it, and returns ``/sys/kernel/btf/<module>`` -- the loader's relocation of the
split onto the guest's vmlinux -- as ``{"split": ...}``. It relocates onto that vmlinux only: its
capability is :data:`RELOCATE_GUEST`, not the general ``relocate``, so properties that relocate onto
generated bases leave it out, and a call with another ``base`` raises :class:`UnsupportedTarget`.

Outcomes: ``ok``; ``error`` with the loader's errno (the first negative return of the probed
functions, see :mod:`btfspec.oracle.kernels.guest`) and the kernel log, or with insmod's errno when
the module did not load at all (``detail`` ``insmod``); ``crash`` (guest panic/oops/QEMU gone) or
``timeout`` (no answer), both with the console's tail in ``log``; the guest is then restarted.
The guest boots on the first call (see :attr:`KernelVmImpl.boot_seconds`).
"""

from __future__ import annotations

import errno as _errno
import functools
import hashlib
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from btfspec.oracle.impls.adapter import ImplUnavailable
from btfspec.oracle.impls.outcome import CRASH, DEFAULT_TIMEOUT, ERROR, OK, TIMEOUT, Outcome
from btfspec.spec.errors import InputError, errno_text

if TYPE_CHECKING:
    from btfspec.oracle.kernels.guest.vm import LoadResult

IMPL = "kernel-vm"
RELOCATE_GUEST = "relocate-guest-vmlinux"
_TRACE_RE = re.compile(r"<- (\w+)\) ret=(-?\d+)")
_INSMOD_RE = re.compile(r"can't insert '[^']*': (.+)$", re.M)
_STAMP_RE = re.compile(r"^\[\s*\d+\.\d+\] ", re.M)  # printk's time stamp
MAX_ERRNO = 4095
_STRERROR = {os.strerror(n): n for n in sorted(_errno.errorcode, reverse=True)}


class UnsupportedTarget(NotImplementedError):
    """kernel-vm was asked to relocate onto a base that is not the guest's vmlinux."""


def relocates(impl: object) -> bool:
    """Can ``impl`` relocate at all (onto any base, or onto its guest's vmlinux only)?"""
    caps = getattr(impl, "capabilities", frozenset())
    return "relocate" in caps or RELOCATE_GUEST in caps


@functools.cache
def unavailable_reason() -> str | None:
    """Why kernel-vm cannot run here, or None; never downloads or boots (cheap, cached)."""
    from btfspec.oracle.kernels.fetch import cache_root
    from btfspec.oracle.kernels.guest.image import DEFAULT_PACKAGE, PACKAGE_ENV, find_busybox
    from btfspec.oracle.kernels.guest.vm import qemu_path

    if qemu_path() is None:
        return "qemu-system-x86_64 not installed (Debian package qemu-system-x86; scripts/bootstrap.sh installs it)"
    try:
        find_busybox()
    except InputError as exc:
        return str(exc)
    if shutil.which("objcopy") is None:
        return "objcopy not installed (binutils): the carrier module cannot be prepared"
    package = os.environ.get(PACKAGE_ENV) or DEFAULT_PACKAGE
    if not (cache_root() / package / "manifest.json").is_file() and shutil.which("apt-get") is None:
        return f"kernel package {package} is not in the cache and apt-get is missing to fetch it"
    return None


def describe_setup() -> str:
    """One line for ``btfspec doctor``: the package, whether it is cached, the acceleration."""
    from btfspec.oracle.kernels.fetch import cache_root
    from btfspec.oracle.kernels.guest.image import DEFAULT_PACKAGE, PACKAGE_ENV
    from btfspec.oracle.kernels.guest.vm import ACCEL_ENV

    package = os.environ.get(PACKAGE_ENV) or DEFAULT_PACKAGE
    cached = (cache_root() / package / "manifest.json").is_file()
    kvm = os.access("/dev/kvm", os.R_OK | os.W_OK)
    accel = os.environ.get(ACCEL_ENV) or ("auto: KVM probed, TCG fallback" if kvm else "auto: TCG (no usable /dev/kvm)")
    return (f"relocates onto the vmlinux of {package} ({'cached' if cached else 'fetched on first use'}) "
            f"in a QEMU guest; accel {accel}")


def _insmod_errno(text: str) -> int:
    m = _INSMOD_RE.search(text)
    return -_STRERROR.get(m.group(1).strip(), _errno.EINVAL) if m else -_errno.EINVAL


def kernel_log(kmsg: str) -> str:
    """The guest's kernel log lines without their time stamps."""
    return _STAMP_RE.sub("", kmsg)


_NOISE = ("module verification failed", "Kernel module BTF mismatch detected", "loading out-of-tree module")


def loader_messages(log: str) -> list[str]:
    """The loader's own lines of a kernel-vm outcome's log: without the taint and mismatch notices every
    rejected carrier prints, and without kernel-vm's note."""
    return [ln for ln in log.splitlines()
            if ln.strip() and not ln.startswith(f"{IMPL}:") and not any(n in ln for n in _NOISE)]


def loader_errno(trace: str) -> tuple[int, str] | None:
    """(errno, function) of the first errno (-4095..-1, ERR_PTR's range) the probed functions returned,
    or None."""
    for m in _TRACE_RE.finditer(trace):
        ret = int(m.group(2))
        if -MAX_ERRNO <= ret < 0:
            return ret, m.group(1)
    return None


class KernelVmImpl:
    """The guest's module loader behind the Implementation protocol (see the module docstring)."""

    name = IMPL
    capabilities: frozenset[str] = frozenset({RELOCATE_GUEST})

    def __init__(self, timeout: float = DEFAULT_TIMEOUT, package: str | None = None,
                 cache: str | os.PathLike[str] | None = None) -> None:
        reason = unavailable_reason()
        if reason:
            raise ImplUnavailable(f"{IMPL}: {reason}")
        from btfspec.oracle.kernels.guest.image import prepare
        from btfspec.oracle.kernels.guest.vm import Guest

        try:
            self.image = prepare(package, cache)
            self.guest = Guest(self.image, case_timeout=timeout)
        except InputError as exc:
            raise ImplUnavailable(f"{IMPL}: {exc}") from None
        self.timeout = timeout
        self.vmlinux = self.image.vmlinux_btf
        self._vmlinux_sha = hashlib.sha256(self.vmlinux).digest()
        self.loads = 0

    def __repr__(self) -> str:
        return f"KernelVmImpl({self.image.package})"

    @property
    def boot_seconds(self) -> float:
        """Seconds the last boot took (0 before the first call)."""
        return self.guest.boot_seconds

    def targets(self, base: bytes) -> bool:
        """Does this implementation relocate onto ``base`` (is it the guest's vmlinux)?"""
        return len(base) == len(self.vmlinux) and hashlib.sha256(base).digest() == self._vmlinux_sha

    def start(self) -> None:
        """Boot the guest now (otherwise the first call does); ImplUnavailable when it cannot boot."""
        try:
            self.guest.start()
        except InputError as exc:
            raise ImplUnavailable(f"{IMPL}: {exc}") from None

    def distill(self, split: bytes, base: bytes, *, timeout: float | None = None) -> Outcome:
        raise NotImplementedError(f"implementation {IMPL!r} does not distill (it supports: {RELOCATE_GUEST})")

    def accept(self, blob: bytes, base: bytes | None = None, *, timeout: float | None = None) -> Outcome:
        raise NotImplementedError(f"implementation {IMPL!r} does not accept (it supports: {RELOCATE_GUEST})")

    def relocate(self, split: bytes, distilled_base: bytes, base: bytes, *, timeout: float | None = None) -> Outcome:
        """The loader's relocation of ``split`` (on ``distilled_base``) onto the guest's vmlinux; ``timeout``
        (seconds, default the one given at construction) bounds the guest's answer, not a boot."""
        return self.begin_relocate(split, distilled_base, base, timeout=timeout)()

    def begin_relocate(self, split: bytes, distilled_base: bytes, base: bytes, *,
                       timeout: float | None = None) -> Callable[[], Outcome]:
        """:meth:`relocate` in two halves: the case is sent now, the returned function waits for the outcome,
        so the caller can work while the guest does (P7 relocates with libbpf and python meanwhile)."""
        if not self.targets(base):
            raise UnsupportedTarget(f"{IMPL} relocates onto the vmlinux of {self.image.package} only "
                                    f"({len(self.vmlinux)} B of BTF); this base is {len(base)} B")
        self.start()
        limit = timeout or self.timeout
        finish = self.guest.begin_load(self.image.carrier.build(split, distilled_base), timeout=limit)
        self.loads += 1
        return lambda: self._outcome(finish(), limit)

    @staticmethod
    def _outcome(res: LoadResult, limit: float) -> Outcome:
        """The Outcome of one load (see the module docstring)."""
        if res.status == TIMEOUT:
            return Outcome(TIMEOUT, log=res.console, impl=IMPL, detail=f"guest gave no answer in {limit:g} s")
        if res.status == CRASH:
            return Outcome(CRASH, log=res.console, impl=IMPL, detail="guest died (panic, oops or QEMU exit)")
        if res.btf:
            return Outcome(OK, outputs={"split": res.btf}, impl=IMPL)
        kmsg = kernel_log(res.kmsg)
        if res.rc != 0:
            return Outcome(ERROR, _insmod_errno(res.insmod), log=kmsg + res.insmod, impl=IMPL, detail="insmod")
        found = loader_errno(res.trace)
        err, where = found if found else (-_errno.EINVAL, "")
        note = (f"kernel-vm: {where}() returned {errno_text(err)}" if where else
                "kernel-vm: the module loaded without BTF and no probed function failed (errno unknown)")
        return Outcome(ERROR, err, log=f"{kmsg.rstrip()}\n{note}\n".lstrip(), impl=IMPL,
                       detail=where or "errno unknown")

    def kill_guest(self) -> None:
        """SIGKILL the guest's QEMU (tests of the crash path)."""
        self.guest.kill()

    def close(self) -> None:
        """Stop the guest."""
        self.guest.close()


def guest_vmlinux(package: str | None = None) -> Path:
    """Path of the guest's vmlinux BTF in the cache (after a fetch)."""
    from btfspec.oracle.kernels.fetch import VMLINUX_BTF, cache_root
    from btfspec.oracle.kernels.guest.image import DEFAULT_PACKAGE, PACKAGE_ENV

    return cache_root() / (package or os.environ.get(PACKAGE_ENV) or DEFAULT_PACKAGE) / VMLINUX_BTF

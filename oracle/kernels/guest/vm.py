"""One QEMU guest running the agent: boot once, load many carrier modules, restart after a crash.

:class:`Guest` starts ``qemu-system-x86_64`` (KVM when it works, TCG otherwise: see :func:`pick_accel`)
on a :class:`~btfspec.oracle.kernels.guest.image.GuestImage`, with the console on a file and the agent's
virtio-serial port on a unix socket in a private run directory. :meth:`Guest.load` sends one module
and returns a :class:`LoadResult`; when the guest dies (panic, oops: the kernel runs with
``oops=panic panic_on_warn=1 panic=-1`` and QEMU with ``-no-reboot``) or does not answer in time, the
result is ``crash``/``timeout`` with the console's tail, the guest is stopped, and the next call boots
a fresh one. The wire protocol is described in :mod:`btfspec.oracle.kernels.guest`.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from btfspec.oracle.kernels.guest.image import PORT_NAME, GuestImage
from btfspec.spec.errors import InputError

QEMU = "qemu-system-x86_64"
PR_SET_PDEATHSIG = 1
ACCEL_ENV = "BTFSPEC_GUEST_ACCEL"  # kvm, tcg or auto (default)
CMDLINE = ("console=ttyS0 quiet panic=-1 oops=panic panic_on_warn=1 rcupdate.rcu_expedited=1 "
           "mitigations=off random.trust_cpu=on")
BOOT_TIMEOUT = 120.0  # TCG on a loaded two-core machine
CASE_TIMEOUT = 30.0
KVM_PROBE_TIMEOUT = 15.0
CONSOLE_TAIL = 6000  # characters of console log attached to a crash/timeout
_KVM_FAILURES = ("KVM internal error", "emulation failure", "failed to set MSR", "kvm_buf_set_msrs",
                 "Could not access KVM", "failed to initialize kvm")
OK, CRASH, TIMEOUT = "ok", "crash", "timeout"
BTF_HEADER = struct.Struct("<HBBIIIII")  # magic version flags hdr_len type_off type_len str_off str_len


class GuestError(InputError):
    """The guest cannot be started at all (missing QEMU, a kernel that does not boot)."""


@dataclass(frozen=True)
class LoadResult:
    """One ``insmod``/``rmmod`` of a carrier in the guest.

    ``status`` is ``ok`` when the agent answered (whatever insmod said), else ``crash``/``timeout``
    with ``console`` holding the tail of the guest's console. ``btf`` is ``/sys/kernel/btf/<module>``
    while it was loaded (empty when the module had no BTF); ``insmod`` insmod's and rmmod's output;
    ``kmsg`` the kernel log of the load; ``trace`` the kretprobe lines of :data:`PROBED`.
    """

    status: str
    rc: int = 0
    btf: bytes = b""
    insmod: str = ""
    kmsg: str = ""
    trace: str = ""
    console: str = ""
    seconds: float = 0.0
    rmmod_ok: bool = True


def qemu_path() -> str | None:
    """The QEMU binary, or None when it is not installed."""
    return shutil.which(QEMU)


def _die_with_parent() -> None:
    """In the QEMU child before exec: SIGKILL it when its parent dies (a guest whose agent has hung
    would otherwise outlive a killed campaign; a live agent powers off when its socket closes)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


def _kvm_usable() -> bool:
    return os.access("/dev/kvm", os.R_OK | os.W_OK)


class _Link:
    """The agent's socket: line and exact-length reads against a deadline, watching QEMU."""

    def __init__(self, sock: socket.socket, proc: subprocess.Popen[bytes]) -> None:
        self.sock, self.proc, self.buf = sock, proc, bytearray()

    def _fill(self, deadline: float) -> None:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            self.sock.settimeout(min(left, 0.5))
            try:
                chunk = self.sock.recv(1 << 20)
            except TimeoutError:
                if self.proc.poll() is not None:
                    raise ConnectionError("QEMU exited") from None
                continue
            if not chunk:
                raise ConnectionError("the agent's port closed")
            self.buf += chunk
            return

    def line(self, deadline: float) -> str:
        while b"\n" not in self.buf:
            self._fill(deadline)
        end = self.buf.index(b"\n")
        text = self.buf[:end].decode("utf-8", "replace")
        del self.buf[:end + 1]
        return text

    def exact(self, n: int, deadline: float) -> bytes:
        while len(self.buf) < n:
            self._fill(deadline)
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data


class Guest:
    """A persistent guest (see the module docstring); ``close()`` stops it."""

    def __init__(self, image: GuestImage, *, accel: str | None = None, memory_mb: int = 512,
                 boot_timeout: float = BOOT_TIMEOUT, case_timeout: float = CASE_TIMEOUT) -> None:
        qemu = qemu_path()
        if qemu is None:
            raise GuestError(f"{QEMU} not found (install the Debian package qemu-system-x86)")
        self.qemu, self.image, self.memory_mb = qemu, image, memory_mb
        self.boot_timeout, self.case_timeout = boot_timeout, case_timeout
        self.accel = (accel or os.environ.get(ACCEL_ENV) or "auto").lower()
        if self.accel not in ("auto", "kvm", "tcg"):
            raise GuestError(f"{ACCEL_ENV}={self.accel!r}: expected kvm, tcg or auto")
        self.proc: subprocess.Popen[bytes] | None = None
        self.link: _Link | None = None
        self._pending: Callable[[], LoadResult] | None = None  # a request whose answer is not read yet
        self.run_dir: str | None = None
        self.boots = 0
        self.boot_seconds = 0.0
        self.used_accel = ""
        self.banner = ""

    def __repr__(self) -> str:
        return f"Guest({self.image.package}, accel={self.used_accel or self.accel})"

    # --- life cycle --------------------------------------------------------------------------------

    def _argv(self, accel: str, sock: str, console: str) -> list[str]:
        return [self.qemu, "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
                "-accel", accel, "-cpu", "host" if accel == "kvm" else "max", "-smp", "1",
                "-m", str(self.memory_mb), "-kernel", str(self.image.kernel), "-initrd", str(self.image.initrd),
                "-append", CMDLINE, "-serial", f"file:{console}",
                "-device", "virtio-serial-pci",
                "-chardev", f"socket,id=agent,path={sock},server=on,wait=off",
                "-device", f"virtserialport,chardev=agent,name={PORT_NAME}"]

    def _boot(self, accel: str, timeout: float) -> str | None:
        """Boot with ``accel``; None when the agent answered, else why not (the guest is stopped)."""
        self.run_dir = tempfile.mkdtemp(prefix="btfspec-guest-")
        sock_path = os.path.join(self.run_dir, "agent.sock")
        console = os.path.join(self.run_dir, "console.log")
        started = time.monotonic()
        with open(os.path.join(self.run_dir, "qemu.stderr"), "wb") as err:
            self.proc = subprocess.Popen(self._argv(accel, sock_path, console), stdin=subprocess.DEVNULL,
                                         stdout=err, stderr=err, start_new_session=True,
                                         preexec_fn=_die_with_parent)
        deadline = started + timeout
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        while True:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                sock.close()
                why = self._stderr().strip() or f"QEMU exited with status {self.proc.returncode}"
                if self.proc.poll() is None:
                    why = f"no socket after {timeout:.0f} s"
                self._stop()
                return why
            try:
                sock.connect(sock_path)
                break
            except OSError:
                time.sleep(0.05)
        self.link = _Link(sock, self.proc)
        check = not self.boots  # the vmlinux cannot change between boots of one image: hash it once
        sock.sendall(b"PING sha256\n" if check else b"PING\n")
        try:
            while True:
                try:
                    line = self.link.line(min(deadline, time.monotonic() + 0.5))
                    break
                except TimeoutError:
                    if time.monotonic() > deadline:
                        raise
                    if accel == "kvm" and any(s in self._stderr() for s in _KVM_FAILURES):
                        raise ConnectionError(self._stderr().strip().splitlines()[0]) from None
        except (TimeoutError, ConnectionError) as exc:
            why = f"no answer from the agent in {timeout:.0f} s" if isinstance(exc, TimeoutError) else str(exc)
            tail = self.console_tail(800)
            self._stop()
            return f"{why}{': ' + tail.strip() if tail.strip() else ''}"
        parts = line.split()
        if len(parts) < 3 or parts[0] != "READY":
            self._stop()
            return f"unexpected agent greeting {line!r}"
        if check and parts[2] != self.image.vmlinux_sha256:
            self._stop()
            raise GuestError(f"the guest's /sys/kernel/btf/vmlinux (sha256 {parts[2][:16]}...) is not the "
                             f"package's vmlinux.btf ({self.image.vmlinux_sha256[:16]}...)")
        self.banner, self.used_accel = line, accel
        self.boot_seconds = time.monotonic() - started
        self.boots += 1
        return None

    def start(self) -> None:
        """Boot (unless running): KVM first when ``auto`` and /dev/kvm is usable, else TCG."""
        if self.proc is not None and self.proc.poll() is None:
            return
        self._stop()
        tried: list[str] = []
        if self.used_accel:
            order = [self.used_accel]
        elif self.accel == "auto":
            order = ["kvm", "tcg"] if _kvm_usable() else ["tcg"]
        else:
            order = [self.accel]
        for accel in order:
            timeout = KVM_PROBE_TIMEOUT if accel == "kvm" and len(order) > 1 else self.boot_timeout
            why = self._boot(accel, timeout)
            if why is None:
                return
            tried.append(f"{accel}: {why}")
        raise GuestError(f"the guest did not start ({'; '.join(tried)})")

    def _stderr(self) -> str:
        if not self.run_dir:
            return ""
        try:
            return Path(self.run_dir, "qemu.stderr").read_text(errors="replace")
        except OSError:
            return ""

    def console_tail(self, limit: int = CONSOLE_TAIL) -> str:
        """The last ``limit`` characters of the console log (and QEMU's own messages)."""
        if not self.run_dir:
            return ""
        try:
            with open(os.path.join(self.run_dir, "console.log"), "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - limit))
                text = f.read().decode("utf-8", "replace")
        except OSError:
            text = ""
        return text + self._stderr()[-1000:]

    def _stop(self) -> None:
        self._pending = None  # its answer is lost with the guest (finish() then reports the dead link)
        if self.link is not None:
            with contextlib.suppress(OSError):
                self.link.sock.close()
            self.link = None
        if self.proc is not None:
            if self.proc.poll() is None:
                with contextlib.suppress(OSError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)
            self.proc = None
        if self.run_dir:
            shutil.rmtree(self.run_dir, ignore_errors=True)
            self.run_dir = None

    def close(self) -> None:
        """Stop the guest."""
        self._stop()

    def cpu_seconds(self) -> float:
        """User + system CPU seconds the running QEMU has used (0 when none runs): a load-independent
        measure of what a case costs, where wall time depends on what else the machine runs."""
        if self.proc is None:
            return 0.0
        try:
            with open(f"/proc/{self.proc.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def kill(self) -> None:
        """SIGKILL QEMU now (for tests: the next call sees a dead guest)."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)

    # --- requests ----------------------------------------------------------------------------------

    def _read_answer(self, link: _Link, deadline: float) -> LoadResult:
        head = link.line(deadline).split()
        if head == ["DONE"]:
            return LoadResult(OK)
        if head == ["BTF"]:
            first = link.exact(BTF_HEADER.size, deadline)
            magic, _, _, hdr_len, type_off, type_len, str_off, str_len = BTF_HEADER.unpack(first)
            if magic != 0xEB9F or hdr_len < BTF_HEADER.size:
                raise ConnectionError(f"the guest's module BTF starts with {first.hex()}, not a BTF header")
            rest = link.exact(hdr_len + max(type_off + type_len, str_off + str_len) - BTF_HEADER.size, deadline)
            end = link.line(deadline).split()
            if len(end) != 2 or end[0] != "END":
                raise ConnectionError(f"the guest's module BTF is longer than its header says ({' '.join(end)!r})")
            return LoadResult(OK, 0, first + rest, rmmod_ok=end[1] == "0")
        if len(head) == 5 and head[0] == "FAIL":
            rc, sizes = int(head[1]), [int(p) for p in head[2:]]
            err, kmsg, trace = (link.exact(n, deadline).decode("utf-8", "replace") for n in sizes)
            return LoadResult(OK, rc, b"", err, kmsg, trace)
        raise ConnectionError(f"unexpected agent answer {' '.join(head)!r}")

    def _failed(self, exc: Exception, limit: float, started: float) -> LoadResult:
        """The crash/timeout result of a request that got no answer (the guest is stopped)."""
        status = TIMEOUT if isinstance(exc, TimeoutError) else CRASH
        if status == CRASH:
            time.sleep(0.2)  # let QEMU flush the console of a panic
        note = f"no answer from the guest in {limit:.0f} s" if status == TIMEOUT else str(exc)
        console = f"{self.console_tail()}\nbtfspec: {note}\n"
        self._stop()
        return LoadResult(status, console=console, seconds=time.monotonic() - started)

    def _begin(self, head: bytes, payload: bytes, timeout: float | None) -> Callable[[], LoadResult]:
        """Send one request now; the returned function waits for its answer (the guest works meanwhile).
        A request begun before the previous answer was read reads (and drops) that answer first."""
        if self._pending is not None:
            self._pending()
        self.start()
        link = self.link
        assert link is not None
        started = time.monotonic()
        limit = timeout or self.case_timeout
        try:
            link.sock.sendall(head + payload)
        except OSError as exc:
            failed = self._failed(exc, limit, started)
            return lambda: failed
        done: list[LoadResult] = []

        def finish() -> LoadResult:
            if done:
                return done[0]
            self._pending = None
            try:
                result = self._read_answer(link, started + limit)
            except (TimeoutError, ConnectionError, OSError, ValueError) as exc:
                done.append(self._failed(exc, limit, started))
                return done[0]
            if not result.rmmod_ok:
                self._stop()  # the carrier is still loaded: the next case needs a fresh guest
            done.append(dataclasses.replace(result, seconds=time.monotonic() - started))
            return done[0]

        self._pending = finish
        return finish

    def _request(self, head: bytes, payload: bytes, timeout: float | None) -> LoadResult:
        return self._begin(head, payload, timeout)()

    def begin_load(self, module: bytes, timeout: float | None = None) -> Callable[[], LoadResult]:
        """Send ``module`` to be loaded (see :meth:`load`); call the result for the :class:`LoadResult`."""
        if not module:
            raise ValueError("empty module")
        return self._begin(f"LOAD {len(module)}\n".encode(), module, timeout)

    def load(self, module: bytes, timeout: float | None = None) -> LoadResult:
        """insmod ``module`` (a carrier built by :meth:`Carrier.build`), read its BTF, rmmod it."""
        return self.begin_load(module, timeout)()

    def sleep(self, seconds: float, timeout: float | None = None) -> LoadResult:
        """Make the agent sleep (for tests of the timeout path)."""
        return self._request(f"SLEEP {seconds:g}\n".encode(), b"", timeout)

    def panic(self, timeout: float | None = None) -> LoadResult:
        """Panic the guest kernel through sysrq (for tests of the crash path)."""
        return self._request(b"PANIC\n", b"", timeout)

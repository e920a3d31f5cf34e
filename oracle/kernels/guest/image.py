"""What the guest boots: a Debian kernel package's ``vmlinuz`` and an initramfs of busybox and the agent.

:func:`prepare` fetches the package into the user cache (:func:`btfspec.oracle.kernels.fetch.unpacked_tree`),
writes ``<cache>/guest/<package>/<key>/`` once (the key hashes the agents and busybox) and
returns a :class:`GuestImage`:

* ``initrd.img`` -- a gzip'd newc cpio: a static busybox as ``/bin/busybox``, :data:`AGENT` as
  ``/init`` and, when gcc and a static libc are there, ``agent.c`` built static as
  ``/bin/btfspec-agent`` (the shell agent hands the port to it after ``PING``; the same protocol with
  no fork per case: about twice the relocations per CPU-second under TCG); nothing else
  (``virtio_console`` is built into Debian's kernels, and the carrier module
  comes over the wire with every case);
* ``carrier.ko`` -- the package's own ``drivers/net/dummy.ko`` as an inert template (see :mod:`.carrier`);
* the guest's vmlinux BTF is the package's ``vmlinux.btf`` (the same bytes as the guest's
  ``/sys/kernel/btf/vmlinux``; the agent reports its sha256 at boot and :mod:`.vm` checks it).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

from btfspec.oracle.kernels.fetch import MANIFEST, VMLINUX_BTF, Log, cache_root, read_manifest, unpacked_tree
from btfspec.oracle.kernels.guest.carrier import Carrier, make_template
from btfspec.spec.errors import InputError
from btfspec.spec.sources import read_bytes_any, write_atomic

DEFAULT_PACKAGE = "linux-image-6.12.118+deb12-cloud-amd64-unsigned"
PACKAGE_ENV = "BTFSPEC_GUEST_KERNEL"  # another linux-image-* package to boot instead
CARRIER_MODULE = "kernel/drivers/net/dummy.ko"
CARRIER_NAME = "dummy"
PORT_NAME = "btfspec.agent"
# Functions btf_parse_module() calls whose error it returns unchanged, with the type of their return
# value (btf_parse_base returns a pointer or ERR_PTR, the others an int): the first errno among their
# returns during a load is the loader's errno (btf_parse_module itself is inlined into its notifier).
PROBED = (("btf_parse_base", "s64"), ("btf_parse_hdr", "s32"), ("btf_parse_str_sec", "s32"),
          ("btf_check_all_metas", "s32"), ("btf_check_type_tags", "s32"), ("btf_relocate", "s32"))

# The agent runs busybox's NOFORK/NOEXEC applets where it can (dd, insmod, rmmod, stat, head: a fork,
# no exec): under TCG an exec of busybox (cat, wc, grep) costs about a third of a case.
AGENT = r"""#!/bin/busybox sh
# btfspec guest agent: see btfspec.oracle.kernels.guest (protocol) -- runs as /init.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tracefs tracefs /sys/kernel/tracing
T=/sys/kernel/tracing
for p in @PROBED@; do
  echo "r:btfspec/${p%:*} ${p%:*} ret=\$retval:${p#*:}" 2>/dev/null >> $T/kprobe_events
done
echo 1 2>/dev/null > $T/events/btfspec/enable
PORT=
for p in /sys/class/virtio-ports/*; do
  [ "$(cat $p/name 2>/dev/null)" = @PORT@ ] && PORT=/dev/${p##*/}
done
[ -n "$PORT" ] || { echo "btfspec-agent: no virtio port @PORT@"; poweroff -f; }
mkdir -p /tmp/o
exec 3<>"$PORT"
MOD=@MOD@
while read -r cmd arg <&3; do
  case "$cmd" in
  PING)
    dmesg -c > /dev/null
    if [ "$arg" = sha256 ]; then set -- $(sha256sum /sys/kernel/btf/vmlinux); else set -- -; fi
    echo "READY $(uname -r) $1" >&3
    [ -x /bin/btfspec-agent ] && exec /bin/btfspec-agent $MOD $T/trace ;;
  LOAD)
    dd of=/tmp/case.ko bs="$arg" count=1 iflag=fullblock <&3 2>/dev/null
    echo > $T/trace
    if insmod /tmp/case.ko 2>/tmp/o/err; then
      if [ -e /sys/kernel/btf/$MOD ]; then
        echo BTF >&3
        dd if=/sys/kernel/btf/$MOD bs=64k 2>/dev/null >&3
        rmmod $MOD 2>/dev/null
        echo "END $?" >&3
        continue
      fi
      rmmod $MOD 2>>/tmp/o/err
      rc=0
    else
      rc=$?
    fi
    dmesg -c > /tmp/o/kmsg
    dd if=$T/trace of=/tmp/o/trace bs=64k 2>/dev/null
    set -- $(stat -c %s /tmp/o/err /tmp/o/kmsg /tmp/o/trace)
    echo "FAIL $rc $1 $2 $3" >&3
    head -q -c 1000000000 /tmp/o/err /tmp/o/kmsg /tmp/o/trace >&3 ;;
  SLEEP)
    sleep "$arg"; echo DONE >&3 ;;
  PANIC)
    echo c > /proc/sysrq-trigger ;;
  *)
    echo "ERROR unknown command $cmd" >&3 ;;
  esac
done
poweroff -f
"""


AGENT_C = Path(__file__).with_name("agent.c")
AGENT_ENV = "BTFSPEC_GUEST_AGENT"  # "shell": never build the C agent


def build_fast_agent(out: Path, log: Log | None = None) -> bool:
    """Compile :data:`AGENT_C` statically to ``out``; False (with the reason logged) when it cannot be."""
    gcc = shutil.which("gcc")
    if os.environ.get(AGENT_ENV, "").lower() == "shell" or gcc is None:
        return False
    try:
        proc = subprocess.run([gcc, "-static", "-O2", "-o", str(out), str(AGENT_C)], capture_output=True,
                              text=True, timeout=120, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        (log or (lambda _m: None))(f"the C agent was not built ({exc}): the shell agent runs every case")
        return False
    if proc.returncode != 0:
        (log or (lambda _m: None))(f"the C agent was not built (gcc: {proc.stderr.strip()[-200:]}); "
                                   "the shell agent runs every case")
        out.unlink(missing_ok=True)
        return False
    return True


def agent_script() -> str:
    """:data:`AGENT` with its placeholders filled in."""
    return (AGENT.replace("@PROBED@", " ".join(f"{f}:{t}" for f, t in PROBED)).replace("@PORT@", PORT_NAME)
            .replace("@MOD@", CARRIER_NAME))


def resolve_package(kernel: str, cache: str | os.PathLike[str] | None = None) -> str:
    """The ``linux-image-*`` package ``kernel`` names: a package name as it is; a kernel release
    (``6.12.118+deb12-cloud-amd64``) is the cached package with that release, else
    ``linux-image-<release>-unsigned`` (the package whose files the guest boots)."""
    if kernel.startswith("linux-image-"):
        return kernel
    for path in sorted(cache_root(cache).glob(f"*/{MANIFEST}")):
        manifest = read_manifest(path.parent)
        if manifest is not None and manifest.get("kernel_release") == kernel:
            return str(manifest["package"])
    return f"linux-image-{kernel}-unsigned"


@dataclass(frozen=True)
class GuestImage:
    """Everything one guest boots from (all paths in the user cache)."""

    package: str
    release: str
    kernel: Path  # vmlinuz
    initrd: Path
    carrier: Carrier
    vmlinux_btf: bytes
    vmlinux_sha256: str
    agent: str  # "c": the static C agent runs the cases; "shell": the busybox script does


def _is_static(elf: bytes) -> bool:
    """True for an x86-64 ELF executable without a PT_INTERP program header (no dynamic loader)."""
    if elf[:6] != b"\x7fELF\x02\x01":
        return False
    phoff, = struct.unpack_from("<Q", elf, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", elf, 0x36)
    return all(struct.unpack_from("<I", elf, phoff + i * phentsize)[0] != 3 for i in range(phnum))


def find_busybox() -> str:
    """Path of a *static* busybox (Debian package busybox-static); InputError when there is none."""
    for cand in (shutil.which("busybox"), "/bin/busybox", "/usr/bin/busybox"):
        if cand and os.path.isfile(cand) and _is_static(Path(cand).read_bytes()[:65536]):
            return cand
    raise InputError("no static busybox found (install the Debian package busybox-static)")


def _cpio_entry(name: str, mode: int, data: bytes, ino: int) -> bytes:
    """One newc cpio record (the format the kernel unpacks an initramfs from)."""
    raw = name.encode() + b"\0"
    fields = (ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(raw), 0)
    out = b"070701" + "".join(f"{v:08x}" for v in fields).encode() + raw
    out += b"\0" * (-len(out) % 4) + data
    return out + b"\0" * (-len(data) % 4)


def initramfs(files: dict[str, tuple[int, bytes]]) -> bytes:
    """A gzip'd newc cpio archive of ``{path: (mode, content)}`` (directories: mode 0o40755, b"")."""
    parts = [_cpio_entry(name, mode, data, i + 1) for i, (name, (mode, data)) in enumerate(files.items())]
    parts.append(_cpio_entry("TRAILER!!!", 0, b"", 0))
    return gzip.compress(b"".join(parts), 6)


def prepare(package: str | None = None, cache: str | os.PathLike[str] | None = None, *,
            log: Log | None = None) -> GuestImage:
    """Fetch the kernel package (once) and build the initramfs and carrier template (once per key)."""
    package = package or os.environ.get(PACKAGE_ENV) or DEFAULT_PACKAGE
    busybox = find_busybox()
    tree, manifest = unpacked_tree(package, cache, log=log)
    release = manifest["kernel_release"]
    kernels = sorted((tree / "boot").glob("vmlinuz*"))
    mod_dir = tree / "lib" / "modules" / release
    carriers = sorted(mod_dir.glob(CARRIER_MODULE + "*"))
    if not kernels or not carriers:
        raise InputError(f"{package}: no boot/vmlinuz-* or {CARRIER_MODULE} in the package")
    script = agent_script().encode()
    busybox_bin = Path(busybox).read_bytes()
    shell_only = os.environ.get(AGENT_ENV, "").lower() == "shell"
    key = hashlib.sha256(script + busybox_bin + package.encode() + AGENT_C.read_bytes()
                         + (b"shell" if shell_only else b"")).hexdigest()[:16]
    out = cache_root(cache) / "guest" / package / key
    initrd, template, fast = out / "initrd.img", out / "carrier.ko", out / "btfspec-agent"
    if not (initrd.is_file() and template.is_file()):
        out.mkdir(parents=True, exist_ok=True)
        files = {d: (0o40755, b"") for d in ("bin", "dev", "proc", "sys", "tmp")}
        files["bin/busybox"] = (0o100755, busybox_bin)
        if build_fast_agent(fast, log):
            files["bin/btfspec-agent"] = (0o100755, fast.read_bytes())
        files["init"] = (0o100755, script)
        write_atomic(str(initrd), initramfs(files))
        make_template(read_bytes_any(str(carriers[0])), str(template))
    vmlinux_btf = (Path(manifest["dir"]) / VMLINUX_BTF).read_bytes()
    return GuestImage(package, release, kernels[0], initrd,
                      Carrier.from_template(template.read_bytes(), CARRIER_NAME), vmlinux_btf,
                      hashlib.sha256(vmlinux_btf).hexdigest(), "c" if fast.is_file() else "shell")

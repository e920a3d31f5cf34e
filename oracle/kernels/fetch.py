"""Real kernel BTF from Debian kernel image packages: download, unpack, extract vmlinux and module BTF.

``fetch_kernel("linux-image-6.1.0-47-cloud-amd64")`` runs ``apt-get download`` in the cache directory
(or takes a local ``.deb``), unpacks it (``dpkg-deb -x``, or a Python ar/tar reader when dpkg-deb is
missing), finds ``boot/vmlinuz-*``, locates its compressed payload (from the bzImage setup header, or
by scanning for compression magics as the kernel's ``scripts/extract-vmlinux`` does), decompresses it,
and writes raw BTF into ``<cache>/<package>/``::

    vmlinux.btf                          the vmlinux .BTF section
    modules/<path under lib/modules/<release>/>.btf   each module's .BTF (split on vmlinux)
    modules/<...>.btf.base               a module's .BTF.base, when it has one
    manifest.json                        package, version, .deb sha256, counts, per-file sha256s

``manifest.json`` is written last, so its presence marks a complete extraction; a second call reuses
it. Debian's 6.1 kernels are compressed with *legacy* LZ4 (magic ``02 21 4c 18``), which
:func:`btfspec.spec.sources.decode_lz4_legacy` decodes.
"""

from __future__ import annotations

import bz2
import hashlib
import io
import json
import lzma
import os
import re
import shutil
import struct
import subprocess
import tarfile
import tempfile
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import zstandard

from btfspec.spec.elf import is_elf, read_sections
from btfspec.spec.errors import InputError
from btfspec.spec.sources import LZ4_LEGACY_MAGIC, decode_lz4_legacy, decompress, read_bytes_any, write_atomic

T = TypeVar("T")

MANIFEST = "manifest.json"
VMLINUX_BTF = "vmlinux.btf"
MODULES_DIR = "modules"
VMLINUX_LIMIT = 1 << 30  # a decompressed kernel image larger than 1 GiB is refused
_MODULE_RE = re.compile(r"\.ko(\.(xz|zst|gz))?$")
_PACKAGE_RE = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")  # Debian policy 5.6.1
_CHUNK = 1 << 22

# Magics a bzImage payload may start with (scripts/extract-vmlinux, arch/x86/boot/compressed).
PAYLOAD_MAGICS: tuple[tuple[bytes, str], ...] = (
    (b"\x1f\x8b\x08", "gzip"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"BZh", "bzip2"),
    (b"\x5d\x00\x00", "lzma"),
    (LZ4_LEGACY_MAGIC, "lz4-legacy"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"\x89LZO", "lzo"),
)
_SCAN_MAGICS = tuple(m for m in PAYLOAD_MAGICS if m[1] not in ("lzma", "lzo"))  # lzma's magic is too weak
_MAX_CANDIDATES = 64  # per magic, when scanning


def cache_root(cache: str | os.PathLike[str] | None = None) -> Path:
    """``cache`` if given, else ``$XDG_CACHE_HOME/btfspec`` or ``~/.cache/btfspec``."""
    if cache:
        return Path(cache).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return Path(xdg).expanduser() / "btfspec" if xdg else Path.home() / ".cache" / "btfspec"


# --------------------------------------------------------------------------------------------------
# decompression of a kernel payload (first stream only; trailing bytes are ignored)
# --------------------------------------------------------------------------------------------------

def _add(out: list[bytes], total: int, piece: bytes, limit: int, what: str) -> int:
    total += len(piece)
    if total > limit:
        raise InputError(f"{what} decompresses to more than {limit} bytes, refusing")
    out.append(piece)
    return total


def _drain(dec: Any, data: bytes, limit: int, what: str) -> bytes:
    """Run an lzma/bz2-style decompressor (``max_length``, ``eof``, ``needs_input``) over one stream."""
    out: list[bytes] = []
    total = _add(out, 0, dec.decompress(data, max_length=_CHUNK), limit, what)
    while not dec.eof and not dec.needs_input:
        total = _add(out, total, dec.decompress(b"", max_length=_CHUNK), limit, what)
    if not dec.eof:
        raise EOFError("stream ends early")
    return b"".join(out)


def _gzip_stream(data: bytes, limit: int, what: str) -> bytes:
    dec = zlib.decompressobj(31)
    out: list[bytes] = []
    total = _add(out, 0, dec.decompress(data, _CHUNK), limit, what)
    while dec.unconsumed_tail and not dec.eof:
        total = _add(out, total, dec.decompress(dec.unconsumed_tail, _CHUNK), limit, what)
    if not dec.eof:
        raise EOFError("stream ends early")
    return b"".join(out)


def _zstd_stream(data: bytes, limit: int, what: str) -> bytes:
    """The first zstd frame; small input steps bound the output of each step (~128 MiB at most)."""
    dobj = zstandard.ZstdDecompressor().decompressobj()
    out: list[bytes] = []
    total, pos, step = 0, 0, 4096
    while not dobj.eof:
        piece = data[pos:pos + step]
        if not piece:
            raise EOFError("stream ends early")
        total = _add(out, total, dobj.decompress(piece), limit, what)
        pos += len(piece)
    return b"".join(out)


def decompress_payload(data: bytes, kind: str, limit: int = VMLINUX_LIMIT, label: str = "payload") -> bytes:
    """Decompress the first ``kind`` stream at the start of ``data`` (bytes after it are ignored).

    ``kind`` is a name from :data:`PAYLOAD_MAGICS`. Raises InputError when the data is corrupt or
    truncated, the format is unsupported (lzo), or the output exceeds ``limit`` bytes.
    """
    what = f"{label}: {kind}-compressed data"
    try:
        if kind == "lz4-legacy":
            return decode_lz4_legacy(data, limit, what)
        if kind == "zstd":
            return _zstd_stream(data, limit, what)
        if kind == "gzip":
            return _gzip_stream(data, limit, what)
        if kind in ("xz", "lzma"):
            fmt = lzma.FORMAT_XZ if kind == "xz" else lzma.FORMAT_ALONE
            return _drain(lzma.LZMADecompressor(fmt), data, limit, what)
        if kind == "bzip2":
            return _drain(bz2.BZ2Decompressor(), data, limit, what)
    except InputError:
        raise
    except (OSError, EOFError, ValueError, lzma.LZMAError, zlib.error, zstandard.ZstdError) as e:
        raise InputError(f"{what} is corrupt or truncated: {' '.join(str(e).split()) or type(e).__name__}") from None
    raise InputError(f"{what}: this compression is not supported (extract vmlinux with another tool)")


@dataclass(frozen=True)
class Payload:
    """Where a kernel image's compressed vmlinux starts and how it is compressed."""

    offset: int
    kind: str
    source: str  # "setup-header" (bzImage payload_offset/length) or "scan"


def _setup_header_payload(image: bytes) -> tuple[int, int] | None:
    """(offset, length) of the payload named by a bzImage setup header (boot protocol >= 2.08)."""
    if len(image) < 0x250 or image[0x202:0x206] != b"HdrS":
        return None
    if struct.unpack_from("<H", image, 0x206)[0] < 0x208:
        return None
    setup_sects = image[0x1F1] or 4
    offset, length = struct.unpack_from("<II", image, 0x248)
    start = (setup_sects + 1) * 512 + offset
    if not length or start + length > len(image):
        return None
    return start, length


def find_payloads(image: bytes) -> list[Payload]:
    """Candidate compressed payloads of a kernel image, most likely first.

    The bzImage setup header's ``payload_offset`` comes first when its bytes start with a known
    magic; then every occurrence of each magic (scripts/extract-vmlinux style), in file order.
    """
    out: list[Payload] = []
    hdr = _setup_header_payload(image)
    if hdr is not None:
        start = hdr[0]
        for magic, kind in PAYLOAD_MAGICS:
            if image.startswith(magic, start):
                out.append(Payload(start, kind, "setup-header"))
                break
    scanned: list[Payload] = []
    for magic, kind in _SCAN_MAGICS:
        pos, n = image.find(magic), 0
        while pos >= 0 and n < _MAX_CANDIDATES:
            if not out or pos != out[0].offset:
                scanned.append(Payload(pos, kind, "scan"))
            pos, n = image.find(magic, pos + 1), n + 1
    return out + sorted(scanned, key=lambda p: p.offset)


def extract_vmlinux(image: bytes, label: str = "kernel image",
                    limit: int = VMLINUX_LIMIT) -> tuple[bytes, Payload | None]:
    """The vmlinux ELF inside a compressed kernel image (an ELF image is returned as is).

    Tries :func:`find_payloads` in order and returns the first that decompresses to an ELF file,
    with the payload used (None for an uncompressed ELF). Raises InputError naming what was tried.
    """
    if is_elf(image):
        return image, None
    tried: list[str] = []
    for cand in find_payloads(image):
        try:
            data = decompress_payload(image[cand.offset:], cand.kind, limit, f"{label} at {cand.offset:#x}")
        except InputError as e:
            if cand.source == "setup-header" or cand.kind == "lzo":
                tried.append(str(e))
            continue
        if is_elf(data):
            return data, cand
        tried.append(f"{cand.kind} at {cand.offset:#x} is not an ELF file")
    detail = f" ({'; '.join(tried[:3])})" if tried else ""
    raise InputError(f"{label}: no compressed vmlinux found (no gzip/xz/bzip2/lzma/lz4/zstd payload that "
                     f"decompresses to an ELF file){detail}")


# --------------------------------------------------------------------------------------------------
# Debian packages
# --------------------------------------------------------------------------------------------------

def _run(argv: list[str], cwd: str | None = None, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, errors="replace", timeout=timeout,
                              check=False, env={**os.environ, "LC_ALL": "C"})
    except (OSError, subprocess.SubprocessError) as e:
        raise InputError(f"cannot run {argv[0]}: {getattr(e, 'strerror', None) or e}") from None


def _last_error(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("E:")]
    return (errors or lines or ["no message"])[-1]


def apt_download(package: str, dest: Path) -> Path:
    """``apt-get download PACKAGE`` into ``dest``; returns the ``.deb`` path. InputError on failure."""
    if not _PACKAGE_RE.match(package):
        raise InputError(f"{package!r} is not a Debian package name")
    apt = shutil.which("apt-get")
    if apt is None:
        raise InputError(f"apt-get not found: cannot download {package} (pass the path of a .deb instead)")
    dest.mkdir(parents=True, exist_ok=True)
    before = set(dest.glob("*.deb"))
    argv = [apt, "download", package]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        argv[1:1] = ["-o", "APT::Sandbox::User=root"]  # _apt cannot write into a root-owned cache
    proc = _run(argv, cwd=str(dest))
    if proc.returncode != 0:
        msg = _last_error(proc.stderr or proc.stdout)
        hint = " (run `apt-get update` first?)" if "Unable to locate" in msg or "candidate" in msg else ""
        raise InputError(f"apt-get download {package} failed: {msg}{hint}")
    new = sorted(set(dest.glob(f"{package}_*.deb")) - before) or sorted(dest.glob(f"{package}_*.deb"))
    if not new:
        raise InputError(f"apt-get download {package} reported success but wrote no {package}_*.deb in {dest}")
    return new[-1]


def _ar_members(data: bytes, label: str) -> Iterator[tuple[str, bytes]]:
    if not data.startswith(b"!<arch>\n"):
        raise InputError(f"{label}: not a Debian package (no ar archive magic)")
    pos = 8
    while pos + 60 <= len(data):
        hdr = data[pos:pos + 60]
        name = hdr[:16].decode("ascii", "replace").strip().rstrip("/")
        try:
            size = int(hdr[48:58].decode("ascii").strip())
        except ValueError:
            raise InputError(f"{label}: corrupt ar member header at byte offset {pos:#x}") from None
        pos += 60
        if pos + size > len(data):
            raise InputError(f"{label}: ar member {name} runs past the end of the file")
        yield name, data[pos:pos + size]
        pos += size + (size & 1)


def _deb_tar(deb: Path, prefix: str) -> tarfile.TarFile:
    data = read_bytes_any(str(deb))
    for name, blob in _ar_members(data, str(deb)):
        if name.startswith(prefix):
            content, _ = decompress(blob, f"{deb}:{name}")
            try:
                return tarfile.open(fileobj=io.BytesIO(content), mode="r:")
            except tarfile.TarError as e:
                raise InputError(f"{deb}: {name} is not a tar archive: {e}") from None
    raise InputError(f"{deb}: Debian package has no {prefix}* member")


def deb_fields(deb: Path) -> dict[str, str]:
    """``Package``, ``Version``, ``Architecture`` (and the rest) of a ``.deb``'s control file."""
    if shutil.which("dpkg-deb"):
        proc = _run(["dpkg-deb", "-f", str(deb)])
        if proc.returncode != 0:
            raise InputError(f"{deb}: dpkg-deb -f failed: {_last_error(proc.stderr)}")
        text = proc.stdout
    else:
        with _deb_tar(deb, "control.tar") as tar:
            member = next((m for m in tar.getmembers() if m.name.lstrip("./") == "control"), None)
            f = tar.extractfile(member) if member is not None else None
            if f is None:
                raise InputError(f"{deb}: control.tar has no control file")
            text = f.read().decode("utf-8", "replace")
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if line[:1] not in (" ", "\t", "") and ":" in line:
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
    return fields


def _wanted_member(name: str) -> bool:
    name = name.lstrip("./")
    return (name.startswith("boot/vmlinuz") or (name.startswith("lib/modules/") and bool(_MODULE_RE.search(name)))
            or (name.startswith("usr/lib/modules/") and bool(_MODULE_RE.search(name))))


def unpack_deb(deb: Path, dest: Path) -> None:
    """Unpack a ``.deb``'s data into ``dest``: ``dpkg-deb -x``, or (without dpkg-deb) only the kernel
    image and modules through a Python ar/tar reader."""
    dest.mkdir(parents=True, exist_ok=True)
    if shutil.which("dpkg-deb"):
        proc = _run(["dpkg-deb", "-x", str(deb), str(dest)])
        if proc.returncode != 0:
            raise InputError(f"{deb}: dpkg-deb -x failed: {_last_error(proc.stderr)}")
        return
    with _deb_tar(deb, "data.tar") as tar:
        for m in tar:
            parts = Path(m.name).parts
            if not m.isfile() or m.name.startswith("/") or ".." in parts or not _wanted_member(m.name):
                continue
            f = tar.extractfile(m)
            if f is None:
                continue
            out = dest.joinpath(*[p for p in parts if p != "."])
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(f.read())


# --------------------------------------------------------------------------------------------------
# extraction
# --------------------------------------------------------------------------------------------------

def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file's content."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _find_vmlinuz(root: Path) -> Path:
    found = sorted(p for pat in ("boot/vmlinuz*", "usr/lib/modules/*/vmlinuz") for p in root.glob(pat)
                   if p.is_file())
    if not found:
        raise InputError("package has no kernel image (boot/vmlinuz-*): is it a linux-image package?")
    return found[0]


def _module_paths(root: Path) -> tuple[str, list[tuple[str, Path]]]:
    """(kernel release, [(path relative to lib/modules/<release>/, file)]) of every module."""
    mods: list[tuple[str, Path]] = []
    releases: list[str] = []
    for top in (root / "lib" / "modules", root / "usr" / "lib" / "modules"):
        if not top.is_dir():
            continue
        for rel_dir in sorted(p for p in top.iterdir() if p.is_dir()):
            releases.append(rel_dir.name)
            for dirpath, _, files in os.walk(rel_dir):
                for fn in files:
                    if _MODULE_RE.search(fn):
                        full = Path(dirpath) / fn
                        mods.append((full.relative_to(rel_dir).as_posix(), full))
    mods.sort()
    return (releases[0] if len(releases) == 1 else ",".join(releases)), mods


def module_name(path: str) -> str:
    """``kernel/net/key/af_key.ko.xz`` -> ``af_key`` (also for the ``.btf`` files fetch-kernel writes)."""
    base = os.path.basename(path)
    return re.sub(r"(\.ko)?(\.(xz|zst|gz))?(\.btf(\.base)?)?(\.(xz|zst|zstd|gz|lz4))?$", "", base)


def _btf_out(rel: str) -> str:
    """``kernel/net/key/af_key.ko.xz`` -> ``modules/kernel/net/key/af_key.btf``."""
    return f"{MODULES_DIR}/{_MODULE_RE.sub('', rel)}.btf"


Log = Callable[[str], None]
Track = Callable[[Iterable[Any], str, int], Iterable[Any]]


def _no_track(items: Iterable[T], label: str, total: int) -> Iterable[T]:
    return items


def extract_tree(root: Path, out_dir: Path, *, log: Log | None = None, track: Track | None = None) -> dict[str, Any]:
    """Extract vmlinux and module BTF from an unpacked kernel package at ``root`` into ``out_dir``.

    Returns the manifest's extraction part (without package fields). Raises InputError when the
    image has no vmlinux or vmlinux has no ``.BTF``.
    """
    say = log or (lambda _m: None)
    track = track or _no_track
    vmlinuz = _find_vmlinuz(root)
    rel_image = vmlinuz.relative_to(root).as_posix()
    say(f"decompressing {rel_image} ({vmlinuz.stat().st_size:,} bytes)")
    image = read_bytes_any(str(vmlinuz))
    vmlinux, payload = extract_vmlinux(image, rel_image)
    how = f"{payload.kind} payload at byte offset {payload.offset:#x} ({payload.source})" if payload else "plain ELF"
    say(f"vmlinux: {len(vmlinux):,} bytes from the {how}")
    secs = read_sections(vmlinux, (".BTF",), label=f"vmlinux from {rel_image}")
    if ".BTF" not in secs:
        raise InputError(f"{rel_image}: vmlinux has no .BTF section (kernel built without CONFIG_DEBUG_INFO_BTF)")
    vmlinux_btf = secs[".BTF"]
    out_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(str(out_dir / VMLINUX_BTF), vmlinux_btf)
    release, mods = _module_paths(root)
    rows: list[dict[str, Any]] = []
    without: list[str] = []
    failed: list[dict[str, str]] = []
    for rel, path in track(mods, "extracting module BTF", len(mods)):
        try:
            secs = read_sections(read_bytes_any(str(path)), (".BTF", ".BTF.base"), label=rel)
        except InputError as e:
            failed.append({"module": rel, "error": str(e)})
            continue
        if ".BTF" not in secs:
            without.append(rel)
            continue
        out = _btf_out(rel)
        dst = out_dir / out
        dst.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(str(dst), secs[".BTF"])
        row: dict[str, Any] = {"name": module_name(rel), "module": rel, "btf": out, "bytes": len(secs[".BTF"]),
                               "sha256": _sha(secs[".BTF"])}
        if ".BTF.base" in secs:
            write_atomic(str(dst) + ".base", secs[".BTF.base"])
            row["btf_base"] = out + ".base"
            row["btf_base_bytes"] = len(secs[".BTF.base"])
        rows.append(row)
    return {
        "kernel_release": release,
        "image": rel_image,
        "image_sha256": _sha(image),
        "compression": payload.kind if payload else None,
        "payload_offset": payload.offset if payload else None,
        "vmlinux": {"btf": VMLINUX_BTF, "bytes": len(vmlinux_btf), "sha256": _sha(vmlinux_btf),
                    "elf_bytes": len(vmlinux)},
        "counts": {"modules": len(mods), "with_btf": len(rows), "without_btf": len(without),
                   "with_btf_base": sum(1 for r in rows if "btf_base" in r), "unreadable": len(failed)},
        "modules": rows,
        "without_btf": without,
        "unreadable": failed,
    }


def read_manifest(pkg_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The manifest of an extracted package directory, or None when absent, unreadable or incomplete."""
    path = Path(pkg_dir) / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or "vmlinux" not in manifest or "modules" not in manifest:
        return None
    files = [manifest["vmlinux"]["btf"], *(m["btf"] for m in manifest["modules"])]
    if not all((Path(pkg_dir) / f).is_file() for f in files):
        return None
    return manifest


def fetch_kernel(package: str, cache: str | os.PathLike[str] | None = None, *, force: bool = False,
                 keep_unpacked: bool = False, log: Log | None = None, track: Track | None = None) -> dict[str, Any]:
    """Download (or take a local ``.deb``), unpack and extract a kernel package's BTF; returns the manifest.

    An existing complete extraction is reused unless ``force``; the manifest then has ``"reused": True``.
    The ``.deb`` is kept in ``<cache>/<package>/``; the unpacked tree is removed unless ``keep_unpacked``.
    """
    say = log or (lambda _m: None)
    root = cache_root(cache)
    local = package.endswith(".deb") and Path(package).is_file()
    if local:
        deb: Path | None = Path(package).resolve()
        fields = deb_fields(deb)
        name = fields.get("Package") or module_name(deb.name)
    else:
        deb, name = None, package
        if not _PACKAGE_RE.match(package):
            raise InputError(f"{package!r} is neither a Debian package name nor an existing .deb file")
    pkg_dir = root / name
    if not force:
        manifest = read_manifest(pkg_dir)
        if manifest is not None and deb is not None and manifest.get("deb_sha256") != sha256_file(deb):
            say(f"{deb.name} differs from the .deb of the existing extraction: extracting again")
            manifest = None
        if manifest is not None:
            say(f"reusing {pkg_dir / MANIFEST}")
            return {**manifest, "reused": True, "dir": str(pkg_dir)}
    pkg_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    for old in (pkg_dir / MANIFEST, pkg_dir / VMLINUX_BTF):  # the manifest first: never a stale "complete"
        old.unlink(missing_ok=True)
    shutil.rmtree(pkg_dir / MODULES_DIR, ignore_errors=True)
    if deb is None:
        cached = sorted(pkg_dir.glob(f"{name}_*.deb"))
        if cached:
            deb = cached[-1]
            say(f"reusing {deb}")
        else:
            say(f"apt-get download {name} (into {pkg_dir})")
            deb = apt_download(name, pkg_dir)
        fields = deb_fields(deb)
    deb_sha = sha256_file(deb)
    say(f"{deb.name}: {deb.stat().st_size:,} bytes, sha256 {deb_sha[:16]}...")
    try:
        with tempfile.TemporaryDirectory(prefix=".unpack-", dir=pkg_dir) as tmp:
            say(f"unpacking {deb.name}")
            unpack_deb(deb, Path(tmp))
            part = extract_tree(Path(tmp), pkg_dir, log=say, track=track)
            if keep_unpacked:
                kept = pkg_dir / "unpacked"
                shutil.rmtree(kept, ignore_errors=True)
                shutil.copytree(tmp, kept, symlinks=True)
    except OSError as e:
        raise InputError(f"{pkg_dir}: cannot extract {deb.name}: {e.strerror or e}") from None
    manifest = {
        "package": fields.get("Package", name),
        "version": fields.get("Version"),
        "architecture": fields.get("Architecture"),
        "deb": deb.name,
        "deb_sha256": deb_sha,
        "deb_bytes": deb.stat().st_size,
        "source": "local file" if local else "apt-get download",
        **part,
        "seconds": round(time.monotonic() - started, 2),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": f"btfspec fetch-kernel {name}",
    }
    write_atomic(str(pkg_dir / MANIFEST), (json.dumps(manifest, indent=1) + "\n").encode())
    return {**manifest, "reused": False, "dir": str(pkg_dir)}


UNPACKED = "unpacked"


def unpacked_tree(package: str, cache: str | os.PathLike[str] | None = None, *,
                  log: Log | None = None) -> tuple[Path, dict[str, Any]]:
    """``(<cache>/<package>/unpacked, manifest)``: the package's whole file tree (boot image, modules,
    config) beside its extracted BTF, fetching and unpacking it on first use.

    Used to boot the package's kernel (:mod:`btfspec.oracle.kernels.guest`). The tree is unpacked
    from the cached ``.deb`` into a temporary directory and renamed into place, so a present tree is
    complete.
    """
    manifest = fetch_kernel(package, cache, keep_unpacked=True, log=log)
    pkg_dir = Path(manifest["dir"])
    tree = pkg_dir / UNPACKED
    if tree.is_dir() and any((tree / "boot").glob("vmlinuz*")):
        return tree, manifest
    debs = sorted(pkg_dir.glob(f"{manifest['package']}_*.deb"))
    deb = debs[-1] if debs else apt_download(manifest["package"], pkg_dir)
    (log or (lambda _m: None))(f"unpacking {deb.name} into {tree}")
    try:
        tmp = Path(tempfile.mkdtemp(prefix=".unpack-", dir=pkg_dir))
        unpack_deb(deb, tmp)
        shutil.rmtree(tree, ignore_errors=True)
        os.replace(tmp, tree)
    except OSError as e:
        raise InputError(f"{pkg_dir}: cannot unpack {deb.name}: {e.strerror or e}") from None
    return tree, manifest

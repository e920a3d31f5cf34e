"""Load any BTF input the CLI accepts: raw BTF, ELF (vmlinux/.ko/.o), compressed, or /sys/kernel/btf.

Compression is recognised by magic bytes (xz, zstd, gzip, lz4 frame, legacy lz4), never by extension,
and decompression is streamed and capped at MAX_DECOMPRESSED bytes. Each decompressor is imported only
when an input needs it.
"""

from __future__ import annotations

import io
import itertools
import os
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from btfspec.spec.elf import atomic_output, is_elf, read_sections
from btfspec.spec.errors import InputError, one_line

SYSFS_BTF_DIR = "/sys/kernel/btf"
HOST_VMLINUX = f"{SYSFS_BTF_DIR}/vmlinux"  # the running kernel's BTF
MAX_DECOMPRESSED = 2 << 30  # 2 GiB zip-bomb guard
_CHUNK = 1 << 20
LZ4_LEGACY_MAGIC = b"\x02\x21\x4c\x18"
LZ4_LEGACY_BLOCK = 8 << 20  # every block but the last decompresses to exactly 8 MiB
_LZ4_BLOCK_BOUND = LZ4_LEGACY_BLOCK + LZ4_LEGACY_BLOCK // 255 + 16  # LZ4_compressBound

_COMPRESSION_MAGIC = (
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"\x1f\x8b", "gzip"),
    (b"\x04\x22\x4d\x18", "lz4"),
    (LZ4_LEGACY_MAGIC, "lz4-legacy"),
)
# Formats we recognise only to say what a rejected file looks like.
_OTHER_MAGIC = (
    (b"BZh", "bzip2-compressed data (unsupported)"),
    (b"\x89LZO", "lzop-compressed data (unsupported)"),
    (b"!<arch>\n", "an ar archive"),
    (b"MZ", "a PE image (bzImage/vmlinuz? extract vmlinux first)"),
)


def _decompress_errors() -> tuple[type[BaseException], ...]:
    """What the decompressors raise on corrupt or truncated data."""
    import lzma
    import zlib

    import zstandard

    return OSError, EOFError, ValueError, RuntimeError, lzma.LZMAError, zlib.error, zstandard.ZstdError


@dataclass(frozen=True)
class BtfInput:
    """A loaded BTF input: the ``.BTF`` bytes plus, for ELF files, ``.BTF.base`` and ``.BTF_ids``."""

    path: str
    btf: bytes
    base: bytes | None
    btf_ids: bytes | None
    kind: str  # "raw", "elf" or "sysfs"
    is_elf: bool
    sysfs_vmlinux: str | None  # for /sys/kernel/btf/<module>: the vmlinux BTF that is its base
    compression: str | None = None  # "xz", "zstd", "gzip", "lz4", "lz4-legacy" or None


def compression_of(data: bytes) -> str | None:
    """Name of the compression format ``data`` starts with, or None."""
    for magic, name in _COMPRESSION_MAGIC:
        if data.startswith(magic):
            return name
    return None


def is_raw_btf(data: bytes) -> bool:
    """True when ``data`` starts with the BTF magic 0xEB9F in either byte order."""
    return data[:2] in (b"\x9f\xeb", b"\xeb\x9f")


def describe_start(data: bytes) -> str:
    """One phrase saying what the first bytes of ``data`` look like (for error messages)."""
    head = data[:8].hex(" ")
    for magic, what in _OTHER_MAGIC:
        if data.startswith(magic):
            return f"looks like {what}; first bytes {head}"
    if compression_of(data):
        return f"looks like {compression_of(data)}-compressed data (nested compression is not supported)"
    sample = data[:64]
    if sample and all(32 <= b < 127 or b in b"\t\r\n" for b in sample):
        return f"looks like text: {one_line(sample.decode('ascii'))[:40]!r}"
    return f"first bytes {head}"


def _read_limited(chunks: Iterator[bytes], limit: int, what: str) -> bytes:
    """Join ``chunks``, raising InputError("<what> more than <limit> bytes...") once they exceed ``limit``."""
    out, total = [], 0
    for chunk in chunks:
        total += len(chunk)
        if total > limit:
            raise InputError(f"{what} more than {limit} bytes, refusing to load")
        out.append(chunk)
    return b"".join(out)


def _stream_chunks(stream: BinaryIO) -> Iterator[bytes]:
    while chunk := stream.read(_CHUNK):
        yield chunk


def _zstd_chunks(data: bytes) -> Iterator[bytes]:
    """Decompress every zstd frame of ``data``; small input steps keep the output per step bounded."""
    import zstandard

    pos, step = 0, 4096  # a zstd byte expands to at most ~32 KiB, so <= ~128 MiB per step
    while pos < len(data):
        dobj = zstandard.ZstdDecompressor().decompressobj()
        while not dobj.eof:
            piece = data[pos:pos + step]
            if not piece:
                raise EOFError("compressed data ends in the middle of a zstd frame")
            yield dobj.decompress(piece)
            pos += len(piece) - (len(dobj.unused_data) if dobj.eof else 0)


def _lz4_legacy_blocks(data: bytes, label: str) -> Iterator[bytes]:
    """The blocks of a legacy LZ4 stream (see :func:`decode_lz4_legacy`), each at most 8 MiB."""
    import lz4.block

    if not data.startswith(LZ4_LEGACY_MAGIC):
        raise InputError(f"{label}: no legacy LZ4 magic (first bytes {data[:4].hex(' ')})")
    magic = struct.unpack("<I", LZ4_LEGACY_MAGIC)[0]
    pos, found = 4, False
    while pos + 4 <= len(data):
        size = struct.unpack_from("<I", data, pos)[0]
        if size == magic:
            pos += 4
            continue
        if size == 0 or size > len(data) - pos - 4 or size > _LZ4_BLOCK_BOUND:
            break
        try:
            block = lz4.block.decompress(data[pos + 4:pos + 4 + size], uncompressed_size=LZ4_LEGACY_BLOCK)
        except lz4.block.LZ4BlockError as e:
            if found:
                break  # not a block: whatever follows the stream
            raise InputError(f"{label}: corrupt LZ4 block at byte offset {pos:#x}: {e}") from None
        found = True
        yield block
        pos += 4 + size
        if len(block) < LZ4_LEGACY_BLOCK:
            break
    if not found:
        raise InputError(f"{label}: no complete LZ4 block after the magic")


def decode_lz4_legacy(data: bytes, limit: int | None = None, label: str = "lz4-legacy data") -> bytes:
    """Decode the legacy LZ4 format (``lz4 -l``, used by the kernel's ``CONFIG_KERNEL_LZ4``).

    Layout: the magic ``02 21 4c 18``, then blocks of ``u32 le compressed size`` + LZ4 block data,
    each decompressing to 8 MiB except the last; a repeated magic starts a concatenated stream. The
    stream ends after a short block, at the end of the data, or at a size word that cannot be a block
    (a bzImage appends the u32 decompressed length). Raises InputError for a missing magic, a
    corrupt first block, or output over ``limit`` bytes (default MAX_DECOMPRESSED).
    """
    limit = MAX_DECOMPRESSED if limit is None else limit
    return _read_limited(_lz4_legacy_blocks(data, label), limit, f"{label} decompresses to")


def _stream_opener(kind: str) -> Callable[[BinaryIO], BinaryIO]:
    """The file-like reader of the xz, gzip or lz4-frame data in a binary stream."""
    if kind == "xz":
        import lzma

        return lzma.LZMAFile
    if kind == "gzip":
        import gzip

        return lambda f: gzip.GzipFile(fileobj=f)
    import lz4.frame

    return lz4.frame.LZ4FrameFile


def decompress(data: bytes, label: str, limit: int | None = None) -> tuple[bytes, str | None]:
    """Return ``(content, compression)``: ``data`` decompressed when it starts with a known magic.

    Raises InputError for corrupt or truncated data and for output over ``limit`` bytes
    (default MAX_DECOMPRESSED).
    """
    limit = MAX_DECOMPRESSED if limit is None else limit
    kind = compression_of(data)
    if kind is None:
        return data, None
    what = f"{label}: {kind}-compressed data"
    try:
        too_big = f"{what} decompresses to"
        if kind == "zstd":
            out = _read_limited(_zstd_chunks(data), limit, too_big)
        elif kind == "lz4-legacy":
            out = decode_lz4_legacy(data, limit, what)
        else:
            with _stream_opener(kind)(io.BytesIO(data)) as stream:
                out = _read_limited(_stream_chunks(stream), limit, too_big)
    except _decompress_errors() as e:
        raise InputError(f"{what} is corrupt or truncated: {one_line(e) or type(e).__name__}") from None
    if not out:
        raise InputError(f"{what} decompresses to 0 bytes")
    return out, kind


def _read_file(path: str, limit: int) -> bytes:
    """The bytes of ``path`` (at most ``limit``): a file whose size is known is read into one buffer,
    anything else (a pipe, a file that grows meanwhile) chunk by chunk."""
    too_big = f"{path}: file has"
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if 0 < size <= limit:
                data = f.read(size)
                if len(data) == size and (more := f.read(1)):
                    data = _read_limited(itertools.chain((data, more), _stream_chunks(f)), limit, too_big)
            else:
                data = _read_limited(_stream_chunks(f), limit, too_big)
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror or e}") from None
    if not data:
        raise InputError(f"{path}: file is empty")
    return data


def read_bytes_any(path: str, limit: int | None = None) -> bytes:
    """The content of ``path``, decompressed when it is xz/zstd/gzip/lz4 (frame or legacy); InputError
    if unreadable.

    Neither the file nor its decompressed content may exceed ``limit`` bytes (default MAX_DECOMPRESSED).
    """
    limit = MAX_DECOMPRESSED if limit is None else limit
    return decompress(_read_file(path, limit), path, limit)[0]


def _sysfs_module(path: str) -> tuple[bool, str | None]:
    """(is under /sys/kernel/btf, path of vmlinux BTF when ``path`` is a module's BTF)."""
    real = os.path.realpath(path)
    if os.path.dirname(real) != os.path.realpath(SYSFS_BTF_DIR):
        return False, None
    if os.path.basename(real) == "vmlinux":
        return True, None
    return True, os.path.join(SYSFS_BTF_DIR, "vmlinux")


def load_input(path: str) -> BtfInput:
    """Load a BTF input: raw BTF, an ELF with ``.BTF``, optionally compressed, or a sysfs BTF file."""
    data, compression = decompress(_read_file(path, MAX_DECOMPRESSED), path, MAX_DECOMPRESSED)
    if is_elf(data):
        secs = read_sections(data, label=path)
        if ".BTF" not in secs:
            raise InputError(f"{path}: ELF file has no .BTF section")
        return BtfInput(path, secs[".BTF"], secs.get(".BTF.base"), secs.get(".BTF_ids"), "elf", True,
                        None, compression)
    if is_raw_btf(data):
        in_sysfs, vmlinux = _sysfs_module(path)
        return BtfInput(path, data, None, None, "sysfs" if in_sysfs else "raw", False, vmlinux, compression)
    after = f" after {compression} decompression" if compression else ""
    raise InputError(f"{path}: not raw BTF or an ELF file{after} ({describe_start(data)})")


def write_atomic(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same directory and ``os.replace``.

    An existing ``path`` keeps its permission bits; a failed write leaves it untouched.
    """
    with atomic_output(path) as tmp, open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())

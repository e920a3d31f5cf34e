"""Byte-level access to the BTF sections of ELF files (vmlinux, ``.ko``, ``.o``).

Reading uses pyelftools on an in-memory copy of the file; writing shells out to ``objcopy`` and
always produces a *copy*, replaced atomically. BTF records are not parsed here. pyelftools and the
modules for writing are imported on first use (reading raw BTF needs neither).
"""

from __future__ import annotations

import contextlib
import io
import os
import struct
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from btfspec.spec.errors import InputError, one_line

if TYPE_CHECKING:
    import subprocess

BTF_SECTION_NAMES = (".BTF", ".BTF.base", ".BTF_ids")
# Sections libbpf reads as BTF: since 2025 (v1.6) it requires them to be SHT_PROGBITS.
_PROGBITS_ONLY = (".BTF", ".BTF.base")
MODULE_SIG_MAGIC = b"~Module signature appended~\n"
OBJCOPY = "objcopy"  # command used by write_sections (tests may point it elsewhere)


def is_elf(data: bytes) -> bool:
    """True when ``data`` starts with the ELF magic ``7f 45 4c 46``."""
    return data[:4] == b"\x7fELF"


def _load(path_or_bytes: str | os.PathLike[str] | bytes, label: str | None) -> tuple[bytes, str]:
    if isinstance(path_or_bytes, bytes | bytearray | memoryview):
        return bytes(path_or_bytes), label or "<bytes>"
    name = label or os.fspath(path_or_bytes)
    try:
        with open(path_or_bytes, "rb") as f:
            return f.read(), name
    except OSError as e:
        raise InputError(f"{name}: cannot read: {e.strerror or e}") from None


def _check_headers(data: bytes, label: str) -> None:
    """Clear messages for the common truncations before pyelftools sees the file."""
    if len(data) < 6:
        raise InputError(f"{label}: truncated ELF header ({len(data)} bytes)")
    cls, order = data[4:5], data[5:6]
    if cls not in (b"\1", b"\2") or order not in (b"\1", b"\2"):
        ident = data[4:6].hex(" ") or "missing"
        raise InputError(f"{label}: malformed ELF: bad EI_CLASS/EI_DATA bytes ({ident})")
    is64, end = cls == b"\2", "<" if order == b"\1" else ">"
    size = 64 if is64 else 52
    if len(data) < size:
        raise InputError(f"{label}: truncated ELF header ({len(data)} of {size} bytes)")
    shoff = struct.unpack_from(end + ("Q" if is64 else "I"), data, 0x28 if is64 else 0x20)[0]
    shentsize, shnum = struct.unpack_from(end + "HH", data, 0x3A if is64 else 0x2E)
    if shoff and shentsize < (64 if is64 else 40):
        raise InputError(f"{label}: malformed ELF: e_shentsize {shentsize} is too small for a section header")
    if shoff and shoff + max(shnum, 1) * shentsize > len(data):
        raise InputError(f"{label}: section header table (offset {shoff:#x}, {shnum} entries of {shentsize} "
                         f"bytes) runs past the end of the file ({len(data):#x} bytes)")


def _sections(data: bytes, label: str) -> list[tuple[str, str, int, int, int]]:
    """(name, sh_type name, sh_flags, sh_offset, sh_size) of every section; InputError when malformed.

    Only the section headers and the section name table are parsed (as libbpf does), so damage in
    unrelated sections such as ``.symtab`` or ``.rela.text`` does not make the file unreadable.
    """
    if not is_elf(data):
        raise InputError(f"{label}: not an ELF file")
    _check_headers(data, label)
    from elftools.elf.elffile import ELFFile  # here: pyelftools costs ~30 ms to import

    try:
        elf = ELFFile(io.BytesIO(data))
        shoff, entsize, count = elf["e_shoff"], elf["e_shentsize"], elf.num_sections()
        if count and shoff + count * entsize > len(data):
            raise InputError(f"{label}: section header table (offset {shoff:#x}, {count} entries of "
                             f"{entsize} bytes) runs past the end of the file ({len(data):#x} bytes)")
        headers = [elf.structs.Elf_Shdr.parse(data[shoff + i * entsize:shoff + (i + 1) * entsize])
                   for i in range(count)]
        if not headers:
            return []
        strndx = elf.get_shstrndx()
        if strndx >= count:
            raise InputError(f"{label}: e_shstrndx {strndx} is not a section (there are {count})")
        strtab = headers[strndx]
        str_start, str_end = strtab["sh_offset"], strtab["sh_offset"] + strtab["sh_size"]
        if str_end > len(data):
            raise InputError(f"{label}: section name table (offset {str_start:#x}, size "
                             f"{strtab['sh_size']:#x}) runs past the end of the file ({len(data):#x} bytes)")
        out = []
        for i, h in enumerate(headers):
            start = str_start + h["sh_name"]
            end = data.find(b"\0", start, str_end)
            if end < 0:
                raise InputError(f"{label}: section {i} has a bad name offset {h['sh_name']:#x}")
            sh_type = h["sh_type"]  # a name such as "SHT_PROGBITS", or an int when unknown
            type_name = sh_type if isinstance(sh_type, str) else f"{sh_type:#x}"
            name = data[start:end].decode("utf-8", "replace")
            out.append((name, type_name, int(h["sh_flags"]), int(h["sh_offset"]), int(h["sh_size"])))
        return out
    except InputError:
        raise
    except Exception as e:  # pyelftools raises ELFError, struct.error, construct errors, ...
        raise InputError(f"{label}: malformed ELF: {one_line(e) or type(e).__name__}") from None


def section_header_offsets(data: bytes, names: Iterable[str], label: str = "ELF") -> dict[str, int]:
    """The file offset of the section header of each named section the file has (for patching a header in
    place); InputError when the file is malformed."""
    wanted = set(names)
    secs = _sections(data, label)
    from elftools.elf.elffile import ELFFile

    elf = ELFFile(io.BytesIO(data))
    shoff, entsize = elf["e_shoff"], elf["e_shentsize"]
    return {name: shoff + i * entsize for i, (name, *_) in enumerate(secs) if name in wanted}


_SHF_COMPRESSED = 0x800


def read_sections(path_or_bytes: str | os.PathLike[str] | bytes,
                  names: Iterable[str] = BTF_SECTION_NAMES, *, label: str | None = None) -> dict[str, bytes]:
    """Return the contents of the sections called ``names`` (absent sections are left out).

    ``label`` names the input in error messages (defaults to the path). Raises InputError for a
    malformed ELF, a NOBITS/compressed/non-PROGBITS BTF section, a section running past the end of
    the file, or a section name that occurs twice.
    """
    data, label = _load(path_or_bytes, label)
    wanted = set(names)
    found: dict[str, bytes] = {}
    for name, sh_type, flags, off, size in _sections(data, label):
        if name not in wanted:
            continue
        if name in found:
            raise InputError(f"{label}: ELF file has more than one {name} section")
        if sh_type == "SHT_NOBITS":
            raise InputError(f"{label}: section {name} is NOBITS")
        if name in _PROGBITS_ONLY and sh_type != "SHT_PROGBITS":
            raise InputError(f"{label}: section {name} has type {sh_type}, expected SHT_PROGBITS")
        if flags & _SHF_COMPRESSED:
            raise InputError(f"{label}: section {name} is compressed (SHF_COMPRESSED), not supported")
        if off + size > len(data):
            raise InputError(f"{label}: section {name} (offset {off:#x}, size {size:#x}) runs past "
                             f"the end of the file ({len(data):#x} bytes)")
        found[name] = data[off:off + size]
    return found


def create_temp(dst: str) -> str:
    """Create an empty, uniquely named file beside ``dst`` (mode 0666 & ~umask) and return its path."""
    directory, base = os.path.split(os.path.abspath(dst))
    for _ in range(100):
        tmp = os.path.join(directory, f".{base}.{os.urandom(4).hex()}.tmp")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return tmp
        except FileExistsError:
            continue
        except OSError as e:
            raise InputError(f"{dst}: cannot write: {e.strerror or e}") from None
    raise InputError(f"{dst}: cannot create a temporary file in {directory}")


def remove_quietly(path: str) -> None:
    """Delete ``path`` if it exists."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def replace_keeping_mode(tmp: str, dst: str, mode_from: str | None = None) -> None:
    """``os.replace(tmp, dst)`` after giving ``tmp`` the permission bits of ``mode_from`` (default: of
    an existing ``dst``; a new file keeps the temporary file's 0666 & ~umask)."""
    mode_from = mode_from or (dst if os.path.exists(dst) else None)
    if mode_from is not None:
        os.chmod(tmp, os.stat(mode_from).st_mode & 0o7777)
    os.replace(tmp, dst)


@contextlib.contextmanager
def atomic_output(dst: str, mode_from: str | None = None) -> Iterator[str]:
    """A new temporary file beside ``dst`` to write: on a clean exit it replaces ``dst`` atomically
    (:func:`replace_keeping_mode`); it is always removed otherwise.  An OSError on the way becomes
    ``InputError("<dst>: cannot write: ...")``, so a failed write leaves ``dst`` untouched."""
    tmp = create_temp(dst)
    try:
        yield tmp
        replace_keeping_mode(tmp, dst, mode_from)
    except OSError as e:
        raise InputError(f"{dst}: cannot write: {e.strerror or e}") from None
    finally:
        remove_quietly(tmp)


def write_sections(src_elf: str | os.PathLike[str], dst: str | os.PathLike[str], sections: dict[str, bytes],
                   remove: Iterable[str] = ()) -> list[str]:
    """Write a copy of ``src_elf`` to ``dst`` with ``sections`` replaced or added and ``remove`` dropped.

    Uses objcopy (``--update-section`` for existing sections, ``--add-section`` otherwise, which gives
    a non-alloc PROGBITS section like a module's ``.BTF``). ``dst`` is replaced atomically and gets
    ``src_elf``'s permission bits; ``dst`` may equal ``src_elf``. Returns warnings (a dropped module
    signature, objcopy's own warnings). Raises InputError when objcopy is missing or fails.
    """
    src, dst = os.fspath(src_elf), os.fspath(dst)
    remove = list(remove)
    for name in [*sections, *remove]:
        if not name or "=" in name:
            raise ValueError(f"invalid section name {name!r}")
    if set(sections) & set(remove):
        raise ValueError("a section cannot be both written and removed")
    import shutil
    import tempfile

    objcopy = shutil.which(OBJCOPY)
    if objcopy is None:
        raise InputError("objcopy not found: install binutils")
    data, _ = _load(src, None)
    if not is_elf(data):
        from btfspec.spec.sources import compression_of  # local import: sources imports this module

        kind = compression_of(data)
        hint = f" ({kind}-compressed: decompress it first)" if kind else ""
        raise InputError(f"{src}: not an ELF file{hint}")
    existing = {s[0] for s in _sections(data, src)}
    warnings = []
    if data.endswith(MODULE_SIG_MAGIC):
        warnings.append(f"{src}: has an appended module signature; objcopy drops it, so {dst} is unsigned")

    with atomic_output(dst, mode_from=src) as tmp:
        with tempfile.TemporaryDirectory(prefix="btfspec-sec-") as blobs:
            args = [f"--remove-section={name}" for name in remove]
            for i, (name, blob) in enumerate(sections.items()):
                blob_path = os.path.join(blobs, str(i))
                with open(blob_path, "wb") as f:
                    f.write(blob)
                op = "--update-section" if name in existing else "--add-section"
                args += [op, f"{name}={blob_path}"]
            proc = _run_objcopy([objcopy, *args, src, tmp])
            if proc.returncode != 0 and "recognise the format" in proc.stderr:
                # A generic/foreign-machine ELF: name the BFD target from the ELF header.
                bits = "32" if data[4] == 1 else "64"
                order = "big" if data[5] == 2 else "little"
                proc = _run_objcopy([objcopy, "-I", f"elf{bits}-{order}", *args, src, tmp])
        stderr = [one_line(line) for line in proc.stderr.splitlines() if line.strip()]
        if proc.returncode != 0:
            reason = "; ".join(stderr) or f"exit status {proc.returncode}"
            raise InputError(f"{src}: objcopy failed: {reason}")
        warnings += stderr
    return warnings


def _run_objcopy(argv: list[str]) -> subprocess.CompletedProcess[str]:
    import subprocess

    try:
        return subprocess.run(argv, capture_output=True, text=True, errors="replace", check=False,
                              env={**os.environ, "LC_ALL": "C"})  # stderr is matched in English
    except OSError as e:
        raise InputError(f"cannot run {argv[0]}: {e.strerror or e}") from None

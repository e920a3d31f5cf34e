"""Tests for btfspec.spec.elf (ELF section I/O) and btfspec.spec.sources (loading any BTF input)."""

from __future__ import annotations

import gzip
import hashlib
import lzma
import os
import shutil
import stat
import struct
import subprocess
from pathlib import Path

import lz4.frame
import pytest
import zstandard
from elftools.elf.elffile import ELFFile

from btfspec.spec import elf, sources
from btfspec.spec.elf import MODULE_SIG_MAGIC, is_elf, read_sections, write_sections
from btfspec.spec.errors import InputError
from btfspec.spec.sources import LZ4_LEGACY_BLOCK, load_input, read_bytes_any, write_atomic
from tests.helpers import lz4_legacy

HAVE_GCC = shutil.which("gcc") is not None
HAVE_OBJCOPY = shutil.which("objcopy") is not None
needs_gcc = pytest.mark.skipif(not (HAVE_GCC and HAVE_OBJCOPY), reason="needs gcc and objcopy (binutils)")
needs_objcopy = pytest.mark.skipif(not HAVE_OBJCOPY, reason="needs objcopy (binutils)")
SYSFS_VMLINUX = Path("/sys/kernel/btf/vmlinux")

COMPRESSORS = {
    "xz": lzma.compress,
    "zstd": lambda b: zstandard.ZstdCompressor().compress(b),
    "gzip": lambda data: gzip.compress(data, mtime=0),
    "lz4": lz4.frame.compress,
    "lz4-legacy": lz4_legacy,
}


def tiny_btf(order: str = "<") -> bytes:
    """A 25-byte BTF blob (header + one NUL string) in the given byte order."""
    return struct.pack(order + "HBBIIIII", 0xEB9F, 1, 0, 24, 0, 0, 0, 1) + b"\0"


BTF = tiny_btf()
BASE = tiny_btf() + b"base-padding"
IDS = bytes(range(16))


def one_line_error(excinfo: pytest.ExceptionInfo[InputError]) -> str:
    msg = str(excinfo.value)
    assert msg and "\n" not in msg
    return msg


def run(*argv: str | Path) -> None:
    subprocess.run([str(a) for a in argv], check=True, capture_output=True)


@pytest.fixture
def obj(tmp_path: Path) -> Path:
    """A plain gcc-built relocatable object without BTF."""
    if not (HAVE_GCC and HAVE_OBJCOPY):
        pytest.skip("needs gcc and objcopy (binutils)")
    src = tmp_path / "t.c"
    src.write_text("int x = 1; int y; int f(int a) { return a + x + y; }\n")
    out = tmp_path / "t.o"
    run("gcc", "-c", "-O1", src, "-o", out)
    return out


def attach(src: Path, dst: Path, sections: dict[str, bytes], target: str | None = None) -> Path:
    """Attach blobs with plain ``objcopy --add-section`` (independently of write_sections)."""
    args: list[str | Path] = ["objcopy"] + (["-I", target] if target else [])
    for i, (name, blob) in enumerate(sections.items()):
        blob_path = dst.parent / f"{dst.name}.blob{i}"
        blob_path.write_bytes(blob)
        args += ["--add-section", f"{name}={blob_path}"]
    run(*args, src, dst)
    return dst


@pytest.fixture
def module(obj: Path, tmp_path: Path) -> Path:
    """A module-like object carrying .BTF, .BTF.base and .BTF_ids."""
    return attach(obj, tmp_path / "mod.ko", {".BTF": BTF, ".BTF.base": BASE, ".BTF_ids": IDS})


def shdr_offset(path: Path, name: str) -> tuple[int, str, str]:
    """(file offset of section ``name``'s header, struct byte order, ELF class 32/64)."""
    with open(path, "rb") as f:
        e = ELFFile(f)
        idx = next(i for i, s in enumerate(e.iter_sections()) if s.name == name)
        order = "<" if e.little_endian else ">"
        return e["e_shoff"] + idx * e["e_shentsize"], order, str(e.elfclass)


def patch_shdr(path: Path, name: str, field: str, value: int) -> None:
    """Overwrite one field (sh_name, sh_type, sh_offset or sh_size) of a section header in place."""
    off, order, cls = shdr_offset(path, name)
    layout = {"64": {"sh_name": (0, "I"), "sh_type": (4, "I"), "sh_offset": (24, "Q"), "sh_size": (32, "Q")},
              "32": {"sh_name": (0, "I"), "sh_type": (4, "I"), "sh_offset": (16, "I"), "sh_size": (20, "I")}}
    rel, fmt = layout[cls][field]
    data = bytearray(path.read_bytes())
    struct.pack_into(order + fmt, data, off + rel, value)
    path.write_bytes(bytes(data))


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


# --- reading ELF ---------------------------------------------------------------------------------


@needs_gcc
def test_read_sections_module_like_object(module: Path) -> None:
    assert read_sections(module) == {".BTF": BTF, ".BTF.base": BASE, ".BTF_ids": IDS}
    assert read_sections(module.read_bytes(), names=[".BTF"]) == {".BTF": BTF}
    assert is_elf(module.read_bytes()) and not is_elf(BTF)
    inp = load_input(str(module))
    assert (inp.btf, inp.base, inp.btf_ids) == (BTF, BASE, IDS)
    assert (inp.kind, inp.is_elf, inp.sysfs_vmlinux, inp.compression) == ("elf", True, None, None)


@needs_gcc
def test_absent_sections_are_absent(obj: Path, tmp_path: Path) -> None:
    only_btf = attach(obj, tmp_path / "only.o", {".BTF": BTF})
    assert read_sections(only_btf) == {".BTF": BTF}
    inp = load_input(str(only_btf))
    assert inp.base is None and inp.btf_ids is None
    with pytest.raises(InputError) as ei:
        load_input(str(obj))
    assert one_line_error(ei) == f"{obj}: ELF file has no .BTF section"


@needs_gcc
def test_gcc_generated_btf_matches_objcopy_dump(tmp_path: Path) -> None:
    src = tmp_path / "g.c"
    src.write_text("struct s { int a; char b; }; struct s v; int f(struct s *p) { return p->a; }\n")
    out = tmp_path / "g.o"
    try:
        run("gcc", "-c", "-gbtf", src, "-o", out)
    except subprocess.CalledProcessError:
        pytest.skip("this gcc cannot emit BTF (-gbtf)")
    dump = tmp_path / "g.btf"
    run("objcopy", f"--dump-section=.BTF={dump}", out)
    inp = load_input(str(out))
    assert inp.btf == dump.read_bytes() and inp.btf[:2] == b"\x9f\xeb"


@needs_objcopy
@pytest.mark.parametrize("target", ["elf32-little", "elf32-big", "elf64-little", "elf64-big"])
def test_both_classes_and_byte_orders(tmp_path: Path, target: str) -> None:
    order = ">" if target.endswith("big") else "<"
    blob = tmp_path / "btf.bin"
    blob.write_bytes(tiny_btf(order))
    first = tmp_path / "first.o"
    run("objcopy", "-I", "binary", "-O", target, "--rename-section", ".data=.BTF,contents,readonly",
        blob, first)
    path = attach(first, tmp_path / "x.o", {".BTF.base": BASE, ".BTF_ids": IDS}, target=target)
    ident = path.read_bytes()[:6]
    assert ident[4] == (1 if "32" in target else 2) and ident[5] == (2 if order == ">" else 1)
    assert read_sections(path) == {".BTF": tiny_btf(order), ".BTF.base": BASE, ".BTF_ids": IDS}
    # write_sections must cope with a generic (machine-less) ELF of any class and byte order
    copy = tmp_path / "copy.o"
    write_sections(path, copy, {".BTF": b"new", ".extra": b"xx"}, remove=[".BTF_ids"])
    assert read_sections(copy, names=[".BTF", ".BTF.base", ".BTF_ids", ".extra"]) == {
        ".BTF": b"new", ".BTF.base": BASE, ".extra": b"xx"}


# --- hostile ELF ---------------------------------------------------------------------------------


@needs_gcc
def test_truncated_elf(module: Path, tmp_path: Path) -> None:
    data = module.read_bytes()
    for cut in (5, 30, 63, len(data) // 2, len(data) - 1):
        bad = tmp_path / f"cut{cut}.ko"
        bad.write_bytes(data[:cut])
        with pytest.raises(InputError) as ei:
            load_input(str(bad))
        assert one_line_error(ei).startswith(f"{bad}: ")


@needs_gcc
@pytest.mark.parametrize("field,delta", [("sh_offset", 0x1000), ("sh_size", 0x1000)])
def test_section_past_eof(module: Path, field: str, delta: int) -> None:
    patch_shdr(module, ".BTF", field, module.stat().st_size + delta)
    with pytest.raises(InputError) as ei:
        read_sections(module)
    msg = one_line_error(ei)
    assert "section .BTF" in msg and "runs past the end of the file" in msg


@needs_gcc
def test_nobits_and_wrong_type(module: Path, obj: Path) -> None:
    with pytest.raises(InputError) as ei:
        read_sections(obj, names=[".bss"])
    assert one_line_error(ei) == f"{obj}: section .bss is NOBITS"
    patch_shdr(module, ".BTF.base", "sh_type", 8)  # SHT_NOBITS
    with pytest.raises(InputError) as ei:
        load_input(str(module))
    assert one_line_error(ei).endswith("section .BTF.base is NOBITS")
    patch_shdr(module, ".BTF.base", "sh_type", 7)  # SHT_NOTE: libbpf wants PROGBITS
    with pytest.raises(InputError) as ei:
        load_input(str(module))
    assert "expected SHT_PROGBITS" in one_line_error(ei)


@needs_gcc
def test_duplicate_section_name(module: Path) -> None:
    with open(module, "rb") as f:
        btf_name = ELFFile(f).get_section_by_name(".BTF")["sh_name"]
    patch_shdr(module, ".BTF_ids", "sh_name", btf_name)
    with pytest.raises(InputError) as ei:
        read_sections(module)
    assert "more than one .BTF section" in one_line_error(ei)


@pytest.mark.parametrize("data", [
    b"\x7fELF", b"\x7fELF" + b"garbage" * 20, b"\x7fELF\x02\x01\x01" + bytes(57)])
def test_garbage_after_elf_magic(tmp_path: Path, data: bytes) -> None:
    bad = tmp_path / "bad.o"
    bad.write_bytes(data)
    with pytest.raises(InputError) as ei:
        load_input(str(bad))
    assert one_line_error(ei).startswith(f"{bad}: ")


# --- compression ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", COMPRESSORS)
def test_compressed_raw_btf(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "vmlinux.bin"  # extension says nothing: detection is by magic
    path.write_bytes(COMPRESSORS[kind](BTF))
    inp = load_input(str(path))
    assert (inp.btf, inp.kind, inp.is_elf, inp.compression, inp.base) == (BTF, "raw", False, kind, None)
    assert read_bytes_any(str(path)) == BTF


@needs_gcc
@pytest.mark.parametrize("kind", COMPRESSORS)
def test_compressed_elf(module: Path, tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"mod.ko.{kind}"
    path.write_bytes(COMPRESSORS[kind](module.read_bytes()))
    inp = load_input(str(path))
    assert (inp.btf, inp.base, inp.btf_ids, inp.kind, inp.compression) == (BTF, BASE, IDS, "elf", kind)


def test_legacy_lz4_raw_btf(tmp_path: Path) -> None:
    """Legacy LZ4 (``lz4 -l``, the kernel's CONFIG_KERNEL_LZ4) is accepted by every input path: several
    8 MiB blocks, a concatenated stream, and a bzImage-style u32 length after the stream."""
    btf = BTF + bytes(LZ4_LEGACY_BLOCK + 100)  # raw BTF followed by padding: two blocks
    data = lz4_legacy(btf[:LZ4_LEGACY_BLOCK]) + lz4_legacy(btf[LZ4_LEGACY_BLOCK:])
    path = tmp_path / "vmlinux.btf.lz4"
    path.write_bytes(data + struct.pack("<I", len(btf)))
    inp = load_input(str(path))
    assert (inp.btf, inp.kind, inp.compression) == (btf, "raw", "lz4-legacy")
    assert read_bytes_any(str(path)) == btf
    assert sources.compression_of(data) == "lz4-legacy"


def test_zstd_multiframe_and_unknown_content_size(tmp_path: Path) -> None:
    payload = os.urandom(50_000) + bytes(300_000)
    cctx = zstandard.ZstdCompressor(write_content_size=False)
    half = len(payload) // 2
    path = tmp_path / "x.btf.zst"
    path.write_bytes(cctx.compress(payload[:half]) + zstandard.ZstdCompressor().compress(payload[half:]))
    assert read_bytes_any(str(path)) == payload


@pytest.mark.parametrize("kind", COMPRESSORS)
def test_truncated_and_corrupt_compressed(tmp_path: Path, kind: str) -> None:
    good = COMPRESSORS[kind](os.urandom(20_000))
    for i, bad in enumerate([good[: len(good) // 2], good[:-3], good[:6] + b"garbage" * 30]):
        path = tmp_path / f"bad{i}"
        path.write_bytes(bad)
        with pytest.raises(InputError) as ei:
            load_input(str(path))
        assert one_line_error(ei).startswith(f"{path}: {kind}-compressed data")


@pytest.mark.parametrize("kind", COMPRESSORS)
def test_decompression_is_bounded(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "bomb"
    path.write_bytes(COMPRESSORS[kind](bytes(8 << 20)))
    with pytest.raises(InputError) as ei:
        read_bytes_any(str(path), limit=1 << 20)
    assert "refusing to load" in one_line_error(ei)
    assert len(read_bytes_any(str(path), limit=8 << 20)) == 8 << 20
    assert sources.MAX_DECOMPRESSED == 2 << 30


def test_load_input_uses_global_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "bomb.zst"
    path.write_bytes(COMPRESSORS["zstd"](BTF + bytes(4 << 20)))
    monkeypatch.setattr(sources, "MAX_DECOMPRESSED", 1 << 20)
    with pytest.raises(InputError) as ei:
        load_input(str(path))
    assert "refusing to load" in one_line_error(ei)


def test_file_reads_whole_and_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file of known size is read in one buffer; over the limit, from a pipe, or longer than its
    size said (it grew), the chunked read still returns every byte and still refuses too many."""
    payload = os.urandom(3 << 20)
    path = tmp_path / "file"
    path.write_bytes(payload)
    assert read_bytes_any(str(path)) == payload
    with pytest.raises(InputError) as ei:
        read_bytes_any(str(path), limit=1 << 20)
    assert one_line_error(ei) == f"{path}: file has more than {1 << 20} bytes, refusing to load"
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    writer = subprocess.Popen(["sh", "-c", f"cat {path} > {fifo}"])
    assert read_bytes_any(str(fifo)) == payload
    writer.wait()
    real_fstat = os.fstat
    monkeypatch.setattr(os, "fstat", lambda fd: os.stat_result((*real_fstat(fd)[:6], 1 << 20, *real_fstat(fd)[7:])))
    assert read_bytes_any(str(path)) == payload
    with pytest.raises(InputError):
        read_bytes_any(str(path), limit=2 << 20)


# --- raw BTF, sysfs, unrecognised and unreadable inputs ------------------------------------------


@pytest.mark.parametrize("order,head", [("<", b"\x9f\xeb"), (">", b"\xeb\x9f")])
def test_raw_btf_both_byte_orders(tmp_path: Path, order: str, head: bytes) -> None:
    path = tmp_path / "x.btf"
    path.write_bytes(tiny_btf(order))
    inp = load_input(str(path))
    assert inp.btf[:2] == head and (inp.kind, inp.is_elf, inp.sysfs_vmlinux) == ("raw", False, None)


@pytest.mark.skipif(not SYSFS_VMLINUX.exists(), reason="/sys/kernel/btf/vmlinux not present")
def test_sysfs_vmlinux() -> None:
    inp = load_input(str(SYSFS_VMLINUX))
    assert inp.kind == "sysfs" and inp.sysfs_vmlinux is None and not inp.is_elf
    assert inp.btf[:2] in (b"\x9f\xeb", b"\xeb\x9f") and len(inp.btf) > 1000
    modules = sorted(p for p in SYSFS_VMLINUX.parent.iterdir() if p.name != "vmlinux")
    if modules:
        mod = load_input(str(modules[0]))
        assert mod.kind == "sysfs" and mod.sysfs_vmlinux == str(SYSFS_VMLINUX)


def test_sysfs_module_points_at_vmlinux(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sources, "SYSFS_BTF_DIR", str(tmp_path))
    (tmp_path / "vmlinux").write_bytes(BTF)
    (tmp_path / "nf_tables").write_bytes(BTF)
    assert load_input(str(tmp_path / "nf_tables")).sysfs_vmlinux == str(tmp_path / "vmlinux")
    vml = load_input(str(tmp_path / "vmlinux"))
    assert (vml.kind, vml.sysfs_vmlinux) == ("sysfs", None)


@pytest.mark.parametrize("data,expect", [
    (b"hello world\n", "looks like text"),
    (b"\x00\x01\x02\x03", "first bytes 00 01 02 03"),
    (b"\x9f", "first bytes 9f"),
    (b"MZ\x90\x00", "PE image"),
    (b"BZh91AY&SY", "bzip2"),
    (gzip.compress(gzip.compress(BTF, mtime=0), mtime=0), "after gzip decompression (looks like gzip-compressed"),
])
def test_unrecognised_input(tmp_path: Path, data: bytes, expect: str) -> None:
    path = tmp_path / "junk"
    path.write_bytes(data)
    with pytest.raises(InputError) as ei:
        load_input(str(path))
    msg = one_line_error(ei)
    assert msg.startswith(f"{path}: not raw BTF or an ELF file") and expect in msg


def test_unreadable_inputs(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    cases = {str(tmp_path / "missing"): "No such file or directory", str(tmp_path): "Is a directory",
             str(empty): "file is empty"}
    for path, reason in cases.items():
        with pytest.raises(InputError) as ei:
            load_input(path)
        msg = one_line_error(ei)
        assert msg.startswith(f"{path}: ") and reason in msg
    with pytest.raises(InputError):
        read_sections(tmp_path / "missing")


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read mode-000 files")
def test_permission_denied(tmp_path: Path) -> None:
    path = tmp_path / "secret.btf"
    path.write_bytes(BTF)
    path.chmod(0)
    with pytest.raises(InputError) as ei:
        load_input(str(path))
    assert "Permission denied" in one_line_error(ei)


# --- writing -------------------------------------------------------------------------------------


def section_header(path: Path, name: str) -> dict[str, object]:
    with open(path, "rb") as f:
        return dict(ELFFile(f).get_section_by_name(name).header)


@needs_gcc
def test_write_sections_add_then_update(obj: Path, tmp_path: Path) -> None:
    before = hashlib.sha256(obj.read_bytes()).digest()
    out = tmp_path / "out" / "mod.ko"
    out.parent.mkdir()
    assert write_sections(obj, out, {".BTF": BTF, ".BTF.base": BASE}) == []
    assert read_sections(out) == {".BTF": BTF, ".BTF.base": BASE}
    hdr = section_header(out, ".BTF")
    assert hdr["sh_type"] == "SHT_PROGBITS" and not int(hdr["sh_flags"]) & 0x2  # not SHF_ALLOC
    assert write_sections(out, out, {".BTF": BASE * 3, ".BTF_ids": IDS}, remove=[".BTF.base"]) == []
    assert read_sections(out) == {".BTF": BASE * 3, ".BTF_ids": IDS}
    assert hashlib.sha256(obj.read_bytes()).digest() == before
    assert leftovers(out.parent) == [] and leftovers(tmp_path) == []
    assert stat.S_IMODE(out.stat().st_mode) == stat.S_IMODE(obj.stat().st_mode)


@needs_gcc
def test_written_btf_is_readable_by_bpftool(obj: Path, tmp_path: Path) -> None:
    if shutil.which("bpftool") is None:
        pytest.skip("bpftool not installed")
    src = tmp_path / "g.c"
    src.write_text("struct s { int a; } v;\n")
    try:
        run("gcc", "-c", "-gbtf", src, "-o", tmp_path / "g.o")
    except subprocess.CalledProcessError:
        pytest.skip("this gcc cannot emit BTF (-gbtf)")
    btf = load_input(str(tmp_path / "g.o")).btf
    out = tmp_path / "with_btf.o"
    write_sections(obj, out, {".BTF": btf})
    dump = subprocess.run(["bpftool", "btf", "dump", "file", str(out)], capture_output=True, text=True)
    assert dump.returncode == 0 and "STRUCT 's'" in dump.stdout


@needs_gcc
def test_signature_warning(module: Path, tmp_path: Path) -> None:
    signed = tmp_path / "signed.ko"
    signed.write_bytes(module.read_bytes() + b"\x30\x82signature-bytes" + bytes(12) + MODULE_SIG_MAGIC)
    out = tmp_path / "copy.ko"
    warnings = write_sections(signed, out, {".BTF": BASE})
    assert len(warnings) == 1 and "module signature" in warnings[0] and "unsigned" in warnings[0]
    assert not out.read_bytes().endswith(MODULE_SIG_MAGIC)
    assert load_input(str(signed)).btf == BTF  # trailing signature does not disturb reading
    assert read_sections(out)[".BTF"] == BASE


@needs_gcc
def test_write_sections_failures_leave_nothing_behind(obj: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    outdir = tmp_path / "out"
    outdir.mkdir()
    dst = outdir / "dst.o"
    dst.write_bytes(b"previous content")
    not_elf = tmp_path / "notelf"
    not_elf.write_bytes(b"plain text, not an object\n")
    with pytest.raises(InputError) as ei:
        write_sections(not_elf, dst, {".BTF": BTF})
    assert "not an ELF file" in one_line_error(ei)
    compressed = tmp_path / "mod.ko.zst"
    compressed.write_bytes(COMPRESSORS["zstd"](obj.read_bytes()))
    with pytest.raises(InputError) as ei:
        write_sections(compressed, dst, {".BTF": BTF})
    assert "zstd-compressed: decompress it first" in one_line_error(ei)
    # objcopy itself fails: a NOBITS section has no contents to update
    with pytest.raises(InputError) as ei:
        write_sections(obj, dst, {".bss": b"x"})
    assert "objcopy failed" in one_line_error(ei)
    # an objcopy that writes half an output and then fails
    fake = tmp_path / "fake-objcopy"
    fake.write_text('#!/bin/sh\nfor last; do :; done\nprintf "half-written" > "$last"\nexit 1\n')
    fake.chmod(0o755)
    monkeypatch.setattr(elf, "OBJCOPY", str(fake))
    with pytest.raises(InputError) as ei:
        write_sections(obj, dst, {".BTF": BTF})
    assert "objcopy failed" in one_line_error(ei)
    assert dst.read_bytes() == b"previous content"
    assert sorted(p.name for p in outdir.iterdir()) == ["dst.o"]


@needs_gcc
def test_objcopy_missing(obj: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(elf, "OBJCOPY", "objcopy-that-does-not-exist-btfspec")
    with pytest.raises(InputError) as ei:
        write_sections(obj, tmp_path / "x.o", {".BTF": BTF})
    assert one_line_error(ei) == "objcopy not found: install binutils"
    assert not (tmp_path / "x.o").exists()


def test_write_sections_rejects_bad_names(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        write_sections(tmp_path / "a", tmp_path / "b", {"a=b": b""})
    with pytest.raises(ValueError):
        write_sections(tmp_path / "a", tmp_path / "b", {".BTF": b""}, remove=[".BTF"])


def test_write_atomic(tmp_path: Path) -> None:
    path = tmp_path / "out.btf"
    write_atomic(str(path), BTF)
    assert path.read_bytes() == BTF
    path.chmod(0o640)
    write_atomic(str(path), BASE)
    assert path.read_bytes() == BASE and stat.S_IMODE(path.stat().st_mode) == 0o640
    assert leftovers(tmp_path) == []
    with pytest.raises(InputError) as ei:
        write_atomic(str(tmp_path / "no" / "such" / "dir.btf"), BTF)
    assert "cannot write" in one_line_error(ei)

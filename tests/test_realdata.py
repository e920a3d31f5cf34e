"""Tests for oracle.kernels.fetch (fetch-kernel), oracle.kernels.stats and the ``fetch-kernel``/``stats`` commands.

Offline only: packages are synthetic ``.deb`` files built here, ``apt-get`` is replaced by a fake
script on PATH, and the real-data checks use the committed samples in corpus/real.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import hashlib
import io
import json
import lzma
import os
import shutil
import statistics
import struct
import subprocess
import tarfile
from pathlib import Path

import pytest
import zstandard
from click.testing import CliRunner

from btfspec.cli import main
from btfspec.oracle.kernels import fetch as kernels
from btfspec.oracle.kernels.fetch import (
    extract_vmlinux,
    fetch_kernel,
    find_payloads,
    module_name,
)
from btfspec.oracle.kernels.stats import ModuleRow, StatsRun, collect_modules, reason_key, run_stats, summarize
from btfspec.spec.builder import Builder
from btfspec.spec.elf import read_sections, write_sections
from btfspec.spec.errors import InputError
from btfspec.spec.model import Btf
from btfspec.spec.sources import LZ4_LEGACY_BLOCK, LZ4_LEGACY_MAGIC, decode_lz4_legacy
from tests.helpers import lz4_legacy

REAL = Path(__file__).resolve().parent.parent / "corpus" / "real"
K47, K50 = REAL / "6.1.0-47-cloud-amd64", REAL / "6.1.0-50-cloud-amd64"
HAVE_TOOLS = shutil.which("gcc") is not None and shutil.which("objcopy") is not None
needs_tools = pytest.mark.skipif(not HAVE_TOOLS, reason="needs gcc and objcopy (binutils) to build ELF files")


def _libbpf_reason() -> str | None:
    from btfspec.oracle.impls import libbpf

    return libbpf.unavailable_reason()


needs_libbpf = pytest.mark.skipif(_libbpf_reason() is not None, reason=f"libbpf unusable: {_libbpf_reason()}")


# --------------------------------------------------------------------------------------------------
# helpers: BTF, ELF, bzImage-like images and .deb packages
# --------------------------------------------------------------------------------------------------

def vmlinux_like(nparams: int = 1, dev_size: int = 8) -> bytes:
    """A vmlinux-like base: [1] int, [2] struct dev, [3] FUNC_PROTO, [4] PTR, [5] struct ops, [6] typedef."""
    b = Builder()
    i = b.int("int", 4, 1)
    b.struct("dev", dev_size, [("id", i, 0, 0), ("flags", i, 32, 0)])
    proto = b.func_proto(i, [(None, i)] * nparams)
    b.struct("ops", 8, [("fn", b.ptr(proto), 0, 0)])
    b.typedef("u32_t", i)
    return b.to_bytes()


def module_split(base: bytes) -> bytes:
    """A module split on :func:`vmlinux_like`: embeds struct dev, uses the typedef and the prototype."""
    s = Builder(base=Btf.from_bytes(base))
    s.struct("mod", 16, [("d", 2, 0, 0), ("n", 6, 64, 0)])
    s.func("mod_fn", 3)
    return s.to_bytes()


def base_and_split() -> tuple[bytes, bytes]:
    base = vmlinux_like()
    return base, module_split(base)


COMPRESS = {
    "zstd": lambda d: zstandard.ZstdCompressor().compress(d),
    "xz": lambda d: lzma.compress(d, check=lzma.CHECK_CRC32),
    "gzip": gzip.compress,
    "bzip2": bz2.compress,
    "lz4-legacy": lz4_legacy,
}


def bzimage(payload: bytes, *, header: bool = True, seed: int = 7) -> bytes:
    """A bzImage-like blob: pseudo-random setup code, the payload, its u32 length, more junk."""
    junk = hashlib.sha256(str(seed).encode()).digest() * 200  # 6400 bytes, no compression magic
    for magic, _ in kernels.PAYLOAD_MAGICS:
        assert magic not in junk
    setup_sects = 3
    head = bytearray(junk[:(setup_sects + 1) * 512])
    code = junk[:700]  # protected-mode code before the payload
    if header:
        head[0x1F1] = setup_sects
        head[0x202:0x206] = b"HdrS"
        struct.pack_into("<H", head, 0x206, 0x20F)
        struct.pack_into("<II", head, 0x248, len(code), len(payload) + 4)
    return bytes(head) + code + payload + struct.pack("<I", 123456) + junk[:300]


@pytest.fixture(scope="module")
def elf_obj(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not HAVE_TOOLS:
        pytest.skip("needs gcc and objcopy (binutils) to build ELF files")
    d = tmp_path_factory.mktemp("elf")
    (d / "x.c").write_text("int x = 1;\n")
    subprocess.run(["gcc", "-c", "-o", str(d / "x.o"), str(d / "x.c")], check=True, capture_output=True)
    return d / "x.o"


def elf_with(elf_obj: Path, tmp: Path, name: str, btf: bytes | None) -> bytes:
    out = tmp / name
    if btf is None:
        shutil.copy(elf_obj, out)
    else:
        write_sections(elf_obj, out, {".BTF": btf})
    return out.read_bytes()


def _ar(members: list[tuple[str, bytes]]) -> bytes:
    out = [b"!<arch>\n"]
    for name, data in members:
        hdr = f"{name:<16}{0:<12}{0:<6}{0:<6}{'100644':<8}{len(data):<10}`\n".encode()
        out.append(hdr + data + (b"\n" if len(data) & 1 else b""))
    return b"".join(out)


def _tar_xz(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        dirs = sorted({str(Path(p).parent) for p in files} - {"."})
        for d in dirs:
            parts = Path(d).parts
            for i in range(1, len(parts) + 1):
                sub = "./" + "/".join(parts[:i])
                if sub not in tar.getnames():
                    info = tarfile.TarInfo(sub)
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                    tar.addfile(info)
        for path, data in files.items():
            info = tarfile.TarInfo("./" + path)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return lzma.compress(buf.getvalue())


def make_deb(path: Path, package: str, files: dict[str, bytes], version: str = "1.0-1") -> Path:
    control = f"Package: {package}\nVersion: {version}\nArchitecture: amd64\nMaintainer: t <t@t>\n" \
              f"Description: test kernel\n"
    path.write_bytes(_ar([("debian-binary", b"2.0\n"), ("control.tar.xz", _tar_xz({"control": control.encode()})),
                          ("data.tar.xz", _tar_xz(files))]))
    return path


@pytest.fixture(scope="module")
def kernel_deb(elf_obj: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes, bytes]:
    """A synthetic linux-image .deb: zstd bzImage with vmlinux .BTF, two modules with .BTF, one without."""
    tmp = tmp_path_factory.mktemp("deb")
    base, split = base_and_split()
    vmlinux = elf_with(elf_obj, tmp, "vmlinux", base)
    mod = elf_with(elf_obj, tmp, "m.ko", split)
    plain = elf_with(elf_obj, tmp, "n.ko", None)
    rel = "lib/modules/6.1.0-9-test"
    files = {
        "boot/vmlinuz-6.1.0-9-test": bzimage(COMPRESS["zstd"](vmlinux)),
        "boot/config-6.1.0-9-test": b"CONFIG_DEBUG_INFO_BTF=y\n",
        f"{rel}/kernel/drivers/foo/foo.ko": mod,
        f"{rel}/kernel/net/bar.ko.xz": lzma.compress(mod),
        f"{rel}/kernel/lib/nobtf.ko": plain,
        f"{rel}/modules.dep": b"",
    }
    deb = make_deb(tmp / "linux-image-6.1.0-9-test_6.1.1-1_amd64.deb", "linux-image-6.1.0-9-test", files,
                   version="6.1.1-1")
    return deb, base, split


# --------------------------------------------------------------------------------------------------
# legacy LZ4 and payload finding
# --------------------------------------------------------------------------------------------------

def test_lz4_legacy_roundtrip_multi_block_and_trailer() -> None:
    data = bytes(range(256)) * (LZ4_LEGACY_BLOCK // 256) + b"tail" * 1000  # a full block + a short one
    enc = lz4_legacy(data)
    assert decode_lz4_legacy(enc) == data
    assert decode_lz4_legacy(enc + struct.pack("<I", len(data)) + b"junk") == data  # bzImage trailer
    # a concatenated stream (magic repeated) continues after a full block
    first, second = bytes(LZ4_LEGACY_BLOCK), b"second stream"
    assert decode_lz4_legacy(lz4_legacy(first) + lz4_legacy(second)) == first + second


def test_lz4_legacy_small_block_size() -> None:
    """Blocks smaller than 8 MiB end the stream (only the last block may be short)."""
    data = b"abcdefgh" * 4096
    enc = lz4_legacy(data, block=1024)
    assert decode_lz4_legacy(enc) == data[:1024]


@pytest.mark.skipif(shutil.which("lz4") is None, reason="the lz4 command-line tool is not installed")
def test_lz4_legacy_matches_lz4_cli(tmp_path: Path) -> None:
    data = (b"kernel image " * 1000 + bytes(range(256))) * 50
    (tmp_path / "in").write_bytes(data)
    subprocess.run(["lz4", "-l", "-q", "-f", str(tmp_path / "in"), str(tmp_path / "out")], check=True)
    assert decode_lz4_legacy((tmp_path / "out").read_bytes()) == data


def test_lz4_legacy_errors() -> None:
    with pytest.raises(InputError, match="no legacy LZ4 magic"):
        decode_lz4_legacy(b"\x04\x22\x4d\x18frame")
    with pytest.raises(InputError, match="corrupt LZ4 block at byte offset 0x4"):
        decode_lz4_legacy(LZ4_LEGACY_MAGIC + struct.pack("<I", 8) + b"\xff" * 8)
    with pytest.raises(InputError, match="no complete LZ4 block"):
        decode_lz4_legacy(LZ4_LEGACY_MAGIC + struct.pack("<I", 1000) + b"short")
    with pytest.raises(InputError, match="more than 100 bytes"):
        decode_lz4_legacy(lz4_legacy(bytes(1000)), limit=100)


@needs_tools
@pytest.mark.parametrize("kind", sorted(COMPRESS))
@pytest.mark.parametrize("header", [True, False], ids=["setup-header", "scan"])
def test_extract_vmlinux_from_bzimage(kind: str, header: bool, elf_obj: Path, tmp_path: Path) -> None:
    base, _ = base_and_split()
    vmlinux = elf_with(elf_obj, tmp_path, "vmlinux", base)
    image = bzimage(COMPRESS[kind](vmlinux), header=header)
    got, payload = extract_vmlinux(image)
    assert got == vmlinux
    assert payload is not None and payload.kind == kind
    assert payload.source == ("setup-header" if header else "scan")
    assert read_sections(got)[".BTF"] == base


def test_find_payloads_orders_header_first() -> None:
    image = bzimage(COMPRESS["xz"](b"\x7fELF" + bytes(100)))
    found = find_payloads(image)
    assert found[0].source == "setup-header" and found[0].kind == "xz"
    assert all(p.offset != found[0].offset for p in found[1:])


def test_extract_vmlinux_errors() -> None:
    assert extract_vmlinux(b"\x7fELF" + bytes(60)) == (b"\x7fELF" + bytes(60), None)
    with pytest.raises(InputError, match="no compressed vmlinux found"):
        extract_vmlinux(bzimage(b"not compressed at all", header=False))
    not_elf = bzimage(COMPRESS["gzip"](b"plain text, not an ELF file"))
    with pytest.raises(InputError, match="gzip at 0x.* is not an ELF file"):
        extract_vmlinux(not_elf)
    lzo = bzimage(b"\x89LZO\x00" + bytes(50))
    with pytest.raises(InputError, match="lzo-compressed data: this compression is not supported"):
        extract_vmlinux(lzo)


def test_module_name() -> None:
    assert module_name("kernel/net/key/af_key.ko.xz") == "af_key"
    assert module_name("modules/kernel/fs/nls/nls_utf8.btf") == "nls_utf8"
    assert module_name("corpus/real/x/modules/crc-itu-t.btf.zst") == "crc-itu-t"


# --------------------------------------------------------------------------------------------------
# fetch-kernel
# --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("unpacker", ["dpkg-deb", "python"])
def test_fetch_kernel_local_deb(kernel_deb: tuple[Path, bytes, bytes], tmp_path: Path, unpacker: str,
                                monkeypatch: pytest.MonkeyPatch, elf_obj: Path) -> None:
    deb, base, split = kernel_deb
    if unpacker == "dpkg-deb" and shutil.which("dpkg-deb") is None:
        pytest.skip("dpkg-deb is not installed")
    if unpacker == "python":
        real_which = shutil.which
        monkeypatch.setattr(kernels.shutil, "which", lambda n: None if n == "dpkg-deb" else real_which(n))
    cache = tmp_path / "cache"
    r = CliRunner().invoke(main, ["fetch-kernel", str(deb), "--cache", str(cache), "--json"])
    assert r.exit_code == 0, r.output
    m = json.loads(r.stdout)
    pkg = cache / "linux-image-6.1.0-9-test"
    assert m["dir"] == str(pkg) and not m["reused"]
    assert (m["package"], m["version"], m["architecture"]) == ("linux-image-6.1.0-9-test", "6.1.1-1", "amd64")
    assert m["compression"] == "zstd" and m["kernel_release"] == "6.1.0-9-test"
    assert m["counts"] == {"modules": 3, "with_btf": 2, "without_btf": 1, "with_btf_base": 0, "unreadable": 0}
    assert m["deb_sha256"] == hashlib.sha256(deb.read_bytes()).hexdigest()
    assert (pkg / "vmlinux.btf").read_bytes() == base
    assert m["vmlinux"]["sha256"] == hashlib.sha256(base).hexdigest()
    want = ["modules/kernel/drivers/foo/foo.btf", "modules/kernel/net/bar.btf"]
    assert sorted(x["btf"] for x in m["modules"]) == want
    for x in m["modules"]:
        assert (pkg / x["btf"]).read_bytes() == split and x["sha256"] == hashlib.sha256(split).hexdigest()
    assert m["without_btf"] == ["kernel/lib/nobtf.ko"]
    assert not any(p.name.startswith(".unpack-") for p in pkg.iterdir())
    # idempotent: the second call reuses the extraction
    r2 = CliRunner().invoke(main, ["fetch-kernel", str(deb), "--cache", str(cache)])
    assert r2.exit_code == 0 and "reused the existing extraction" in r2.stdout
    # another .deb of the same package (here: xz, no modules) replaces the extraction
    vmlinux = elf_with(elf_obj, tmp_path, "vmlinux", base)
    other = make_deb(tmp_path / "other.deb", "linux-image-6.1.0-9-test",
                     {"boot/vmlinuz-6.1.0-9-test": bzimage(COMPRESS["xz"](vmlinux))}, version="6.1.1-2")
    m3 = fetch_kernel(str(other), cache)
    assert (m3["reused"], m3["version"], m3["compression"], m3["counts"]["modules"]) == (False, "6.1.1-2", "xz", 0)
    assert not (pkg / "modules").exists()


def test_fetch_kernel_default_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert kernels.cache_root() == tmp_path / "xdg" / "btfspec"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert kernels.cache_root() == tmp_path / "home" / ".cache" / "btfspec"
    assert kernels.cache_root("/x/y") == Path("/x/y")


def _fake_apt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, script: str) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    apt = bindir / "apt-get"
    apt.write_text("#!/bin/sh\n" + script)
    apt.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")


def test_fetch_kernel_downloads_with_apt_get(kernel_deb: tuple[Path, bytes, bytes], tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    deb, base, _ = kernel_deb
    _fake_apt(tmp_path, monkeypatch, f'[ "$#" -ge 2 ] || exit 9\ncp "{deb}" .\n')
    m = fetch_kernel("linux-image-6.1.0-9-test", tmp_path / "c")
    assert m["source"] == "apt-get download" and m["deb"] == deb.name
    assert (tmp_path / "c" / "linux-image-6.1.0-9-test" / deb.name).is_file()
    assert (Path(m["dir"]) / "vmlinux.btf").read_bytes() == base


def test_fetch_kernel_package_not_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_apt(tmp_path, monkeypatch, 'echo "E: Unable to locate package $3$4$5" >&2\nexit 100\n')
    r = CliRunner().invoke(main, ["fetch-kernel", "linux-image-nope", "--cache", str(tmp_path / "c")])
    assert r.exit_code == 2
    err = r.stderr.strip().splitlines()[-1]  # the lines before are progress messages
    assert err.startswith("btfspec: apt-get download linux-image-nope failed: E: Unable to locate package")
    assert "apt-get update" in err


def test_fetch_kernel_without_apt_get(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_which = shutil.which
    monkeypatch.setattr(kernels.shutil, "which", lambda n: None if n == "apt-get" else real_which(n))
    with pytest.raises(InputError, match="apt-get not found: cannot download linux-image-x"):
        fetch_kernel("linux-image-x", tmp_path)
    with pytest.raises(InputError, match="neither a Debian package name nor an existing .deb"):
        fetch_kernel("-oAPT::X=1", tmp_path)


@needs_tools
def test_fetch_kernel_no_btf_in_image(elf_obj: Path, tmp_path: Path) -> None:
    vmlinux = elf_with(elf_obj, tmp_path, "vmlinux", None)
    deb = make_deb(tmp_path / "k.deb", "linux-image-nobtf", {"boot/vmlinuz-1": bzimage(COMPRESS["xz"](vmlinux))})
    r = CliRunner().invoke(main, ["fetch-kernel", str(deb), "--cache", str(tmp_path / "c")])
    assert r.exit_code == 2
    assert "vmlinux has no .BTF section" in r.stderr and "CONFIG_DEBUG_INFO_BTF" in r.stderr
    assert not (tmp_path / "c" / "linux-image-nobtf" / "manifest.json").exists()
    deb2 = make_deb(tmp_path / "k2.deb", "linux-headers-x", {"usr/share/doc/x": b"doc"})
    with pytest.raises(InputError, match="no kernel image"):
        fetch_kernel(str(deb2), tmp_path / "c")
    (tmp_path / "bad.deb").write_bytes(b"not an archive")
    with pytest.raises(InputError):
        fetch_kernel(str(tmp_path / "bad.deb"), tmp_path / "c")


# --------------------------------------------------------------------------------------------------
# stats: inputs and figures
# --------------------------------------------------------------------------------------------------

def test_collect_modules(tmp_path: Path) -> None:
    (tmp_path / "d" / "sub").mkdir(parents=True)
    for name in ("a.ko", "sub/b.btf.zst", "vmlinux.btf", "c.btf.base", "notes.txt"):
        (tmp_path / "d" / name).write_bytes(b"x")
    refs, base = collect_modules(str(tmp_path / "d"))
    assert [r.name for r in refs] == ["a", "b"] and base == str(tmp_path / "d" / "vmlinux.btf")
    (tmp_path / "list.txt").write_text("# modules\nd/a.ko\n\n/abs/x.ko  # comment\n")
    refs, base = collect_modules(str(tmp_path / "list.txt"))
    assert [r.path for r in refs] == [str(tmp_path / "d" / "a.ko"), "/abs/x.ko"] and base is None
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no module files"):
        collect_modules(str(tmp_path / "empty"))
    (tmp_path / "bin").write_bytes(b"\0\1\2")
    with pytest.raises(InputError, match="not a directory or a text file"):
        collect_modules(str(tmp_path / "bin"))
    with pytest.raises(InputError, match="cannot read"):
        collect_modules(str(tmp_path / "missing"))


def test_summarize_figures() -> None:
    rows = [ModuleRow("a", "a", base_bytes=100, base_types=3, split_bytes=1000, new_split_bytes=1100),
            ModuleRow("b", "b", base_bytes=200, base_types=5, split_bytes=2000, new_split_bytes=2300),
            ModuleRow("c", "c", base_bytes=600, base_types=9, split_bytes=500, new_split_bytes=900),
            ModuleRow("d", "d", status="error", errno=-22,
                      reason="error -EINVAL (22): libbpf: unexpected reference to base type[42] of kind [12]"),
            ModuleRow("e", "e", status="error", errno=-22,
                      reason="error -EINVAL (22): libbpf: unexpected reference to base type[7] of kind [12]")]
    s = summarize(StatsRun(rows, "vmlinux", "libbpf", 2, 1.0), top=2)
    b = s["distilled_base_bytes"]
    assert (s["modules"], s["distilled"], s["failed"]) == (5, 3, 2)
    assert b["total"] == 900 and b["mean"] == 300 and b["pstdev"] == pytest.approx(statistics.pstdev([100, 200, 600]))
    assert s["split_bytes_before"]["total"] == 3500 and s["split_bytes_after"]["total"] == 4300
    assert [x["name"] for x in s["largest"]] == ["c", "b"]
    assert s["failures_by_reason"] == {"-EINVAL (22): libbpf: unexpected reference to base type[N] of kind [N]": 2}
    assert s["timing"]["seconds_per_module"] == 0.2
    assert reason_key(-22, "error -EINVAL (22): libbpf: distilled base BTF type 'device' [24] is not mapped "
                           "to base BTF id (size 736 in the distilled base; struct device is 744 in the target)") \
        == "-EINVAL (22): libbpf: distilled base BTF type '…' [N] is not mapped to base BTF id"


@needs_libbpf
def test_stats_relocation_finds_stale_copy_and_size_change(tmp_path: Path) -> None:
    base_a, split = base_and_split()
    files = {"a.btf": base_a, "mods/m.btf": split, "b.btf": vmlinux_like(nparams=2),
             "c.btf": vmlinux_like(dev_size=16)}
    for name, data in files.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(data)
    refs, _ = collect_modules(str(tmp_path / "mods"))
    a, b, c = (str(tmp_path / n) for n in ("a.btf", "b.btf", "c.btf"))
    (row,) = run_stats(refs, a, jobs=1, target=b).rows
    assert (row.status, row.split_types, row.base_types, row.copied_types) == ("ok", 2, 2, 2)
    assert (row.reloc_status, row.stale_copies, row.gone_copies) == ("ok", 1, 0)
    assert "FUNC_PROTO '(anon)', 1 params: struct ops.fn-> is" in row.stale_examples[0]
    assert row.stale_examples[0].endswith("2 params in the target")
    (same,) = run_stats(refs, a, jobs=1, target=a).rows
    assert (same.reloc_status, same.stale_copies, same.gone_copies) == ("ok", 0, 0)
    (grown,) = run_stats(refs, a, jobs=1, target=c).rows
    assert (grown.reloc_status, grown.reloc_errno) == ("error", -22)
    assert "'dev'" in grown.reloc_reason and "(size 8 in the distilled base; struct dev is 16 in the target)" \
        in grown.reloc_reason


# --------------------------------------------------------------------------------------------------
# stats over the committed real samples
# --------------------------------------------------------------------------------------------------

def _samples() -> dict[tuple[str, str], dict[str, object]]:
    data = json.loads((REAL / "samples.json").read_text())
    return {(s["kernel"], s["name"]): s for s in data["samples"]}


def test_real_samples_match_their_provenance() -> None:
    from btfspec.spec.sources import read_bytes_any

    data = json.loads((REAL / "samples.json").read_text())
    bases = {}
    for release, k in data["kernels"].items():
        raw = read_bytes_any(str(REAL / k["vmlinux"]["file"]))
        assert hashlib.sha256(raw).hexdigest() == k["vmlinux"]["raw_sha256"]
        bases[release] = Btf.from_bytes(raw)
    roles = set()
    for s in data["samples"]:
        raw = read_bytes_any(str(REAL / s["file"]))
        assert hashlib.sha256(raw).hexdigest() == s["raw_sha256"], s["file"]
        assert Btf.from_bytes(raw, base=bases[s["kernel"]]).nr_types == s["libbpf_distill"]["split_types"]
        roles.update(s["roles"])
    assert roles >= {"small", "relocates-cleanly", "size-change", "stale-copy", "counterpart"}
    total = sum(p.stat().st_size for p in REAL.rglob("*") if p.is_file())
    assert total < 6 * 2**20


@needs_libbpf
def test_stats_on_real_samples(tmp_path: Path) -> None:
    csv_path, png = tmp_path / "t.csv", tmp_path / "h.png"
    args = ["stats", str(K47), "--relocate-onto", str(K50 / "vmlinux.btf.zst"), "--csv", str(csv_path),
            "--plot", str(png), "--jobs", "2", "--json"]
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        args.remove("--plot")
        args.remove(str(png))
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    expected = _samples()
    assert (s["modules"], s["distilled"], s["failed"]) == (11, 11, 0)
    assert s["base"].endswith("vmlinux.btf.zst") and s["timing"]["jobs"] == 2
    sizes = []
    for row in s["rows"]:
        want = expected[("6.1.0-47-cloud-amd64", row["name"])]
        assert row["base_bytes"] == want["libbpf_distill"]["base_bytes"], row["name"]
        assert row["new_split_bytes"] == want["libbpf_distill"]["new_split_bytes"], row["name"]
        sizes.append(row["base_bytes"])
    b = s["distilled_base_bytes"]
    assert b["total"] == sum(sizes) and b["pstdev"] == pytest.approx(statistics.pstdev(sizes))
    rel = s["relocation"]
    assert (rel["relocated"], rel["ok"], rel["failed"]) == (11, 9, 2)
    assert {f["name"] for f in rel["failures"]} == {"act_nat", "uio_aec"}
    assert rel["failures_by_type"] == {"tc_action": 1, "device": 1}
    assert any("struct device is 744 in the target" in f["reason"] for f in rel["failures"])
    assert {x["name"] for x in rel["stale"]} == {"xfrm_user", "null_blk"} and rel["stale_copies"] == 2
    with open(csv_path) as f:
        rows = list(csv.DictReader(f))
    assert {r["name"] for r in rows} == {n for (k, n) in expected if k == "6.1.0-47-cloud-amd64"}
    assert rows[0].keys() >= {"name", "split_types", "split_bytes", "base_types", "base_bytes", "new_split_bytes",
                              "status", "reloc_status", "stale_copies"}
    if "--plot" in args:
        assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


@needs_libbpf
def test_stats_text_report_and_errors(tmp_path: Path) -> None:
    r = CliRunner().invoke(main, ["stats", str(K50), "-j", "1"])
    assert r.exit_code == 0, r.output
    out = r.stdout
    assert "stats: 5 modules" in out and "patch series v4 reported: 2667 modules, mean 1556 B" in out
    assert "distilled base: 5 modules, mean" in out and "af_key" in out  # table printed for few modules
    # no base given and none implied
    (tmp_path / "m").mkdir()
    shutil.copy(K50 / "modules" / "af_key.btf.zst", tmp_path / "m")
    r = CliRunner().invoke(main, ["stats", str(tmp_path / "m")])
    assert r.exit_code == 2 and "give --base" in r.stderr
    # an unreadable module is a row, not a crash
    (tmp_path / "m" / "broken.btf").write_bytes(b"garbage")
    r = CliRunner().invoke(main, ["stats", str(tmp_path / "m"), "--base", str(K50 / "vmlinux.btf.zst"), "--json",
                                  "-j", "2"])
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    assert s["status"] == {"ok": 1, "unreadable": 1} and s["failures"][0]["name"] == "broken"
    # an unreadable base is a clean usage error
    r = CliRunner().invoke(main, ["stats", str(tmp_path / "m"), "--base", str(tmp_path / "m" / "broken.btf")])
    assert r.exit_code == 2 and "broken.btf" in r.stderr and "Traceback" not in r.output


def test_stats_unknown_impl_is_usage_error() -> None:
    r = CliRunner().invoke(main, ["stats", str(K50), "--impl", "nope"])
    assert r.exit_code == 2

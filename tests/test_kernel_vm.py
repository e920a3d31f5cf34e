"""kernel-vm: the module loader of a Debian 6.12 kernel in QEMU as a relocation implementation.

The guest tests boot one guest for the module (about 6-20 s under TCG, depending on the machine's
load) and skip, saying why, where QEMU, a static busybox or the kernel package cannot be had. The
first tests need nothing: the carrier's ELF rewrite, the initramfs, and the outcome mapping.
"""

from __future__ import annotations

import errno
import functools
import gzip
import hashlib
import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from btfspec.oracle.impls import kernel_vm
from btfspec.oracle.impls.outcome import CRASH, ERROR, OK, TIMEOUT
from btfspec.oracle.kernels.guest.carrier import Carrier, make_template
from btfspec.oracle.kernels.guest.image import initramfs
from btfspec.oracle.kernels.guest.vm import LoadResult
from btfspec.spec.elf import read_sections
from btfspec.spec.model import Btf

# kretprobe lines as the guest's tracefs printed them for a distilled base cut short by 3 bytes.
TRACE = ("          insmod-302     [000] .....    10.490686: btf_parse_hdr: (btf_parse_base+0x70/0xf0 <- "
         "btf_parse_hdr) ret=-22\n          insmod-302     [000] .....    10.490750: btf_parse_base: "
         "(btf_module_notify+0x169/0x620 <- btf_parse_base) ret=-22\n")


def test_loader_errno_is_the_first_negative_return() -> None:
    assert kernel_vm.loader_errno(TRACE) == (-errno.EINVAL, "btf_parse_hdr")
    ok = TRACE.replace("ret=-22", "ret=0")
    assert kernel_vm.loader_errno(ok) is None


def test_initramfs_is_a_newc_archive() -> None:
    data = gzip.decompress(initramfs({"bin": (0o40755, b""), "init": (0o100755, b"#!/bin/sh\n")}))
    assert data.startswith(b"070701") and b"init\0" in data and data.rstrip(b"\0").endswith(b"TRAILER!!!")
    assert len(data) % 4 == 0


class _StubGuest:
    """Answers every load with a fixed LoadResult (the outcome mapping, without a VM)."""

    def __init__(self, result: LoadResult) -> None:
        self.result, self.boot_seconds = result, 0.0

    def start(self) -> None:
        pass

    def begin_load(self, module: bytes, timeout: float | None = None) -> Any:
        return lambda: self.result


def _stub_impl(result: LoadResult) -> Any:
    impl = object.__new__(kernel_vm.KernelVmImpl)
    impl.image = SimpleNamespace(package="pkg", carrier=SimpleNamespace(build=lambda split, base: split + base))
    impl.guest, impl.timeout, impl.vmlinux, impl.loads = _StubGuest(result), 10.0, b"vmlinux", 0
    impl._vmlinux_sha = hashlib.sha256(b"vmlinux").digest()
    return impl


@pytest.mark.parametrize(("result", "status", "err", "detail"), [
    (LoadResult(OK, 0, b"", "", "[ 1.0] BPF: Total section length too long\n", TRACE), ERROR, -22, "btf_parse_hdr"),
    (LoadResult(OK, 1, b"", "insmod: can't insert '/tmp/case.ko': Exec format error\n"), ERROR, -8, "insmod"),
    (LoadResult(OK, 0, b"", "", "", ""), ERROR, -22, "errno unknown"),
    (LoadResult(CRASH, console="Kernel panic - not syncing"), CRASH, 0, "guest died (panic, oops or QEMU exit)"),
    (LoadResult(TIMEOUT, console="..."), TIMEOUT, 0, "guest gave no answer in 10 s"),
])
def test_outcome_mapping(result: LoadResult, status: str, err: int, detail: str) -> None:
    out = _stub_impl(result).relocate(b"s", b"d", b"vmlinux")
    assert (out.status, out.errno, out.detail) == (status, err, detail)
    if status in (CRASH, TIMEOUT):
        assert out.log == result.console


def test_foreign_base_is_unsupported() -> None:
    with pytest.raises(kernel_vm.UnsupportedTarget, match="only"):
        _stub_impl(LoadResult(OK)).relocate(b"s", b"d", b"another base")


# --------------------------------------------------------------------------------------------------
# with the guest
# --------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def vm() -> Iterator[kernel_vm.KernelVmImpl]:
    from btfspec.oracle.impls.adapter import ImplUnavailable

    reason = kernel_vm.unavailable_reason()
    if reason:
        pytest.skip(f"kernel-vm unavailable: {reason}")
    try:
        impl = kernel_vm.KernelVmImpl()
        impl.start()
    except ImplUnavailable as exc:
        pytest.skip(str(exc))
    yield impl
    impl.close()


@pytest.fixture(scope="module")
def libbpf() -> Iterator[Any]:
    from btfspec.oracle.impls.adapter import ImplUnavailable, make_impl

    try:
        impl = make_impl("libbpf")
    except ImplUnavailable as exc:
        pytest.skip(str(exc))
    yield impl
    impl.close()


@pytest.fixture(scope="module")
def dummy(vm: kernel_vm.KernelVmImpl, libbpf: Any) -> tuple[bytes, bytes]:
    """The package's own dummy.ko distilled by libbpf against the guest's vmlinux: (split, base)."""
    secs = read_sections(vm.image.carrier.elf, (".BTF",))
    d = libbpf.distill(secs[".BTF"], vm.vmlinux)
    assert d.ok, d
    return d.outputs["split"], d.outputs["base"]


def test_real_module_relocation_is_libbpfs(vm: kernel_vm.KernelVmImpl, libbpf: Any,
                                           dummy: tuple[bytes, bytes]) -> None:
    got = vm.relocate(*dummy, vm.vmlinux)
    want = libbpf.relocate(*dummy, vm.vmlinux)
    assert got.ok and want.ok, (got, want)
    assert got.outputs["split"] == want.outputs["split"]


def test_loader_error_has_libbpfs_errno_and_the_kernel_log(vm: kernel_vm.KernelVmImpl, libbpf: Any,
                                                          dummy: tuple[bytes, bytes]) -> None:
    split, base = dummy
    short = vm.relocate(split, base[:-3], vm.vmlinux)
    assert short.status == ERROR and short.errno == libbpf.relocate(split, base[:-3], vm.vmlinux).errno
    assert "BPF:" in short.log and short.detail.startswith("btf_parse")
    dist = Btf.from_bytes(base)
    sid = next(i for i, t in dist.own_types() if t.kind == 4)
    dist.type(sid).name_off = next(t.name_off for _, t in dist.own_types() if t.kind == 1)  # a struct 'int'
    bad = dist.to_bytes()
    got, want = vm.relocate(split, bad, vm.vmlinux), libbpf.relocate(split, bad, vm.vmlinux)
    assert want.status == ERROR and (got.status, got.errno) == (ERROR, want.errno), (got, want)
    assert got.detail == "btf_relocate"


REAL_MODULES = 24


def test_real_debian_modules_relocate_like_libbpf(vm: kernel_vm.KernelVmImpl, libbpf: Any) -> None:
    """Modules of the guest's own package, distilled by libbpf against its vmlinux, relocated by the
    loader: byte-identical to libbpf's relocation, every one."""
    from btfspec.oracle.kernels.fetch import read_manifest

    pkg_dir = kernel_vm.guest_vmlinux(vm.image.package).parent
    manifest = read_manifest(pkg_dir)
    assert manifest is not None
    rows = sorted(manifest["modules"], key=lambda r: (r["bytes"], r["module"]))
    step = max(1, len(rows) // REAL_MODULES)
    picked = rows[::step][:REAL_MODULES]  # small to large, spread over the whole package
    compared = []
    for row in picked:
        split = (pkg_dir / row["btf"]).read_bytes()
        d = libbpf.distill(split, vm.vmlinux)
        assert d.ok, (row["module"], d)
        got = vm.relocate(d.outputs["split"], d.outputs["base"], vm.vmlinux)
        want = libbpf.relocate(d.outputs["split"], d.outputs["base"], vm.vmlinux)
        assert want.ok and (got.status, got.outputs) == (want.status, want.outputs), (row["module"], got, want)
        compared.append(row["module"])
    assert len(compared) >= 20


def test_the_loader_takes_an_empty_distilled_base(vm: kernel_vm.KernelVmImpl, libbpf: Any) -> None:
    """A module whose BTF refers to nothing in vmlinux gets an empty ``.BTF.base`` (reference E10).
    BPF_BTF_LOAD would reject it ("No type found"); the module loader relocates over it as libbpf does,
    which is why P4 does not count that rejection (btfspec.oracle.fuzz.acceptance)."""
    from btfspec.spec.builder import Builder

    s = Builder(Btf.from_bytes(vm.vmlinux))
    s.struct("btfspec_lonely", 0, [])
    d = libbpf.distill(s.to_bytes(), vm.vmlinux)
    assert d.ok and not list(Btf.from_bytes(d.outputs["base"]).own_types()), d
    got = vm.relocate(d.outputs["split"], d.outputs["base"], vm.vmlinux)
    want = libbpf.relocate(d.outputs["split"], d.outputs["base"], vm.vmlinux)
    assert want.ok and (got.status, got.outputs) == (want.status, want.outputs), (got, want)
    # the loader does parse that empty .BTF.base: with its header flags set it refuses the module
    flagged = bytearray(d.outputs["base"])
    flagged[3] = 1
    refused = vm.relocate(d.outputs["split"], bytes(flagged), vm.vmlinux)
    assert (refused.status, refused.errno) == (ERROR, -524) and "Unsupported flags" in refused.log, refused


def test_carrier_template_round_trip(vm: kernel_vm.KernelVmImpl, tmp_path: Any) -> None:
    built = vm.image.carrier.build(b"split-bytes", b"base-bytes")
    assert read_sections(built, (".BTF", ".BTF.base")) == {".BTF": b"split-bytes", ".BTF.base": b"base-bytes"}
    again = tmp_path / "again.ko"
    make_template(built, str(again))  # a built carrier is a valid module to template again
    assert Carrier.from_template(again.read_bytes(), "dummy").build(b"x", b"y")[-1:] == b"y"


def test_guest_killed_mid_case_then_next_case_works(vm: kernel_vm.KernelVmImpl, libbpf: Any,
                                                    dummy: tuple[bytes, bytes]) -> None:
    boots = vm.guest.boots
    killer = threading.Timer(1.0, vm.kill_guest)
    killer.start()
    res = vm.guest.sleep(20)  # the agent is busy with this case when QEMU is killed
    killer.join()
    assert res.status == CRASH and "btfspec:" in res.console
    got = vm.relocate(*dummy, vm.vmlinux)
    assert got.ok and got.outputs["split"] == libbpf.relocate(*dummy, vm.vmlinux).outputs["split"]
    assert vm.guest.boots == boots + 1


def test_panic_and_hang_are_crash_and_timeout(vm: kernel_vm.KernelVmImpl, dummy: tuple[bytes, bytes]) -> None:
    res = vm.guest.panic()
    assert res.status == CRASH and "Kernel panic" in res.console, res.console[-500:]
    hang = vm.guest.sleep(30, timeout=2)
    assert hang.status == TIMEOUT and "no answer from the guest in 2 s" in hang.console
    assert vm.relocate(*dummy, vm.vmlinux).ok


# --------------------------------------------------------------------------------------------------
# commands on the guest: relocate --impl kernel-vm
# --------------------------------------------------------------------------------------------------

def cli(*args: object) -> tuple[int, str, str]:
    from click.testing import CliRunner

    from btfspec.cli import main

    res = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    return res.exit_code, res.stdout, res.stderr


@pytest.fixture
def shared_guest(vm: kernel_vm.KernelVmImpl, monkeypatch: pytest.MonkeyPatch) -> kernel_vm.KernelVmImpl:
    """Commands get this module's booted guest instead of booting their own (their close is a no-op)."""
    from btfspec.oracle.impls import adapter

    make = adapter.make_impl

    @functools.wraps(make)  # keeps make_impl's signature (open_implementations reads its options from it)
    def make_impl(name: str, **kw: Any) -> Any:
        return vm if name == kernel_vm.IMPL else make(name, **kw)

    monkeypatch.setattr(vm, "close", lambda: None)
    monkeypatch.setattr(adapter, "make_impl", make_impl)
    monkeypatch.setattr(kernel_vm, "KernelVmImpl", lambda **kw: vm)
    return vm


def test_relocate_command_boots_the_guest_and_matches_libbpf(vm: kernel_vm.KernelVmImpl, libbpf: Any,
                                                             dummy: tuple[bytes, bytes], tmp_path: Path) -> None:
    split, base = dummy
    (tmp_path / "split.btf").write_bytes(split)
    (tmp_path / "base.btf").write_bytes(base)
    code, out, err = cli("relocate", tmp_path / "split.btf", "--distilled-base", tmp_path / "base.btf",
                         "--impl", "kernel-vm", "-o", tmp_path / "out.btf")  # a guest of its own
    assert code == 0, err
    assert "guest's vmlinux [kernel-vm]" in out
    assert (tmp_path / "out.btf").read_bytes() == libbpf.relocate(split, base, vm.vmlinux).outputs["split"]


def test_relocate_command_elf_output_and_errors(shared_guest: kernel_vm.KernelVmImpl, libbpf: Any,
                                                dummy: tuple[bytes, bytes], tmp_path: Path) -> None:
    split, base = dummy
    ko = tmp_path / "case.ko"
    ko.write_bytes(shared_guest.image.carrier.build(split, base))
    code, _, err = cli("relocate", ko, "--impl", "kernel-vm", "-o", tmp_path / "out.ko", "--json")
    assert code == 0, err
    secs = read_sections((tmp_path / "out.ko").read_bytes(), (".BTF", ".BTF.base"))
    assert secs == {".BTF": libbpf.relocate(split, base, shared_guest.vmlinux).outputs["split"]}
    (tmp_path / "short.btf").write_bytes(base[:-3])
    code, _, err = cli("relocate", ko, "--distilled-base", tmp_path / "short.btf", "--impl", "kernel-vm",
                       "-o", tmp_path / "x.btf")
    assert code == 1 and err.count("\n") == 1, err
    assert "[kernel-vm]: -EINVAL (22): BPF: " in err, err
    (tmp_path / "other.btf").write_bytes(base)  # a base, but not the guest's vmlinux
    code, _, err = cli("relocate", ko, "--impl", "kernel-vm", "--base", tmp_path / "other.btf", "-o", tmp_path / "x")
    assert code == 2 and "relocates onto the" in err and "only" in err, err


def test_relocate_without_base_is_a_usage_error_except_on_the_guest(tmp_path: Path) -> None:
    (tmp_path / "split.btf").write_bytes(b"")
    code, _, err = cli("relocate", tmp_path / "split.btf", "--impl", "libbpf", "-o", tmp_path / "x")
    assert code == 2 and "give --base" in err and "kernel-vm" in err, err


# --------------------------------------------------------------------------------------------------
# check --target-kernel: the guest's loader answers "will it load"
# --------------------------------------------------------------------------------------------------

REAL_61 = Path(__file__).resolve().parent.parent / "corpus" / "real" / "6.1.0-47-cloud-amd64"


def test_check_target_kernel_a_module_of_the_package_loads(shared_guest: kernel_vm.KernelVmImpl) -> None:
    from btfspec.oracle.kernels.fetch import UNPACKED

    pkg_dir = kernel_vm.guest_vmlinux(shared_guest.image.package).parent
    ko = next((pkg_dir / UNPACKED / "lib" / "modules" / shared_guest.image.release).glob(
        "kernel/drivers/net/dummy.ko*"))
    code, out, err = cli("check", ko, "--target-kernel", shared_guest.image.release, "--built-against", pkg_dir,
                         "--json")
    assert code == 0, err
    rep = json.loads(out)
    assert rep["loads"] and rep["impl"] == kernel_vm.IMPL and rep["status"] == "ok"
    assert not any("disagrees" in n for n in rep["notes"]), rep["notes"]


def test_check_target_kernel_a_6_1_module_will_not_load_on_6_12(shared_guest: kernel_vm.KernelVmImpl) -> None:
    """act_nat of Debian's 6.1.0-47 embeds struct tc_action, which grew from 208 to 224 bytes by 6.12."""
    code, out, err = cli("check", REAL_61 / "modules" / "act_nat.btf.zst", "--target-kernel",
                         shared_guest.image.package, "--built-against", REAL_61)
    assert code == 1, err
    assert ": WILL NOT LOAD" in out and "relocate [kernel-vm]" in out and "-EINVAL (22)" in out, out
    assert "kernel log: distilled base BTF type 'tc_action'" in out, out
    assert "disagrees" not in out, out  # the Python reference rejects it the same way


def _cross_lists(tmp_path: Path, pkg_dir: Path) -> tuple[Path, Path]:
    """Lists pairing the committed Debian 6.1.0-47 modules with the same modules of the guest's package."""
    from btfspec.oracle.kernels.fetch import read_manifest

    manifest = read_manifest(pkg_dir)
    assert manifest is not None
    by_name = {r["name"].replace("-", "_"): r["btf"] for r in manifest["modules"]}
    old, new = [], []
    for path in sorted((REAL_61 / "modules").glob("*.btf.zst")):
        name = path.name.removesuffix(".btf.zst").replace("-", "_")
        if name in by_name:
            old.append(str(path))
            new.append(str(pkg_dir / by_name[name]))
    (tmp_path / "old.txt").write_text("\n".join(old) + "\n")
    (tmp_path / "new.txt").write_text("\n".join(new) + "\n")
    return tmp_path / "old.txt", tmp_path / "new.txt"


def _cross(tmp_path: Path, pkg_dir: Path) -> tuple[int, dict[str, Any], str]:
    old, new = _cross_lists(tmp_path, pkg_dir)
    code, out, err = cli("stats", "--cross", old, new, "--base-old", REAL_61 / "vmlinux.btf.zst",
                         "--base-new", pkg_dir / "vmlinux.btf", "--impl", "kernel-vm", "-j", "1", "--json")
    return code, json.loads(out) if code == 0 else {}, err


def _relocate_entry(path: Path, split: bytes, dist_base: bytes, target: bytes, expect: dict[str, Any],
                    want: bytes = b"") -> None:
    from btfspec.oracle.fuzz.corpus import write_entry

    steps = [{"name": "relocate", "op": "relocate",
              "inputs": {"split": "split.btf", "distilled_base": "base.btf", "target": "target.btf"},
              "expect": {"default": expect}}]
    files = {"split.btf": split, "base.btf": dist_base, "target.btf": target} | ({"want.btf": want} if want else {})
    write_entry(path, {"name": path.name, "category": "finding", "operation": "relocate", "summary": "t",
                       "provenance": {"source": "manual"}, "steps": steps}, files)


def test_corpus_replays_relocation_entries_on_the_guest(shared_guest: kernel_vm.KernelVmImpl, libbpf: Any,
                                                        dummy: tuple[bytes, bytes], tmp_path: Path) -> None:
    """A P7 finding's entry replays on kernel-vm (the loader really runs); onto another base it skips, saying why."""
    split, dist_base = dummy
    want = libbpf.relocate(split, dist_base, shared_guest.vmlinux)
    assert want.ok
    _relocate_entry(tmp_path / "same", split, dist_base, shared_guest.vmlinux,
                    {"status": "ok", "outputs": {"split": "want.btf"}}, want.outputs["split"])
    _relocate_entry(tmp_path / "wrong", split, dist_base, shared_guest.vmlinux, {"status": "error", "errno": -2})
    _relocate_entry(tmp_path / "foreign", split, dist_base, dist_base, {"status": "ok"})  # not the guest's vmlinux
    code, out, err = cli("corpus", "run", tmp_path, "--impl", "kernel-vm", "--json")
    assert code == 1, err  # the entry expecting -ENOENT fails: the guest's loader answered
    got = {r["entry"]: r for r in json.loads(out)["results"]}
    assert got["same"]["status"] == "pass" and got["wrong"]["status"] == "fail", got
    assert got["foreign"]["status"] == "skip" and "only" in got["foreign"]["reason"], got["foreign"]


def test_stats_cross_on_the_guest_6_1_modules_onto_6_12(shared_guest: kernel_vm.KernelVmImpl,
                                                        tmp_path: Path) -> None:
    """Debian 6.1 builds distilled against their vmlinux, relocated by the 6.12 loader: as libbpf does."""
    code, rep, err = _cross(tmp_path, kernel_vm.guest_vmlinux(shared_guest.image.package).parent)
    assert code == 0, err
    assert rep["impl"] == kernel_vm.IMPL and rep["modules"] >= 10 and rep["relocated"] == rep["modules"], rep["errors"]
    assert rep["loader_differs"] == [], rep["loader_differs"]
    assert rep["failed"] >= 1 and "size-changed: STRUCT tc_action" in rep["failed_by_type"]
    assert rep["relocation_ok"] >= 1


def test_stats_cross_reports_a_seeded_loader_difference(libbpf: Any, monkeypatch: pytest.MonkeyPatch,
                                                        tmp_path: Path) -> None:
    vmlinux_path = kernel_vm.guest_vmlinux()
    if not (vmlinux_path.parent / "manifest.json").is_file():
        pytest.skip(f"the guest's kernel package is not in the cache ({vmlinux_path.parent})")
    seeded = _SeededLoader(libbpf, vmlinux_path.read_bytes(), True)
    monkeypatch.setattr(kernel_vm, "KernelVmImpl", lambda **kw: seeded)
    code, rep, err = _cross(tmp_path, vmlinux_path.parent)
    assert code == 0, err
    ok = rep["relocation_ok"]
    assert ok >= 1 and len(rep["loader_differs"]) == ok, rep["loader_differs"]
    assert all(d["difference"].startswith("output split") for d in rep["loader_differs"])


def test_stats_without_cross_refuses_kernel_vm(tmp_path: Path) -> None:
    code, _, err = cli("stats", tmp_path, "--impl", "kernel-vm")
    assert code == 2 and "--cross" in err, err


def test_check_target_and_target_kernel_exclude_each_other(tmp_path: Path) -> None:
    (tmp_path / "m.btf").write_bytes(b"")
    code, _, err = cli("check", tmp_path / "m.btf", "--target", tmp_path / "m.btf", "--target-kernel", "6.12")
    assert code == 2 and "not both" in err, err


# --------------------------------------------------------------------------------------------------
# P7 (oracle/fuzz/guest_loader.py): tested on a seeded loader bug, without a guest
# --------------------------------------------------------------------------------------------------

class _SeededLoader:
    """Stands in for kernel-vm: libbpf's relocation, with the last output byte flipped when ``bug``."""

    name = "kernel-vm"
    capabilities = frozenset({kernel_vm.RELOCATE_GUEST})

    def __init__(self, lib: Any, vmlinux: bytes, bug: bool) -> None:
        self.lib, self.vmlinux, self.bug = lib, vmlinux, bug

    def targets(self, base: bytes) -> bool:
        return base == self.vmlinux

    def close(self) -> None:
        pass

    def relocate(self, split: bytes, distilled_base: bytes, base: bytes, *, timeout: float | None = None) -> Any:
        out = self.lib.relocate(split, distilled_base, base)
        if self.bug and out.ok:
            blob = out.outputs["split"]
            return replace(out, outputs={"split": blob[:-1] + bytes([blob[-1] ^ 1])}, impl=self.name)
        return replace(out, impl=self.name)


def _some_vmlinux() -> bytes:
    for path in (kernel_vm.guest_vmlinux(), Path("/sys/kernel/btf/vmlinux")):
        try:
            return path.read_bytes()
        except OSError:
            continue
    pytest.skip("no vmlinux BTF: neither the guest package in the cache nor /sys/kernel/btf/vmlinux")


def test_p7_flags_a_seeded_loader_bug_and_not_a_faithful_loader(libbpf: Any) -> None:
    from btfspec.oracle.fuzz.guest_loader import PROPERTY
    from btfspec.oracle.fuzz.property import Context, PropertyFailure

    vmlinux = _some_vmlinux()
    prop = PROPERTY
    faithful = Context({"libbpf": libbpf, "kernel-vm": _SeededLoader(libbpf, vmlinux, False)})
    buggy = Context({"libbpf": libbpf, "kernel-vm": _SeededLoader(libbpf, vmlinux, True)})
    flagged: list[str] = []

    @settings(max_examples=12, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(prop.strategy(faithful))
    def run(case: Any) -> None:
        prop.check(case, faithful)  # never raises: the loader is libbpf itself
        try:
            prop.check(case, buggy)
        except PropertyFailure as exc:
            flagged.append(exc.finding.first_difference)

    run()
    assert flagged and all(f.startswith("relocate: output split differs") for f in flagged), flagged


def test_guest_relocations_count_in_the_campaigns_throughput() -> None:
    """P7 sends a case to the guest and works while it loads (begin_relocate): the call still counts."""
    from btfspec.oracle.fuzz.campaign.slot import _Timed

    class TwoHalves:
        name, capabilities = "kernel-vm", frozenset({kernel_vm.RELOCATE_GUEST})

        def begin_relocate(self, split: bytes, dist_base: bytes, base: bytes, **kw: Any) -> Any:
            return lambda: "answer"

    stats: dict[str, list[float]] = {}
    timed = _Timed(TwoHalves(), stats)  # type: ignore[arg-type]
    finish = timed.begin_relocate(b"s", b"d", b"b")
    assert stats == {}  # counted when the answer comes
    assert finish() == "answer" and stats["kernel-vm relocate"][0] == 1

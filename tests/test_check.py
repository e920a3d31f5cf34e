"""Tests for ``btfspec check`` (oracle.kernels.check) and the cross-kernel regression
(oracle.kernels.cross, ``stats --cross``).

Real data: the committed Debian 6.1 samples in corpus/real (-47 modules, both vmlinux BTFs, -50 builds).
Synthetic: small bases built here, and a gcc-built module object carrying .BTF, .BTF.base and .BTF_ids.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from btfspec.cli import main
from btfspec.oracle.impls import reference
from btfspec.oracle.kernels.check import Target, check_module, copy_start
from btfspec.oracle.kernels.cross import BOTH, DIFFERENT, EQUIVALENT, FAILED, OWN, cross_report, format_cross
from btfspec.oracle.kernels.unmapped import AMBIGUOUS, ENCODING_CHANGED, MISSING, SIZE_CHANGED, analyse_mapping
from btfspec.spec.builder import Builder
from btfspec.spec.elf import read_sections, write_sections
from btfspec.spec.kinds import INT_SIGNED
from btfspec.spec.model import Btf

REAL = Path(__file__).resolve().parent.parent / "corpus" / "real"
K47, K50 = REAL / "6.1.0-47-cloud-amd64", REAL / "6.1.0-50-cloud-amd64"
HAVE_CC = shutil.which("gcc") is not None and shutil.which("objcopy") is not None


def cli(*args: object) -> tuple[int, str, str]:
    res = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    return res.exit_code, res.stdout, res.stderr


def real(name: str) -> Path:
    return K47 / "modules" / f"{name}.btf.zst"


# --------------------------------------------------------------------------------------------------
# the committed real samples
# --------------------------------------------------------------------------------------------------

def test_real_module_that_relocates_loads() -> None:
    code, out, err = cli("check", real("af_key"), "--target", K50, "--built-against", K47)
    assert code == 0, err
    assert ": LOADS" in out and "every distilled base type maps onto the target" in out


def _libbpf_reason() -> str | None:
    from btfspec.oracle.impls.libbpf import unavailable_reason

    return unavailable_reason()


@pytest.mark.parametrize("impl", ["python", pytest.param("libbpf", marks=pytest.mark.skipif(
    _libbpf_reason() is not None, reason=f"libbpf unusable: {_libbpf_reason()}"))])
def test_real_struct_size_change_will_not_load(impl: str) -> None:
    code, out, _ = cli("check", real("act_nat"), "--target", K50, "--built-against", K47, "--impl", impl)
    assert code == 1
    assert f"relocate [{impl}], which stops at the first failure: relocation failed [{impl}]: -EINVAL (22)" in out
    assert "WILL NOT LOAD" in out
    assert "struct tc_action is embedded by value in the module and its size changed from 208 to 224 bytes" in out
    assert "affects: struct tcf_nat" in out


def test_real_stale_copy_is_named_with_its_first_difference() -> None:
    code, out, _ = cli("check", real("xfrm_user"), "--target", K50, "--built-against", K47)
    assert code == 1
    assert "LOADS, WITH STALE COPIES" in out
    assert "func km_migrate" in out and "FUNC_PROTO" in out
    assert "first difference:" in out and "7 params vs 8" in out
    assert "used by: func xfrm_send_migrate" in out


def test_real_json_report() -> None:
    code, out, _ = cli("check", real("uio_aec"), "--target", K50, "--built-against", K47, "--json")
    assert code == 1
    rep = json.loads(out)
    assert rep["status"] == "fails" and rep["loads"] is False and rep["exit_status"] == 1
    assert rep["errno"] == -22 and rep["stage"] == "relocate"
    (p,) = rep["problems"]
    assert (p["kind"], p["name"], p["reason"], p["size"], p["embedded"]) == ("STRUCT", "device", SIZE_CHANGED,
                                                                            736, True)
    assert "744" in p["text"] and "struct uio_device" in p["affected"]
    assert not rep["has_btf_base"] and rep["built_against"].endswith("vmlinux.btf.zst")


def test_built_against_is_required_for_a_classic_split_and_bad_input_is_exit_2(tmp_path: Path) -> None:
    code, _, err = cli("check", real("dummy"), "--target", K50)
    assert code == 2 and "give --built-against" in err
    code, _, err = cli("check", tmp_path / "missing.ko", "--target", K50, "--built-against", K47)
    assert code == 2 and "cannot read" in err
    (tmp_path / "junk.ko").write_bytes(b"not btf at all")
    code, _, err = cli("check", tmp_path / "junk.ko", "--target", K50, "--built-against", K47)
    assert code == 2 and "not raw BTF or an ELF" in err
    code, _, err = cli("check", real("dummy"), "--target", tmp_path, "--built-against", K47)
    assert code == 2 and "no vmlinux.btf" in err
    # a split that does not belong to --built-against
    code, _, err = cli("check", real("dummy"), "--target", K50, "--built-against", tmp_path / "missing")
    assert code == 2


# --------------------------------------------------------------------------------------------------
# every failing type, synthetically
# --------------------------------------------------------------------------------------------------

def _base(char_enc: int, dev_size: int, gone: bool, twins: int) -> bytes:
    b = Builder()
    i = b.int("int", 4, INT_SIGNED)
    c = b.int("char", 1, char_enc)
    b.struct("dev", dev_size, [("id", i, 0, 0)])
    if not gone:
        b.struct("gone", 4, [("x", i, 0, 0)])
    for _ in range(twins):
        b.struct("amb", 8, [("a", i, 0, 0), ("b", c, 32, 0)])
    return b.to_bytes()


def _module(base: bytes) -> bytes:
    bb = Btf.from_bytes(base)
    dev, gone, amb, char = (bb.find_by_name(n)[0] for n in ("dev", "gone", "amb", "char"))
    s = Builder(bb)
    mod = s.struct("mod", 24, [("d", dev, 0, 0), ("g", s.ptr(gone), 64, 0), ("c", char, 128, 0)])
    s.func("mod_probe", s.func_proto(0, [("m", s.ptr(mod)), ("a", s.ptr(amb))]), 1)
    return s.to_bytes()


def test_analyse_mapping_lists_every_failing_type_with_reasons() -> None:
    old = _base(INT_SIGNED, 8, gone=False, twins=1)
    new = _base(0, 16, gone=True, twins=2)
    d = reference.distill(_module(old), old)
    assert d.ok
    lib = reference.relocate(d.split, d.base, new)
    assert not lib.ok and len([ln for ln in lib.log if "not mapped" in ln or "candidates" in ln]) == 1
    probs = {p.name: p for p in analyse_mapping(d.split, d.base, Target(new))}
    assert set(probs) == {"char", "dev", "gone", "amb"}
    assert probs["char"].reason == ENCODING_CHANGED and "SIGNED to (none)" in probs["char"].text
    assert probs["dev"].reason == SIZE_CHANGED and "from 8 to 16" in probs["dev"].text and probs["dev"].embedded
    assert probs["gone"].reason == MISSING and "missing from the target" in probs["gone"].text
    assert probs["amb"].reason == AMBIGUOUS and len(probs["amb"].target_ids) == 2
    assert str(probs["amb"].target_ids) in probs["amb"].text
    assert probs["dev"].affected == ["struct mod", "func mod_probe"]
    assert probs["amb"].affected == ["func mod_probe"]
    # onto its own base everything maps
    assert analyse_mapping(d.split, d.base, Target(old)) == []


@pytest.mark.skipif(_libbpf_reason() is not None, reason=f"libbpf unusable: {_libbpf_reason()}")
def test_a_module_that_hangs_libbpf_is_answered_at_once_and_its_problem_is_the_modules() -> None:
    """A cyclic modifier chain below a member hangs libbpf's relocation (Q5, corpus case E13): with
    ``--impl libbpf`` the reference predicts the hang and libbpf gets a moment, not the 10 s
    ``--timeout``; the problem is the module's BTF, not a distilled base type that fails to map."""
    import time

    case = Path(__file__).resolve().parent.parent / "corpus" / "cases" / "E13-const-cycle-hangs-relocate"
    args = ("check", case / "split.btf", "--built-against", case / "base.btf", "--target", case / "base.btf")
    start = time.monotonic()
    code, out, err = cli(*args, "--impl", "libbpf")
    assert time.monotonic() - start < 5, "libbpf was given the whole --timeout"
    assert code == 1 and "WILL NOT LOAD" in out and "did not finish (killed after" in out, (out, err)
    assert "the hang the Python reference predicts: Q5:" in out
    assert "  the module's BTF: btfspec: Q5: cyclic modifier chain" in out
    assert "distilled base type cannot be mapped" not in out and "the target: " not in out
    code, out, _ = cli(*args, "--impl", "python")
    assert code == 1 and "-ELOOP (40)" in out and "reference predicts" not in out


def test_copy_start_finds_the_copied_suffix() -> None:
    b = Builder()
    i = b.int("int", 4, INT_SIGNED)
    dev = b.struct("dev", 8, [("id", i, 0, 0)])
    arr_t = b.typedef("arr_t", b.array(i, i, 4))
    base = b.to_bytes()
    s = Builder(Btf.from_bytes(base))
    mod = s.struct("mod", 24, [("d", dev, 0, 0), ("t", arr_t, 64, 0)])
    s.func("mod_fn", s.func_proto(i, [("m", s.ptr(mod))]), 1)
    d = reference.distill(s.to_bytes(), base)
    ns = Btf.from_bytes(d.split, base=Btf.from_bytes(d.base))
    own = Btf.from_bytes(s.to_bytes(), base=Btf.from_bytes(base)).nr_types
    assert ns.nr_types == own + 2  # the typedef and the array were copied
    assert copy_start(ns) == ns.start_id + own


# --------------------------------------------------------------------------------------------------
# a module with .BTF.base and .BTF_ids (gcc-built object)
# --------------------------------------------------------------------------------------------------

_C = r'''
#define ID(sym, val) asm(".pushsection .BTF_ids,\"a\"\n.local " #sym "\n.type " #sym ", STT_OBJECT\n" \
                         ".size " #sym ", 4\n" #sym ":\n.long " #val "\n.popsection\n");
ID(__BTF_ID__struct__dev__1, {dev})
ID(__BTF_ID__struct__mod__2, {mod})
ID(__BTF_ID__func__mod_probe__3, {probe})
int module_data = 1;
'''


@pytest.fixture(scope="module")
def distilled_ko(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    if not HAVE_CC:
        pytest.skip("needs gcc and objcopy (binutils) to build the module object")
    d = tmp_path_factory.mktemp("check")
    old = _base(INT_SIGNED, 8, gone=False, twins=1)
    r = reference.distill(_module(old), old)
    dist = Btf.from_bytes(r.base)
    split = Btf.from_bytes(r.split, base=dist)
    ids = {"dev": dist.find_by_name("dev")[0], "mod": split.find_by_name("mod")[-1],
           "probe": split.find_by_name("mod_probe")[-1]}
    (d / "mod.c").write_text(_C.format(**ids))
    subprocess.run(["gcc", "-c", "-O2", str(d / "mod.c"), "-o", str(d / "mod0.o")], check=True, capture_output=True)
    write_sections(d / "mod0.o", d / "mod.ko", {".BTF": r.split, ".BTF.base": r.base})
    # the same kernel with its types reordered and one more type first: relocates, ids move
    b = Builder()
    b.struct("pad", 4, [])
    i = b.int("int", 4, INT_SIGNED)
    b.struct("amb", 8, [("a", i, 0, 0), ("b", b.int("char", 1, INT_SIGNED), 32, 0)])
    b.struct("gone", 4, [("x", i, 0, 0)])
    b.struct("dev", 8, [("id", i, 0, 0)])
    (d / "same.btf").write_bytes(b.to_bytes())
    (d / "grown.btf").write_bytes(_base(INT_SIGNED, 16, gone=False, twins=1))
    return {"dir": d, "ko": d / "mod.ko", "same": d / "same.btf", "grown": d / "grown.btf"}


def test_btf_base_module_relocates_and_btf_ids_are_remapped(distilled_ko: dict[str, Path]) -> None:
    rep = check_module(str(distilled_ko["ko"]), str(distilled_ko["same"]))
    assert rep.status == "ok" and rep.has_btf_base and rep.exit_code == 0
    target = Btf.from_bytes(distilled_ko["same"].read_bytes())
    by = {e.what: e for e in rep.btf_ids or []}
    assert by["struct dev"].new == target.find_by_name("dev")[0]
    # split ids move by the target's type count minus the distilled base's
    nr_dist = Btf.from_bytes(read_sections(distilled_ko["ko"])[".BTF.base"]).type_cnt
    assert by["struct mod"].new - by["struct mod"].old == target.type_cnt - nr_dist
    assert by["func mod_probe"].new - by["func mod_probe"].old == target.type_cnt - nr_dist
    code, out, _ = cli("check", distilled_ko["ko"], "--target", distilled_ko["same"])
    assert code == 0 and ".BTF_ids: 3 id slot(s), 3 remapped on load" in out
    assert f"struct dev: [{by['struct dev'].old}] -> [{by['struct dev'].new}]" in out


def test_btf_base_module_with_built_against_locates_the_copies_exactly(distilled_ko: dict[str, Path]) -> None:
    base = _base(INT_SIGNED, 8, gone=False, twins=1)
    old = distilled_ko["dir"] / "old.btf"
    old.write_bytes(base)
    own = Btf.from_bytes(_module(base), base=Btf.from_bytes(base)).nr_types
    rep = check_module(str(distilled_ko["ko"]), str(distilled_ko["same"]), built_against=str(old))
    assert rep.status == "ok" and rep.copies_exact and not rep.stale
    assert (rep.own_types, rep.copied_types) == (own, 0)  # every type reached is named: nothing was copied
    assert not check_module(str(distilled_ko["ko"]), str(distilled_ko["same"])).copies_exact


def test_btf_base_module_with_a_grown_struct_fails(distilled_ko: dict[str, Path]) -> None:
    code, out, _ = cli("check", distilled_ko["ko"], "--target", distilled_ko["grown"], "--impl", "python")
    assert code == 1 and "struct dev is embedded by value in the module and its size changed from 8 to 16" in out
    assert "affects: struct mod, func mod_probe" in out


def test_btf_base_module_as_target_is_refused(distilled_ko: dict[str, Path]) -> None:
    code, _, err = cli("check", distilled_ko["ko"], "--target", distilled_ko["ko"])
    assert code == 2 and "it is a module, not vmlinux" in err


# --------------------------------------------------------------------------------------------------
# cross-kernel regression
# --------------------------------------------------------------------------------------------------

def _write_set(d: Path, base: bytes, modules: dict[str, bytes]) -> Path:
    d.mkdir()
    (d / "vmlinux.btf").write_bytes(base)
    for name, blob in modules.items():
        (d / f"{name}.btf").write_bytes(blob)
    return d


def test_cross_on_a_synthetic_pair(tmp_path: Path) -> None:
    old = _base(INT_SIGNED, 8, gone=False, twins=1)
    same = _base(INT_SIGNED, 8, gone=False, twins=1)[:]  # identical kernel: the new build equals the old
    grown = _base(INT_SIGNED, 16, gone=False, twins=1)
    a = _write_set(tmp_path / "old", old, {"m1": _module(old)})
    b = _write_set(tmp_path / "new", same, {"m1": _module(same)})
    _, s = cross_report(str(a), str(b), None, None, impl="python", jobs=1)
    assert (s["modules"], s["equivalent"], s["failed"], s["different"]) == (1, 1, 0, 0)
    c = _write_set(tmp_path / "grown", grown, {"m1": _module(grown)})
    _, s = cross_report(str(a), str(c), None, None, impl="python", jobs=1)
    assert s["failed"] == 1 and s["failed_by_type"] == {"size-changed: STRUCT dev": 1}
    # the module's own struct changed in the new build: different, own types
    bb = Btf.from_bytes(same)
    m = Builder(bb)
    m.struct("mod", 32, [("d", bb.find_by_name("dev")[0], 0, 0)])
    e = _write_set(tmp_path / "changed", same, {"m1": m.to_bytes()})
    run, s = cross_report(str(a), str(e), None, None, impl="python", jobs=1)
    assert s["different"] == 1 and s["different_by_cause"][OWN] == 1
    assert run.rows[0].status == DIFFERENT and run.rows[0].first_difference


def test_cross_on_the_committed_samples() -> None:
    run, s = cross_report(str(K47), str(K50), None, None, impl="python", jobs=2)
    by = {r.name: r for r in run.rows}
    assert set(by) == {"act_nat", "af_key", "null_blk", "uio_aec", "xfrm_user"}
    assert by["null_blk"].status == EQUIVALENT
    assert by["act_nat"].status == FAILED and by["act_nat"].problem_keys == ["size-changed: STRUCT tc_action"]
    assert by["uio_aec"].problem_keys == ["size-changed: STRUCT device"]
    assert by["af_key"].status == DIFFERENT and by["af_key"].cause == OWN
    assert by["xfrm_user"].cause == BOTH and any("7 params vs 8" in d for d in by["xfrm_user"].differences)
    assert (s["relocated"], s["failed"], s["equivalent"], s["different"]) == (5, 2, 1, 2)
    text = "\n".join(format_cross(s))
    assert "relocated: 5 (3 ok, 2 failed)" in text and "size-changed: STRUCT tc_action" in text


def test_stats_cross_command_json() -> None:
    code, out, err = cli("stats", "--cross", K47, K50, "--impl", "python", "--jobs", "1", "--json")
    assert code == 0, err
    s = json.loads(out)
    assert s["modules"] == 5 and len(s["rows"]) == 5 and s["only_old"]
    code, _, err = cli("stats")
    assert code == 2 and "--cross" in err

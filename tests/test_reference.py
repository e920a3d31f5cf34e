"""btfspec.oracle.impls.reference: the Python distill/relocate against libbpf v1.6 (selftests, extra cases, fuzzing).

Expected values come from distill-relocate-behaviour.md: the VALIDATE_RAW_BTF strings of §5 (compared
with ``btfspec.spec.text.dump_raw`` of our outputs), the Appendix A hex (relocations from A.2), and the §5.9
results. Inputs are built with ``btfspec.spec.builder.Builder`` (byte-identical to libbpf's ``btf__add_*``).
Where libbpf v1.6 is loadable (``btfspec.oracle.impls.libbpf``) every hand-made case is also run through it, and a
Hypothesis differential compares return codes, output bytes and log lines on random base/split pairs.
"""

from __future__ import annotations

import re
import struct
import sys
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from btfspec.oracle.impls import libbpf_process as lp
from btfspec.oracle.impls import reference as ref
from btfspec.oracle.impls.outcome import Outcome
from btfspec.oracle.impls.quirks import Q17_DEPTH, QUIRKS
from btfspec.spec.builder import Builder
from btfspec.spec.kinds import INT_SIGNED, Kind, make_info
from btfspec.spec.model import Btf
from btfspec.spec.text import dump_raw
from btfspec.spec.validate import validate
from btfspec.spec.validate_libbpf import parse as libbpf_parse
from tests.helpers import appendix_hex, host_vmlinux, need_libbpf, optional_libbpf, raw_btf_text

EINVAL, ENOENT, ELOOP, ENOTSUP = -22, -2, -40, -95
OTHER = "big" if sys.byteorder == "little" else "little"

def dump(blob: bytes, base: bytes | None = None) -> str:
    """``btf_type_raw_dump`` text (the selftests' VALIDATE_RAW_BTF) of ``blob`` on ``base``, base
    types included: bpftool's raw format without its ``LL``/``ULL`` suffix on ENUM64 values."""
    b = Btf.from_bytes(base) if base is not None else None
    return re.sub(r"(val=-?\d+)U?LL\b", r"\1", dump_raw(Btf.from_bytes(blob, b), start_id=1))


def lines(*ls: str) -> str:
    return "".join(x + "\n" for x in ls)


# --------------------------------------------------------------------------------------------------
# libbpf v1.6 (optional)
# --------------------------------------------------------------------------------------------------

def libbpf_lines(log: str) -> list[str]:
    return [x for x in log.splitlines() if x.startswith("libbpf: ")]


def check_distill(split: bytes, base: bytes, rc: int = 0) -> ref.DistillResult:
    """Python distill returns ``rc``; libbpf (if present) agrees on rc, bytes and log."""
    r = ref.distill(split, base)
    assert r.rc == rc, r.log
    lib = optional_libbpf()
    if lib is not None:
        out = lib.distill_outcome(split, base)
        assert out.errno == r.rc, out.log
        assert out.outputs == r.outcome().outputs
        assert libbpf_lines(out.log) == r.log
    return r


def check_relocate(split: bytes, dist: bytes, base: bytes, rc: int = 0) -> ref.RelocateResult:
    """Python relocate returns ``rc``; libbpf (if present) agrees on rc, bytes and log."""
    r = ref.relocate(split, dist, base)
    assert r.rc == rc, r.log
    lib = optional_libbpf()
    if lib is not None:
        out = lib.relocate_outcome(split, dist, base)
        assert out.errno == r.rc, out.log
        assert out.outputs == r.outcome().outputs
        assert libbpf_lines(out.log) == r.log
    return r


def strict_distill(split: bytes, base: bytes, rc: int, quirk: str) -> ref.DistillResult:
    r = ref.distill(split, base, strict=True)
    assert r.rc == rc, r.log
    assert quirk in r.quirks
    assert any(x.startswith(f"btfspec: strict: {quirk} ") for x in r.log), r.log
    return r


def strict_relocate(split: bytes, dist: bytes, base: bytes, rc: int, quirk: str) -> ref.RelocateResult:
    r = ref.relocate(split, dist, base, strict=True)
    assert r.rc == rc, r.log
    assert quirk in r.quirks
    assert any(x.startswith(f"btfspec: strict: {quirk} ") for x in r.log), r.log
    return r


# --------------------------------------------------------------------------------------------------
# §5.1 distilled_base
# --------------------------------------------------------------------------------------------------

# distill-relocate-behaviour.md §5.1's VALIDATE_RAW_BTF strings
TEXT = raw_btf_text("distilled_base")
BTF1 = TEXT["btf1"]


def selftest_base() -> Builder:
    b = Builder()
    b.int("int", 4, INT_SIGNED)
    b.ptr(1)
    b.struct("s1", 8, [("f1", 2, 0, 0)])
    b.struct(None, 12, [("f1", 1, 0, 0), ("f2", 3, 32, 0)])
    b.int("unsigned int", 4, 0)
    b.union("u1", 12, [("f1", 1, 0, 0), ("f2", 2, 0, 0)])
    b.union(None, 4, [("f1", 1, 0, 0)])
    b.enum("e1", 4, [("v1", 1)])
    b.enum(None, 4, [("av1", 2)])
    b.enum64("e641", 8, [("v1", 1024)], signed=True)
    b.enum64(None, 8, [("v1", 1025)], signed=True)
    b.struct("unneeded", 4, [("f1", 1, 0, 0)])
    b.struct("embedded", 4, [("f1", 1, 0, 0)])
    b.func_proto(1, [("p1", 1)])
    b.array(1, 1, 3)
    b.struct("from_proto", 4, [("f1", 1, 0, 0)])
    b.union("u1", 4, [("f1", 1, 0, 0)])
    return b


def selftest_split(base: Btf) -> Builder:
    s = Builder(base)
    s.ptr(3)
    s.ptr(4)
    s.const(6)
    s.restrict(7)
    s.volatile(8)
    s.typedef("et", 9)
    s.const(10)
    s.ptr(11)
    s.struct("with_embedded", 4, [("f1", 13, 0, 0)])
    s.func("fn", 14, 0)
    s.typedef("arraytype", 15)
    s.func_proto(1, [("p1", 16)])
    return s


def test_selftest_distilled_base() -> None:
    b1 = selftest_base()
    base = b1.to_bytes()
    split = selftest_split(b1.btf).to_bytes()
    assert base == appendix_hex("distilled_base", "base_in")
    assert split == appendix_hex("distilled_base", "split_in")
    assert dump(base) == lines(*BTF1)
    r = check_distill(split, base)
    assert r.quirks == []
    assert r.base == appendix_hex("distilled_base", "dist_base")
    assert r.split == appendix_hex("distilled_base", "dist_split")
    assert Btf.from_bytes(r.base).type_cnt == 8
    assert dump(r.split, r.base) == lines(*TEXT["btf4_distilled_split"])
    # the id map: base ids to new ids, split ids shifted down by 18 - 8
    assert r.id_map[3] == 2 and r.id_map[4] == 20 and r.id_map[2] == 0 and r.id_map[18] == 8
    rr = check_relocate(r.split, r.base, base)
    assert rr.split == appendix_hex("distilled_base", "relocated_split")
    assert dump(rr.split, base) == lines(*BTF1, *TEXT["relocated_split"])
    # .BTF_ids remapping: distilled ids -> base ids, split ids -> shifted by 17 - 8
    assert rr.id_map[:8] == [0, 1, 3, 6, 8, 10, 13, 16]
    assert rr.id_map[8:] == list(range(18, 36))
    assert rr.quirks == []
    # strict mode finds nothing to correct here
    assert ref.distill(split, base, strict=True).outcome().outputs == r.outcome().outputs
    assert ref.relocate(r.split, r.base, base, strict=True).split == rr.split


# --------------------------------------------------------------------------------------------------
# §5.2 - §5.8
# --------------------------------------------------------------------------------------------------

def two_ints(size2: int) -> bytes:
    b = Builder()
    b.int("int", 4, INT_SIGNED)
    b.int("int", size2, INT_SIGNED)
    return b.to_bytes()


def ptr_const_split(base: bytes) -> bytes:
    s = Builder(Btf.from_bytes(base))
    s.ptr(1)
    s.const(2)
    return s.to_bytes()


def one_int() -> bytes:
    b = Builder()
    b.int("int", 4, INT_SIGNED)
    return b.to_bytes()


def test_selftest_distilled_base_multi() -> None:
    base = two_ints(8)
    split = ptr_const_split(base)
    assert (base, split) == (appendix_hex("distilled_base_multi", "base_in"),
                             appendix_hex("distilled_base_multi", "split_in"))
    r = check_distill(split, base)
    assert r.base == base == appendix_hex("distilled_base_multi", "dist_base")
    assert r.split == appendix_hex("distilled_base_multi", "dist_split")
    text = lines("[1] INT 'int' size=4 bits_offset=0 nr_bits=32 encoding=SIGNED",
                 "[2] INT 'int' size=8 bits_offset=0 nr_bits=64 encoding=SIGNED",
                 "[3] PTR '(anon)' type_id=1", "[4] CONST '(anon)' type_id=2")
    assert dump(r.split, r.base) == text
    rr = check_relocate(r.split, r.base, base)
    assert rr.split == appendix_hex("distilled_base_multi", "relocated_split")
    assert dump(rr.split, base) == text


def test_selftest_distilled_base_missing_err() -> None:
    base = two_ints(8)
    r = check_distill(ptr_const_split(base), base)
    target = one_int()
    assert target == appendix_hex("distilled_base_missing_err", "reloc_base")
    rr = check_relocate(r.split, r.base, target, EINVAL)
    assert rr.log == ["libbpf: distilled base BTF type 'int' [2] is not mapped to base BTF id"]
    assert rr.split is None and rr.outcome() == Outcome("error", EINVAL, {}, rr.log[0] + "\n", "python", "")


def test_selftest_distilled_base_multi_err() -> None:
    base = two_ints(4)
    assert base == appendix_hex("distilled_base_multi_err", "base_in")
    r = check_distill(ptr_const_split(base), base)
    assert r.base == base
    rr = check_relocate(r.split, r.base, base, EINVAL)
    assert rr.log == ["libbpf: distilled base BTF type 'int' [1], size 4 has multiple candidates of the same "
                      "size (ids [2, 1]) in base BTF"]


def test_selftest_distilled_base_multi_err2() -> None:
    base = one_int()
    s = Builder(Btf.from_bytes(base))
    s.ptr(1)
    split = s.to_bytes()
    assert split == appendix_hex("distilled_base_multi_err2", "split_in")
    r = check_distill(split, base)
    assert r.base == base and Btf.from_bytes(r.base).type_cnt == 2
    target = two_ints(4)
    assert target == appendix_hex("distilled_base_multi_err2", "reloc_base")
    check_relocate(r.split, r.base, target, EINVAL)


def test_selftest_distilled_base_embedded_err() -> None:
    b = Builder()
    b.int("int", 4, INT_SIGNED)
    b.struct("s1", 4, [("f1", 1, 0, 0)])
    base = b.to_bytes()
    s = Builder(b.btf)
    s.struct("with_embedded", 8, [("e1", 2, 0, 0)])
    split = s.to_bytes()
    assert (base, split) == (appendix_hex("distilled_base_embedded_err", "base_in"),
                             appendix_hex("distilled_base_embedded_err", "split_in"))
    r = check_distill(split, base)
    assert (r.base, r.split) == (appendix_hex("distilled_base_embedded_err", "dist_base"),
                                 appendix_hex("distilled_base_embedded_err", "dist_split"))
    assert dump(r.split, r.base) == lines(
        "[1] STRUCT 's1' size=4 vlen=0",
        "[2] STRUCT 'with_embedded' size=8 vlen=1\n\t'e1' type_id=1 bits_offset=0")
    t = Builder()
    t.int("int", 4, INT_SIGNED)
    t.struct("s1", 8, [("f1", 1, 0, 0)])
    target = t.to_bytes()
    assert target == appendix_hex("distilled_base_embedded_err", "reloc_base")
    rr = check_relocate(r.split, r.base, target, EINVAL)
    assert rr.log == ["libbpf: distilled base BTF type 's1' [1] is not mapped to base BTF id"]
    check_relocate(r.split, r.base, base)  # same size: fine


def check_myint_split(base_btf: Btf, base: bytes, int_id: int) -> None:
    """§5.7: a split typedef ``myint`` of the base's ``int`` plus a pointer to it distills to 3 types and
    relocates back onto ``base`` (the split ids follow the base's)."""
    s = Builder(base_btf)
    myint = s.typedef("myint", int_id)
    s.ptr(myint)
    r = check_distill(s.to_bytes(), base)
    assert dump(r.split, r.base) == lines("[1] INT 'int' size=4 bits_offset=0 nr_bits=32 encoding=SIGNED",
                                          "[2] TYPEDEF 'myint' type_id=1", "[3] PTR '(anon)' type_id=2")
    rr = check_relocate(r.split, r.base, base)
    assert rr.id_map == [0, int_id, base_btf.type_cnt, base_btf.type_cnt + 1]


def test_selftest_distilled_base_vmlinux_shape() -> None:
    """§5.7 offline: ``int`` behind 50 other types, as in vmlinux."""
    b = Builder()
    for i in range(50):
        b.struct(f"pad{i}", 4)
    int_id = b.int("int", 4, INT_SIGNED)
    b.int("long", 8, INT_SIGNED)
    assert (int_id, b.btf.type_cnt) == (51, 53)
    check_myint_split(b.btf, b.to_bytes(), int_id)


def test_selftest_distilled_base_vmlinux() -> None:
    """§5.7 against the host's vmlinux BTF."""
    vmlinux = host_vmlinux()
    vm = Btf.from_bytes(vmlinux)
    int_id = next(i for i in range(1, vm.type_cnt)  # early in vmlinux; cheaper than a full name index
                  if vm.type(i).kind == Kind.INT and vm.str_at(vm.type(i).name_off) == b"int")
    check_myint_split(vm, vmlinux, int_id)


def test_selftest_distilled_endianness() -> None:
    b = Builder(order=OTHER)
    b.int("int", 4, INT_SIGNED)
    base = b.to_bytes()
    s = Builder(b.btf)
    s.ptr(1)
    split = s.to_bytes()
    if OTHER == "big":
        assert (base, split) == (appendix_hex("distilled_endianness", "base_in"),
                                 appendix_hex("distilled_endianness", "split_in"))
    r = check_distill(split, base)
    if OTHER == "big":
        assert (r.base, r.split) == (appendix_hex("distilled_endianness", "dist_base"),
                                     appendix_hex("distilled_endianness", "dist_split"))
    nb = Btf.from_bytes(r.base)
    ns = Btf.from_bytes(r.split, nb)
    assert nb.order == ns.order == OTHER and nb.type_cnt == 2
    assert dump(r.split, r.base) == lines("[1] INT 'int' size=4 bits_offset=0 nr_bits=32 encoding=SIGNED",
                                          "[2] PTR '(anon)' type_id=1")
    rr = check_relocate(r.split, r.base, base)
    assert rr.split == split  # back on the original base: the input again


# --------------------------------------------------------------------------------------------------
# §5.9 extra cases
# --------------------------------------------------------------------------------------------------

def distilled(build_base, build_split) -> tuple[bytes, ref.DistillResult]:  # type: ignore[no-untyped-def]
    """Build a base and a split over it; distill (cross-checked with libbpf)."""
    b = Builder()
    build_base(b)
    base = b.to_bytes()
    s = Builder(b.btf)
    build_split(s)
    return base, check_distill(s.to_bytes(), base)


def target(build) -> bytes:  # type: ignore[no-untyped-def]
    t = Builder()
    build(t)
    return t.to_bytes()


def test_e1_fwd_and_struct_same_name() -> None:
    base, r = distilled(lambda b: (b.fwd("foo"), b.struct("foo", 4)), lambda s: s.ptr(2))
    assert dump(r.base) == lines("[1] STRUCT 'foo' size=4 vlen=0")
    rr = check_relocate(r.split, r.base, base, EINVAL)
    assert rr.log == ["libbpf: distilled base BTF type 'foo' [1], size 4 has multiple candidates of the same "
                      "size (ids [2, 1]) in base BTF"]
    assert rr.quirks == ["Q2"]
    st_ = strict_relocate(r.split, r.base, base, 0, "Q2")
    assert st_.id_map[1] == 2


def test_e2_union_fwd_kflag() -> None:
    base, r = distilled(lambda b: b.fwd("u", union=True), lambda s: s.ptr(1))
    assert dump(r.base) == lines("[1] FWD 'u' fwd_kind=union")
    plain_union = target(lambda t: (t.int("int", 4), t.union("u", 4, [("a", 1, 0, 0)])))
    struct_u = target(lambda t: (t.int("int", 4), t.struct("u", 4, [("a", 1, 0, 0)])))
    bitfield_union = target(lambda t: (t.int("int", 4), t.union("u", 4, [("a", 1, 0, 3)])))
    assert check_relocate(r.split, r.base, plain_union, EINVAL).quirks == ["Q1"]
    assert check_relocate(r.split, r.base, struct_u).quirks == ["Q1"]
    assert check_relocate(r.split, r.base, bitfield_union).quirks == []
    strict_relocate(r.split, r.base, plain_union, 0, "Q1")
    strict_relocate(r.split, r.base, struct_u, EINVAL, "Q1")
    assert ref.relocate(r.split, r.base, bitfield_union, strict=True).rc == 0


def test_e2b_struct_fwd_vs_bitfield_struct() -> None:
    base, r = distilled(lambda b: b.fwd("sf"), lambda s: s.ptr(1))
    bitfield_struct = target(lambda t: (t.int("int", 4), t.struct("sf", 4, [("a", 1, 0, 3)])))
    check_relocate(r.split, r.base, bitfield_struct, EINVAL)
    strict_relocate(r.split, r.base, bitfield_struct, 0, "Q1")


def test_e3_enum64_distils_to_sized_enum() -> None:
    base, r = distilled(lambda b: b.enum64("e", 8, [("A", 1)]), lambda s: s.ptr(1))
    assert dump(r.base) == lines("[1] ENUM 'e' encoding=UNSIGNED size=8 vlen=0")
    check_relocate(r.split, r.base, base)
    check_relocate(r.split, r.base, target(lambda t: t.enum("e", 8, [("A", 1)])))
    check_relocate(r.split, r.base, target(lambda t: t.enum("e", 4, [("A", 1)])), EINVAL)
    check_relocate(r.split, r.base, target(lambda t: t.enum64("e", 4, [("A", 1)])), EINVAL)


def test_e4_same_named_structs_use_size() -> None:
    base, r = distilled(lambda b: (b.struct("foo", 4), b.struct("foo", 8)), lambda s: s.ptr(2))
    assert dump(r.base) == lines("[1] STRUCT 'foo' size=8 vlen=0")
    assert check_relocate(r.split, r.base, base).id_map[1] == 2
    check_relocate(r.split, r.base, target(lambda t: (t.struct("foo", 12), t.struct("foo", 16))), EINVAL)
    assert check_relocate(r.split, r.base, target(lambda t: t.struct("foo", 12))).id_map[1] == 1


def e6_inputs() -> tuple[bytes, bytes]:
    b = Builder()
    b.int("int", 4, INT_SIGNED)
    b.struct("zz", 4, [("a", 1, 0, 0)])
    b.ptr(2)
    b.float("float", 4)
    b.typedef("td", 2)
    b.struct(None, 4, [("x", 3, 0, 0)])
    b.enum("aa", 4, [("A", 1)])
    b.fwd("fw", union=True)
    b.type_tag("tag", 3)
    b.const(6)
    b.volatile(4)
    b.func_proto(7, [("q", 8)])
    b.array(1, 11, 2)
    s = Builder(b.btf)
    s.typedef("zz", 13)
    s.ptr(12)
    s.ptr(10)
    s.ptr(9)
    s.ptr(5)
    s.struct("int", 8, [("float", 1, 0, 0), ("aa", 7, 32, 0)])
    return b.to_bytes(), s.to_bytes()


def test_e6_ordering_and_strings() -> None:
    base, split = e6_inputs()
    assert (base, split) == (appendix_hex("edge_E6_ordering", "base_in"),
                             appendix_hex("edge_E6_ordering", "split_in"))
    r = check_distill(split, base)
    assert (r.base, r.split) == (appendix_hex("edge_E6_ordering", "dist_base"),
                                 appendix_hex("edge_E6_ordering", "dist_split"))
    assert Btf.from_bytes(r.base).strings == b"\0int\0zz\0float\0aa\0fw\0"
    assert Btf.from_bytes(r.split, Btf.from_bytes(r.base)).strings == b"td\0x\0tag\0q\0"
    assert dump(r.split, r.base) == lines(*raw_btf_text("edge_E6_ordering")["distilled_split"])
    rr = check_relocate(r.split, r.base, base)
    assert rr.split == appendix_hex("edge_E6_ordering", "relocated")


def test_e9_disallowed_base_kinds() -> None:
    def var_base(b: Builder) -> None:
        b.int("int", 4, INT_SIGNED)
        b.var("v", 1, 1)

    b = Builder()
    var_base(b)
    s = Builder(b.btf)
    s.datasec(".data", 4, [(2, 0, 4)])
    r = check_distill(s.to_bytes(), b.to_bytes(), EINVAL)
    assert r.log == ["libbpf: unexpected reference to base type[2] of kind [14] when creating distilled base "
                     "BTF."]
    b = Builder()
    b.int("int", 4, INT_SIGNED)
    b.func_proto(1)
    b.func("f", 2)
    s = Builder(b.btf)
    s.decl_tag("tag", 3)
    check_distill(s.to_bytes(), b.to_bytes(), EINVAL)


def test_e10_no_base_references() -> None:
    base, r = distilled(lambda b: b.int("int", 4, INT_SIGNED), lambda s: s.struct("x", 0))
    assert r.base == appendix_hex("edge_E10_no_base_refs", "dist_base") and len(r.base) == 25
    assert r.split == appendix_hex("edge_E10_no_base_refs", "dist_split")
    assert r.quirks == []  # nothing reached: the empty base is harmless
    check_relocate(r.split, r.base, base)


@pytest.mark.parametrize("via, rc", [("array", EINVAL), ("typedef", EINVAL), ("const", EINVAL),
                                     ("ptr", 0), ("proto", 0)])
def test_e12_embedding_through_modifiers(via: str, rc: int) -> None:
    def split(s: Builder) -> None:
        ref_id = {"array": lambda: s.array(2, 1, 2), "typedef": lambda: s.typedef("t", 2),
                  "const": lambda: s.const(2), "ptr": lambda: s.ptr(2),
                  "proto": lambda: s.func_proto(1, [("p", 2)])}[via]()
        if via == "proto":
            s.struct("outer", 16, [("m", s.ptr(ref_id), 0, 0)])
        else:
            s.struct("outer", 16, [("m", ref_id, 0, 0)])

    base, r = distilled(lambda b: (b.int("int", 4, INT_SIGNED), b.struct("s1", 4, [("a", 1, 0, 0)])), split)
    other = target(lambda t: (t.int("int", 4, INT_SIGNED), t.struct("s1", 8, [("a", 1, 0, 0)])))
    check_relocate(r.split, r.base, other, rc)


def cyclic_split() -> tuple[bytes, bytes]:
    b = Builder()
    b.int("int", 4, INT_SIGNED)
    s = Builder(b.btf)
    n = s.btf.type_cnt
    s.const(n)  # [2] CONST -> 2
    s.struct("outer", 4, [("m", n, 0, 0)])
    s.ptr(1)
    return b.to_bytes(), s.to_bytes()


@pytest.mark.parametrize("strict", [False, True])
def test_e13_modifier_cycle_is_eloop(strict: bool) -> None:
    base, split = cyclic_split()
    r = check_distill(split, base) if not strict else ref.distill(split, base, strict=True)
    assert r.rc == 0 and r.quirks == []
    rr = ref.relocate(r.split, r.base, base, strict=strict)  # libbpf v1.6 would loop forever
    assert rr.rc == ELOOP and rr.split is None and rr.quirks == ["Q5"]
    assert "btfspec: Q5: cyclic modifier chain [2] -> [2] below member 0 of type [3]" in rr.log[-1]
    out = rr.outcome()
    assert (out.status, out.errno, out.detail, out.impl) == ("error", ELOOP, "Q5",
                                                              "python-strict" if strict else "python")


def test_q5_cycle_from_the_base() -> None:
    """A reachable cyclic base modifier is copied by distill; relocating the copy would hang."""
    b = Builder()
    b.int("int", 4, INT_SIGNED)
    b.volatile(2)
    s = Builder(b.btf)
    s.struct("s", 4, [("m", 2, 0, 0)])
    s.ptr(1)
    r = check_distill(s.to_bytes(), b.to_bytes())
    assert dump(r.split, r.base) == lines(
        "[1] INT 'int' size=4 bits_offset=0 nr_bits=32 encoding=SIGNED",
        "[2] STRUCT 's' size=4 vlen=1\n\t'm' type_id=4 bits_offset=0",
        "[3] PTR '(anon)' type_id=1",
        "[4] VOLATILE '(anon)' type_id=4")
    rr = ref.relocate(r.split, r.base, b.to_bytes())
    assert (rr.rc, rr.quirks) == (ELOOP, ["Q5"])


def test_e14_unmapped_string_is_enoent() -> None:
    d = Builder()
    d.int("int", 4, INT_SIGNED)
    extra = d.str("extra")
    dist = d.to_bytes()
    s = Builder(d.btf)
    s.typedef("extra", 1)
    split = s.to_bytes()
    rr = check_relocate(split, dist, one_int(), ENOENT)
    assert rr.log == [f"libbpf: string '' [offset {extra}] is not mapped to base BTF"]
    assert rr.quirks == ["Q10", "Q16"]
    st_ = ref.relocate(split, dist, one_int(), strict=True)
    assert st_.rc == ENOENT
    assert f"libbpf: string 'extra' [offset {extra}] is not mapped to base BTF" in st_.log


def two_foos_fail_relocation(b: Builder, quirk: str) -> None:
    """``b`` holds two base STRUCT 'foo' that libbpf v1.6 tells apart wrongly (``quirk``): relocating a
    pointer to the first onto that base fails with -EINVAL; strict mode maps it to [1]."""
    base = b.to_bytes()
    s = Builder(b.btf)
    s.ptr(1)
    r = check_distill(s.to_bytes(), base)
    rr = check_relocate(r.split, r.base, base, EINVAL)
    assert rr.quirks == [quirk]
    assert strict_relocate(r.split, r.base, base, 0, quirk).id_map[1] == 1


def test_e15_counts_by_string_offset() -> None:
    b = Builder(dedup=False)
    b.struct("foo", 4)
    b.struct("foo", 8)
    two_foos_fail_relocation(b, "Q4")


def with_empty_name(b: Builder) -> int:
    """A non-zero string offset pointing at ``""``."""
    return b.btf.append_raw_strings(b"\0")


@pytest.mark.parametrize("kind", ["struct", "enum", "fwd"])
def test_e17_empty_name_at_nonzero_offset(kind: str) -> None:
    b = Builder()
    b.int("int", 4, INT_SIGNED)
    empty = with_empty_name(b)
    {"struct": lambda: b.struct(None, 4, raw_name=empty), "enum": lambda: b.enum(None, 4, [("A", 1)], raw_name=empty),
     "fwd": lambda: b.fwd(None, raw_name=empty)}[kind]()
    base = b.to_bytes()
    s = Builder(b.btf)
    s.ptr(2)
    r = check_distill(s.to_bytes(), base)
    assert "Q3" in r.quirks
    assert dump(r.base).startswith("[1] ")
    dist = Btf.from_bytes(r.base)
    assert dist.type(1).name_off == 0  # written anonymous
    rr = check_relocate(r.split, r.base, base, EINVAL)
    assert rr.log[0].startswith("libbpf: type [1], kind [") and rr.log[0].endswith("it is anonymous")
    if kind == "fwd":
        strict_distill(s.to_bytes(), base, EINVAL, "Q8")
    else:  # strict: anonymous, so copied into the split; relocation then works
        st_ = strict_distill(s.to_bytes(), base, 0, "Q3")
        assert Btf.from_bytes(st_.base).type_cnt == 1
        assert ref.relocate(st_.split, st_.base, base, strict=True).rc == 0


def test_e18_anonymous_base_int() -> None:
    b = Builder()
    b.int(None, 4, INT_SIGNED)
    base = b.to_bytes()
    s = Builder(b.btf)
    s.ptr(1)
    split = s.to_bytes()
    r = check_distill(split, base)
    assert r.quirks == ["Q8"]
    assert dump(r.base) == lines("[1] INT '(anon)' size=4 bits_offset=0 nr_bits=32 encoding=SIGNED")
    rr = check_relocate(r.split, r.base, base, EINVAL)
    assert rr.log == ["libbpf: type [1], kind [1] is invalid for distilled base BTF; it is anonymous"]
    strict_distill(split, base, EINVAL, "Q8")


def test_e19_named_enum_of_bad_size() -> None:
    b = Builder()
    b.enum("e", 3, [("A", 1)])
    s = Builder(b.btf)
    s.ptr(1)
    r = check_distill(s.to_bytes(), b.to_bytes(), EINVAL)
    assert r.log == []  # btf__add_enum fails silently


def test_e20_reserved_info_bits_survive() -> None:
    b = Builder()
    b.int("int", 4, INT_SIGNED)
    info = make_info(Kind.PTR) | (1 << 20) | (1 << 29)
    b.add(Kind.PTR, 0, 1, info=info)
    base = b.to_bytes()
    s = Builder(b.btf)
    s.ptr(2)
    split = s.to_bytes()
    r = check_distill(split, base)
    assert r.quirks == ["Q9"]
    copy = Btf.from_bytes(r.split, Btf.from_bytes(r.base)).type(3)
    assert copy.info == info and copy.type == 1
    strict_distill(split, base, EINVAL, "Q9")


def test_e21_empty_named_base_struct_breaks_every_relocation() -> None:
    base, r = distilled(lambda b: b.int("int", 4, INT_SIGNED), lambda s: s.ptr(1))
    t = Builder()
    t.int("int", 4, INT_SIGNED)
    t.struct(None, 4, raw_name=with_empty_name(t))
    other = t.to_bytes()
    rr = check_relocate(r.split, r.base, other, EINVAL)
    assert rr.log == ["libbpf: base BTF id [2] maps to invalid distilled base BTF id [0]"]
    assert rr.quirks == ["Q3"]
    strict_relocate(r.split, r.base, other, 0, "Q3")


def e22_inputs() -> tuple[bytes, bytes]:
    b = Builder()
    b.ptr(0)
    b.struct(None, 0)
    s = Builder(b.btf)
    s.ptr(1)
    s.ptr(2)
    s.const(4)
    return b.to_bytes(), s.to_bytes()


def test_e22_empty_distilled_base() -> None:
    base, split = e22_inputs()
    r = check_distill(split, base)
    assert r.quirks == ["Q6"] and len(r.base) == 25
    assert dump(r.split, r.base) == lines("[1] PTR '(anon)' type_id=1", "[2] PTR '(anon)' type_id=2",
                                          "[3] CONST '(anon)' type_id=2")
    assert r.id_map == [0, 1, 2, 1, 2, 3]  # provisional ids of the dropped base types
    st_ = strict_distill(split, base, 0, "Q6")
    assert dump(st_.split, st_.base) == lines(
        "[1] PTR '(anon)' type_id=4", "[2] PTR '(anon)' type_id=5", "[3] CONST '(anon)' type_id=2",
        "[4] PTR '(anon)' type_id=0", "[5] STRUCT '(anon)' size=0 vlen=0")
    rr = ref.relocate(st_.split, st_.base, base, strict=True)
    assert dump(rr.split, base) == lines(
        "[1] PTR '(anon)' type_id=0", "[2] STRUCT '(anon)' size=0 vlen=0", "[3] PTR '(anon)' type_id=6",
        "[4] PTR '(anon)' type_id=7", "[5] CONST '(anon)' type_id=4", "[6] PTR '(anon)' type_id=0",
        "[7] STRUCT '(anon)' size=0 vlen=0")


# --------------------------------------------------------------------------------------------------
# the remaining quirks
# --------------------------------------------------------------------------------------------------

def test_q7_31_bit_sizes() -> None:
    b = Builder()
    b.struct("foo", 4)
    b.struct("foo", 0x80000004)
    two_foos_fail_relocation(b, "Q7")


def test_q12_fwd_type_is_an_unchecked_reference() -> None:
    b = Builder()
    b.int("int", 4, INT_SIGNED)
    b.add(Kind.FWD, b.str("f"), 1)  # FWD 'f' with type 1
    base = b.to_bytes()
    s = Builder(b.btf)
    s.ptr(2)
    split = s.to_bytes()
    r = check_distill(split, base)
    assert r.quirks == ["Q12"]
    assert dump(r.base) == lines("[1] INT 'int' size=4 bits_offset=0 nr_bits=32 encoding=SIGNED",
                                 "[2] FWD 'f' fwd_kind=struct")
    assert Btf.from_bytes(r.base).type(2).size_type == 1  # rewritten like any id
    strict_distill(split, base, EINVAL, "Q12")
    # out of range: libbpf would read past its id map; python reads 0 and shifts like a split id
    b.struct("unused", 4)
    s = Builder(b.btf)
    s.ptr(2)
    s.add(Kind.FWD, s.str("g"), 1000)
    r = ref.distill(s.to_bytes(), b.to_bytes())
    assert r.rc == 0 and "Q12" in r.quirks
    assert Btf.from_bytes(r.split, Btf.from_bytes(r.base)).type(4).size_type == 1000 - (4 - 3)


def test_q6_output_then_q12_out_of_range_return() -> None:
    """Q6 leaves a FUNC_PROTO return id past type_cnt; libbpf's parse does not check it (Q12) and its
    relocation reads id_map out of bounds (undefined: not run here); python reads 0."""
    b = Builder()
    b.ptr(0)
    b.ptr(0)
    s = Builder(b.btf)
    s.func_proto(2)
    r = check_distill(s.to_bytes(), b.to_bytes())
    assert r.quirks == ["Q6"]
    assert dump(r.split, r.base) == lines("[1] FUNC_PROTO '(anon)' ret_type_id=2 vlen=0")
    rr = ref.relocate(r.split, r.base, b.to_bytes())
    assert rr.rc == 0 and rr.quirks == ["Q12"]
    assert dump(rr.split, b.to_bytes()) == lines("[1] PTR '(anon)' type_id=0", "[2] PTR '(anon)' type_id=0",
                                                 "[3] FUNC_PROTO '(anon)' ret_type_id=0 vlen=0")
    strict_relocate(r.split, r.base, b.to_bytes(), EINVAL, "Q12")


def test_q14_relocation_keeps_the_split_byte_order() -> None:
    base, r = distilled(lambda b: b.int("int", 4, INT_SIGNED), lambda s: s.ptr(1))
    t = Builder(order=OTHER)
    t.int("int", 4, INT_SIGNED)
    other = t.to_bytes()
    rr = check_relocate(r.split, r.base, other)
    assert rr.quirks == ["Q14"] and rr.split == r.split
    strict_relocate(r.split, r.base, other, EINVAL, "Q14")


def test_q17_deep_chain_succeeds() -> None:
    depth = Q17_DEPTH + 50
    b = Builder()
    b.int("int", 4, INT_SIGNED)
    for i in range(depth):
        b.ptr(i + 1)
    base = b.to_bytes()
    s = Builder(b.btf)
    s.ptr(depth + 1)
    r = ref.distill(s.to_bytes(), base)  # libbpf may overflow its C stack here: not run
    assert r.rc == 0 and r.quirks == ["Q17"]
    assert Btf.from_bytes(r.split, Btf.from_bytes(r.base)).type_cnt == depth + 3
    assert ref.distill(s.to_bytes(), base, strict=True).outcome().outputs == r.outcome().outputs


def with_header(blob: bytes, **fields: int) -> bytes:
    """Patch native-order header fields (version, flags, hdr_len, ...)."""
    names = ("magic", "version", "flags", "hdr_len", "type_off", "type_len", "str_off", "str_len")
    fmt = "<HBBIIIII" if blob[:2] == b"\x9f\xeb" else ">HBBIIIII"
    vals = dict(zip(names, struct.unpack(fmt, blob[:24]), strict=True))
    vals.update(fields)
    return struct.pack(fmt, *vals.values()) + blob[24:]


def test_q18_lenient_header_kept_by_relocation() -> None:
    base, r = distilled(lambda b: (b.int("int", 4, INT_SIGNED), b.struct("s", 4)), lambda s: s.ptr(2))
    odd = with_header(r.split, version=7, flags=3) + b"junk"  # libbpf ignores all of it
    rr = check_relocate(odd, r.base, base)
    assert rr.quirks == ["Q18"]
    assert rr.split.endswith(b"junk") and rr.split[:4] == odd[:4]
    assert Btf.from_bytes(rr.split[:-4], Btf.from_bytes(base)).type(3).type == 2
    strict_relocate(odd, r.base, base, EINVAL, "Q18")
    # a 32-byte header with junk in the layout words: v1.6 never looks at them
    t = Btf.from_bytes(r.split, Btf.from_bytes(r.base))
    long_hdr = with_header(t.to_bytes(hdr_len=32)[:24], hdr_len=32) + b"\xff" * 8 + r.split[24:]
    rr = check_relocate(long_hdr, r.base, base)
    assert rr.split[24:32] == b"\xff" * 8 and rr.quirks == ["Q18"]


def test_parse_errors_match_libbpf() -> None:
    base, r = distilled(lambda b: b.int("int", 4, INT_SIGNED), lambda s: s.ptr(1))
    assert check_distill(r.split, b"\0" * 10, EINVAL).log == ["libbpf: BTF header not found"]
    assert check_distill(r.split, base[:-1], EINVAL).log == [f"libbpf: Invalid BTF total size: {len(base) - 1}"]
    swapped = Builder(order=OTHER)
    swapped.int("int", 4)
    blob = swapped.to_bytes()
    blob = blob[:4] + (32).to_bytes(4, OTHER) + blob[8:] + bytes(8)  # opposite-endian 32-byte header
    rr = check_distill(r.split, blob, ENOTSUP)
    assert rr.log == ["libbpf: Can't load BTF with non-native endianness due to unsupported header length 32"]
    # a dangling split reference fails the split's sanity check
    s = Builder(Btf.from_bytes(base))
    s.ptr(7)
    bad = check_distill(s.to_bytes(), base, EINVAL)
    assert bad.log == ["libbpf: btf: type [2]: invalid referenced type ID 7"]


# --------------------------------------------------------------------------------------------------
# API
# --------------------------------------------------------------------------------------------------

def test_outcome_wrappers_and_catalogue() -> None:
    base, split = e22_inputs()
    out = ref.distill_outcome(split, base)
    assert out.ok and out.impl == "python" and out.detail == "Q6" and set(out.outputs) == {"base", "split"}
    out = ref.distill_outcome(split, base, strict=True)
    assert out.impl == "python-strict" and out.detail == "Q6"
    r = ref.distill(split, base)
    rel = ref.relocate_outcome(r.split, r.base, base)
    assert rel.impl == "python" and set(rel.outputs) <= {"split"}
    assert sorted(QUIRKS, key=lambda q: int(q[1:])) == [f"Q{i}" for i in range(1, len(QUIRKS) + 1)]
    assert all(q.summary and q.trigger and q.strict for q in QUIRKS.values())


# --------------------------------------------------------------------------------------------------
# differential testing against libbpf v1.6
# --------------------------------------------------------------------------------------------------

_NAMES = ("int", "foo", "bar", "s1", "u1", "e", "x")
_BASE_KINDS = (["int"] * 4 + ["float"] + ["ptr"] * 2 + ["const", "volatile", "restrict", "typedef", "type_tag"]
               + ["array"] + ["struct"] * 4 + ["union"] * 2 + ["enum"] * 2 + ["enum64", "fwd", "fwd", "proto",
               "func", "var", "decl_tag", "odd"])
_SPLIT_KINDS = (["ptr"] * 8 + ["const", "typedef", "array", "struct", "union", "proto", "func", "enum", "int", "fwd",
                               "datasec", "decl_tag"] * 2 + ["cycle"])


@st.composite
def names(draw: st.DrawFn) -> str | None:
    """None (anonymous), "" (an empty string at a non-zero offset, rarely) or a name from a small pool."""
    r = draw(st.integers(0, 40))
    if r < 8:
        return None
    if r == 8:
        return ""
    return draw(st.sampled_from(_NAMES))


@st.composite
def type_specs(draw: st.DrawFn, tid: int, kinds: list[str]) -> dict:
    """One type as a dict (built by :func:`add_spec`); refs point at ids below ``tid``."""
    kind = draw(st.sampled_from(kinds))
    refs = st.integers(0, tid - 1)
    spec: dict = {"k": kind, "name": draw(names()), "ref": draw(refs)}
    if kind in ("int", "float"):
        spec["size"] = draw(st.sampled_from([1, 2, 4, 4, 8, 0] if kind == "int" else [4, 8]))
        spec["enc"] = draw(st.sampled_from([0, INT_SIGNED, 2, 4]))
    elif kind in ("struct", "union"):
        spec["size"] = draw(st.sampled_from([0, 4, 4, 8, 8, 12, 16, 0x80000004]))
        spec["members"] = draw(st.lists(st.tuples(names(), refs, st.sampled_from([0, 0, 0, 3])), max_size=3))
        spec["kflag"] = draw(st.sampled_from([None, None, None, 1]))
    elif kind in ("enum", "enum64"):
        spec["size"] = draw(st.sampled_from([4, 4, 8, 1, 2, 3] if kind == "enum" else [8, 8, 4]))
        spec["vals"] = draw(st.lists(st.tuples(st.sampled_from(_NAMES), st.integers(-5, 5)), max_size=2))
    elif kind == "fwd":
        spec["union"] = draw(st.booleans())
        spec["ref"] = draw(st.sampled_from([0, 0, 0, 0, 0, spec["ref"]]))  # Q12, in range
    elif kind == "proto":
        spec["params"] = draw(st.lists(st.tuples(names(), refs), max_size=2))
    elif kind == "array":
        spec["index"] = draw(refs)
    elif kind == "odd":  # a PTR with reserved info bits (Q9), now and then
        spec["bits"] = draw(st.sampled_from([1 << 20, 1 << 29, 0, 0, 0, 0, 0]))
    return spec


def add_spec(b: Builder, spec: dict, kinds: dict[int, str]) -> None:
    """Append one spec'd type to ``b``; ``kinds`` maps every id so far to its spec kind."""
    k, ref_id = spec["k"], spec["ref"]
    name = spec["name"]
    raw = None
    if name == "":
        raw = b.btf.append_raw_strings(b"\0")
        name = None
    tid = b.btf.type_cnt
    protos = [i for i, kk in kinds.items() if kk == "proto"]
    if k == "func" and not protos:
        k = "ptr"
    if k == "int":
        b.int(name, spec["size"], spec["enc"], raw_name=raw)
    elif k == "float":
        b.float(name, spec["size"], raw_name=raw)
    elif k in ("ptr", "const", "volatile", "restrict"):
        getattr(b, k)(ref_id)
    elif k == "cycle":
        b.const(tid)
    elif k in ("typedef", "type_tag"):
        getattr(b, k)(name or "t", ref_id, raw_name=raw)
    elif k == "array":
        b.array(ref_id, spec["index"], 2)
    elif k in ("struct", "union"):
        members = [(n or None, r, 8 * j, bf) for j, (n, r, bf) in enumerate(spec["members"])]
        b.composite(Kind.STRUCT if k == "struct" else Kind.UNION, name, spec["size"], members,
                    kflag=spec["kflag"], raw_name=raw)
    elif k == "enum":
        b.enum(name, spec["size"], spec["vals"], raw_name=raw)
    elif k == "enum64":
        b.enum64(name, spec["size"], spec["vals"], signed=bool(spec["vals"]) and spec["vals"][0][1] < 0,
                 raw_name=raw)
    elif k == "fwd":
        b.add(Kind.FWD, raw if raw is not None else b.str(name), ref_id, kflag=int(spec["union"]))
    elif k == "proto":
        b.func_proto(ref_id, [(n or None, r) for n, r in spec["params"]])
    elif k == "func":
        b.func(name or "f", protos[ref_id % len(protos)], raw_name=raw)
    elif k == "var":
        b.var(name or "v", ref_id, 1, raw_name=raw)
    elif k == "datasec":
        b.datasec(".data", 8, [(r, 0, 4) for r in (ref_id, spec["ref"]) if kinds.get(r) == "var"])
    elif k == "decl_tag":
        b.decl_tag(name or "tag", ref_id if ref_id else 1, -1)
    elif k == "odd":
        b.add(Kind.PTR, 0, ref_id, info=make_info(Kind.PTR) | spec["bits"])
    kinds[tid] = k


def build(specs: list[dict], *, order: str = "little", dedup: bool = True,
          base: Btf | None = None, kinds: dict[int, str] | None = None) -> bytes:
    b = Builder(base, order=order, dedup=dedup)  # type: ignore[arg-type]
    kinds = dict(kinds or {})
    for spec in specs:
        add_spec(b, spec, kinds)
    return b.to_bytes()


@st.composite
def mutated(draw: st.DrawFn, specs: list[dict]) -> list[dict]:
    """A relocation target: the base recipe with sizes, flags, names, kinds changed or types added."""
    out = [dict(s) for s in specs]
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(out) - 1))
        s = out[i]
        what = draw(st.sampled_from(["size", "flag", "name", "kind", "dup", "dup"]))
        if what == "size" and "size" in s:
            s["size"] = draw(st.sampled_from([1, 4, 8, 12, 16]))
        elif what == "flag":
            s["union"] = not s.get("union")
            s["kflag"] = draw(st.sampled_from([None, 1]))
        elif what == "name":
            s["name"] = draw(names())
        elif what == "kind" and s["k"] in ("struct", "union", "fwd", "int", "float", "enum", "enum64"):
            s["k"] = draw(st.sampled_from(["struct", "union", "fwd"] if s["k"] in ("struct", "union", "fwd")
                                          else ["int", "float", "enum", "enum64"]))
            s.setdefault("size", 4)
            s.setdefault("enc", 0)
            s.setdefault("members", [])
            s.setdefault("kflag", None)
            s.setdefault("vals", [])
            s.setdefault("union", False)
        else:
            out.append(dict(s))
    return out


@st.composite
def cases(draw: st.DrawFn) -> tuple[bytes, bytes, bytes, str]:
    """(base, split, relocation target, description) for the differential."""
    n_base = draw(st.integers(1, 12))
    base_specs = [draw(type_specs(i + 1, _BASE_KINDS)) for i in range(n_base)]
    order = draw(st.sampled_from(["little"] * 5 + [OTHER]))
    dedup = draw(st.integers(0, 5)) > 0
    kinds: dict[int, str] = {}
    base = build(base_specs, order=order, dedup=dedup)
    b = Builder(order=order, dedup=dedup)  # type: ignore[arg-type]
    for s in base_specs:
        add_spec(b, s, kinds)
    split_order = order if draw(st.integers(0, 19)) else OTHER
    split_specs = [draw(type_specs(n_base + 1 + i, _SPLIT_KINDS + _BASE_KINDS[:6]))
                   for i in range(draw(st.integers(1, 8)))]
    split = build(split_specs, order=split_order, base=Btf.from_bytes(base), kinds=kinds)
    tspecs = draw(mutated(base_specs))
    torder = split_order if draw(st.integers(0, 19)) else OTHER
    other = build(tspecs, order=torder, dedup=draw(st.integers(0, 5)) > 0)
    return base, split, other, f"base={base_specs} split={split_specs} target={tspecs}"


def may_hang(split: bytes, dist: bytes) -> bool:
    """Could libbpf's embedded marking loop forever (Q5)? A modifier chain below a split struct member
    that does not end within 10,000 steps (independent of btfspec.oracle.impls.reference). Such inputs go to the
    worker process with a time limit."""
    d = Btf.from_bytes(dist)
    if validate(split, d, rules="libbpf"):
        return False  # libbpf's parse rejects the split before relocating
    s = Btf.from_bytes(split, d)
    for _, t in s.own_types():
        if t.kind in (Kind.STRUCT, Kind.UNION):
            for e in t.elems:
                nxt, steps = e[1], 0
                while nxt and steps < 10_000:
                    c = s.type(nxt)
                    if c.kind not in (Kind.CONST, Kind.VOLATILE, Kind.RESTRICT, Kind.TYPEDEF, Kind.TYPE_TAG,
                                      Kind.ARRAY):
                        break
                    nxt, steps = c.type, steps + 1
                if steps >= 10_000:
                    return True
    return False


def same(lib_out: Outcome, py: ref.DistillResult | ref.RelocateResult, what: str) -> None:
    out = py.outcome()
    assert (lib_out.errno, lib_out.outputs) == (out.errno, out.outputs), f"{what}: {lib_out} vs {out}\n{py.log}"
    assert libbpf_lines(lib_out.log) == py.log, what


def modes_agree(py: ref.DistillResult | ref.RelocateResult, strict: ref.DistillResult | ref.RelocateResult) -> None:
    """Up to the first quirk trigger both modes run identically."""
    assert bool(py.quirks) == bool(strict.quirks)
    if not py.quirks:
        assert strict.outcome().outputs == py.outcome().outputs and strict.rc == py.rc
    elif strict.rc != py.rc or strict.outcome().outputs != py.outcome().outputs:
        assert any(x.startswith("btfspec: strict: ") for x in strict.log)


_WORKER: list[lp.LibbpfWorker] = []


def worker() -> lp.LibbpfWorker:
    """libbpf in a child process (for inputs that can crash it); closed at exit by btfspec.oracle.impls.libbpf."""
    need_libbpf()
    if not _WORKER:
        _WORKER.append(lp.LibbpfWorker(timeout=10.0))
    return _WORKER[0]


def unchecked_ids_out_of_range(blob: bytes, base: bytes) -> bool:
    """Does a FWD type or FUNC_PROTO return id (never validated, Q12) reach past type_cnt? libbpf then
    indexes its id map out of bounds: undefined behaviour (garbage or SIGSEGV)."""
    btf = libbpf_parse(blob, Btf.from_bytes(base)).btf  # as the reference parsed it (header junk ignored)
    return any(t.kind in (Kind.FWD, Kind.FUNC_PROTO) and t.size_type >= btf.type_cnt for _, t in btf.own_types())


STATS: Counter[str] = Counter()  # what the differential exercised (printed with -s)


@settings(max_examples=max(400, settings().max_examples), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(cases())
def test_differential_against_libbpf(case: tuple[bytes, bytes, bytes, str]) -> None:
    lib = need_libbpf()
    base, split, other, desc = case
    py = ref.distill(split, base)
    same(lib.distill_outcome(split, base), py, f"distill {desc}")
    modes_agree(py, ref.distill(split, base, strict=True))
    STATS.update(["distill", "distill ok" if py.ok else f"distill {py.rc}", *py.quirks])
    if not py.ok:
        return
    for name, tgt in (("original", base), ("mutated", other)):
        rr = ref.relocate(py.split, py.base, tgt)
        modes_agree(rr, ref.relocate(py.split, py.base, tgt, strict=True))
        STATS.update(rr.quirks)
        if not validate(py.split, Btf.from_bytes(py.base), rules="libbpf") \
                and unchecked_ids_out_of_range(py.split, py.base):
            # Q12 after Q6: libbpf indexes its id map out of bounds (garbage or SIGSEGV); python reads 0
            out = worker().relocate(py.split, py.base, tgt, timeout=1.0)
            assert "Q12" in rr.quirks and "Q6" in py.quirks
            STATS[f"Q12 out of range (libbpf: {out.status})"] += 1
            continue
        if may_hang(py.split, py.base):  # in the worker: a hang must be exactly python's -ELOOP (Q5)
            out = worker().relocate(py.split, py.base, tgt, timeout=1.0)
            STATS[f"maybe Q5 (libbpf: {out.status})"] += 1
            if out.status == "timeout":
                assert rr.rc == ELOOP and "Q5" in rr.quirks
                continue
        else:
            out = lib.relocate_outcome(py.split, py.base, tgt)
        assert "Q5" not in rr.quirks
        same(out, rr, f"relocate onto {name} {desc}")
        STATS[f"relocate {name} " + ("ok" if rr.ok else str(rr.rc))] += 1


@settings(max_examples=max(200, settings().max_examples), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_parse_differential_against_libbpf(data: st.DataObject) -> None:
    """Damaged blobs (btfspec.btfgen.mutate) as a base and as a split: libbpf's errno, bytes and log lines, and
    btfspec.spec.validate's verdict."""
    from btfspec.btfgen.mutate import mutated_blobs

    lib = need_libbpf()
    _, blob = data.draw(mutated_blobs())
    empty_split = Builder(Btf.from_bytes(EMPTY_BASE)).to_bytes()  # no types, no strings
    r = ref.distill(empty_split, blob)  # nothing is reached: only the base's parse matters
    same(lib.distill_outcome(empty_split, blob), r, "damaged base")
    violations = validate(blob, None, rules="libbpf")
    assert (r.rc == 0) == (not violations)
    if violations:
        assert r.rc == violations[0].errno
    # the damaged blob as a split on an empty base (ids from 1, string offsets shifted by one)
    r = ref.distill(blob, EMPTY_BASE)
    out = worker().distill(blob, EMPTY_BASE)
    if r.ok and unchecked_ids_out_of_range(blob, EMPTY_BASE):
        assert "Q12" in r.quirks and out.status in ("ok", "crash")
        STATS["Q12 out of range (libbpf: " + out.status + ")"] += 1
    else:
        same(out, r, "damaged split")
    STATS["damaged split " + ("ok" if r.ok else str(r.rc))] += 1


EMPTY_BASE = Builder().to_bytes()


ODD_SEEN: Counter[str] = Counter()


@st.composite
def odd_small_btfs(draw: st.DrawFn) -> bytes:
    """Small BTF whose records now and then carry reserved info bits (Q9), a FWD with a ``type`` or a
    FUNC_PROTO returning an id past type_cnt (Q12)."""
    b = Builder()
    n = draw(st.integers(1, 12))
    for i in range(n):
        kind = draw(st.sampled_from([Kind.INT, Kind.PTR, Kind.FWD, Kind.FUNC_PROTO]))
        reserved = draw(st.sampled_from([0, 0, 0, 1 << 16, 1 << 23, 1 << 29, 1 << 30]))
        ref = draw(st.sampled_from([0, 0, i, n + 3])) if kind != Kind.PTR else draw(st.integers(0, i))
        fixed = (32,) if kind == Kind.INT else ()
        b.add(kind, b.str(f"t{i}") if kind in (Kind.INT, Kind.FWD) else 0, 4 if kind == Kind.INT else ref,
              fixed=fixed, info=make_info(kind) | reserved)
    return b.to_bytes()


@settings(max_examples=200, deadline=None, derandomize=True)
@given(odd_small_btfs())
def test_the_looped_parse_quirk_scan_of_small_objects_agrees_with_the_vectorised_one(blob: bytes) -> None:
    """Q9/Q12's first offending type: the loop small objects take finds what the numpy scan finds."""
    p = libbpf_parse(blob)
    looped = ref._odd_types_looped(p)
    assert looped == ref._odd_types_vectorised(p)
    ODD_SEEN.update(f"{q} {'found' if i is not None else 'clean'}" for q, i in zip(("Q9", "Q12"), looped, strict=True))


def test_the_parse_quirk_scan_comparison_met_both_quirks() -> None:
    """The comparison above is not vacuous: its cases included Q9 and Q12 hits and clean objects."""
    test_the_looped_parse_quirk_scan_of_small_objects_agrees_with_the_vectorised_one()
    assert {"Q9 found", "Q9 clean", "Q12 found", "Q12 clean"} <= set(ODD_SEEN), ODD_SEEN


NAMED_SEEN: Counter[str] = Counter()


@settings(max_examples=150, deadline=None, derandomize=True)
@given(st.data())
def test_the_looped_named_base_scan_of_small_bases_agrees_with_the_vectorised_one(data: st.DataObject) -> None:
    """The keyed-name scan of a small base (a loop) finds what the numpy scan finds, for names that
    are there, names that are not, and the empty set."""
    from btfspec.btfgen.mutate import valid_btfs
    from btfspec.spec.columns import columns

    _, blob = data.draw(valid_btfs())
    btf = libbpf_parse(blob).btf
    present = sorted({s for i in range(1, btf.type_cnt) if (s := btf.str_at(btf.type(i).name_off))})
    names = set(data.draw(st.lists(st.sampled_from(present), max_size=6))) if present else set()
    names |= set(data.draw(st.lists(st.sampled_from([b"absent", b"x", b"int"]), max_size=2)))
    looped = ref._named_base_types_looped(btf, names)
    assert looped == ref._named_base_types_vectorised(btf, columns(btf), names)
    NAMED_SEEN.update(["found" if looped else "none"])


def test_the_named_base_scan_comparison_found_names_and_none() -> None:
    test_the_looped_named_base_scan_of_small_bases_agrees_with_the_vectorised_one()
    assert {"found", "none"} <= set(NAMED_SEEN), NAMED_SEEN

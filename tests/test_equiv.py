"""Semantic equivalence (btfspec.oracle.equiv.compare) and ``btfspec diff``: placement, cycles, routes to differences,
distill -> relocate round trips on the selftest corpus, real module BTF."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from btfspec.btfgen.encoder import encode_base, encode_split
from btfspec.btfgen.generate import base_split_pairs
from btfspec.btfgen.perturb import direct_split, perturbed_bases
from btfspec.cli import main
from btfspec.oracle.equiv.compare import difference_class, equivalent, identical, only_at
from btfspec.spec.builder import Builder
from btfspec.spec.kinds import INT_SIGNED
from btfspec.spec.model import Btf
from tests.helpers import open_impls

REPO = Path(__file__).resolve().parent.parent
SELFTESTS = REPO / "corpus" / "selftests"
REAL = REPO / "corpus" / "real"
K47, K50 = REAL / "6.1.0-47-cloud-amd64", REAL / "6.1.0-50-cloud-amd64"


def _base(extra: Callable[[Builder], None] | None = None) -> Btf:
    """[1] int, [2] char, [3] struct baz {int a; int b;} (size 8), [4] PTR -> baz, then ``extra``."""
    b = Builder()
    b.int("int", 4, INT_SIGNED)
    b.int("char", 1)
    b.struct("baz", 8, [("a", 1, 0, 0), ("b", 1, 32, 0)])
    b.ptr(3)
    if extra is not None:
        extra(b)
    return Btf.from_bytes(b.to_bytes())


def _split(base: Btf, build: Callable[[Builder], object]) -> Btf:
    b = Builder(base)
    build(b)
    return Btf.from_bytes(b.to_bytes(), base=base)


def _foo(b: Builder, *, bar_off: int = 64, ptr: int = 4) -> None:
    """struct foo { int x; struct baz *bar; } (the pointer given), then a FUNC using it."""
    s = b.struct("foo", 16, [("x", 1, 0, 0), ("bar", ptr, bar_off, 0)])
    p = b.ptr(s)
    proto = b.func_proto(1, [("f", p)])
    b.func("use_foo", proto, 1)


# --------------------------------------------------------------------------------------------------
# basics
# --------------------------------------------------------------------------------------------------

def test_identical_split_is_equivalent() -> None:
    base = _base()
    a, b = _split(base, _foo), _split(base, _foo)
    res = equivalent(a, b)
    assert res.equal and res.first_difference is None and res.differences == [] and res.count == 0
    assert res.mapping == {i: i for i in range(a.start_id, a.type_cnt)}
    assert difference_class(res) == "equal"
    assert identical(a) == res  # the shortcut for the same bytes gives the comparison's verdict


def test_reordered_ids_are_equivalent() -> None:
    base = _base()

    def reordered(b: Builder) -> None:  # the FUNC and its prototype first, struct foo last
        n = b.btf.type_cnt  # ids: n FUNC_PROTO, n+1 FUNC, n+2 PTR -> n+3, n+3 struct foo
        proto = b.func_proto(1, [("f", n + 2)])
        b.func("use_foo", proto, 1)
        b.ptr(n + 3)
        b.struct("foo", 16, [("x", 1, 0, 0), ("bar", 4, 64, 0)])

    a, b = _split(base, _foo), _split(base, reordered)
    assert a.raw != b.raw
    res = equivalent(a, b)
    assert res.equal, res.differences
    s = a.start_id
    assert res.mapping == {s: s + 3, s + 1: s + 2, s + 2: s, s + 3: s + 1}


def test_string_order_and_offsets_do_not_matter() -> None:
    base = _base()

    def shuffled(b: Builder) -> None:
        for name in ("use_foo", "unused", "f", "bar", "x", "foo"):
            b.str(name)
        _foo(b)

    a, b = _split(base, _foo), _split(base, shuffled)
    assert a.strings != b.strings
    assert equivalent(a, b).equal


def test_a_type_moved_between_base_and_split_is_the_same_type() -> None:
    # A: the pointer to baz lives in the base ([4]); B: the split has its own copy of it.
    base = _base()
    a = _split(base, _foo)

    def with_copy(b: Builder) -> None:
        _foo(b, ptr=b.ptr(3))

    b = _split(base, with_copy)
    res = equivalent(a, b)
    assert res.equal, res.differences
    assert equivalent(b, a).equal
    # a copy that differs from the base type is a difference: PTR -> char instead of PTR -> baz
    c = _split(base, lambda bb: _foo(bb, ptr=bb.ptr(2)))
    res = equivalent(a, c)
    assert not res.equal
    assert res.first_difference == ("split type [5] STRUCT 'foo' (B: split [6]) member 'bar' -> PTR -> base [3] "
                                    "STRUCT 'baz' (B: base [2] INT 'char') kind STRUCT vs INT"), res.first_difference


def test_named_base_types_compare_by_name_and_size_placed_ones_fully() -> None:
    # struct baz with other members (same name and size) in B's base: the kernel's type, equal
    other = _base_with_baz(members=[("c", 2, 0, 0)], size=8)
    a, b = _split(_base(), _foo), _split(other, _foo)
    assert equivalent(a, b).equal
    # ... but a different size is a difference, with the route to it
    bigger = _base_with_baz(members=[("a", 1, 0, 0), ("b", 1, 32, 0)], size=16)
    res = equivalent(a, _split(bigger, _foo))
    assert not res.equal
    assert res.first_difference == ("split type [5] STRUCT 'foo' member 'bar' -> PTR -> base [3] STRUCT 'baz' "
                                    "size 8 vs 16"), res.differences
    # in the split on one side it is compared fully: members differ
    def own_baz(b: Builder) -> None:
        s = b.struct("baz", 8, [("c", 2, 0, 0)])
        _foo(b, ptr=b.ptr(s))

    res = equivalent(a, _split(_base(), own_baz))
    assert not res.equal
    assert "STRUCT 'baz'" in res.first_difference and "2 members vs 1" in res.first_difference


def _base_with_baz(members: list[tuple[str, int, int, int]], size: int) -> Btf:
    b = Builder()
    b.int("int", 4, INT_SIGNED)
    b.int("char", 1)
    b.struct("baz", size, members)
    b.ptr(3)
    return Btf.from_bytes(b.to_bytes())


def test_list_head_cycles_terminate() -> None:
    base = _base()

    def list_head(b: Builder, order: int) -> None:
        n = b.btf.type_cnt
        if order == 0:  # struct list_head {next, prev} then the pointer
            b.struct("list_head", 16, [("next", n + 1, 0, 0), ("prev", n + 1, 64, 0)])
            b.ptr(n)
        else:  # the pointer first
            b.ptr(n + 1)
            b.struct("list_head", 16, [("next", n, 0, 0), ("prev", n, 64, 0)])
        lh = n if order == 0 else n + 1
        b.struct("node", 24, [("list", lh, 0, 0), ("v", 1, 128, 0)])

    a = _split(base, lambda b: list_head(b, 0))
    b = _split(base, lambda b: list_head(b, 1))
    assert equivalent(a, b).equal
    # an anonymous cycle without any named type (CONST -> CONST): bisimilar loops of other lengths
    one = _split(base, lambda bb: bb.const(bb.btf.type_cnt))
    two = _split(base, lambda bb: (bb.const(bb.btf.type_cnt + 1), bb.const(bb.btf.type_cnt - 1)))
    res = equivalent(one, two)
    assert res.equal, res.differences
    # and a loop that ends somewhere else is not
    vol = _split(base, lambda bb: (bb.const(bb.btf.type_cnt + 1), bb.volatile(bb.btf.type_cnt - 1)))
    assert not equivalent(one, vol).equal


def test_a_changed_member_offset_gives_the_route() -> None:
    base = _base()
    res = equivalent(_split(base, _foo), _split(base, lambda b: _foo(b, bar_off=96)))
    assert not res.equal
    assert res.first_difference == "split type [5] STRUCT 'foo' member 'bar' bit offset 64 vs 96"
    assert res.differing_pairs == {(5, 5)}
    assert difference_class(res) == "STRUCT: member '…' bit offset N vs N"


def test_enum_value_change() -> None:
    base = _base()

    def with_enum(value: int) -> Callable[[Builder], None]:
        def build(b: Builder) -> None:
            e = b.enum("state", 4, [("IDLE", 0), ("RUN", value)])
            b.var("st", e, 1)
        return build

    res = equivalent(_split(base, with_enum(1)), _split(base, with_enum(2)))
    assert not res.equal
    assert res.first_difference == "split type [5] ENUM 'state' value 'RUN' 1 vs 2"


def test_bitfield_change() -> None:
    base = _base()

    def flags(bits: int) -> Callable[[Builder], None]:
        def build(b: Builder) -> None:
            b.struct("flags", 4, [("a", 1, 0, 3), ("b", 1, 3, bits)])
        return build

    res = equivalent(_split(base, flags(4)), _split(base, flags(5)))
    assert not res.equal
    assert res.first_difference == "split type [5] STRUCT 'flags' member 'b' bitfield size 4 vs 5"


def test_prototypes_linkage_and_tags() -> None:
    base = _base()

    def proto(variadic: bool, linkage: int, attr: bool) -> Callable[[Builder], None]:
        def build(b: Builder) -> None:
            params = [("fmt", 2)] + ([(None, 0)] if variadic else [])
            p = b.func_proto(1, params)
            f = b.func("printk", p, linkage)
            b.decl_tag("tag", f, -1, attr=attr)
        return build

    ref = _split(base, proto(False, 1, False))
    assert equivalent(ref, _split(base, proto(False, 1, False))).equal
    res = equivalent(ref, _split(base, proto(True, 1, False)))
    assert "variadic False vs True" in res.first_difference
    res = equivalent(ref, _split(base, proto(False, 0, False)))
    assert "linkage global vs static" in res.first_difference
    res = equivalent(ref, _split(base, proto(False, 1, True)))
    assert "kflag (attr) 0 vs 1" in res.first_difference


def test_an_extra_type_has_no_counterpart() -> None:
    base = _base()
    a = _split(base, _foo)
    b = _split(base, lambda bb: (_foo(bb), bb.typedef("extra_t", 1)))
    res = equivalent(a, b)
    assert not res.equal and res.unmatched_b == [b.type_cnt - 1] and res.unmatched_a == []
    assert res.first_difference == "split type [9] TYPEDEF 'extra_t' of B has no counterpart in A"


def test_only_at_accepts_differences_at_or_below_the_given_types() -> None:
    # A keeps a stale copy of an anonymous struct (member 'old'); B's base has the new one ('new')
    def base_with(member: str) -> Btf:
        return _base(lambda b: b.struct(None, 4, [(member, 1, 0, 0)]))

    base = base_with("new")  # [5] the anonymous struct

    def copy_old(b: Builder) -> None:
        s = b.struct(None, 4, [("old", 1, 0, 0)])
        b.struct("user", 4, [("s", s, 0, 0)])

    a = _split(base, copy_old)
    b = _split(base, lambda bb: bb.struct("user", 4, [("s", 5, 0, 0)]))
    res = equivalent(a, b)
    assert not res.equal
    assert res.first_difference == ("split type [7] STRUCT 'user' (B: split [6]) member 's' -> split [6] STRUCT "
                                    "(anon) (B: base [5]) member #0 name 'old' vs 'new'")
    assert only_at(res, {5}) and only_at(res, a_nodes={6})
    assert not only_at(res, {3})
    # a second difference elsewhere is not excused by the stale node
    c = _split(base, lambda bb: bb.struct("user", 8, [("s", 5, 0, 0)]))
    res = equivalent(a, c)
    assert not only_at(res, {5})


def test_only_at_accepts_unmatched_types_below_a_stale_copy() -> None:
    # A's stale copy of an anonymous self-referencing struct keeps its own PTR copy ([8]); below the
    # differing pair nothing is compared, so [8] has no counterpart, and that is still "at the copy"
    base = _base(lambda b: (b.ptr(6), b.struct(None, 8, [("new", 5, 0, 0)])))  # [5] PTR -> [6]

    def copy_old(b: Builder, extra: bool = False) -> None:
        b.ptr(9)
        b.ptr(9)
        b.struct(None, 8, [("old", 8, 0, 0)])
        b.struct("user", 8, [("p", 7, 0, 0)])
        if extra:
            b.typedef("extra_t", 1)

    b = _split(base, lambda bb: bb.struct("user", 8, [("p", 5, 0, 0)]))
    res = equivalent(_split(base, copy_old), b)
    assert res.unmatched_a == [8] and res.local
    assert only_at(res, {6})
    assert not only_at(res, {3})
    res = equivalent(_split(base, lambda bb: copy_old(bb, extra=True)), b)
    assert res.unmatched_a == [8, 11]
    assert not only_at(res, {6})  # the extra typedef is not below the stale copy


# --------------------------------------------------------------------------------------------------
# distill -> relocate onto the same base is equivalent to the original
# --------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def impls():
    yield from open_impls("python", "python-strict", "libbpf")


SELFTEST_NAMES = sorted(p.name for p in SELFTESTS.iterdir() if (p / "split.btf").exists())


@pytest.mark.parametrize("name", SELFTEST_NAMES)
def test_round_trip_on_selftests(impls, name: str) -> None:
    base_blob = (SELFTESTS / name / "base.btf").read_bytes()
    split_blob = (SELFTESTS / name / "split.btf").read_bytes()
    base = Btf.from_bytes(base_blob)
    original = Btf.from_bytes(split_blob, base=base)
    ran = 0
    for impl in impls.values():
        d = impl.distill(split_blob, base_blob)
        assert d.ok, f"{impl.name}: {d.describe()}"
        r = impl.relocate(d.outputs["split"], d.outputs["base"], base_blob)
        ran += 1
        if name == "distilled_base_multi_err":  # its base has two 'int' of one size: no round trip (by design)
            assert r.status == "error" and r.errno == -22, f"{impl.name}: {r.describe()}"
            continue
        assert r.ok, f"{impl.name}: {r.describe()}"
        res = equivalent(Btf.from_bytes(r.outputs["split"], base=base), original)
        assert res.equal, f"{impl.name}: {res.differences}"
    assert ran, "no implementation available"


def test_selftest_relocation_differs_from_the_split_on_another_base() -> None:
    # distilled_base: the relocated split (libbpf's stored bytes) is equivalent to the original ...
    d = SELFTESTS / "distilled_base"
    base = Btf.from_bytes((d / "base.btf").read_bytes())
    original = Btf.from_bytes((d / "split.btf").read_bytes(), base=base)
    relocated = Btf.from_bytes((d / "relocate.split.btf").read_bytes(), base=base)
    assert relocated.raw != original.raw
    assert equivalent(relocated, original).equal
    # ... and so is the distilled split on its distilled base: the member-less named structs there stand
    # for the base's (both in a base: compared by name and size), the copies in the split are placed
    dbase = Btf.from_bytes((d / "distill.base.btf").read_bytes())
    distilled = Btf.from_bytes((d / "distill.split.btf").read_bytes(), base=dbase)
    assert distilled.nr_types > original.nr_types
    assert equivalent(distilled, original).equal
    # ... unlike the distilled split on a base whose struct of that name has another size
    other = Btf(strings=dbase.strings)
    for _, t in dbase.own_types():
        c = t.copy()
        if c.kind_name == "STRUCT":
            c.size_type += 8
        other.add_type(c)
    moved = Btf.from_bytes((d / "distill.split.btf").read_bytes(), base=Btf.from_bytes(other.to_bytes()))
    res = equivalent(moved, original)
    assert not res.equal and "size" in res.first_difference, res.differences


# --------------------------------------------------------------------------------------------------
# real module BTF (two Debian kernels): speed and a readable route
# --------------------------------------------------------------------------------------------------

def _real(path: Path, base: Btf | None = None) -> Btf:
    from btfspec.spec.sources import load_input

    return Btf.from_bytes(load_input(str(path)).btf, base=base)


def test_real_module_against_two_kernels_is_fast_and_explained() -> None:
    v47, v50 = _real(K47 / "vmlinux.btf.zst"), _real(K50 / "vmlinux.btf.zst")
    a = _real(K47 / "modules" / "act_nat.btf.zst", v47)
    b = _real(K50 / "modules" / "act_nat.btf.zst", v50)
    start = time.monotonic()
    res = equivalent(a, b)
    same = equivalent(a, _real(K47 / "modules" / "act_nat.btf.zst", v47))
    took = time.monotonic() - start
    assert same.equal
    assert not res.equal
    assert res.differences == [
        "split type [94982] STRUCT 'tcf_nat' (B: split [95075]) size 224 vs 240",
        "split type [94991] FUNC 'tcf_nat_dump' (B: split [95084]) -> FUNC_PROTO param 'a' -> PTR -> base [79715] "
        "STRUCT 'tc_action' (B: base [48091]) size 208 vs 224"]
    assert took < 1.0, f"{took:.2f} s"
    # never decoded all of vmlinux
    assert sum(t is not None for t in v47._types) < v47.nr_types // 10


# --------------------------------------------------------------------------------------------------
# btfspec diff
# --------------------------------------------------------------------------------------------------

def _write(tmp: Path, name: str, btf: Btf) -> str:
    p = tmp / name
    p.write_bytes(btf.raw or btf.to_bytes())
    return str(p)


def test_diff_exit_codes_and_output(tmp_path: Path) -> None:
    base = _base()
    pb = _write(tmp_path, "base.btf", base)
    pa = _write(tmp_path, "a.btf", _split(base, _foo))
    pr = _write(tmp_path, "reordered.btf", _split(base, lambda b: (b.str("zzz"), _foo(b))))
    pc = _write(tmp_path, "changed.btf", _split(base, lambda b: _foo(b, bar_off=96)))
    runner = CliRunner()
    got = runner.invoke(main, ["diff", pa, pr, "--base-a", pb, "--base-b", pb])
    assert got.exit_code == 0 and got.output.startswith("equivalent: "), got.output
    got = runner.invoke(main, ["diff", pa, pc, "--base-a", pb, "--base-b", pb])
    assert got.exit_code == 1
    assert got.output == "different: split type [5] STRUCT 'foo' member 'bar' bit offset 64 vs 96\n"
    got = runner.invoke(main, ["diff", pa, pc, "--base-a", pb, "--base-b", pb, "--json"])
    assert got.exit_code == 1
    doc = json.loads(got.output)
    assert doc["equal"] is False and doc["count"] == 1 and doc["first_difference"].endswith("bit offset 64 vs 96")
    assert doc["mapping"] == {}  # every split type reaches the difference
    got = runner.invoke(main, ["diff", pa, pr, "--base-a", pb, "--base-b", pb, "--json"])
    assert got.exit_code == 0 and json.loads(got.output)["mapping"] == {"5": 5, "6": 6, "7": 7, "8": 8}


def test_diff_bad_input_is_exit_2(tmp_path: Path) -> None:
    base = _base()
    pb = _write(tmp_path, "base.btf", base)
    pa = _write(tmp_path, "a.btf", _split(base, _foo))
    junk = tmp_path / "junk.btf"
    junk.write_bytes(b"\x9f\xeb\x01\x00" + b"\xff" * 20)
    runner = CliRunner()
    truncated = tmp_path / "truncated.btf"
    truncated.write_bytes((tmp_path / "a.btf").read_bytes()[:30])
    for args in (["diff", pa, str(tmp_path / "missing.btf")], ["diff", pa, str(junk)],
                 ["diff", str(truncated), pa, "--base-a", pb, "--base-b", pb]):
        got = runner.invoke(main, args)
        assert got.exit_code == 2, (args, got.output)
        assert got.output.startswith("btfspec: ") and got.output.count("\n") == 1, got.output
    got = runner.invoke(main, ["diff", pa, pa, "--base-a", pb, "--base-b", pb])
    assert got.exit_code == 0


def test_diff_real_modules_of_two_kernels() -> None:
    runner = CliRunner()
    got = runner.invoke(main, ["diff", str(K47 / "modules" / "uio_aec.btf.zst"), "--base-a",
                               str(K47 / "vmlinux.btf.zst"), str(K50 / "modules" / "uio_aec.btf.zst"),
                               "--base-b", str(K50 / "vmlinux.btf.zst")])
    assert got.exit_code == 1, got.output
    lines = got.output.splitlines()
    assert lines == ["different: split type [94985] STRUCT 'uio_device' (B: split [95078]) size 840 vs 848",
                     "  also: split type [95001] FUNC 'remove' (B: split [95094]) -> FUNC_PROTO param 'pdev' -> PTR "
                     "-> base [4797] STRUCT 'pci_dev' (B: base [17948]) size 2616 vs 2624"]


def test_diff_distilled_module_elf_against_its_original(tmp_path: Path) -> None:
    """A module ELF carrying a distilled .BTF/.BTF.base is equivalent to the split it was distilled from:
    as it is (its .BTF.base is its base) and relocated onto the full base (--base-a)."""
    if not (shutil.which("gcc") and shutil.which("objcopy")):
        pytest.skip("needs gcc and objcopy (binutils)")
    d = SELFTESTS / "distilled_base"
    src = tmp_path / "m.c"
    src.write_text("int x = 1;\n")
    obj, mod = tmp_path / "m.o", tmp_path / "m.ko"
    subprocess.run(["gcc", "-c", str(src), "-o", str(obj)], check=True, capture_output=True)
    subprocess.run(["objcopy", "--add-section", f".BTF={d / 'distill.split.btf'}", "--add-section",
                    f".BTF.base={d / 'distill.base.btf'}", str(obj), str(mod)], check=True, capture_output=True)
    runner = CliRunner()
    split, base = str(d / "split.btf"), str(d / "base.btf")
    got = runner.invoke(main, ["diff", str(mod), split, "--base-b", base])
    assert got.exit_code == 0, got.output
    got = runner.invoke(main, ["diff", str(mod), "--base-a", base, split, "--base-b", base])
    assert got.exit_code == 0, got.output


# --------------------------------------------------------------------------------------------------
# generated cases: the same module encoded against two bases that differ only in ways that keep it
# --------------------------------------------------------------------------------------------------

KEEPING = ("reorder", "strings_reordered", "add_unrelated", "remove_unrelated", "rename_unrelated_typedef")


@settings(max_examples=60, derandomize=True, database=None, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_generated_module_on_two_equivalent_bases(data) -> None:
    case = data.draw(base_split_pairs("kernel-valid", 3, 60))
    base2, p = data.draw(perturbed_bases(case, KEEPING))
    b1, b2 = Btf.from_bytes(case.base), Btf.from_bytes(base2)
    a = Btf.from_bytes(case.split, base=b1)
    b = Btf.from_bytes(direct_split(case, base2, p).data, base=b2)
    res, back = equivalent(a, b), equivalent(b, a)
    assert res.equal, (p.kind, res.differences)
    assert back.equal, (p.kind, back.differences)
    assert set(res.mapping) == set(range(a.start_id, a.type_cnt))


@settings(max_examples=60, derandomize=True, database=None, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_generated_stale_copies_differ_only_at_the_stale_nodes(data) -> None:
    case = data.draw(base_split_pairs("kernel-valid", 3, 60))
    base2, p = data.draw(perturbed_bases(case, ("stale_composite", "stale_typedef", "stale_func_proto",
                                                "stale_array")))
    assume(p.label == "stale-copy")
    b2 = Btf.from_bytes(base2)
    # the split keeps the old copies: encoded against a base that lacks the kernel part entirely
    empty = encode_base(case.universe, keys=())
    old = encode_split(case.universe, empty.btf)
    distilled_like = Btf.from_bytes(old.data, base=Btf.from_bytes(empty.data))
    direct = direct_split(case, base2, p)
    res = equivalent(distilled_like, Btf.from_bytes(direct.data, base=b2))
    stale = {i for k in p.stale_nodes for i in (direct.ids.get(k), p.base2_ids.get(k)) if i}
    assert not res.equal
    assert only_at(res, stale), (p.description, res.differences)
    assert equivalent(Btf.from_bytes(direct.data, base=b2), distilled_like).equal is False


def test_two_pointers_to_one_stale_copy_differ_only_at_it() -> None:
    """Two kernel FUNC_PROTOs alike in base1 (no parameters), each behind a module pointer; distillation copied
    them as one, and base2 added a parameter to one (P1's stale_func_proto, base2 [4]).  libbpf's relocation
    (its output and the direct encoder's, from a default campaign with seed 12) differs only at the stale copy:
    relocated [34] -> [46] stands for base2 [4], relocated [44] -> [46] for base2 [22], which still has no
    parameter.  The checker pairs relocated [34] with direct [44] (equal), and relocated [44] is then left
    without a counterpart; P1 reported that as "differs beyond the stale copies" (a libbpf group: noise).
    A type left over that is equal to one of the other side is no difference beyond the stale copy; one
    equal to none still is."""
    d = Path(__file__).parent / "data" / "equiv-duplicate-pointers"
    base2 = Btf.from_bytes((d / "base2.btf").read_bytes())
    relocated = Btf.from_bytes((d / "libbpf-relocated.split.btf").read_bytes(), base=base2)
    direct = Btf.from_bytes((d / "direct.split.btf").read_bytes(), base=base2)
    res = equivalent(relocated, direct)
    assert not res.equal and "0 params vs 1" in res.first_difference and res.unmatched_a == [44]
    assert only_at(res, {4})
    assert not only_at(res, {22})  # the unchanged prototype is not where the difference is


def test_same_named_funcs_are_not_explained_crosswise() -> None:
    """A module with two static FUNCs 'task_struct' whose anonymous FUNC_PROTOs distillation copied; base2
    added a parameter to one of those (P1's stale_func_proto).  libbpf's relocation (the files are its
    output and the direct encoder's, from a campaign) differs only at the stale copy: the FUNC that still
    has its equal must not be used to explain the other, which reported a difference beyond the stale copy."""
    d = Path(__file__).parent / "data" / "equiv-same-named-funcs"
    base2 = Btf.from_bytes((d / "base2.btf").read_bytes())
    relocated = Btf.from_bytes((d / "libbpf-relocated.split.btf").read_bytes(), base=base2)
    direct = Btf.from_bytes((d / "direct.split.btf").read_bytes(), base=base2)
    res = equivalent(relocated, direct)
    assert not res.equal and "FUNC 'task_struct'" in res.first_difference
    assert "0 params vs 1" in res.first_difference
    assert only_at(res, {15})  # base2 [15] is the FUNC_PROTO the perturbation changed
    assert not only_at(res, {10})  # the other prototype is not where the difference is

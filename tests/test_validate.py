"""btfspec.spec.validate: rule-by-rule cases, cross-checked against libbpf v1.6 and the running kernel; the CLI."""

from __future__ import annotations

import errno
import json
import re
import shutil
import struct
import subprocess
import time
from collections.abc import Callable

import pytest
from click.testing import CliRunner
from hypothesis import given, settings

from btfspec.btfgen.mutate import mutated_blobs
from btfspec.btfgen.samples import every_kind, small_split
from btfspec.cli import main
from btfspec.spec import validate_libbpf
from btfspec.spec.builder import Builder
from btfspec.spec.columns import columns
from btfspec.spec.kinds import INT_SIGNED, Kind, make_info
from btfspec.spec.model import Btf
from btfspec.spec.validate import Violation, validate
from tests.helpers import host_vmlinux, need_kernel_load, need_libbpf

Factory = Callable[[], bytes]


# --------------------------------------------------------------------------------------------------
# blob helpers
# --------------------------------------------------------------------------------------------------

def built(fn: Callable[[Builder], object], *, order: str = "little", hdr_len: int = 24) -> Factory:
    def make() -> bytes:
        b = Builder(order=order)  # type: ignore[arg-type]
        b.int("int", 4, INT_SIGNED)
        fn(b)
        return b.to_bytes(hdr_len=hdr_len)
    return make


def base_int() -> bytes:
    return built(lambda b: None)()


def patched(factory: Factory, edit: Callable[[bytearray], object]) -> Factory:
    def make() -> bytes:
        buf = bytearray(factory())
        edit(buf)
        return bytes(buf)
    return make


def put(buf: bytearray, off: int, value: int) -> None:
    struct.pack_into("<I", buf, off, value)


def raw(types: bytes, strs: bytes = b"\0", *, hdr_len: int = 24, type_off: int = 0, version: int = 1,
        flags: int = 0, between: bytes = b"", after: bytes = b"") -> bytes:
    """A little-endian blob from raw sections (``between`` sits between types and strings)."""
    str_off = type_off + len(types) + len(between)
    head = struct.pack("<HBBIIIII", 0xEB9F, version, flags, hdr_len, type_off, len(types), str_off, len(strs))
    head += b"\0" * max(0, hdr_len - 24)
    filler = hdr_len + type_off - len(head)  # a header shorter than 24 bytes overlaps the sections
    assert filler >= 0
    return head + b"\0" * filler + types + between + strs + after


def rec(kind: int, size_type: int = 0, name_off: int = 0, vlen: int = 0, kflag: int = 0, *tail: int,
        info: int | None = None) -> bytes:
    words = [name_off, make_info(kind, vlen, kflag) if info is None else info, size_type, *tail]
    return struct.pack(f"<{len(words)}I", *words)


INT4 = rec(Kind.INT, 4, 1, 0, 0, 32)  # named "a" in strings b"\0a\0"
STRS = b"\0a\0"


# --------------------------------------------------------------------------------------------------
# libbpf rules: expected verdicts, each checked against libbpf v1.6
# --------------------------------------------------------------------------------------------------

LIBBPF_CASES: list[tuple[str, Factory, str | None, int | None, int | None]] = [
    # (case, blob, first rule or None for valid, byte offset, type id)
    ("every_kind", lambda: every_kind().to_bytes(), None, None, None),
    ("big_endian", lambda: every_kind(order="big").to_bytes(), None, None, None),
    ("hdr_len_32", lambda: every_kind().to_bytes(hdr_len=32), None, None, None),
    ("short", lambda: base_int()[:23], "hdr.size", 0, None),
    ("bad_magic", lambda: b"\x9f\xec" + base_int()[2:], "hdr.magic", 0, None),
    ("swapped_hdr_len_32", lambda: every_kind(order="big").to_bytes(hdr_len=32), "hdr.hdr_len", 4, None),
    ("hdr_len_past_end", patched(base_int, lambda b: put(b, 4, len(b) + 1)), "hdr.hdr_len", 4, None),
    # Q18: a native hdr_len below 24 parses (sections are found relative to it)
    ("hdr_len_16", lambda: raw(INT4, STRS, hdr_len=16, type_off=8), None, None, None),
    ("version_flags_ignored", lambda: raw(INT4, STRS, version=7, flags=3), None, None, None),
    ("gap_and_trailing", lambda: raw(INT4, STRS, between=b"\1" * 5, after=b"junk"), None, None, None),
    ("strings_past_end", patched(base_int, lambda b: put(b, 20, 100)), "sec.range", 16, None),
    ("strings_before_types", lambda: raw(INT4, STRS, type_off=4)[:8] + struct.pack("<IIII", 4, 16, 0, 3)
     + STRS + b"\0" + INT4, "sec.layout", 8, None),
    ("unaligned_types", lambda: raw(INT4, STRS, type_off=2), "sec.align", 8, None),
    ("unterminated_strings", lambda: raw(INT4, b"\0a"), "str.unterminated", 24 + 16 + 1, None),
    ("strings_not_starting_empty", lambda: raw(rec(Kind.INT, 4, 0, 0, 0, 32), b"a\0"), "str.first_nul",
     40, None),
    ("no_strings", lambda: raw(rec(Kind.INT, 4, 0, 0, 0, 32), b""), "str.empty", 20, None),
    ("kind_0", lambda: raw(INT4 + rec(0), STRS), "type.kind", 40, 2),
    ("kind_20", lambda: raw(INT4 + rec(20), STRS), "type.kind", 40, 2),
    ("kind_31", lambda: raw(rec(31), STRS), "type.kind", 24, 1),
    ("huge_vlen", lambda: raw(INT4 + rec(Kind.STRUCT, 4, 0, 0xFFFF), STRS), "type.truncated", 40, 2),
    ("partial_record", lambda: raw(INT4 + b"\0" * 4, STRS), "type.trailing", 40, None),
    ("name_out_of_range", lambda: raw(rec(Kind.INT, 4, 3, 0, 0, 32), STRS), "name.offset", 24, 1),
    ("member_name_out_of_range", lambda: raw(INT4 + rec(Kind.STRUCT, 4, 0, 1, 0, 9, 1, 0), STRS),
     "name.offset", 52, 2),
    ("param_name_out_of_range", lambda: raw(INT4 + rec(Kind.FUNC_PROTO, 0, 0, 1, 0, 9, 1), STRS),
     "name.offset", 52, 2),
    ("ptr_out_of_range", lambda: raw(INT4 + rec(Kind.PTR, 3), STRS), "ref.range", 48, 2),
    ("array_index_out_of_range", lambda: raw(INT4 + rec(Kind.ARRAY, 0, 0, 0, 0, 1, 5, 2), STRS),
     "ref.range", 56, 2),
    ("datasec_var_out_of_range", lambda: raw(INT4 + rec(Kind.DATASEC, 4, 1, 1, 0, 7, 0, 4), STRS),
     "ref.range", 52, 2),
    ("func_to_int", lambda: raw(INT4 + rec(Kind.FUNC, 1, 1), STRS), "ref.kind", 48, 2),
    ("func_to_void", lambda: raw(INT4 + rec(Kind.FUNC, 0, 1), STRS), "ref.kind", 48, 2),
    # libbpf v1.6 never checks these (Q9, Q12, identifiers, cycles): all must parse
    ("fwd_type_garbage", lambda: raw(rec(Kind.FWD, 12345, 1), STRS), None, None, None),
    ("proto_return_garbage", lambda: raw(rec(Kind.FUNC_PROTO, 99), STRS), None, None, None),
    ("reserved_info_bits", lambda: raw(rec(Kind.PTR, info=make_info(Kind.PTR) | 1 << 20 | 1 << 29), STRS),
     None, None, None),
    ("typedef_cycle", lambda: raw(rec(Kind.TYPEDEF, 1, 1), STRS), None, None, None),
    ("bad_identifier_and_kflag", lambda: raw(rec(Kind.INT, 3, 1, 5, 1, 0xFFFFFFFF), b"\0a-b\0"), None, None,
     None),
]


@pytest.mark.parametrize("case,factory,rule,offset,type_id", LIBBPF_CASES, ids=[c[0] for c in LIBBPF_CASES])
def test_libbpf_rules(case: str, factory: Factory, rule: str | None, offset: int | None,
                      type_id: int | None) -> None:
    blob = factory()
    found = validate(blob)
    if rule is None:
        assert found == [], [str(v) for v in found]
    else:
        assert found, f"{case}: expected {rule}"
        first = found[0]
        assert (first.rule, first.offset, first.type_id) == (rule, offset, type_id), str(first)
    lib = need_libbpf()
    ok, err, _, log = lib.parse(blob)
    assert ok == (found == []), f"{case}: libbpf says {ok} ({err}, {log.strip()[-200:]}), validate {found}"
    if not ok:
        assert found[0].errno == err


def test_swapped_header_errno_is_enotsup() -> None:
    (v,) = validate(every_kind(order="big").to_bytes(hdr_len=32))
    assert v.errno == -errno.ENOTSUP


def test_split_needs_its_base() -> None:
    base_blob = every_kind().to_bytes()
    base = Btf.from_bytes(base_blob)
    split = small_split(base).to_bytes()
    assert validate(split, base_blob) == []
    assert validate(split, base) == []
    alone = validate(split)
    assert alone and alone[0].rule == "str.first_nul" and "base" in alone[0].message
    lib = need_libbpf()
    assert lib.parse(split, base_blob)[0] and not lib.parse(split)[0]


def test_split_without_strings_is_valid() -> None:
    base_blob = every_kind().to_bytes()
    b = Builder(Btf.from_bytes(base_blob))
    b.ptr(1)
    split = b.to_bytes()
    assert struct.unpack_from("<I", split, 20)[0] == 0  # str_len 0
    assert validate(split, base_blob) == []
    assert need_libbpf().parse(split, base_blob)[0]


def test_invalid_base_is_reported() -> None:
    (v,) = validate(base_int(), base_int()[:10])
    assert v.rule == "base.invalid" and "hdr.size" in v.message


def test_violation_line_format() -> None:
    blob = raw(INT4 + rec(Kind.STRUCT, 4, 0, 1, 0, 1, 999, 0), STRS)
    (v,) = validate(blob)
    assert str(v) == ("type [2] at byte 0x38: STRUCT (anon): member 'a' references type 999 but type_cnt is 3 "
                      "[ref.range, -EINVAL (22)]")
    assert v.to_dict()["errno_text"] == "-EINVAL (22)"
    assert str(Violation("x", "msg")) == "msg [x, -EINVAL (22)]"


def test_limit_caps_the_list() -> None:
    blob = raw(rec(Kind.PTR, 500, 999) * 50, STRS)
    found = validate(blob, limit=10)
    assert len(found) == 11 and found[-1].rule == "more"
    assert len(validate(blob, limit=None)) == 50 * 2


def test_rejects_unknown_rule_set() -> None:
    with pytest.raises(ValueError):
        validate(b"", rules="strict")  # type: ignore[arg-type]


HOSTILE: list[tuple[str, bytes]] = [
    ("empty", b""),
    ("huge_lengths", struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0xFFFFFFF0, 0xFFFFFFF0, 0xFFFFFFF0, 16) + b"\0" * 64),
    ("hdr_len_max", struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 0xFFFFFFFF, 0, 0, 0, 0)),
    ("overlap", raw(INT4, STRS)[:16] + struct.pack("<II", 0, 3) + INT4 + STRS),
    ("one_huge_vlen", raw(rec(Kind.DATASEC, 4, 0, 0xFFFF), STRS)),
    ("deep_forward_chain", raw(b"".join(rec(Kind.CONST, i + 2) for i in range(5000)) + rec(Kind.CONST, 1), STRS)),
    ("self_struct", raw(rec(Kind.STRUCT, 4, 0, 0xFFFF) + struct.pack("<III", 0, 1, 0) * 0xFFFF, STRS)),
    ("long_unterminated_name", raw(rec(Kind.TYPEDEF, 0, 1) * 20000, b"\0" + b"a" * 2_000_000)),
    ("random_noise", bytes(range(256)) * 64),
]


@pytest.mark.parametrize("case,blob", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_blobs_never_raise_and_finish(case: str, blob: bytes) -> None:
    for rules in ("libbpf", "kernel"):
        start = time.monotonic()
        found = validate(blob, rules=rules)  # type: ignore[arg-type]
        assert time.monotonic() - start < 5
        assert all(v.rule != "internal" for v in found), found
        base = validate(base_int(), blob, rules=rules)  # type: ignore[arg-type]
        assert all(v.rule != "internal" for v in base)


def test_host_vmlinux_is_valid_under_both_rule_sets() -> None:
    blob = host_vmlinux()
    assert validate(blob) == []
    assert validate(blob, rules="kernel") == []


# --------------------------------------------------------------------------------------------------
# kernel rules: expected verdicts, each checked against BPF_BTF_LOAD on the running kernel
# --------------------------------------------------------------------------------------------------

def _const_chain(n: int) -> Factory:
    return lambda: raw(b"".join(rec(Kind.CONST, i + 2) for i in range(n)) + INT4[:4] + INT4[4:], STRS)


KERNEL_CASES: list[tuple[str, Factory, str | None]] = [
    ("int", base_int, None),
    ("every_kind_minus_quirks", built(lambda b: (b.ptr(1), b.struct("s", 8, [("a", 1, 0, 0), ("b", 1, 32, 0)]),
                                                 b.enum("e", 4, [("A", 1)]), b.float("f", 8))), None),
    ("hdr_len_32_zero_tail", built(lambda b: None, hdr_len=32), None),
    ("hdr_len_32_junk", patched(built(lambda b: None, hdr_len=32), lambda b: b.__setitem__(28, 1)), "hdr.tail"),
    ("big_endian", built(lambda b: None, order="big"), "hdr.hdr_len"),
    ("version_2", lambda: raw(INT4, STRS, version=2), "hdr.version"),
    ("flags_1", lambda: raw(INT4, STRS, flags=1), "hdr.flags"),
    ("hdr_len_16", lambda: raw(INT4, STRS, hdr_len=16, type_off=8), "sec.gap"),
    ("gap", lambda: raw(INT4, STRS, between=b"\0\0\0\0"), "sec.gap"),
    ("trailing", lambda: raw(INT4, STRS, after=b"\0"), "sec.trailing"),
    ("no_types", lambda: raw(b"", STRS), "type.none"),
    ("over_16MiB", lambda: raw(INT4, b"\0" * ((16 << 20) - 39)), "hdr.size"),
    ("exactly_16MiB", lambda: raw(INT4, b"\0" * ((16 << 20) - 40)), None),
    ("reserved_bit_20", built(lambda b: b.add(Kind.PTR, 0, 1, info=make_info(Kind.PTR) | 1 << 20)),
     "type.info_bits"),
    ("reserved_bit_29", built(lambda b: b.add(Kind.PTR, 0, 1, info=make_info(Kind.PTR) | 1 << 29)),
     "type.info_bits"),
    ("int_kflag", built(lambda b: b.add(Kind.INT, b.str("i"), 4, kflag=1, fixed=(32,))), "type.kflag"),
    ("int_encoding", built(lambda b: b.int("odd", 4, 3)), "int.encoding"),
    ("int_bits_over_size", built(lambda b: b.int("i", 1, bits=9)), "int.size"),
    ("type_tag_kflag", built(lambda b: (b.ptr(3), b.type_tag("x", 1, attr=True))), None),
    ("decl_tag_kflag", built(lambda b: (b.struct("s", 4, [("a", 1, 0, 0)]), b.decl_tag("x", 2, 0, attr=True))),
     None),
    ("fwd_union", built(lambda b: b.fwd("f", union=True)), None),
    ("fwd_type_set", built(lambda b: b.add(Kind.FWD, b.str("f"), 3)), "fwd.type"),
    ("var_dotted", built(lambda b: b.var("a.b", 1, 1)), None),
    ("var_dash", built(lambda b: b.var("a-b", 1, 1)), "name.ident"),
    ("var_extern", built(lambda b: b.var("v", 1, 2)), "var.linkage"),
    ("datasec_any_printable", built(lambda b: (b.var("v", 1, 1), b.datasec(".da-ta 1", 4, [(2, 0, 4)]))), None),
    ("datasec_control_char", built(lambda b: b.datasec("a\x7f", 4, [])), "name.section"),
    ("typedef_latin1", built(lambda b: b.typedef("\xe9t\xe9", 1)), None),
    ("typedef_times_sign", built(lambda b: b.typedef("\xd7", 1)), "name.ident"),
    ("typedef_512", built(lambda b: b.typedef("a" * 512, 1)), None),
    ("typedef_513", built(lambda b: b.typedef("a" * 513, 1)), "name.ident"),
    ("struct_digit_first", built(lambda b: b.struct("1a", 4, [])), "name.ident"),
    ("const_named", built(lambda b: b.add(Kind.CONST, b.str("c"), 1)), "name.anon"),
    ("array_sized", built(lambda b: b.add(Kind.ARRAY, 0, 4, fixed=(1, 1, 2))), "array.size"),
    ("func_linkage_extern", built(lambda b: (b.func_proto(1, []), b.func("f", 2, 2))), "func.linkage"),
    ("func_unnamed_param", built(lambda b: (b.func_proto(1, [(None, 1)]), b.func("f", 2))), "func.param_name"),
    ("proto_unnamed_param", built(lambda b: b.func_proto(1, [(None, 1)])), None),
    ("proto_returns_fwd", built(lambda b: (b.fwd("x"), b.func_proto(2, []))), "func_proto.return"),
    ("proto_named_vararg", built(lambda b: b.func_proto(1, [("a", 1), ("v", 0)])), "func_proto.vararg"),
    ("enum_size_3", built(lambda b: b.enum("e", 3, [("A", 1)])), "enum.size"),
    ("enum64_signed", built(lambda b: b.enum64("e", 8, [("A", 1)], signed=True)), None),
    ("enum_bitfield_33", built(lambda b: (b.enum("e", 8, [("A", 1)]),
                                          b.struct("s", 8, [("a", 2, 0, 33)], kflag=1))), "member.bitfield"),
    ("float_size_3", built(lambda b: b.float("f", 3)), "float.size"),
    ("float_member_misaligned", built(lambda b: (b.float("f", 8), b.struct("s", 16, [("a", 2, 32, 0)]))),
     "member.align"),
    ("array_index_float", built(lambda b: (b.float("f", 4), b.array(1, 2, 3))), "array.index"),
    ("array_of_bitfield_int", built(lambda b: (b.int("b", 4, bits=3), b.array(2, 1, 3))), "array.elem"),
    ("decl_tag_on_ptr", built(lambda b: (b.ptr(1), b.decl_tag("x", 2))), "ref.kind"),
    ("decl_tag_param_0", built(lambda b: (b.func_proto(1, [("a", 1)]), b.func("f", 2), b.decl_tag("x", 3, 0))),
     None),
    ("decl_tag_param_1", built(lambda b: (b.func_proto(1, [("a", 1)]), b.func("f", 2), b.decl_tag("x", 3, 1))),
     "decl_tag.component"),
    ("union_member_offset", built(lambda b: b.union("u", 8, [("a", 1, 0, 0), ("b", 1, 32, 0)])),
     "member.offset"),
    ("member_order", built(lambda b: b.struct("s", 8, [("a", 1, 32, 0), ("b", 1, 0, 0)])), "member.order"),
    ("member_past_size", built(lambda b: b.struct("s", 4, [("a", 1, 8, 0)])), "member.size"),
    ("member_void", built(lambda b: b.struct("s", 4, [("a", 0, 0, 0)])), "ref.void"),
    ("member_func_proto", built(lambda b: (b.func_proto(1, []), b.struct("s", 4, [("a", 2, 0, 0)]))),
     "member.type"),
    ("datasec_not_var", built(lambda b: b.datasec(".data", 4, [(1, 0, 4)])), "datasec.var"),
    ("datasec_overlap", built(lambda b: (b.var("v", 1, 1), b.datasec(".d", 8, [(2, 0, 4), (2, 2, 4)]))),
     "datasec.offset"),
    ("typedef_cycle", lambda: raw(rec(Kind.TYPEDEF, 1, 1), STRS), "cycle"),
    ("struct_contains_itself", built(lambda b: b.struct("s", 4, [("a", 2, 0, 0)])), "cycle"),
    ("ptr_const_loop", lambda: raw(rec(Kind.PTR, 2) + rec(Kind.CONST, 1), STRS), "cycle"),
    ("self_pointer_ok", built(lambda b: (b.ptr(3), b.struct("s", 8, [("p", 2, 0, 0)]))), None),
    ("const_chain_32", _const_chain(32), None),
    ("const_chain_33", _const_chain(33), "resolve.depth"),
    ("tag_after_const", built(lambda b: (b.type_tag("t", 1), b.const(2), b.ptr(3))), "type_tag.order"),
    ("tag_before_const", built(lambda b: (b.const(1), b.type_tag("t", 2), b.ptr(3))), None),
    ("ref_past_end", built(lambda b: b.ptr(50)), "ref.range"),
]


@pytest.mark.parametrize("case,factory,rule", KERNEL_CASES, ids=[c[0] for c in KERNEL_CASES])
def test_kernel_rules(case: str, factory: Factory, rule: str | None) -> None:
    blob = factory()
    found = validate(blob, rules="kernel")
    if rule is None:
        assert found == [], [str(v) for v in found]
    else:
        assert found and found[0].rule == rule, [str(v) for v in found]
    load = need_kernel_load()
    out = load(blob)
    assert out.ok == (found == []), f"{case}: kernel {out}, validate {[str(v) for v in found]}"
    if not out.ok:
        assert found[0].errno == out.errno, f"{case}: kernel {out}, validate {found[0]}"


@pytest.mark.parametrize("rules", ["libbpf", "kernel"])
def test_every_small_hdr_len_agrees_with_the_oracle(rules: str) -> None:
    """hdr_len 0..24 on a valid blob: the kernel reads only hdr_len header bytes, libbpf all 24."""
    check = need_kernel_load() if rules == "kernel" else None
    lib = need_libbpf() if rules == "libbpf" else None
    for hdr_len in range(25):
        blob = bytearray(base_int())
        put(blob, 4, hdr_len)
        found = validate(bytes(blob), rules=rules)  # type: ignore[arg-type]
        if check is not None:
            out = check(bytes(blob))
            ok, err = out.ok, out.errno
        else:
            assert lib is not None
            ok, err = lib.parse(bytes(blob))[:2]
        assert ok == (found == []), (hdr_len, found)
        assert ok or found[0].errno == err, (hdr_len, found[0], err)


def test_kernel_rules_with_a_base_skip_the_resolve_pass() -> None:
    base_blob = built(lambda b: None)()
    b = Builder(Btf.from_bytes(base_blob))
    b.struct("loop", 4, [("a", 2, 0, 0)])  # contains itself: only the resolve pass (BPF_BTF_LOAD) sees it
    split = b.to_bytes()
    assert validate(split, base_blob, rules="kernel") == []
    merged = raw(INT4 + rec(Kind.STRUCT, 4, 3, 1, 0, 1, 2, 0), b"\0a\0loop\0")
    assert [v.rule for v in validate(merged, rules="kernel")] == ["cycle"]
    b.typedef("tdloop", 3)  # a modifier cycle is caught by btf_check_type_tags even for module BTF
    assert [v.rule for v in validate(b.to_bytes(), base_blob, rules="kernel")] == ["type_tag.chain"]


# --------------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------------

LINE = re.compile(r"^(type \[\d+\] )?(at byte 0x[0-9a-f]+)?: .+ \[[a-z_.]+, -E[A-Z0-9?]+ \(\d+\)\]$")


def _run(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(main, ["validate", *args])
    return res.exit_code, res.output


def test_cli_valid_file(tmp_path) -> None:
    p = tmp_path / "ok.btf"
    p.write_bytes(every_kind().to_bytes())
    code, out = _run(str(p))
    assert code == 0 and out.strip() == f"{p}: valid BTF under libbpf v1.6 rules"
    code, out = _run(str(p), "--rules", "kernel")
    assert code == 1 and len(out.strip().splitlines()) == 2
    assert all(LINE.match(line) for line in out.strip().splitlines()), out


def test_cli_reports_one_line_per_violation(tmp_path) -> None:
    p = tmp_path / "bad.btf"
    p.write_bytes(raw(INT4 + rec(Kind.STRUCT, 4, 0, 1, 0, 1, 999, 0) + rec(Kind.PTR, 77), STRS))
    code, out = _run(str(p))
    lines = out.strip().splitlines()
    assert code == 1 and len(lines) == 2
    assert lines[0] == ("type [2] at byte 0x38: STRUCT (anon): member 'a' references type 999 but type_cnt is 4 "
                        "[ref.range, -EINVAL (22)]")
    assert all(LINE.match(line) for line in lines)


@pytest.mark.parametrize("content", [b"", b"\x9f\xeb\x01", b"hello world, this is not BTF at all", b"\0" * 64])
def test_cli_garbage_and_truncated_input_is_invalid_not_a_crash(tmp_path, content: bytes) -> None:
    p = tmp_path / "junk"
    p.write_bytes(content)
    code, out = _run(str(p))
    assert code == 1, out
    assert "Traceback" not in out and LINE.match(out.strip().splitlines()[0]), out


def test_cli_unreadable_or_usage_errors(tmp_path) -> None:
    assert _run(str(tmp_path / "missing"))[0] == 2
    assert _run(str(tmp_path), "--rules", "libbpf")[0] == 2
    p = tmp_path / "ok.btf"
    p.write_bytes(base_int())
    assert _run(str(p), "--rules", "strict")[0] == 2
    assert _run(str(p), "--base", str(tmp_path / "missing"))[0] == 2


def test_cli_json_and_base(tmp_path) -> None:
    base_blob = every_kind().to_bytes()
    split = small_split(Btf.from_bytes(base_blob)).to_bytes()
    (tmp_path / "base.btf").write_bytes(base_blob)
    (tmp_path / "split.btf").write_bytes(split)
    code, out = _run(str(tmp_path / "split.btf"), "--base", str(tmp_path / "base.btf"), "--json")
    doc = json.loads(out)
    assert code == 0 and doc["valid"] and doc["split"] and doc["violations"] == []
    code, out = _run(str(tmp_path / "split.btf"), "--json")
    doc = json.loads(out)
    assert code == 1 and not doc["valid"]
    first = doc["violations"][0]
    assert first["rule"] == "str.first_nul" and first["errno"] == -22 and first["errno_text"] == "-EINVAL (22)"


def test_cli_uses_an_elf_files_own_btf_base(tmp_path) -> None:
    if not (shutil.which("gcc") and shutil.which("objcopy")):
        pytest.skip("needs gcc and objcopy to make an ELF object")
    from btfspec.spec.elf import write_sections

    src = tmp_path / "m.c"
    src.write_text("int x;\n")
    obj = tmp_path / "m.o"
    subprocess.run(["gcc", "-c", str(src), "-o", str(obj)], check=True)
    base_blob = every_kind().to_bytes()
    split = small_split(Btf.from_bytes(base_blob)).to_bytes()
    write_sections(obj, tmp_path / "mod.o", {".BTF": split, ".BTF.base": base_blob})
    code, out = _run(str(tmp_path / "mod.o"))
    assert code == 0 and "valid split BTF" in out, out


def test_datasec_resets_the_resolve_mode_for_each_var() -> None:
    """btf_datasec_resolve starts in RESOLVE_TBD: a VAR of an ARRAY must not make the next VAR (of a
    TYPEDEF, declared after the DATASEC, as name-sorted BTF such as kernel 7.1's vmlinux has it) a sink."""
    b = Builder()
    i = b.int("int", 4, INT_SIGNED)
    b.datasec(".data", 16, [(4, 0, 8), (6, 8, 4)])
    b.var("a", b.array(i, i, 2), 1)
    b.var("c", b.typedef("t", i), 1)
    blob = b.to_bytes()
    assert validate(blob, rules="kernel") == []
    out = need_kernel_load()(blob)
    assert out.ok, out


@settings(max_examples=300, deadline=None, derandomize=True)
@given(mutated_blobs(mutations=["name_off", "type_id", "word", "kind", "vlen", "string"], layout=False))
def test_the_looped_sanity_check_of_small_objects_agrees_with_the_vectorised_one(case: tuple[str, bytes]) -> None:
    _, blob = case
    try:
        btf = validate_libbpf._walk(blob, validate_libbpf._header(blob, validate_libbpf.LIBBPF_1_6)[0], None,
                                    validate_libbpf.LIBBPF_1_6)
    except Exception:  # rejected before the sanity check: nothing to compare
        return
    looped = validate_libbpf._bad_types_looped(btf) if btf.nr_types else []
    assert looped == validate_libbpf._bad_types_vectorised(btf, columns(btf)).tolist(), case[0]
    SANITY_SEEN.update(["rejected" if looped else "accepted"])


SANITY_SEEN: set[str] = set()


def test_the_agreement_test_saw_both_answers() -> None:
    """The comparison above is only worth something if its blobs reach both answers."""
    test_the_looped_sanity_check_of_small_objects_agrees_with_the_vectorised_one()
    assert SANITY_SEEN == {"rejected", "accepted"}, SANITY_SEEN

"""The 2026 format: layout section, wide info, multi-level split strings, under each rule set.

Every rule of libbpf master's ``btf_parse_hdr``/``btf_parse_layout_sec``/``btf_type_size_unknown`` and
the kernel 7.1 ``btf_parse_hdr``/``btf_check_sec_info``/``btf_parse_str_sec``/``btf_parse_layout_sec``
has a blob here that trips it (and the v1.6 / 6.18 rule sets are shown to keep their verdicts).
"""

from __future__ import annotations

import struct

import pytest
from click.testing import CliRunner

from btfspec.btfgen.format2026 import LIBBPF_LAYOUT, add_unknown, layout_with, wide_struct
from btfspec.cli import main
from btfspec.spec import grammar
from btfspec.spec.builder import Builder
from btfspec.spec.errors import BtfError
from btfspec.spec.fastpath import NATIVE, Header, pack_header
from btfspec.spec.formats import RULE_NAMES, rule_set
from btfspec.spec.kinds import INFO_WIDE, INT_SIGNED, Kind, make_info
from btfspec.spec.model import Btf
from btfspec.spec.text import dump_raw
from btfspec.spec.validate import validate

UNKNOWN_KIND = 20  # the first kind past BTF_KIND_ENUM64


def rules_of(blob: bytes, rules: str, base: bytes | Btf | None = None) -> list[str]:
    return [v.rule for v in validate(blob, base, rules)]


def small(order: str = "little", *, layout: tuple | None = LIBBPF_LAYOUT, unknown: bool = False,
          info=None) -> Btf:
    """int, a pointer to it, optionally one record of kind 20 (2 fixed words, 1-word elements)."""
    b = Builder(order=order)  # type: ignore[arg-type]
    b.int("int", 4, INT_SIGNED)
    b.ptr(1)
    if unknown:
        add_unknown(b, UNKNOWN_KIND, "new_kind", fixed=(7, 8), elems=[(1,), (2,), (3,)], size_type=1)
    if layout is not None:
        b.btf.set_kind_layout(layout_with({UNKNOWN_KIND: (8, 4, 0)}, layout) if unknown else layout)
    return b.btf


def layout_entries(blob: bytes) -> list[tuple[int, int, int]]:
    """The layout section read with the grammar (header, then ``layout_len / 4`` entries)."""
    order = grammar.byteorder_of(blob)
    hdr = grammar.header_struct(order).parse(blob)
    start = hdr.hdr_len + hdr.layout_off
    entry = grammar.layout_entry(order)
    return [(e.info_sz, e.elem_sz, e.flags) for e in
            (entry.parse(blob[p:p + 4]) for p in range(start, start + hdr.layout_len, 4))]


def with_header(blob: bytes, **fields: int) -> bytes:
    """``blob`` with header fields replaced (the header is re-packed from the grammar's format)."""
    order = grammar.byteorder_of(blob)
    fmt, names = grammar.header_format(order)
    hl = int.from_bytes(blob[4:8], order)
    head = (blob[:hl] + bytes(32))[:32]
    values = dict(zip(names, struct.unpack(fmt, head), strict=True))
    values.update(fields)
    hdr = Header(order=order, **{n: values[n] for n in names})
    return pack_header(hdr) + blob[hl:] if hdr.hdr_len == hl else pack_header(hdr) + blob[hl:]


# --------------------------------------------------------------------------------------------------
# codec: one header declaration, layout section round trips in both byte orders
# --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("order", ["little", "big"])
@pytest.mark.parametrize("hdr_len", [24, 32, 40])
def test_pack_header_is_the_grammar_header(order: str, hdr_len: int) -> None:
    hdr = Header(order=order, hdr_len=hdr_len, type_off=0, type_len=12, str_off=92, str_len=5,  # type: ignore[arg-type]
                 layout_off=12 if hdr_len >= 32 else None, layout_len=80 if hdr_len >= 32 else None)
    packed = pack_header(hdr)
    assert len(packed) == hdr_len
    parsed = grammar.header_struct(order).parse(packed)  # type: ignore[arg-type]
    assert (parsed.hdr_len, parsed.type_len, parsed.str_off, parsed.str_len) == (hdr_len, 12, 92, 5)
    if hdr_len >= 32:
        assert (parsed.layout_off, parsed.layout_len) == (12, 80)


@pytest.mark.parametrize("order", ["little", "big"])
def test_layout_section_round_trip(order: str) -> None:
    btf = small(order, unknown=True)
    blob = btf.to_bytes()
    hdr = grammar.header_struct(order).parse(blob)  # type: ignore[arg-type]
    assert (hdr.hdr_len, hdr.type_off, hdr.layout_off, hdr.layout_len) == (32, 0, hdr.type_len, 84)
    assert hdr.str_off == hdr.layout_off + hdr.layout_len  # libbpf: types, layout, strings
    entries = layout_entries(blob)
    assert entries[:20] == list(LIBBPF_LAYOUT) and entries[20] == (8, 4, 0)
    back = Btf.from_bytes(blob, info=INFO_WIDE, use_layout=True)
    assert back.kind_layout == tuple(entries)
    t = back.type(3)
    assert (t.kind, t.vlen, t.fixed, t.elems) == (UNKNOWN_KIND, 3, (7, 8), [(1,), (2,), (3,)])
    assert back.to_bytes() == blob
    other = "big" if order == "little" else "little"
    swapped = back.to_bytes(order=other)  # type: ignore[arg-type]
    again = Btf.from_bytes(swapped, info=INFO_WIDE, use_layout=True)
    assert again.to_bytes(order=order) == blob  # type: ignore[arg-type]
    assert layout_entries(swapped) == entries


def test_unknown_kind_needs_the_layout() -> None:
    blob = small(unknown=True).to_bytes()
    with pytest.raises(BtfError, match="unsupported BTF kind 20"):
        Btf.from_bytes(blob)  # classic reader: no layout consulted
    assert Btf.from_bytes(blob, use_layout=True).type(3).kind == UNKNOWN_KIND


def test_split_falls_back_to_the_base_layout() -> None:
    base = small()
    b = Builder(base)
    add_unknown(b, UNKNOWN_KIND, "x", fixed=(1, 2), elems=[(5,)])
    split = b.btf.to_bytes()  # no layout section of its own
    base_with_20 = small(layout=layout_with({UNKNOWN_KIND: (8, 4, 0)}))
    parsed_base = Btf.from_bytes(base_with_20.to_bytes(), use_layout=True)
    got = Btf.from_bytes(split, parsed_base, use_layout=True)
    assert got.type(3).fixed == (1, 2) and got.type(3).elems == [(5,)]
    assert validate(split, parsed_base, "libbpf-2026") == []
    plain_base = Btf.from_bytes(small().to_bytes(), use_layout=True)  # layout without kind 20
    assert rules_of(split, "libbpf-2026", plain_base) == ["type.kind"]


# --------------------------------------------------------------------------------------------------
# rule sets
# --------------------------------------------------------------------------------------------------

def test_rule_names_and_aliases() -> None:
    assert {"libbpf", "kernel", "libbpf1.6", "libbpf-2026", "kernel-6.18", "kernel-7.1"} <= set(RULE_NAMES)
    assert rule_set("libbpf") is rule_set("libbpf1.6") and rule_set("kernel") is rule_set("kernel-6.18")
    with pytest.raises(ValueError, match="rules must be one of"):
        validate(b"", None, "libbpf-1999")


def test_libbpf_2026_accepts_layout_and_unknown_kinds_v16_does_not() -> None:
    blob = small(unknown=True).to_bytes()
    assert validate(blob, None, "libbpf-2026") == []
    assert rules_of(blob, "libbpf1.6") == ["type.kind"]
    plain = small().to_bytes()  # 32-byte header with layout, known kinds only
    assert validate(plain, None, "libbpf1.6") == [] == validate(plain, None, "libbpf-2026")


def test_libbpf_2026_foreign_order_32_byte_header() -> None:
    foreign = "big" if NATIVE == "little" else "little"
    blob = small(foreign).to_bytes()
    v16 = validate(blob, None, "libbpf1.6")
    assert [v.rule for v in v16] == ["hdr.hdr_len"] and v16[0].errno == -95  # -ENOTSUP
    assert validate(blob, None, "libbpf-2026") == []


def _types_len(blob: bytes) -> tuple[int, int, int, int]:
    h = grammar.parse(blob).hdr
    return h.type_len, h.layout_off, h.layout_len, h.str_off


def test_libbpf_2026_layout_rules_each_trip() -> None:
    blob = small().to_bytes()
    tl, lo, ll, so = _types_len(blob)
    cases = {
        "layout.align": with_header(blob, layout_off=lo + 2, layout_len=ll - 4),
        "layout.place": with_header(blob, layout_off=lo - 4),  # starts inside the types
        "layout.len": with_header(blob, layout_len=ll - 2),
    }
    for rule, bad in cases.items():
        assert rules_of(bad, "libbpf-2026") == [rule], rule
        assert validate(bad, None, "libbpf1.6") == [], rule  # v1.6 never reads the layout fields
    past = with_header(blob, layout_len=ll + 4)  # runs into the strings
    assert rules_of(past, "libbpf-2026") == ["layout.place"]
    assert validate(with_header(blob, layout_len=0), None, "libbpf-2026") == []  # no section: no checks


def test_libbpf_2026_unsizable_unknown_kinds() -> None:
    no_entry = small(unknown=True)
    no_entry.set_kind_layout(LIBBPF_LAYOUT)  # 20 entries: kind 20 has none
    assert rules_of(no_entry.to_bytes(), "libbpf-2026") == ["type.kind"]
    odd = small(unknown=True)
    odd.set_kind_layout(layout_with({UNKNOWN_KIND: (6, 4, 0)}))  # info_sz not a multiple of 4
    assert rules_of(odd.to_bytes(), "libbpf-2026") == ["type.kind"]
    log = validate(odd.to_bytes(), None, "libbpf-2026")[0].message
    assert "layout section" in log


def test_kind_zero_is_sized_by_the_layout() -> None:
    b = Builder()
    b.int("int", 4, INT_SIGNED)
    b.add(0, 0, 0)  # kind 0 (UNKN): libbpf master sizes it from layouts[0] = {0, 0, 0}
    b.btf.set_kind_layout(LIBBPF_LAYOUT)
    blob = b.btf.to_bytes()
    assert validate(blob, None, "libbpf-2026") == []
    assert rules_of(blob, "libbpf1.6") == ["type.kind"]
    b.btf.set_kind_layout(None)
    assert rules_of(b.btf.to_bytes(), "libbpf-2026") == ["type.kind"]


def test_wide_info_kind_and_vlen() -> None:
    b = Builder()
    b.int("int", 4, INT_SIGNED)
    wide_struct(b, "big", 1, 0x10001)
    blob = b.btf.to_bytes()
    assert validate(blob, None, "libbpf-2026") == []
    wide = Btf.from_bytes(blob, info=INFO_WIDE)
    assert wide.type(2).vlen == 0x10001 and len(wide.type(2).elems) == 0x10001
    assert Btf.from_bytes(blob[:0] + blob, info=INFO_WIDE).nr_types == 2
    # v1.6 reads vlen 1 (bits 0-15): the rest of the members are not whole records
    assert rules_of(blob, "libbpf1.6")[0] in {"type.truncated", "type.kind", "type.trailing"}
    # kind 33 (0x21): v1.6 reads 5 bits, kind 1 (INT); the wide reader sees an unknown kind
    c = Builder()
    c.int("int", 4, INT_SIGNED)
    c.add(Kind.INT, c.str("odd"), 4, fixed=(32,), info=make_info(33, 0, 0, INFO_WIDE))
    odd = c.btf.to_bytes()
    assert validate(odd, None, "libbpf1.6") == []
    assert Btf.from_bytes(odd).type(2).kind == Kind.INT
    assert rules_of(odd, "libbpf-2026") == ["type.kind"]


# --------------------------------------------------------------------------------------------------
# kernel 7.1
# --------------------------------------------------------------------------------------------------

def native_small(**kw: object) -> bytes:
    return small(NATIVE, **kw).to_bytes()  # type: ignore[arg-type]


def test_kernel_71_accepts_the_32_byte_header() -> None:
    blob = native_small()
    assert validate(blob, None, "kernel-7.1") == []
    assert rules_of(blob, "kernel") == ["hdr.tail"]  # 6.18 knows 24 bytes only (unchanged verdict)


def test_kernel_71_header_tail_starts_at_32() -> None:
    blob = native_small()
    longer = with_header(blob, hdr_len=36)
    tail = longer[:33] + b"\x01" + longer[34:]
    assert validate(longer, None, "kernel-7.1") == []
    bad = validate(tail, None, "kernel-7.1")
    assert [v.rule for v in bad] == ["hdr.tail"] and bad[0].offset == 33 and bad[0].errno == -7


def _rearranged(types: bytes, layout: bytes, strings: bytes, order: tuple[str, ...], *,
                hdr_len: int = 32, gap: int = 0, layout_len: int | None = None) -> bytes:
    """A native blob with its sections in ``order`` (``gap`` zero bytes before the second one)."""
    parts = {"types": types, "layout": layout, "strings": strings}
    offs, body = {}, b""
    for i, name in enumerate(order):
        if i == 1:
            body += bytes(gap)
        offs[name] = len(body)
        body += parts[name]
    hdr = Header(order=NATIVE, hdr_len=hdr_len, type_off=offs["types"], type_len=len(types),
                 str_off=offs["strings"], str_len=len(strings),
                 layout_off=offs.get("layout", 0), layout_len=len(layout) if layout_len is None else layout_len)
    return pack_header(hdr) + body


def _sections() -> tuple[bytes, bytes, bytes]:
    blob = native_small()
    tl, lo, ll, so = _types_len(blob)
    return blob[32:32 + tl], blob[32 + lo:32 + lo + ll], blob[32 + so:] + bytes(3)  # 8 bytes of strings


def test_kernel_71_section_and_layout_rules_each_trip() -> None:
    types, layout, strings = _sections()
    ok = _rearranged(types, layout, strings, ("types", "strings", "layout"))  # strings need not be last
    assert validate(ok, None, "kernel-7.1") == []
    cases = {
        "layout.align": _rearranged(types, layout, strings[:-1] + b"\0\0", ("types", "strings", "layout")),
        "layout.empty": _rearranged(types, layout[:2], strings, ("types", "layout", "strings")),
        "layout.len": _rearranged(types, layout[:6], strings, ("types", "layout", "strings")),
        "sec.gap": _rearranged(types, layout, strings, ("types", "layout", "strings"), gap=4),
    }
    for rule, bad in cases.items():
        assert rules_of(bad, "kernel-7.1") == [rule], (rule, validate(bad, None, "kernel-7.1"))
    # layout.range ("Layout section is too big") cannot trip after btf_check_sec_info tiled the data


def test_kernel_71_string_section_last_only_for_short_headers() -> None:
    types, _, strings = _sections()
    short = _rearranged(types, b"", strings, ("strings", "types"), hdr_len=24, layout_len=0)
    full = _rearranged(types, b"", strings, ("strings", "types"), hdr_len=32, layout_len=0)
    assert rules_of(short, "kernel-7.1") == ["sec.str_last"]
    assert rules_of(short, "kernel") == ["sec.str_last"]
    assert validate(full, None, "kernel-7.1") == []


# --------------------------------------------------------------------------------------------------
# multi-level splits: where the third level's strings start
# --------------------------------------------------------------------------------------------------

def three_levels(base_name: str = "int") -> tuple[Btf, Btf, bytes]:
    b0 = Builder()
    b0.int(base_name, 4, INT_SIGNED)
    l0 = Btf.from_bytes(b0.btf.to_bytes())
    b1 = Builder(l0)
    b1.typedef("level1_t", 1)
    l1 = Btf.from_bytes(b1.btf.to_bytes(), l0)
    b2 = Builder(l1)  # libbpf's btf__new_empty_split: start_str_off = base str_len + base start_str_off
    b2.typedef("level2_name", 2)
    return l0, l1, b2.btf.to_bytes()


def test_multi_level_split_string_offsets() -> None:
    l0, l1, blob = three_levels()
    assert l1.start_str_off == l0.str_len
    name_off = Btf.from_bytes(blob, l1).type(3).name_off
    assert name_off == l0.str_len + l1.str_len  # written after both bases' strings
    assert validate(blob, l1, "libbpf-2026") == []
    # libbpf v1.6 btf_new: start_str_off = base str_len alone: the offset lands inside the own
    # strings, 5 bytes (l0's str_len) too far: "level2_name" reads as "2_name"
    assert validate(blob, l1, "libbpf1.6") == []
    v16_view = Btf.from_bytes(blob, l1, start_str_off=rule_set("libbpf1.6").split_start_str_off(l1))
    assert v16_view.start_str_off == l1.str_len and v16_view.name(v16_view.type(3)) == "2_name"
    # ... or past them, when the first level's strings are longer than the third's
    _, l1_long, long_blob = three_levels("a_long_name_for_int_on_level_0")
    assert validate(long_blob, l1_long, "libbpf-2026") == []
    v16 = validate(long_blob, l1_long, "libbpf1.6")
    assert [v.rule for v in v16] == ["name.offset"] and v16[0].type_id == 3


# --------------------------------------------------------------------------------------------------
# text and CLI
# --------------------------------------------------------------------------------------------------

def test_dump_prints_unknown_kinds_like_bpftool_prints_kind_zero() -> None:
    btf = Btf.from_bytes(small(unknown=True).to_bytes(), info=INFO_WIDE, use_layout=True)
    lines = dump_raw(btf).splitlines()
    assert lines[2] == "[3] UNKNOWN 'new_kind'"
    assert lines[:2] == dump_raw(Btf.from_bytes(small(layout=None).to_bytes())).splitlines()


def test_cli_rules_switch(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "x.btf"
    path.write_bytes(native_small())
    run = CliRunner().invoke
    r = run(main, ["validate", str(path), "--rules", "kernel-7.1"])
    assert r.exit_code == 0 and "valid BTF under kernel 7.1 rules" in r.output
    r = run(main, ["validate", str(path), "--rules", "kernel"])
    assert r.exit_code == 1 and "hdr.tail" in r.output
    r = run(main, ["validate", str(path), "--rules", "libbpf"])
    assert r.exit_code == 0 and r.output.endswith("valid BTF under libbpf v1.6 rules\n")
    assert run(main, ["validate", str(path), "--rules", "nope"]).exit_code == 2


def test_dump_of_a_layout_blob_is_bpftools(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """bpftool 7.1 (libbpf 1.1) reads a 32-byte header with a layout section (it skips header bytes
    past 24 and the gap before the strings); it cannot read kinds only the layout describes (EINVAL),
    so those are held to the source text above instead. Like libbpf v1.6 it refuses a foreign-endian
    header longer than 24 bytes (-ENOTSUP), so only the native order is compared."""
    import shutil
    import subprocess

    if shutil.which("bpftool") is None:
        pytest.skip("bpftool is not installed")
    path = tmp_path / "layout.btf"
    path.write_bytes(native_small())
    want = subprocess.run(["bpftool", "btf", "dump", "file", str(path)], capture_output=True, check=True).stdout
    r = CliRunner().invoke(main, ["dump", str(path)])
    assert r.exit_code == 0 and r.stdout_bytes == want


def test_cli_dump_reads_layout_sized_kinds(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "unknown.btf"
    path.write_bytes(native_small(unknown=True))
    r = CliRunner().invoke(main, ["dump", str(path)])
    assert r.exit_code == 0 and r.output.splitlines()[-1] == "[3] UNKNOWN 'new_kind'"

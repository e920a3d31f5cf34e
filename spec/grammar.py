"""The BTF wire format, declared once with Construct.

``grammar(byteorder)`` returns the whole-blob grammar (header, type section, string section,
optional layout section) for one byte order. ``TAILS`` declares the trailing data of every kind;
the fast codec in :mod:`btfspec.spec.fastpath` derives its ``struct`` formats from these declarations,
so there is one layout, not two.

The grammar follows the compile-friendly shape measured in the reference notes: the type section
is a ``RepeatUntil`` over ``Tell``/``Computed`` markers (no ``GreedyRange``/``FixedSized``/
``CString``), kinds dispatch through ``Switch`` on ``this`` expressions, and the string section is
plain ``Bytes`` split in Python. Construct's compiler takes shortcuts on corrupt data, so the
interpreted grammar is the one used on untrusted input.

``type_record`` declares the classic ``info`` word (5-bit kind, 16-bit vlen) and the 19 known kinds;
the wide info layout and kinds sized only by the layout section (libbpf master) are read by the fast
path (:func:`btfspec.spec.fastpath.step_tables`), which takes every known record size from here.
"""

from __future__ import annotations

import functools
from typing import Any

from construct import (
    Array,
    Bytes,
    Computed,
    Construct,
    Container,
    Error,
    FormatField,
    If,
    IfThenElse,
    Int8ub,
    Int8ul,
    Int16ub,
    Int16ul,
    Int32sb,
    Int32sl,
    Int32ub,
    Int32ul,
    Pointer,
    RepeatUntil,
    Struct,
    Switch,
    Tell,
    obj_,
    this,
)

from btfspec.spec.derived import ByteOrder, byteorder_of
from btfspec.spec.gcpause import gc_paused
from btfspec.spec.kinds import HDR_LEN, Kind

__all__ = ["ByteOrder", "byteorder_of", "derived_tables", "grammar", "header_format", "header_struct",
           "layout_entry", "parse", "build", "record_formats", "tails", "type_record", "compiled"]


def _ints(order: ByteOrder) -> tuple[Construct, Construct, Construct, Construct]:
    if order == "little":
        return Int32ul, Int32sl, Int16ul, Int8ul
    return Int32ub, Int32sb, Int16ub, Int8ub


@functools.cache
def tails(order: ByteOrder) -> dict[Kind, tuple[Struct | None, Struct | None]]:
    """Per kind: (fixed trailing record, per-vlen element record), either may be ``None``."""
    u32, s32, _, _ = _ints(order)
    member = Struct("name_off" / u32, "type" / u32, "offset" / u32)
    return {
        Kind.INT: (Struct("int_data" / u32), None),
        Kind.PTR: (None, None),
        Kind.ARRAY: (Struct("type" / u32, "index_type" / u32, "nelems" / u32), None),
        Kind.STRUCT: (None, member),
        Kind.UNION: (None, member),
        Kind.ENUM: (None, Struct("name_off" / u32, "val" / s32)),
        Kind.FWD: (None, None),
        Kind.TYPEDEF: (None, None),
        Kind.VOLATILE: (None, None),
        Kind.CONST: (None, None),
        Kind.RESTRICT: (None, None),
        Kind.FUNC: (None, None),
        Kind.FUNC_PROTO: (None, Struct("name_off" / u32, "type" / u32)),
        Kind.VAR: (Struct("linkage" / u32), None),
        Kind.DATASEC: (None, Struct("type" / u32, "offset" / u32, "size" / u32)),
        Kind.FLOAT: (None, None),
        Kind.DECL_TAG: (Struct("component_idx" / s32), None),
        Kind.TYPE_TAG: (None, None),
        Kind.ENUM64: (None, Struct("name_off" / u32, "val_lo32" / u32, "val_hi32" / u32)),
    }


def record_formats(rec: Struct | None) -> tuple[str, tuple[str, ...]]:
    """``struct`` format characters and field names of a flat Construct record (derivation helper)."""
    if rec is None:
        return "", ()
    chars, names = [], []
    for sc in rec.subcons:
        field = sc.subcon
        if not isinstance(field, FormatField):
            raise TypeError(f"field {sc.name} is not a fixed-size integer")
        chars.append(field.fmtstr[1:])
        names.append(sc.name)
    return "".join(chars), tuple(names)


@functools.cache
def header_struct(order: ByteOrder) -> Struct:
    """The fixed part of ``struct btf_header`` plus the layout fields when ``hdr_len >= 32``."""
    u32, _, u16, u8 = _ints(order)
    return Struct(
        "magic" / u16,
        "version" / u8,
        "flags" / u8,
        "hdr_len" / u32,
        "type_off" / u32,
        "type_len" / u32,
        "str_off" / u32,
        "str_len" / u32,
        "layout_off" / If(this.hdr_len >= 32, u32),
        "layout_len" / If(this.hdr_len >= 32, u32),
    )


@functools.cache
def header_format(order: ByteOrder) -> tuple[str, tuple[str, ...]]:
    """``struct`` format (with byte-order prefix) and field names of the full 32-byte header, derived
    from :func:`header_struct` (the conditional layout fields contribute their integer type)."""
    prefix = "<" if order == "little" else ">"
    chars, names = [], []
    for sc in header_struct(order).subcons:
        field = sc.subcon
        if isinstance(field, IfThenElse):
            field = field.thensubcon
        if not isinstance(field, FormatField):
            raise TypeError(f"header field {sc.name} is not a fixed-size integer")
        chars.append(field.fmtstr[1:])
        names.append(sc.name)
    return prefix + "".join(chars), tuple(names)


@functools.cache
def type_record(order: ByteOrder) -> Struct:
    """One type: the 12-byte common prefix, then the kind's trailing data."""
    u32, _, _, u8 = _ints(order)
    fixed_cases: dict[int, Construct] = {}
    elem_cases: dict[int, Construct] = {}
    for kind, (fixed, elem) in tails(order).items():
        if fixed is not None:
            fixed_cases[int(kind)] = fixed
        if elem is not None:
            elem_cases[int(kind)] = Array(this.vlen, elem)
    known = {int(k): Computed(True) for k in Kind if k != Kind.UNKN}
    return Struct(
        "_start" / Tell,
        "name_off" / u32,
        "info" / u32,
        "kind" / Computed((this.info >> 24) & 0x1F),
        "vlen" / Computed(this.info & 0xFFFF),
        "kflag" / Computed(this.info >> 31),
        "_known" / Switch(this.kind, known, default=Error),
        "size_or_type" / u32,
        "fixed" / Switch(this.kind, fixed_cases),
        "elems" / Switch(this.kind, elem_cases),
        "_end" / Tell,
        "_limit" / Computed(this._.hdr.hdr_len + this._.hdr.type_off + this._.hdr.type_len),
    )


@functools.cache
def layout_entry(order: ByteOrder) -> Struct:
    """``struct btf_layout``: one entry of the layout section (one per kind)."""
    _, _, u16, u8 = _ints(order)
    return Struct("info_sz" / u8, "elem_sz" / u8, "flags" / u16)


@functools.cache
def grammar(order: ByteOrder) -> Struct:
    """Whole-blob grammar for one byte order; sections are located through the header offsets."""
    return Struct(
        "hdr" / header_struct(order),
        "hdr_extra" / Bytes(this.hdr.hdr_len - (this.hdr.hdr_len >= 32) * 8 - HDR_LEN),
        "types" / Pointer(
            this.hdr.hdr_len + this.hdr.type_off,
            If(this.hdr.type_len > 0, RepeatUntil(obj_._end >= obj_._limit, type_record(order))),
        ),
        "strings" / Pointer(this.hdr.hdr_len + this.hdr.str_off, Bytes(this.hdr.str_len)),
        "layout" / If(
            this.hdr.hdr_len >= 32,
            Pointer(this.hdr.hdr_len + this.hdr.layout_off, Array(this.hdr.layout_len // 4, layout_entry(order))),
        ),
    )


@functools.cache
def compiled(order: ByteOrder) -> Construct:
    """The compiled grammar: for data this project generated itself, never for untrusted input."""
    return grammar(order).compile()


def parse(blob: bytes, *, use_compiled: bool = False) -> Container:
    """Parse a whole blob with the reference codec (interpreted unless ``use_compiled``)."""
    order = byteorder_of(blob)
    g = compiled(order) if use_compiled else grammar(order)
    with gc_paused():  # a container or two per record: collections would rescan them (1.25-1.35x the time)
        return g.parse(blob)


def build(obj: Any, order: ByteOrder, *, use_compiled: bool = False) -> bytes:
    """Build a blob from a parsed (or hand-made) container; gaps between sections come out zero."""
    g = compiled(order) if use_compiled else grammar(order)
    with gc_paused():
        return g.build(obj)


def derived_tables() -> dict[str, Any]:
    """What :mod:`btfspec.spec.derived` caches: the header's format and field names, each kind's
    fixed and per-element formats and names, and the layout entry's (formats without byte order)."""
    hfmt, hnames = header_format("little")
    kinds = {}
    for kind, (fixed, elem) in tails("little").items():
        kinds[int(kind)] = (*record_formats(fixed), *record_formats(elem))
    return {"HEADER": (hfmt[1:], hnames), "KIND_RECORDS": kinds, "LAYOUT_ENTRY": record_formats(layout_entry("little"))}


def render_derived_tables() -> str:
    """The tables block of ``spec/derived.py``: :func:`derived_tables` as Python literals."""
    out = []
    for name, value in derived_tables().items():
        if isinstance(value, dict):
            out.append(f"{name} = {{\n" + "".join(f"    {k!r}: {v!r},\n" for k, v in value.items()) + "}")
        else:
            fmt, names = value
            out.append(f"{name} = (\n    {fmt!r},\n    {names!r},\n)")
    return "\n".join(out) + "\n"


if __name__ == "__main__":  # regenerate the cache in spec/derived.py
    import pathlib
    import sys

    path = pathlib.Path(sys.modules["btfspec.spec.derived"].__file__ or "")
    text = path.read_text()
    start = text.index("\n", text.index("# --- derived from spec/grammar.py")) + 1
    end = text.index("# --- end of the derived tables ---")
    path.write_text(text[:start] + render_derived_tables() + text[end:])
    print(f"wrote {path}")

"""Structure-aware mutation of valid BTF blobs, as Hypothesis strategies.

:func:`valid_btfs` builds small valid BTF (a few dozen types of mixed kinds with valid references,
kernel-acceptable when little-endian) with :class:`btfspec.spec.builder.Builder`.  :func:`mutated_blobs`
takes such a seed, locates every field of every record, and applies one to three labelled mutations
(kind/vlen/kflag/reserved info bits, sizes, member offsets, INT data, name offsets out of range or
mid-string, type ids out of range or cyclic, string-section damage, header fields, byte-order flip of
the header only) followed by at most one layout mutation (truncation, trailing bytes, a gap, swapped
sections, a 32-byte header with junk).  Every value is drawn from Hypothesis, so an example is
reproducible from its choices; the description names each mutation and where it hit.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from hypothesis import strategies as st

from btfspec.spec.builder import Builder
from btfspec.spec.errors import BtfError
from btfspec.spec.fastpath import layouts, read_header
from btfspec.spec.grammar import ByteOrder
from btfspec.spec.kinds import BTF_MAX_TYPE, HDR_LEN, INT_BOOL, INT_CHAR, INT_SIGNED, Kind, kind_name
from btfspec.spec.model import Btf

Draw = Callable[[st.SearchStrategy], object]
T = TypeVar("T")

_NAMES = ("a", "b", "x", "len", "next", "prev", "data", "flags", "state", "task", "node", "head",
          "count", "lock", "id", "ops", "val", "cb", "priv", "list")
_TAGS = ("user", "percpu", "rcu", "kptr", "address_space(1)", "btf_decl")


# --------------------------------------------------------------------------------------------------
# valid seeds
# --------------------------------------------------------------------------------------------------

@dataclass
class _Seed:
    """What the generator knows about the types it has built."""

    b: Builder
    sizes: dict[int, int] = field(default_factory=dict)  # id -> byte size (sized types only)
    ints: list[int] = field(default_factory=list)  # regular INTs (array index candidates)
    modifiers: set[int] = field(default_factory=set)  # TYPEDEF/CONST/VOLATILE/RESTRICT/TYPE_TAG ids
    tags: set[int] = field(default_factory=set)  # TYPE_TAG ids (non-tag modifiers must not reach them)
    protos: dict[int, int] = field(default_factory=dict)  # FUNC_PROTO id -> parameter count
    composites: dict[int, int] = field(default_factory=dict)  # STRUCT/UNION id -> member count
    funcs: dict[int, int] = field(default_factory=dict)  # FUNC id -> parameter count
    typedefs: list[int] = field(default_factory=list)
    vars: list[tuple[int, int]] = field(default_factory=list)  # (VAR id, size)
    fwds: list[int] = field(default_factory=list)


def _pick(draw: Draw, seq: Sequence[T]) -> T:
    """One element of ``seq`` (an index draw: cheaper than a fresh ``sampled_from`` per call)."""
    return seq[draw(st.integers(0, len(seq) - 1))]  # type: ignore[return-value]


def _pick_or(draw: Draw, seq: Sequence[int], other: st.SearchStrategy) -> int:
    """Usually one of the interesting values in ``seq``, sometimes anything from ``other``."""
    return _pick(draw, seq) if draw(st.integers(0, 3)) else draw(other)  # type: ignore[return-value]


def _name(draw: Draw, prefix: str = "") -> str:
    k = draw(st.integers(0, 10 * len(_NAMES) - 1))  # one draw: a name and a digit
    return f"{prefix}{_NAMES[k // 10]}{k % 10}"


def _sized(draw: Draw, s: _Seed, *, no_tags: bool = False) -> int:
    pool = [i for i in s.sizes if not (no_tags and i in s.tags)]
    return _pick(draw, sorted(pool))


def _add_one(draw: Draw, s: _Seed) -> None:
    b = s.b
    kind = _pick(draw, ["int", "float", "ptr", "ptr", "mod", "mod", "typedef", "array", "struct",
                                 "struct", "union", "enum", "enum64", "fwd", "proto", "func", "var",
                                 "decl_tag", "type_tag"])
    if kind == "int":
        size = _pick(draw, [1, 2, 4, 8, 16])
        enc = _pick(draw, [0, INT_SIGNED, INT_CHAR, INT_BOOL]) if size == 1 else \
            _pick(draw, [0, INT_SIGNED])
        i = b.int(_name(draw, "int_"), size, enc)
        s.sizes[i] = size
        s.ints.append(i)
    elif kind == "float":
        size = _pick(draw, [2, 4, 8, 12, 16])
        s.sizes[b.float(_name(draw, "float_"), size)] = size
    elif kind == "ptr":
        target = _pick(draw, [0, *sorted(s.sizes), *s.fwds, *s.protos])
        s.sizes[b.ptr(target)] = 8
    elif kind in ("mod", "typedef"):
        target = _sized(draw, s, no_tags=True)
        if kind == "typedef":
            i = b.typedef(_name(draw, "t_"), target)
            s.typedefs.append(i)
        else:
            i = _pick(draw, [b.const, b.volatile, b.restrict])(target)
        s.sizes[i] = s.sizes[target]
        s.modifiers.add(i)
    elif kind == "type_tag":
        pool = sorted(i for i in s.sizes if i not in s.modifiers or i in s.tags)
        target = _pick(draw, [0, *pool])
        i = b.type_tag(_pick(draw, _TAGS), target, attr=draw(st.booleans()))
        s.modifiers.add(i)
        s.tags.add(i)
        if target:
            s.sizes[i] = s.sizes[target]
    elif kind == "array":
        elem = _sized(draw, s)
        n = draw(st.integers(0, 8))
        i = b.array(elem, _pick(draw, s.ints), n)
        s.sizes[i] = s.sizes[elem] * n
    elif kind in ("struct", "union"):
        _composite(draw, s, kind == "union")
    elif kind in ("enum", "enum64"):
        n = draw(st.integers(0, 3))
        vals = [(_name(draw, "E_"), draw(st.integers(-(1 << 31), (1 << 31) - 1))) for _ in range(n)]
        named = draw(st.booleans())
        if kind == "enum":
            size = _pick(draw, [1, 2, 4, 8])
            i = b.enum(_name(draw, "e_") if named else None, size, vals)
        else:
            size = 8
            i = b.enum64(_name(draw, "e64_") if named else None, 8, vals, signed=draw(st.booleans()))
        s.sizes[i] = size
    elif kind == "fwd":
        s.fwds.append(b.fwd(_name(draw, "f_"), union=draw(st.booleans())))
    elif kind == "proto":
        _proto(draw, s)
    elif kind == "func":
        if not s.protos:
            _proto(draw, s)
        proto = _pick(draw, sorted(s.protos))
        s.funcs[b.func(_name(draw, "fn_"), proto, draw(st.integers(0, 1)))] = s.protos[proto]
    elif kind == "var":
        target = _sized(draw, s)
        i = b.var(_name(draw, "v_"), target, draw(st.integers(0, 1)))
        if s.sizes[target]:
            s.vars.append((i, s.sizes[target]))
    elif kind == "decl_tag":
        targets = [(i, n) for i, n in (*s.composites.items(), *s.funcs.items())]
        targets += [(i, 0) for i in s.typedefs] + [(i, 0) for i, _ in s.vars]
        if not targets:
            return
        target, n = _pick(draw, targets)
        comp = draw(st.integers(-1, n - 1)) if n else -1
        b.decl_tag(_pick(draw, _TAGS), target, comp, attr=draw(st.booleans()))


def _proto(draw: Draw, s: _Seed) -> None:
    ret = _pick(draw, [0, *sorted(s.sizes)])
    params: list[tuple[str | None, int]] = [
        (_name(draw, "p_"), _sized(draw, s)) for _ in range(draw(st.integers(0, 3)))]
    if draw(st.integers(0, 5)) == 0:
        params.append((None, 0))
    s.protos[s.b.func_proto(ret, params)] = len(params)


def _ceil(a: int, b: int) -> int:
    return (a + b - 1) // b


def _composite(draw: Draw, s: _Seed, union: bool) -> None:
    n = draw(st.integers(0, 4))
    members: list[tuple[str | None, int, int, int]] = []
    bit = 0
    size = 0
    bitfields = not union and draw(st.booleans())
    for j in range(n):
        mtype = _sized(draw, s)
        msize = s.sizes[mtype]
        mname = None if draw(st.integers(0, 7)) == 0 else f"m{j}_" + _name(draw)
        kind = s.b.btf.type(mtype).kind
        if bitfields and mtype in s.ints and msize <= 8 and draw(st.booleans()):
            width = draw(st.integers(1, msize * 8))
            if (bit % (msize * 8)) + width > msize * 8:  # keep the field inside one storage unit
                bit = _ceil(bit, msize * 8) * msize * 8
            members.append((mname, mtype, bit, width))
            bit += width
            size = max(size, _ceil(bit, 8))
            continue
        align = 1
        if kind in (Kind.INT, Kind.FLOAT, Kind.PTR, Kind.ENUM, Kind.ENUM64) and msize:
            align = min(8, msize)
        off = 0 if union else _ceil(_ceil(bit, 8), align) * align
        members.append((mname, mtype, off * 8, 0))
        bit = (off + msize) * 8 if not union else bit
        size = max(size, off + msize)
    name = _name(draw, "u_" if union else "s_") if draw(st.integers(0, 5)) else None
    size = _ceil(size, 8) * 8 if size else _pick(draw, [0, 4])
    if union:
        i = s.b.union(name, size, members)
    else:
        i = s.b.struct(name, size, members, kflag=int(bitfields))
    s.sizes[i] = size
    s.composites[i] = n


@st.composite
def valid_btfs(draw: Draw, min_types: int = 3, max_types: int = 40) -> tuple[str, bytes]:
    """``(description, blob)``: a valid BTF with a few dozen mixed kinds (libbpf-valid always; the
    kernel accepts the little-endian ones)."""
    order: ByteOrder = _pick(draw, ["little", "little", "little", "big"])
    hdr_len = HDR_LEN if order == "big" else _pick(draw, [HDR_LEN, HDR_LEN, HDR_LEN, 32])
    s = _Seed(Builder(order=order))
    s.ints.append(s.b.int("int", 4, INT_SIGNED))
    s.sizes[s.ints[0]] = 4
    for _ in range(draw(st.integers(min_types, max_types))):
        _add_one(draw, s)
    if s.vars and draw(st.booleans()):
        entries, off = [], 0
        for vid, size in s.vars:
            entries.append((vid, off, size))
            off += size
        s.b.datasec(_pick(draw, [".data", ".bss", ".rodata", ".data..percpu"]), off, entries)
    blob = s.b.to_bytes(hdr_len=hdr_len)
    return f"seed: {s.b.btf.nr_types} types, {order}-endian, hdr_len {hdr_len}", blob


# --------------------------------------------------------------------------------------------------
# mutations
# --------------------------------------------------------------------------------------------------

@dataclass
class _Slot:
    """A 32-bit word of a type record that a mutation may rewrite."""

    offset: int
    what: str  # name, info, size, type, int_data, member_off, elem_name, elem_type, other
    type_id: int
    kind: int


@dataclass
class _Layout:
    order: ByteOrder
    hdr_len: int
    type_start: int
    type_len: int
    str_start: int
    str_len: int
    type_cnt: int
    slots: list[_Slot]
    records: list[tuple[int, int, int]]  # (type id, byte offset, kind)
    str_offsets: list[int]  # offsets (in the string section) where a string starts


def _layout(blob: bytes) -> _Layout | None:
    try:
        hdr = read_header(blob)
        btf = Btf.from_bytes(blob)
    except BtfError:
        return None
    slots: list[_Slot] = []
    records = []
    lays = layouts()
    for tid, t in btf.own_types():
        base = btf.type_offset(tid)
        assert base is not None
        k = t.kind
        records.append((tid, base, k))
        lay = lays[k]
        slots.append(_Slot(base, "name", tid, k))
        slots.append(_Slot(base + 4, "info", tid, k))
        slots.append(_Slot(base + 8, "type" if lay.prefix_is_id else "size", tid, k))
        for i in range(lay.fixed_words):
            what = "type" if i in lay.fixed_ids else ("int_data" if k == Kind.INT else "other")
            slots.append(_Slot(base + 12 + 4 * i, what, tid, k))
        ew = lay.elem_words
        for j in range(len(t.elems)):
            for p, ename in enumerate(lay.elem_names):
                what = "elem_type" if p in lay.elem_ids else "elem_name" if p in lay.elem_strs else \
                    "member_off" if ename == "offset" and k in (Kind.STRUCT, Kind.UNION) else "other"
                slots.append(_Slot(base + 12 + 4 * lay.fixed_words + 4 * (j * ew + p), what, tid, k))
    strs = btf.strings
    starts = [0] + [i + 1 for i, c in enumerate(strs[:-1]) if c == 0] if strs else []
    return _Layout(hdr.order, hdr.hdr_len, hdr.hdr_len + hdr.type_off, hdr.type_len,
                   hdr.hdr_len + hdr.str_off, hdr.str_len, btf.type_cnt, slots, records, starts)


def _fmt(order: ByteOrder) -> str:
    return "<" if order == "little" else ">"


def _get(buf: bytearray, off: int, order: ByteOrder) -> int:
    return struct.unpack_from(_fmt(order) + "I", buf, off)[0] if off + 4 <= len(buf) else 0


def _put(buf: bytearray, off: int, value: int, order: ByteOrder) -> None:
    if off + 4 <= len(buf):
        struct.pack_into(_fmt(order) + "I", buf, off, value & 0xFFFFFFFF)


_U32 = st.integers(0, 0xFFFFFFFF)


def _pick_slot(draw: Draw, lay: _Layout, whats: tuple[str, ...]) -> _Slot | None:
    pool = [s for s in lay.slots if s.what in whats]
    return _pick(draw, pool) if pool else None


def _m_kind(draw: Draw, buf: bytearray, lay: _Layout) -> str:
    tid, off, k = _pick(draw, lay.records)
    new = _pick(draw, [0, *range(20, 32), *range(1, 20)])
    info = _get(buf, off + 4, lay.order)
    _put(buf, off + 4, (info & ~(0x1F << 24)) | (new << 24), lay.order)
    return f"kind [{tid}] {kind_name(k)} -> {new}"


def _m_vlen(draw: Draw, buf: bytearray, lay: _Layout) -> str:
    tid, off, k = _pick(draw, lay.records)
    info = _get(buf, off + 4, lay.order)
    vlen = _pick(draw, [0, 1, 2, 3, 0xFFFF, 0x8000, (info & 0xFFFF) + 1,
                                 max(0, (info & 0xFFFF) - 1)])
    _put(buf, off + 4, (info & ~0xFFFF) | (vlen & 0xFFFF), lay.order)
    return f"vlen [{tid}] {kind_name(k)} -> {vlen & 0xFFFF}"


def _m_kflag(draw: Draw, buf: bytearray, lay: _Layout) -> str:
    tid, off, k = _pick(draw, lay.records)
    _put(buf, off + 4, _get(buf, off + 4, lay.order) ^ (1 << 31), lay.order)
    return f"kflag flip [{tid}] {kind_name(k)}"


def _m_reserved(draw: Draw, buf: bytearray, lay: _Layout) -> str:
    tid, off, k = _pick(draw, lay.records)
    bit = _pick(draw, [*range(16, 24), 29, 30])
    _put(buf, off + 4, _get(buf, off + 4, lay.order) | (1 << bit), lay.order)
    return f"reserved info bit {bit} [{tid}] {kind_name(k)}"


def _m_size(draw: Draw, buf: bytearray, lay: _Layout) -> str:
    tid, off, k = _pick(draw, lay.records)
    val = _pick_or(draw, (0, 1, 2, 3, 4, 7, 8, 12, 16, 32, 0x7FFFFFFF, 0xFFFFFFFF), _U32)
    _put(buf, off + 8, val, lay.order)
    return f"size/type [{tid}] {kind_name(k)} -> {val:#x}"


def _m_member_off(draw: Draw, buf: bytearray, lay: _Layout) -> str | None:
    slot = _pick_slot(draw, lay, ("member_off",))
    if slot is None:
        return None
    cur = _get(buf, slot.offset, lay.order)
    val = _pick_or(draw, (cur + 1, cur + 8, max(0, cur - 8), 1 << 24, 0xFFFFFF, 0), _U32)
    _put(buf, slot.offset, val, lay.order)
    return f"member offset [{slot.type_id}] @{slot.offset:#x} -> {val:#x}"


def _m_int_data(draw: Draw, buf: bytearray, lay: _Layout) -> str | None:
    slot = _pick_slot(draw, lay, ("int_data",))
    if slot is None:
        return None
    enc = draw(st.integers(0, 15))
    off = _pick(draw, [0, 0, 1, 8, 64, 200])
    bits = _pick(draw, [0, 1, 7, 8, 16, 32, 64, 128, 129, 255])
    val = _pick_or(draw, ((enc << 24) | (off << 16) | bits,), _U32)
    _put(buf, slot.offset, val, lay.order)
    return f"int data [{slot.type_id}] -> {val:#010x}"


def _m_name(draw: Draw, buf: bytearray, lay: _Layout) -> str | None:
    slot = _pick_slot(draw, lay, ("name", "elem_name"))
    if slot is None:
        return None
    n = lay.str_len
    mid = [o + 1 for o in lay.str_offsets if o + 1 < n and buf[lay.str_start + o] != 0]
    empty_at = [o for o in lay.str_offsets if buf[lay.str_start + o] == 0 and o]
    choice = _pick(draw, ["past", "far", "huge", "max", "mid", "empty", "zero", "other"])
    val = {"past": n, "far": n + draw(st.integers(1, 64)), "huge": 0xFFFFFFFF, "max": 0x1000000,
           "zero": 0}.get(choice)
    if val is None:
        pool = mid if choice == "mid" else empty_at if choice == "empty" else lay.str_offsets
        val = _pick(draw, pool) if pool else n
    _put(buf, slot.offset, val, lay.order)
    return f"{slot.what} [{slot.type_id}] {kind_name(slot.kind)} -> {choice} {val:#x}"


def _m_type_id(draw: Draw, buf: bytearray, lay: _Layout) -> str | None:
    slot = _pick_slot(draw, lay, ("type", "elem_type"))
    if slot is None:
        return None
    choice = _pick(draw, ["cnt", "past", "max", "self", "zero", "other", "huge"])
    val = {"cnt": lay.type_cnt, "past": lay.type_cnt + draw(st.integers(1, 100)),
           "max": BTF_MAX_TYPE + 1, "self": slot.type_id, "zero": 0, "huge": 0xFFFFFFFF}.get(choice)
    if val is None:
        val = draw(st.integers(1, lay.type_cnt - 1))
    _put(buf, slot.offset, val, lay.order)
    return f"{slot.what} [{slot.type_id}] {kind_name(slot.kind)} -> {choice} {val}"


def _m_word(draw: Draw, buf: bytearray, lay: _Layout) -> str:
    slot = _pick(draw, lay.slots)
    val = draw(_U32)
    _put(buf, slot.offset, val, lay.order)
    return f"word {slot.what} [{slot.type_id}] @{slot.offset:#x} -> {val:#x}"


def _m_byte(draw: Draw, buf: bytearray, lay: _Layout) -> str:
    off = draw(st.integers(0, len(buf) - 1))
    val = draw(st.integers(0, 255))
    buf[off] = val
    return f"byte @{off:#x} -> {val:#04x}"


def _m_string(draw: Draw, buf: bytearray, lay: _Layout) -> str | None:
    if lay.str_len < 2:
        return None
    choice = _pick(draw, ["unterminate", "first", "char", "nul"])
    if choice == "unterminate":
        off = lay.str_start + lay.str_len - 1
        buf[off] = ord("A")
    elif choice == "first":
        off = lay.str_start
        buf[off] = ord("a")
    else:
        off = lay.str_start + draw(st.integers(1, lay.str_len - 2))
        buf[off] = 0 if choice == "nul" else _pick(draw, b"-. $9\x01\x7f\xa0\xe9")
    return f"string {choice} @{off:#x}"


_HDR_FIELDS = {"hdr_len": 4, "type_off": 8, "type_len": 12, "str_off": 16, "str_len": 20}


def _m_header(draw: Draw, buf: bytearray, lay: _Layout) -> str:
    name = _pick(draw, [*_HDR_FIELDS, "version", "flags", "magic", "overlap", "swap_order"])
    o = lay.order
    if name == "version":
        buf[2] = _pick(draw, [0, 2, 255])
        return f"header version -> {buf[2]}"
    if name == "flags":
        buf[3] = draw(st.integers(1, 255))
        return f"header flags -> {buf[3]}"
    if name == "magic":
        buf[0:2] = _pick(draw, [b"\0\0", b"\xeb\x9e", b"\x9f\xec", bytes(reversed(buf[0:2]))])
        return f"magic -> {bytes(buf[0:2]).hex()}"
    if name == "overlap":
        t_off, t_len = _get(buf, 8, o), _get(buf, 12, o)
        val = _pick(draw, [t_off, t_off + max(0, t_len - 4), t_off + 4])
        _put(buf, 16, val, o)
        return f"str_off -> {val} (overlapping the types)"
    if name == "swap_order":
        fields = struct.unpack_from(_fmt(o) + "HBBIIIII", buf, 0)
        other: ByteOrder = "big" if o == "little" else "little"
        struct.pack_into(_fmt(other) + "HBBIIIII", buf, 0, *fields)
        return "header only byte-swapped"
    off = _HDR_FIELDS[name]
    cur = _get(buf, off, o)
    val = _pick_or(draw, (0, 1, 4, cur + 1, cur + 4, max(0, cur - 1), max(0, cur - 4), len(buf), 0xFFFFFFFF,
                          0x80000000), st.integers(0, 32) if name == "hdr_len" else st.integers(0, len(buf) + 8))
    _put(buf, off, val, o)
    return f"header {name} {cur} -> {val}"


FIELD_MUTATIONS: dict[str, Callable[[Draw, bytearray, _Layout], str | None]] = {
    "kind": _m_kind, "vlen": _m_vlen, "kflag": _m_kflag, "reserved": _m_reserved, "size": _m_size,
    "member_off": _m_member_off, "int_data": _m_int_data, "name_off": _m_name, "type_id": _m_type_id,
    "word": _m_word, "byte": _m_byte, "string": _m_string, "header": _m_header,
}


def _layout_mutation(draw: Draw, blob: bytes, lay: _Layout | None) -> tuple[str, bytes]:
    choice = _pick(draw, ["truncate", "append", "gap", "swap_sections", "hdr32_junk",
                                   "hdr32_zero"])
    order: ByteOrder = lay.order if lay else "little"
    if choice == "truncate" or lay is None:
        cut = draw(st.integers(0, max(0, len(blob) - 1)))
        return f"truncate at {cut:#x}", blob[:cut]
    if choice == "append":
        junk = draw(st.binary(min_size=1, max_size=16))
        return f"append {len(junk)} bytes", blob + junk
    h = lay.hdr_len
    types = blob[lay.type_start:lay.type_start + lay.type_len]
    strs = blob[lay.str_start:lay.str_start + lay.str_len]
    head = bytearray(blob[:h])
    if choice == "gap":
        gap = draw(st.integers(1, 9))
        _put(head, 8, 0, order)
        _put(head, 16, len(types) + gap, order)
        return f"{gap}-byte gap between types and strings", bytes(head) + types + b"\0" * gap + strs
    if choice == "swap_sections":
        pad = (-len(strs)) % 4 if draw(st.booleans()) else 0
        _put(head, 16, 0, order)
        _put(head, 8, len(strs) + pad, order)
        return f"strings before types (pad {pad})", bytes(head) + strs + b"\0" * pad + types
    junk = draw(st.binary(min_size=8, max_size=8)) if choice == "hdr32_junk" else b"\0" * 8
    head = bytearray(blob[:HDR_LEN])
    _put(head, 4, 32, order)
    body = blob[h:]
    return f"hdr_len 32 with tail {junk.hex()}", bytes(head) + junk + body


@st.composite
def mutated_blobs(draw: Draw, seed_blobs_strategy: st.SearchStrategy | None = None,
                  max_mutations: int = 3, mutations: Sequence[str] | None = None,
                  layout: bool = True) -> tuple[str, bytes]:
    """``(description, blob)``: a seed (from ``seed_blobs_strategy``, default :func:`valid_btfs`;
    its values may be bytes or (description, bytes)) with 1..``max_mutations`` field mutations (from
    ``mutations``, default all of :data:`FIELD_MUTATIONS`) and, if ``layout``, possibly one layout
    mutation."""
    seed = draw(seed_blobs_strategy if seed_blobs_strategy is not None else valid_btfs())
    desc, blob = seed if isinstance(seed, tuple) else ("seed", seed)
    lay = _layout(blob)
    buf = bytearray(blob)
    labels = [desc]
    if lay is not None and lay.records:
        for _ in range(draw(st.integers(1, max_mutations))):
            name = _pick(draw, sorted(mutations or FIELD_MUTATIONS))
            label = FIELD_MUTATIONS[name](draw, buf, lay)
            if label is not None:
                labels.append(f"{name}: {label}")
    out = bytes(buf)
    if lay is None or len(labels) == 1 or (layout and draw(st.integers(0, 3)) == 0):
        label, out = _layout_mutation(draw, out, lay)
        labels.append(f"layout: {label}")
    return "; ".join(labels), out


# --------------------------------------------------------------------------------------------------
# layout-section mutations (the 32-byte header of libbpf master / kernel 7.1)
# --------------------------------------------------------------------------------------------------

def _layout_fields(buf: bytearray, order: ByteOrder) -> tuple[int, int, int, int, int]:
    """(type_off, type_len, str_off, layout_off, layout_len) of a 32-byte header, in the grammar's format."""
    from btfspec.spec.grammar import header_format

    fmt, names = header_format(order)
    v = dict(zip(names, struct.unpack_from(fmt, buf, 0), strict=True))
    return v["type_off"], v["type_len"], v["str_off"], v["layout_off"], v["layout_len"]


def _m_layout_off(draw: Draw, buf: bytearray, order: ByteOrder) -> str:
    t_off, t_len, s_off, lo, ll = _layout_fields(buf, order)
    val = _pick(draw, [lo + 1, lo + 2, max(0, lo - 4), t_off, s_off, s_off + 4, 0xFFFFFFFC])
    _put(buf, 24, val, order)
    return f"layout_off {lo} -> {val}"


def _m_layout_len(draw: Draw, buf: bytearray, order: ByteOrder) -> str:
    _, _, _, lo, ll = _layout_fields(buf, order)
    val = _pick(draw, [0, 1, 2, 3, max(0, ll - 4), max(0, ll - 2), ll + 4, 0xFFFFFFFF])
    _put(buf, 28, val, order)
    return f"layout_len {ll} -> {val}"


def _m_layout_entry(draw: Draw, buf: bytearray, order: ByteOrder) -> str | None:
    _, _, _, lo, ll = _layout_fields(buf, order)
    n = ll // 4
    start = 32 + lo
    if not n or start + 4 * n > len(buf):
        return None
    k = draw(st.integers(0, n - 1))
    field_name = _pick(draw, ["info_sz", "elem_sz", "flags"])
    at = start + 4 * k + {"info_sz": 0, "elem_sz": 1, "flags": 2}[field_name]
    if field_name == "flags":
        val = draw(st.integers(1, 0xFFFF))
        struct.pack_into(_fmt(order) + "H", buf, at, val)
    else:
        val = _pick_or(draw, (0, 1, 2, 3, 4, 8, 12, 255), st.integers(0, 255))
        buf[at] = val
    return f"layout entry {k} {field_name} -> {val}"


def _m_layout_header(draw: Draw, buf: bytearray, order: ByteOrder) -> str:
    choice = _pick(draw, ["hdr_len_24", "hdr_len_28", "tail"])
    if choice == "tail":  # a 36-byte header whose byte 32.. is not zero
        buf[32:32] = b"\x01\0\0\0"
        _put(buf, 4, 36, order)
        return "hdr_len 36 with a non-zero byte 32"
    val = 24 if choice == "hdr_len_24" else 28  # the layout fields (partly) fall out of the header
    _put(buf, 4, val, order)
    return f"hdr_len 32 -> {val} (sections keep their offsets from byte 32)"


LAYOUT_MUTATIONS: dict[str, Callable[[Draw, bytearray, ByteOrder], str | None]] = {
    "layout_off": _m_layout_off, "layout_len": _m_layout_len, "layout_entry": _m_layout_entry,
    "layout_header": _m_layout_header,
}


@st.composite
def layout_mutated_blobs(draw: Draw, seeds: st.SearchStrategy | None = None, max_mutations: int = 2,
                         mutations: Sequence[str] | None = None) -> tuple[str, bytes]:
    """``(description, blob)``: a blob with a layout section (default: :func:`btfspec.btfgen.format2026.layout_blobs`)
    with 1..``max_mutations`` of :data:`LAYOUT_MUTATIONS` (``mutations`` picks a subset)."""
    from btfspec.btfgen.format2026 import layout_blobs

    blob = draw(seeds if seeds is not None else layout_blobs())
    order: ByteOrder = "little" if blob[:2] == b"\x9f\xeb" else "big"
    buf = bytearray(blob)
    labels = []
    for _ in range(draw(st.integers(1, max_mutations))):
        name = _pick(draw, sorted(mutations or LAYOUT_MUTATIONS))
        label = LAYOUT_MUTATIONS[name](draw, buf, order)
        if label is not None:
            labels.append(f"{name}: {label}")
    return "; ".join(labels) or "unchanged", bytes(buf)

"""Local differences in words: why two records differ, and how to name a reference from a type
(the text of :mod:`btfspec.oracle.equiv.compare`'s routes)."""

from __future__ import annotations

import re
from typing import Any

from btfspec.btfgen.matching import NAME_FAMILY
from btfspec.oracle.equiv.sides import Side
from btfspec.spec.kinds import INT_BOOL, INT_CHAR, INT_SIGNED, LINKAGE_NAMES, Kind
from btfspec.spec.model import BtfType, s32

_NUMBER = re.compile(r"\d+")
_QUOTED = re.compile(r"'[^']*'")


def normalize(text: str, limit: int = 120) -> str:
    """A line without the numbers and names that vary between examples of one bug (for signatures)."""
    return _NUMBER.sub("N", _QUOTED.sub("'…'", text.strip()))[:limit]


# --------------------------------------------------------------------------------------------------
# local differences, in words
# --------------------------------------------------------------------------------------------------

def _enc(e: int) -> str:
    parts = [n for bit, n in ((INT_SIGNED, "SIGNED"), (INT_CHAR, "CHAR"), (INT_BOOL, "BOOL")) if e & bit]
    return "|".join(parts) or "(none)"


def _vs(what: str, x: Any, y: Any) -> str:
    return f"{what} {x} vs {y}"


def _elem_name(side: Side, off: int) -> str:
    s = side.btf.str_at(off) if off else b""
    return (s or b"").decode("latin-1")


def _member_text(side: Side, t: BtfType, i: int) -> str:
    n = _elem_name(side, t.elems[i][0])
    return f"'{n}'" if n else f"#{i}"


def explain_local(A: Side, a: int, B: Side, b: int) -> str:
    """Why the records of ``a`` (in A) and ``b`` (in B) differ, in words."""
    if a == 0 or b == 0 or not A.valid(a) or not B.valid(b):
        return f"{A.describe(a)} vs {B.describe(b)}"
    ta, tb = A.t(a), B.t(b)
    if ta.kind != tb.kind:
        if A.ident_key(a) and B.ident_key(b) and NAME_FAMILY.get(ta.kind) == NAME_FAMILY.get(tb.kind):  # type: ignore[call-overload]
            pass  # ENUM vs ENUM64 of one family: the size or name below says more, else the kind
        else:
            return _vs("kind", ta.kind_name, tb.kind_name)
    na, nb = A.name(a), B.name(b)
    if na != nb:
        return f"name '{na}' vs '{nb}'"
    k = ta.kind
    sized = k in (Kind.INT, Kind.STRUCT, Kind.UNION, Kind.ENUM, Kind.ENUM64, Kind.DATASEC, Kind.FLOAT)
    if sized and ta.size != tb.size:
        return _vs("size", ta.size, tb.size)
    if ta.kind != tb.kind:
        return _vs("kind", ta.kind_name, tb.kind_name)
    if k == Kind.INT:
        for what, fa, fb in (("encoding", _enc(ta.int_encoding), _enc(tb.int_encoding)),
                             ("bits", ta.int_bits, tb.int_bits), ("bit offset", ta.int_offset, tb.int_offset)):
            if fa != fb:
                return _vs(what, fa, fb)
    if k in (Kind.STRUCT, Kind.UNION):
        return _explain_members(A, ta, B, tb)
    if k in (Kind.ENUM, Kind.ENUM64):
        return _explain_enum(A, ta, B, tb)
    if k == Kind.ARRAY and ta.fixed[2] != tb.fixed[2]:
        return _vs("nr_elems", ta.fixed[2], tb.fixed[2])
    if k == Kind.FUNC and ta.vlen != tb.vlen:
        return _vs("linkage", LINKAGE_NAMES.get(ta.vlen, ta.vlen), LINKAGE_NAMES.get(tb.vlen, tb.vlen))
    if k == Kind.VAR and ta.fixed != tb.fixed:
        return _vs("linkage", LINKAGE_NAMES.get(ta.fixed[0], ta.fixed[0]), LINKAGE_NAMES.get(tb.fixed[0], tb.fixed[0]))
    if k == Kind.FUNC_PROTO:
        return _explain_proto(A, ta, B, tb)
    if k == Kind.DATASEC:
        if ta.vlen != tb.vlen:
            return _vs("entries", ta.vlen, tb.vlen)
        for i, (ea, eb) in enumerate(zip(ta.elems, tb.elems, strict=True)):
            if ea[1:] != eb[1:]:
                return f"entry #{i} offset/size {ea[1]}/{ea[2]} vs {eb[1]}/{eb[2]}"
    if k == Kind.FWD and ta.kflag != tb.kflag:
        return _vs("fwd", "union" if ta.kflag else "struct", "union" if tb.kflag else "struct")
    if k == Kind.DECL_TAG and ta.fixed != tb.fixed:
        return _vs("component_idx", s32(ta.fixed[0]), s32(tb.fixed[0]))
    if ta.kflag != tb.kflag:
        return _vs("kflag (attr)" if k in (Kind.DECL_TAG, Kind.TYPE_TAG) else "kflag", ta.kflag, tb.kflag)
    if ta.vlen != tb.vlen:
        return _vs("vlen", ta.vlen, tb.vlen)
    if ta.info != tb.info:
        return _vs("info", hex(ta.info), hex(tb.info))
    return "record differs"


def _explain_members(A: Side, ta: BtfType, B: Side, tb: BtfType) -> str:
    if ta.vlen != tb.vlen:
        return f"{ta.vlen} members vs {tb.vlen}"
    for i, (ea, eb) in enumerate(zip(ta.elems, tb.elems, strict=True)):
        ma, mb = _member_text(A, ta, i), _member_text(B, tb, i)
        if ma != mb:
            return f"member #{i} name {ma} vs {mb}"
        oa = (ea[2] & 0xFFFFFF, ea[2] >> 24) if ta.kflag else (ea[2], 0)
        ob = (eb[2] & 0xFFFFFF, eb[2] >> 24) if tb.kflag else (eb[2], 0)
        if oa[0] != ob[0]:
            return f"member {ma} bit offset {oa[0]} vs {ob[0]}"
        if oa[1] != ob[1]:
            return f"member {ma} bitfield size {oa[1]} vs {ob[1]}"
    if ta.kflag != tb.kflag:
        return _vs("kflag (bitfield encoding)", ta.kflag, tb.kflag)
    return "record differs"


def _explain_enum(A: Side, ta: BtfType, B: Side, tb: BtfType) -> str:
    if ta.kflag != tb.kflag:
        return _vs("signedness", "signed" if ta.kflag else "unsigned", "signed" if tb.kflag else "unsigned")
    if ta.vlen != tb.vlen:
        return f"{ta.vlen} values vs {tb.vlen}"
    for i, (ea, eb) in enumerate(zip(ta.elems, tb.elems, strict=True)):
        ma, mb = _member_text(A, ta, i), _member_text(B, tb, i)
        if ma != mb:
            return f"value #{i} name {ma} vs {mb}"
        if ea[1:] != eb[1:]:
            va = ea[1] | (ea[2] << 32) if len(ea) > 2 else ea[1]
            vb = eb[1] | (eb[2] << 32) if len(eb) > 2 else eb[1]
            return f"value {ma} {va} vs {vb}"
    return "record differs"


def _variadic(t: BtfType) -> bool:
    return bool(t.elems) and t.elems[-1] == (0, 0)


def _explain_proto(A: Side, ta: BtfType, B: Side, tb: BtfType) -> str:
    if _variadic(ta) != _variadic(tb):
        return _vs("variadic", _variadic(ta), _variadic(tb))
    if ta.vlen != tb.vlen:
        return f"{ta.vlen} params vs {tb.vlen}"
    for i in range(ta.vlen):
        pa, pb = _member_text(A, ta, i), _member_text(B, tb, i)
        if pa != pb:
            return f"param #{i} name {pa} vs {pb}"
    return "record differs"


def child_label(side: Side, x: int, i: int) -> str:
    """The role of ``x``'s ``i``-th reference (``member 'bar'``, ``param 'len'``, ``return``, ...)."""
    t = side.t(x)
    k = t.kind
    if k in (Kind.STRUCT, Kind.UNION):
        return f"member {_member_text(side, t, i)}" if i < len(t.elems) else f"#{i}"
    if k == Kind.FUNC_PROTO:
        if i == 0:
            return "return"
        return "..." if t.elems[i - 1] == (0, 0) else f"param {_member_text(side, t, i - 1)}"
    if k == Kind.ARRAY:
        return "element" if i == 0 else "index"
    if k == Kind.DATASEC:
        return f"entry #{i}"
    return ""

"""The kernel's per-kind ``check_meta`` rules (6.18, every ``kind_ops`` entry) and its identifier rules.

Each check returns the first problem of one type as ``(rule, message, byte offset)``, or None.
"""

from __future__ import annotations

from btfspec.spec.kinds import BTF_MAX_NAME_OFFSET, BTF_MAX_TYPE, Kind, kind_name
from btfspec.spec.model import Btf, BtfType, s32
from btfspec.spec.validate_common import KSYM_NAME_LEN, U32, Checker, roundup_bytes, show

KERNEL_INT_MASK = 0x0FFFFFFF

# The kernel's lib/ctype.c classes for bytes 0-255 (Latin-1 letters count as letters).
_K_ALPHA = frozenset([*range(65, 91), *range(97, 123), *range(192, 215), *range(216, 247), *range(248, 256)])
_K_ALNUM = _K_ALPHA | frozenset(range(48, 58))
_K_PRINT = frozenset([*range(32, 127), *range(160, 256)])
_K_IDENT_FIRST = _K_ALPHA | {ord("_"), ord(".")}  # 6.18 accepts dots in every identifier
_K_IDENT_REST = _K_ALNUM | {ord("_"), ord(".")}

MetaProblem = tuple[str, str, int | None] | None


def kernel_ident(s: bytes | None) -> bool:
    """``btf_name_valid_identifier`` of a 6.18 kernel (dots allowed, at most KSYM_NAME_LEN bytes)."""
    if not s or len(s) > KSYM_NAME_LEN or s[0] not in _K_IDENT_FIRST:
        return False
    return all(c in _K_IDENT_REST for c in s[1:])


def kernel_section(s: bytes | None) -> bool:
    """``btf_name_valid_section``: non-empty, printable (kernel ctype), at most KSYM_NAME_LEN bytes."""
    return bool(s) and len(s) <= KSYM_NAME_LEN and all(c in _K_PRINT for c in s)


def name_off_ok(btf: Btf, off: int) -> bool:
    """``btf_name_offset_valid``."""
    if off > BTF_MAX_NAME_OFFSET:
        return False
    b: Btf | None = btf
    while b is not None and off < b.start_str_off:
        b = b.base
    return b is not None and off - b.start_str_off < b.str_len


def _is_pow2(v: int) -> bool:
    return v > 0 and v & (v - 1) == 0


def _vlen_kflag(v: Checker, tid: int, t: BtfType, *, kflag_ok: bool = False) -> MetaProblem:
    """The common start of many checks: vlen must be 0, and kind_flag too unless ``kflag_ok``."""
    if t.vlen:
        return "type.vlen", f"vlen {t.vlen} must be 0", v.field(tid, t, pos=1)
    if t.kflag and not kflag_ok:
        return "type.kflag", "kind_flag must be 0", v.field(tid, t, pos=1)
    return None


def _ref_rule(ref: int) -> str:
    """The rule a referenced id that must name a type breaks when it is 0 or past the id limit."""
    return "ref.void" if not ref else "ref.range"


def _m_int(v: Checker, btf: Btf, tid: int, t: BtfType) -> MetaProblem:
    problem = _vlen_kflag(v, tid, t)
    if problem:
        return problem
    data = t.fixed[0]
    where = v.field(tid, t, fixed=0)
    if data & ~KERNEL_INT_MASK & U32:
        return "int.data", f"int data {data:#010x} has reserved bits set", where
    bits = t.int_bits + t.int_offset
    if bits > 128:
        return "int.bits", f"bits {t.int_bits} + offset {t.int_offset} exceed 128", where
    if roundup_bytes(bits) > t.size:
        return "int.size", f"{bits} bits do not fit in size {t.size}", where
    if t.int_encoding not in (0, 1, 2, 4):
        return "int.encoding", f"encoding {t.int_encoding:#x} is not one of none/SIGNED/CHAR/BOOL", where
    return None


def _m_ref(v: Checker, btf: Btf, tid: int, t: BtfType) -> MetaProblem:
    """PTR, TYPEDEF, VOLATILE, CONST, RESTRICT, TYPE_TAG (``btf_ref_type_check_meta``)."""
    problem = _vlen_kflag(v, tid, t, kflag_ok=t.kind == Kind.TYPE_TAG)
    if problem:
        return problem
    if t.size_type > BTF_MAX_TYPE:
        return "ref.range", f"references type {t.size_type}, over the id limit {BTF_MAX_TYPE:#x}", \
            v.field(tid, t, pos=2)
    name_at = v.field(tid, t, pos=0)
    if t.kind == Kind.TYPEDEF:
        if not t.name_off or not kernel_ident(v.strs.at(t.name_off)):
            return "name.ident", "a TYPEDEF needs a valid identifier as its name", name_at
    elif t.kind == Kind.TYPE_TAG:
        if not v.strs.at(t.name_off):
            return "name.empty", "a TYPE_TAG needs a non-empty value", name_at
    elif t.name_off:
        return "name.anon", f"a {kind_name(t.kind)} must be anonymous (name offset {t.name_off})", name_at
    return None


def _m_fwd(v: Checker, btf: Btf, tid: int, t: BtfType) -> MetaProblem:
    if t.vlen:
        return "type.vlen", f"vlen {t.vlen} must be 0", v.field(tid, t, pos=1)
    if t.size_type:
        return "fwd.type", f"type field is {t.size_type}, must be 0", v.field(tid, t, pos=2)
    if not t.name_off or not kernel_ident(v.strs.at(t.name_off)):
        return "name.ident", "a FWD needs a valid identifier as its name", v.field(tid, t, pos=0)
    return None


def _m_array(v: Checker, btf: Btf, tid: int, t: BtfType) -> MetaProblem:
    if t.name_off:
        return "name.anon", "an ARRAY must be anonymous", v.field(tid, t, pos=0)
    problem = _vlen_kflag(v, tid, t)
    if problem:
        return problem
    if t.size_type:
        return "array.size", f"size field is {t.size_type}, must be 0", v.field(tid, t, pos=2)
    for i, label in ((0, "element"), (1, "index")):
        if not t.fixed[i] or t.fixed[i] > BTF_MAX_TYPE:
            return _ref_rule(t.fixed[i]), f"invalid {label} type {t.fixed[i]}", v.field(tid, t, fixed=i)
    return None


def _named_ident(v: Checker, tid: int, t: BtfType) -> MetaProblem:
    """An optional name that must be an identifier when present (STRUCT, UNION, ENUM, ENUM64)."""
    if t.name_off and not kernel_ident(v.strs.at(t.name_off)):
        return "name.ident", f"name {show(v.strs.at(t.name_off))} is not a valid identifier", \
            v.field(tid, t, pos=0)
    return None


def _m_composite(v: Checker, btf: Btf, tid: int, t: BtfType) -> MetaProblem:
    problem = _named_ident(v, tid, t)
    if problem:
        return problem
    is_union = t.kind == Kind.UNION
    last = 0
    for j, (name_off, mtype, moff) in enumerate(t.elems):
        where = v.field(tid, t, elem=j, pos=0)
        label = f"member #{j}"
        if not name_off_ok(btf, name_off):
            return "name.offset", f"{label} name offset {name_off} is outside the strings", where
        if name_off:
            name = v.strs.at(name_off)
            label = f"member {show(name)}"
            if not kernel_ident(name):
                return "name.ident", f"{label}: not a valid identifier", where
        if not mtype or mtype > BTF_MAX_TYPE:
            return _ref_rule(mtype), f"{label} has invalid type {mtype}", where + 4
        off = moff & 0xFFFFFF if t.kflag else moff
        if is_union and off:
            return "member.offset", f"{label} of a union has bit offset {off}, must be 0", where + 8
        if last > off:
            return "member.order", f"{label} bit offset {off} is below the previous member's {last}", where + 8
        if roundup_bytes(off) > t.size:
            return "member.size", f"{label} bit offset {off} is past the size {t.size}", where + 8
        last = off
    return None


def _m_enum(v: Checker, btf: Btf, tid: int, t: BtfType) -> MetaProblem:
    if t.size > 8 or not _is_pow2(t.size):
        return "enum.size", f"size {t.size} is not 1, 2, 4 or 8", v.field(tid, t, pos=2)
    problem = _named_ident(v, tid, t)
    if problem:
        return problem
    for j, e in enumerate(t.elems):
        where = v.field(tid, t, elem=j, pos=0)
        if not name_off_ok(btf, e[0]):
            return "name.offset", f"enumerator #{j} name offset {e[0]} is outside the strings", where
        if not e[0] or not kernel_ident(v.strs.at(e[0])):
            return "name.ident", f"enumerator #{j} name {show(v.strs.at(e[0]))} is not a valid " \
                "identifier", where
    return None


def _m_func(v: Checker, btf: Btf, tid: int, t: BtfType) -> MetaProblem:
    if not t.name_off or not kernel_ident(v.strs.at(t.name_off)):
        return "name.ident", "a FUNC needs a valid identifier as its name", v.field(tid, t, pos=0)
    if t.vlen > 1:
        return "func.linkage", f"linkage {t.vlen} is not static (0) or global (1)", v.field(tid, t, pos=1)
    if t.kflag:
        return "type.kflag", "kind_flag must be 0", v.field(tid, t, pos=1)
    return None


def _m_func_proto(v: Checker, btf: Btf, tid: int, t: BtfType) -> MetaProblem:
    if t.name_off:
        return "name.anon", "a FUNC_PROTO must be anonymous", v.field(tid, t, pos=0)
    if t.kflag:
        return "type.kflag", "kind_flag must be 0", v.field(tid, t, pos=1)
    return None


def _m_var(v: Checker, btf: Btf, tid: int, t: BtfType) -> MetaProblem:
    problem = _vlen_kflag(v, tid, t)
    if problem:
        return problem
    if not t.name_off or not kernel_ident(v.strs.at(t.name_off)):
        return "name.ident", "a VAR needs a valid identifier as its name", v.field(tid, t, pos=0)
    if not t.size_type or t.size_type > BTF_MAX_TYPE:
        return _ref_rule(t.size_type), f"invalid type {t.size_type}", v.field(tid, t, pos=2)
    if t.fixed[0] not in (0, 1):
        return "var.linkage", f"linkage {t.fixed[0]} is not static (0) or global (1)", v.field(tid, t, fixed=0)
    return None


def _m_datasec(v: Checker, btf: Btf, tid: int, t: BtfType) -> MetaProblem:
    if not t.size:
        return "datasec.size", "size must not be 0", v.field(tid, t, pos=2)
    if t.kflag:
        return "type.kflag", "kind_flag must be 0", v.field(tid, t, pos=1)
    if not t.name_off or not kernel_section(v.strs.at(t.name_off)):
        return "name.section", "a DATASEC needs a printable section name", v.field(tid, t, pos=0)
    last_end = total = 0
    for j, (vtype, voff, vsize) in enumerate(t.elems):
        where = v.field(tid, t, elem=j, pos=0)
        if not vtype or vtype > BTF_MAX_TYPE:
            return _ref_rule(vtype), f"variable #{j} has invalid type {vtype}", where
        if voff < last_end or voff >= t.size:
            return "datasec.offset", f"variable #{j} offset {voff} overlaps the previous one or is past " \
                f"the size {t.size}", where + 4
        if not vsize or vsize > t.size:
            return "datasec.var_size", f"variable #{j} size {vsize} is 0 or over the section size", where + 8
        last_end = voff + vsize
        if last_end > t.size:
            return "datasec.var_size", f"variable #{j} ends at {last_end}, past the size {t.size}", where + 8
        total += vsize
    if t.size < total:
        return "datasec.size", f"variables add up to {total} bytes, over the size {t.size}", v.field(tid, t, pos=2)
    return None


def _m_float(v: Checker, btf: Btf, tid: int, t: BtfType) -> MetaProblem:
    problem = _vlen_kflag(v, tid, t)
    if problem:
        return problem
    if t.size not in (2, 4, 8, 12, 16):
        return "float.size", f"size {t.size} is not 2, 4, 8, 12 or 16", v.field(tid, t, pos=2)
    return None


def _m_decl_tag(v: Checker, btf: Btf, tid: int, t: BtfType) -> MetaProblem:
    if not v.strs.at(t.name_off):
        return "name.empty", "a DECL_TAG needs a non-empty value", v.field(tid, t, pos=0)
    if t.vlen:
        return "type.vlen", f"vlen {t.vlen} must be 0", v.field(tid, t, pos=1)
    if s32(t.fixed[0]) < -1:
        return "decl_tag.component", f"component_idx {s32(t.fixed[0])} is below -1", v.field(tid, t, fixed=0)
    return None


CHECK_META = {
    Kind.INT: _m_int, Kind.PTR: _m_ref, Kind.ARRAY: _m_array, Kind.STRUCT: _m_composite,
    Kind.UNION: _m_composite, Kind.ENUM: _m_enum, Kind.FWD: _m_fwd, Kind.TYPEDEF: _m_ref,
    Kind.VOLATILE: _m_ref, Kind.CONST: _m_ref, Kind.RESTRICT: _m_ref, Kind.FUNC: _m_func,
    Kind.FUNC_PROTO: _m_func_proto, Kind.VAR: _m_var, Kind.DATASEC: _m_datasec, Kind.FLOAT: _m_float,
    Kind.DECL_TAG: _m_decl_tag, Kind.TYPE_TAG: _m_ref, Kind.ENUM64: _m_enum,
}

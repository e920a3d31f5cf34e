"""bpftool's text forms of BTF: ``bpftool btf dump file F format raw`` and its ``-j`` JSON.

:func:`dump_raw` is byte-identical to bpftool 7.1 (libbpf 1.1) when encoded as latin-1: names are
printed as raw bytes without escaping, so the returned ``str`` holds one character per output byte
(``dump_raw(b).encode("latin-1")`` is bpftool's stdout). :func:`dump_json` returns the objects of
bpftool's ``{"types": [...]}`` list with the same field names and order.

For speed the raw dump walks the model's word array and record index directly (types the model
has decoded, and maybe edited, are taken from the model; see :meth:`spec.model.Btf.flat_words`); the word position of
every printed field is looked up by name in :func:`btfspec.spec.fastpath.layouts`. On the 6.18 vmlinux
(126.6k types, 12 MB of text) loading plus dumping takes about 2x bpftool's own time.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from itertools import accumulate

from btfspec.spec.fastpath import layouts, step_tables
from btfspec.spec.kinds import INFO_WIDE, KIND_MAX, LINKAGE_NAMES, Kind
from btfspec.spec.model import Btf

# bpftool's btf_kind_str: index 0 (void, and any kind above KIND_MAX) is "UNKNOWN"; one entry per
# 7-bit kind value, so wide-info BTF (kinds up to 127) indexes it too.
KIND_STR: tuple[str, ...] = tuple(Kind(k).name if 0 < k <= KIND_MAX else "UNKNOWN" for k in range(INFO_WIDE.kinds))
# Kind numbers as plain ints for the printer's hot loop (IntEnum comparisons are slower).
INT, PTR, ARRAY, STRUCT, UNION, ENUM, FWD, TYPEDEF, VOLATILE, CONST, RESTRICT, FUNC, FUNC_PROTO, VAR, \
    DATASEC, FLOAT, DECL_TAG, TYPE_TAG, ENUM64 = (int(k) for k in Kind if k != Kind.UNKN)
REF_LINE_KINDS = frozenset({PTR, CONST, VOLATILE, RESTRICT, TYPEDEF, TYPE_TAG})  # "type_id=N" lines
# btf_int_enc_str: any other value, including SIGNED|CHAR (3), is "UNKN".
INT_ENC_STR: dict[int, str] = {0: "(none)", 1: "SIGNED", 2: "CHAR", 4: "BOOL"}
UNKNOWN_LINKAGE = "(unknown)"


@functools.cache
def _pos() -> dict[str, int]:
    """Word positions (from the start of a record) of the fields the printer needs, by name.

    Derived from the grammar's layouts, so no record layout is restated here.
    """
    lay = layouts()

    def fixed(kind: Kind, name: str) -> int:
        return 3 + lay[kind].fixed_names.index(name)

    def elem(kind: Kind, name: str) -> int:
        return lay[kind].elem_names.index(name)

    return {
        "int_data": fixed(Kind.INT, "int_data"),
        "arr_type": fixed(Kind.ARRAY, "type"),
        "arr_index": fixed(Kind.ARRAY, "index_type"),
        "arr_nelems": fixed(Kind.ARRAY, "nelems"),
        "var_linkage": fixed(Kind.VAR, "linkage"),
        "tag_idx": fixed(Kind.DECL_TAG, "component_idx"),
        "m_name": elem(Kind.STRUCT, "name_off"),
        "m_type": elem(Kind.STRUCT, "type"),
        "m_off": elem(Kind.STRUCT, "offset"),
        "e_name": elem(Kind.ENUM, "name_off"),
        "e_val": elem(Kind.ENUM, "val"),
        "e64_name": elem(Kind.ENUM64, "name_off"),
        "e64_lo": elem(Kind.ENUM64, "val_lo32"),
        "e64_hi": elem(Kind.ENUM64, "val_hi32"),
        "p_name": elem(Kind.FUNC_PROTO, "name_off"),
        "p_type": elem(Kind.FUNC_PROTO, "type"),
        "v_type": elem(Kind.DATASEC, "type"),
        "v_off": elem(Kind.DATASEC, "offset"),
        "v_size": elem(Kind.DATASEC, "size"),
    }


def _fixed_words(kind: int) -> int:
    lay = layouts().get(kind)
    return 3 + (lay.fixed_words if lay is not None else 0)


def _record_words(btf: Btf) -> tuple[list[int], list[int]]:
    """Per kind value of ``btf``'s info layout: words before the elements (3 for kinds it cannot size,
    which only hand-made models hold) and words per element (kinds sized from a layout section too)."""
    fixed, elem = step_tables(btf.info, btf.sizing_layout)
    return [f if f >= 0 else 3 for f in fixed], elem


def _elem_words(kind: int) -> int:
    lay = layouts().get(kind)
    return lay.elem_words if lay is not None else 0


class _Names(dict):
    """``btf_str`` as a mapping: ``(anon)`` for offset 0, ``(invalid)`` for a bad offset, else the raw bytes.

    Every string start of the own section is filled in one pass; other offsets (the middle of a
    string, the base's strings) are looked up on first use.
    """

    def __init__(self, btf: Btf) -> None:
        parts = btf.strings.decode("latin-1").split("\0")
        parts.pop()  # after the last NUL: not a string (or an unterminated one)
        starts = accumulate(map((1).__add__, map(len, parts)), initial=btf.start_str_off)
        super().__init__(zip(starts, parts, strict=False))
        self[0] = "(anon)"
        self.btf = btf

    def __missing__(self, off: int) -> str:
        raw = self.btf.str_at(off)
        s = self[off] = raw.decode("latin-1") if raw is not None else "(invalid)"
        return s


def _s32(v: int) -> int:
    return v - 0x100000000 if v & 0x80000000 else v


def _s64(v: int) -> int:
    return v - 0x10000000000000000 if v >> 63 else v


def _ranges(btf: Btf, start_id: int | None) -> list[tuple[Btf, int]]:
    """(object, first id) pairs to print: the base chain from ``start_id`` on, then ``btf`` itself."""
    first = btf.start_id if start_id is None else max(start_id, 1)
    out: list[tuple[Btf, int]] = []
    b: Btf | None = btf
    while b is not None:
        if first < b.type_cnt:
            out.append((b, max(first, b.start_id)))
        if first >= b.start_id:
            break
        b = b.base
    return out[::-1]


def dump_raw(btf: Btf, *, start_id: int | None = None) -> str:
    """``bpftool btf dump file F [-B BASE] format raw`` as text (one character per output byte).

    Prints ids from ``start_id`` (default: the object's own types, as bpftool does for split BTF)
    to ``type_cnt - 1``; encode the result as latin-1 to get bpftool's bytes.
    """
    out: list[str] = []
    for obj, first in _ranges(btf, start_id):
        _dump_own(obj, first, btf.type_cnt, out, btf)
    out.append("")
    return "\n".join(out)


def _datasec_target(btf: Btf, tid: int, names: _Names, type_cnt: int) -> str:
    """`` (KIND 'name')`` of a DATASEC entry's type, printed only for ids below ``type_cnt``."""
    if tid >= type_cnt:
        return ""
    if tid == 0:  # libbpf's void: kind 0, no name
        return " (UNKNOWN '(anon)')"
    t = btf.type(tid)
    return f" ({KIND_STR[t.kind]} '{names[t.name_off]}')"


def _dump_own(btf: Btf, first: int, type_cnt: int, out: list[str], top: Btf) -> None:
    """Append the lines of ``btf``'s own types with ids >= ``first`` to ``out``."""
    w, starts = btf.flat_words()
    names = _Names(top)
    kstr = KIND_STR
    P = _pos()
    INT_DATA, ARR_T, ARR_I, ARR_N = P["int_data"], P["arr_type"], P["arr_index"], P["arr_nelems"]
    VAR_L, TAG_I = P["var_linkage"], P["tag_idx"]
    M_N, M_T, M_O = P["m_name"], P["m_type"], P["m_off"]
    E_N, E_V = P["e_name"], P["e_val"]
    E64_N, E64_L, E64_H = P["e64_name"], P["e64_lo"], P["e64_hi"]
    PR_N, PR_T = P["p_name"], P["p_type"]
    V_T, V_O, V_S = P["v_type"], P["v_off"], P["v_size"]
    fw, ew = _record_words(btf)
    kmask, vmask = btf.info.kind_mask, btf.info.vlen_mask
    link = [LINKAGE_NAMES.get(v, UNKNOWN_LINKAGE) for v in range(0x10000)]  # FUNC linkage: the vlen
    append = out.append
    extend = out.extend
    tid = first - 1
    for p in starts[first - btf.start_id:]:
        tid += 1
        info = w[p + 1]
        k = (info >> 24) & kmask
        if k == FUNC:  # by far the most common kind
            v = info & vmask
            append(f"[{tid}] FUNC '{names[w[p]]}' type_id={w[p + 2]} "
                   f"linkage={link[v] if v < 0x10000 else UNKNOWN_LINKAGE}")
        elif k == FUNC_PROTO:
            vlen = info & vmask
            append(f"[{tid}] FUNC_PROTO '{names[w[p]]}' ret_type_id={w[p + 2]} vlen={vlen}")
            if vlen:
                q = p + fw[k]
                step = ew[k]
                seg = w[q:q + vlen * step]
                extend([f"\t'{names[n]}' type_id={t}" for n, t in
                        zip(seg[PR_N::step], seg[PR_T::step], strict=True)])
        elif k in REF_LINE_KINDS:
            append(f"[{tid}] {kstr[k]} '{names[w[p]]}' type_id={w[p + 2]}")
        elif k == STRUCT or k == UNION:
            vlen = info & vmask
            append(f"[{tid}] {kstr[k]} '{names[w[p]]}' size={w[p + 2]} vlen={vlen}")
            if vlen:
                q = p + fw[k]
                step = ew[k]
                seg = w[q:q + vlen * step]
                ms = zip(seg[M_N::step], seg[M_T::step], seg[M_O::step], strict=True)
                if info >> 31:
                    extend([f"\t'{names[n]}' type_id={t} bits_offset={o & 0xFFFFFF} bitfield_size={o >> 24}"
                            if o >> 24 else f"\t'{names[n]}' type_id={t} bits_offset={o}"
                            for n, t, o in ms])
                else:
                    extend([f"\t'{names[n]}' type_id={t} bits_offset={o}" for n, t, o in ms])
        elif k == ARRAY:
            append(f"[{tid}] ARRAY '{names[w[p]]}' type_id={w[p + ARR_T]} index_type_id={w[p + ARR_I]} "
                   f"nr_elems={w[p + ARR_N]}")
        elif k == ENUM or k == ENUM64:
            vlen = info & vmask
            kflag = info >> 31
            append(f"[{tid}] {kstr[k]} '{names[w[p]]}' encoding={'SIGNED' if kflag else 'UNSIGNED'} "
                   f"size={w[p + 2]} vlen={vlen}")
            q = p + fw[k]
            step = ew[k]
            seg = w[q:q + vlen * step]
            if k == ENUM:
                vals = zip(seg[E_N::step], seg[E_V::step], strict=True)
                if kflag:
                    extend([f"\t'{names[n]}' val={_s32(v)}" for n, v in vals])
                else:
                    extend([f"\t'{names[n]}' val={v}" for n, v in vals])
            else:
                vals64 = zip(seg[E64_N::step], seg[E64_L::step], seg[E64_H::step], strict=True)
                if kflag:
                    extend([f"\t'{names[n]}' val={_s64(hi << 32 | lo)}LL" for n, lo, hi in vals64])
                else:
                    extend([f"\t'{names[n]}' val={hi << 32 | lo}ULL" for n, lo, hi in vals64])
        elif k == INT:
            d = w[p + INT_DATA]
            append(f"[{tid}] INT '{names[w[p]]}' size={w[p + 2]} bits_offset={(d >> 16) & 0xFF} "
                   f"nr_bits={d & 0xFF} encoding={INT_ENC_STR.get((d >> 24) & 0x0F, 'UNKN')}")
        elif k == VAR:  # the only field printed with a comma
            append(f"[{tid}] VAR '{names[w[p]]}' type_id={w[p + 2]}, "
                   f"linkage={LINKAGE_NAMES.get(w[p + VAR_L], UNKNOWN_LINKAGE)}")
        elif k == DECL_TAG:  # kind_flag not shown
            append(f"[{tid}] DECL_TAG '{names[w[p]]}' type_id={w[p + 2]} component_idx={_s32(w[p + TAG_I])}")
        elif k == FWD:
            append(f"[{tid}] FWD '{names[w[p]]}' fwd_kind={'union' if info >> 31 else 'struct'}")
        elif k == DATASEC:
            vlen = info & vmask
            append(f"[{tid}] DATASEC '{names[w[p]]}' size={w[p + 2]} vlen={vlen}")
            q = p + fw[k]
            step = ew[k]
            for e in range(q, q + vlen * step, step):
                vt = w[e + V_T]
                append(f"\ttype_id={vt} offset={w[e + V_O]} size={w[e + V_S]}"
                       f"{_datasec_target(top, vt, names, type_cnt)}")
        elif k == FLOAT:
            append(f"[{tid}] FLOAT '{names[w[p]]}' size={w[p + 2]}")
        else:  # kind 0, or a kind only a layout section describes: bpftool prints no fields for it
            append(f"[{tid}] {kstr[k]} '{names[w[p]]}'")


def _json_name(raw: bytes | None, off: int) -> str:
    if not off:
        return "(anon)"
    if raw is None:
        return "(invalid)"
    return raw.decode("utf-8", "surrogateescape")


def dump_json(btf: Btf, *, start_id: int | None = None) -> list[dict]:
    """The ``types`` list of ``bpftool -j btf dump file F format raw``, as Python objects.

    Field names, order and values follow bpftool 7.1: ENUM/ENUM64 ``val`` is signed when the
    kind_flag is set, and, as in bpftool, an unsigned ENUM value with bit 31 set is the
    sign-extended 64-bit number (bpftool hands the ``s32`` to its ``u64`` writer: 0xffffffff
    prints 18446744073709551615; the text form prints 4294967295). DATASEC entries carry no
    ``(KIND 'name')`` note. Names are decoded as UTF-8 (invalid bytes as surrogate escapes).
    Unlike bpftool 7.1, serialising this with :mod:`json` gives valid JSON for names holding
    ``'`` or ``\\`` (bpftool writes ``\\'`` and turns ``\\`` into ``\\n``).
    """
    out: list[dict] = []
    for obj, first in _ranges(btf, start_id):
        out.extend(_json_own(obj, first, btf))
    return out


def _json_own(btf: Btf, first: int, top: Btf) -> Iterator[dict]:
    cache: dict[int, str] = {}

    def name(off: int) -> str:
        s = cache.get(off)
        if s is None:
            s = cache[off] = _json_name(top.str_at(off), off)
        return s

    P = _pos()
    for tid in range(first, btf.type_cnt):
        t = btf.type(tid)
        w = t.words()
        k = t.kind
        d: dict = {"id": tid, "kind": KIND_STR[k], "name": name(t.name_off)}
        _json_fields(k, t.info, t.vlen, w, d, name, P)
        yield d


def _json_fields(k: int, info: int, vlen: int, w: list[int], d: dict, name: Callable[[int], str],
                 P: dict[str, int]) -> None:
    st = w[2]
    kflag = info >> 31
    q = _fixed_words(k)
    step = _elem_words(k)
    elems = [w[e:e + step] for e in range(q, q + vlen * step, step)] if step else []
    if k == Kind.INT:
        v = w[P["int_data"]]
        d.update(size=st, bits_offset=(v >> 16) & 0xFF, nr_bits=v & 0xFF,
                 encoding=INT_ENC_STR.get((v >> 24) & 0x0F, "UNKN"))
    elif k in (Kind.PTR, Kind.CONST, Kind.VOLATILE, Kind.RESTRICT, Kind.TYPEDEF, Kind.TYPE_TAG):
        d["type_id"] = st
    elif k == Kind.ARRAY:
        d.update(type_id=w[P["arr_type"]], index_type_id=w[P["arr_index"]], nr_elems=w[P["arr_nelems"]])
    elif k in (Kind.STRUCT, Kind.UNION):
        members = []
        for e in elems:
            off = e[P["m_off"]]
            m = {"name": name(e[P["m_name"]]), "type_id": e[P["m_type"]],
                 "bits_offset": off & 0xFFFFFF if kflag else off}
            if kflag and off >> 24:
                m["bitfield_size"] = off >> 24
            members.append(m)
        d.update(size=st, vlen=vlen, members=members)
    elif k in (Kind.ENUM, Kind.ENUM64):
        values = []
        for e in elems:
            if k == Kind.ENUM:
                v = _s32(e[P["e_val"]])  # bpftool passes the s32 to a 64-bit (u)int writer
                val = v if kflag else v & 0xFFFFFFFFFFFFFFFF
                n = e[P["e_name"]]
            else:
                v = e[P["e64_hi"]] << 32 | e[P["e64_lo"]]
                val = _s64(v) if kflag else v
                n = e[P["e64_name"]]
            values.append({"name": name(n), "val": val})
        d.update(encoding="SIGNED" if kflag else "UNSIGNED", size=st, vlen=vlen, values=values)
    elif k == Kind.FWD:
        d["fwd_kind"] = "union" if kflag else "struct"
    elif k == Kind.FUNC:
        d.update(type_id=st, linkage=LINKAGE_NAMES.get(vlen, UNKNOWN_LINKAGE))
    elif k == Kind.FUNC_PROTO:
        d.update(ret_type_id=st, vlen=vlen,
                 params=[{"name": name(e[P["p_name"]]), "type_id": e[P["p_type"]]} for e in elems])
    elif k == Kind.VAR:
        d.update(type_id=st, linkage=LINKAGE_NAMES.get(w[P["var_linkage"]], UNKNOWN_LINKAGE))
    elif k == Kind.DATASEC:
        d.update(size=st, vlen=vlen, vars=[{"type_id": e[P["v_type"]], "offset": e[P["v_off"]],
                                            "size": e[P["v_size"]]} for e in elems])
    elif k == Kind.FLOAT:
        d["size"] = st
    elif k == Kind.DECL_TAG:
        d.update(type_id=st, component_idx=_s32(w[P["tag_idx"]]))

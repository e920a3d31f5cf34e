"""libbpf v1.6's parse-time rules: ``btf_parse_hdr``, ``btf_parse_str_sec``, ``btf_parse_type_sec`` and
``btf_sanity_check`` (reference §8.5) -- the project's one statement of them -- and, under the
``libbpf-2026`` rule set (:mod:`btfspec.spec.formats`), libbpf master's: the 32-byte header's layout
section (``btf_parse_hdr``'s placement checks, ``btf_parse_layout_sec``), unknown kinds sized from it
(``btf_type_size_unknown``), 7-bit kind / 24-bit vlen, cumulative split-of-split string offsets.

:func:`parse` is the accept decision: the checks in libbpf's order, the type sanity check vectorised
(vmlinux in a fraction of a second).  It returns the parsed BTF or raises :class:`LibbpfReject` with
the errno and the log line libbpf gives for the first failing rule.  :func:`violations` is the
``libbpf`` rule set of :func:`btfspec.spec.validate.validate`: ``[]`` when :func:`parse` accepts, else every
violation found.  Not checked, because libbpf does not: version, flags, gaps, trailing bytes, reserved
``info`` bits, FWD ``type``, FUNC_PROTO return ids, sizes, kflags, identifiers, cycles.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from btfspec.spec.columns import Columns, columns
from btfspec.spec.derived import ByteOrder
from btfspec.spec.errors import BtfError
from btfspec.spec.fastpath import NATIVE, Header, layouts
from btfspec.spec.formats import RuleSet, rule_set
from btfspec.spec.kinds import BTF_MAGIC, HDR_LEN, LAYOUT_ENTRY_SIZE, InfoLayout, Kind, kind_name
from btfspec.spec.model import LOOP_MAX_TYPES, Btf
from btfspec.spec.validate_common import (
    ENOTSUP,
    Checker,
    Problem,
    Stop,
    Violation,
    hdr_fields,
    layout_fields,
    other_order,
    show,
    string_problems,
    walk_problem,
)

LIBBPF_1_6 = rule_set("libbpf1.6")

# Kinds whose size_or_type id the sanity check validates: all but FWD and FUNC_PROTO (Q12).
CHECKED_REF = frozenset(k for k, lay in layouts().items() if lay.prefix_is_id) - {Kind.FWD, Kind.FUNC_PROTO}
_ELEM_NOUN = {Kind.STRUCT: "member", Kind.UNION: "member", Kind.ENUM: "enumerator", Kind.ENUM64: "enumerator",
              Kind.FUNC_PROTO: "parameter", Kind.DATASEC: "variable"}
_ELEM_NAME_LOG = {Kind.STRUCT: "field name", Kind.UNION: "field name", Kind.ENUM: "enum name",
                  Kind.ENUM64: "enum name", Kind.FUNC_PROTO: "param name"}
# The order violations of one type are listed in: its name, element names, type ids, FUNC's target.
_NAME, _ELEM_NAME, _REF, _TARGET = range(4)


@dataclass
class LibbpfParse:
    """A blob libbpf accepts: the parsed BTF (own types undecoded), the bytes, the header, and (made on
    first use) its columns."""

    btf: Btf
    raw: bytes
    hdr: Header

    @functools.cached_property
    def cols(self) -> Columns:
        """The own types as numpy columns (made once)."""
        return columns(self.btf)


class LibbpfReject(Exception):
    """libbpf rejects the blob: ``errno`` and libbpf's log ``line`` for the first failing rule."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.log)
        self.problem = problem
        self.errno = problem.violation.errno
        self.line = problem.log


def parse(blob: bytes, base: Btf | None = None, rules: RuleSet = LIBBPF_1_6) -> LibbpfParse:
    """Parse like ``btf__new`` (``btf__new_split`` on ``base``); :class:`LibbpfReject` where libbpf fails."""
    hdr, problems = _header(blob, rules)
    if not problems:
        problems = string_problems(blob, hdr, split=base is not None, kernel=False)
    if not problems:
        problems = _layout_section(hdr)
    if problems:
        raise LibbpfReject(problems[0])
    btf = _walk(blob, hdr, base, rules)
    parsed = LibbpfParse(btf, blob, hdr)
    bad = _bad_types(parsed)
    if len(bad):
        checker = Checker(blob)
        checker.use(btf)
        raise LibbpfReject(_type_problems(checker, btf, btf.start_id + int(bad[0]))[0][1])
    return parsed


def violations(blob: bytes, base: bytes | Btf | None = None, limit: int | None = None,
               rules: RuleSet = LIBBPF_1_6) -> list[Violation]:
    """Every violation of libbpf's rules (at most ``limit``, then a ``more`` entry); ``[]`` iff libbpf
    accepts ``blob`` (split on ``base``, which must be valid itself)."""
    try:
        base_btf = parse(bytes(base), None, rules).btf if isinstance(base, bytes | bytearray | memoryview) \
            else base
        parse(blob, base_btf, rules)
        return []
    except LibbpfReject:
        pass
    checker = Checker(blob, limit=limit)
    try:
        _list(checker, base, rules)
    except Stop:
        pass
    return checker.out


def _list(c: Checker, base: bytes | Btf | None, rules: RuleSet) -> None:
    """The listing behind :func:`violations`: as :func:`parse`, but going on past non-fatal problems."""
    if isinstance(base, bytes | bytearray | memoryview):
        found = violations(bytes(base), None, None, rules)
        if found:
            c.base_problem(found)
        base = parse(bytes(base), None, rules).btf
    hdr, problems = _header(c.blob, rules)
    c.report(problems, fatal=True)
    c.report(string_problems(c.blob, hdr, split=base is not None, kernel=False))
    c.report(_layout_section(hdr), fatal=True)
    try:
        btf = _walk(c.blob, hdr, base, rules)
    except LibbpfReject as exc:
        c.report([exc.problem])
        raise Stop from None
    c.use(btf)
    for i in _bad_types(LibbpfParse(btf, c.blob, hdr)):
        found = _type_problems(c, btf, btf.start_id + int(i))
        c.report([p for _, p in sorted(found, key=lambda x: x[0])])


# --------------------------------------------------------------------------------------------------
# btf_parse_hdr, btf_parse_type_sec
# --------------------------------------------------------------------------------------------------

def _header(blob: bytes, rules: RuleSet = LIBBPF_1_6) -> tuple[Header, list[Problem]]:
    """The header and its problems (any problem is fatal), in libbpf's order."""
    n = len(blob)
    none = Header()
    if n < HDR_LEN:
        return none, [Problem(Violation("hdr.size", f"only {n} bytes: the BTF header needs {HDR_LEN}", 0),
                              "BTF header not found")]
    if blob[:2] == BTF_MAGIC.to_bytes(2, NATIVE):
        order: ByteOrder = NATIVE
    elif blob[:2] == BTF_MAGIC.to_bytes(2, other_order(NATIVE)):
        order = other_order(NATIVE)
    else:
        return none, [Problem(Violation("hdr.magic", f"bad magic {blob[:2].hex()} (expected 9feb or eb9f)", 0),
                              f"Invalid BTF magic: {int.from_bytes(blob[:2], NATIVE):x}")]
    magic, version, flags, hdr_len, type_off, type_len, str_off, str_len = hdr_fields(blob[:24], order)
    v16 = not rules.knows_layout  # v1.6 wants exactly 24 bytes in foreign order; master at least 24
    if order != NATIVE and (hdr_len != HDR_LEN if v16 else hdr_len < HDR_LEN):
        need = f"only with a {HDR_LEN}-byte header" if v16 else f"only with a header of {HDR_LEN} bytes or more"
        return none, [Problem(Violation("hdr.hdr_len", f"hdr_len {hdr_len}: libbpf parses {order}-endian BTF "
                                        f"{need}", 4, errno=ENOTSUP),
                              f"Can't load BTF with non-native endianness due to unsupported header length "
                              f"{hdr_len}")]
    if hdr_len > n:
        return none, [Problem(Violation("hdr.hdr_len", f"hdr_len {hdr_len} is larger than the data ({n} bytes)", 4),
                              f"BTF header len {hdr_len} larger than data size {n}")]
    body = n - hdr_len
    out = []
    if str_off + str_len > body:
        out.append(Problem(Violation("sec.range", f"string section [{str_off}, +{str_len}) ends past the data "
                                     f"({body} bytes after the header)", 16), f"Invalid BTF total size: {n}"))
    if type_off + type_len > str_off:
        out.append(Problem(Violation("sec.layout", f"type section [{type_off}, +{type_len}) does not end before "
                                     f"the string section at {str_off}", 8),
                           f"Invalid BTF data sections layout: type data at {type_off} + {type_len}, strings "
                           f"data at {str_off} + {str_len}"))
    if type_off % 4:
        out.append(Problem(Violation("sec.align", f"type section offset {type_off} is not 4-byte aligned", 8),
                           "BTF type section is not aligned to 4 bytes"))
    hdr = Header(order, magic, version, flags, hdr_len, type_off, type_len, str_off, str_len)
    if rules.knows_layout and not out:
        out.extend(_layout_placement(blob, hdr))
    return hdr, out


def _layout_placement(blob: bytes, hdr: Header) -> list[Problem]:
    """libbpf master's ``btf_parse_hdr`` tail: the layout section (``min(hdr_len, 32)`` header bytes are
    copied, so a shorter header has none) is 4-byte aligned and sits between types and strings."""
    raw = blob[24:min(hdr.hdr_len, 32)].ljust(8, b"\0")
    hdr.layout_off, hdr.layout_len = layout_fields(raw, hdr.order)
    lo, ll = hdr.layout_off, hdr.layout_len
    if not ll:
        return []
    if lo % 4:
        return [Problem(Violation("layout.align", f"layout section offset {lo} is not 4-byte aligned", 24),
                        "BTF layout section is not aligned to 4 bytes")]
    if lo < hdr.type_off + hdr.type_len:
        return [Problem(Violation("layout.place", f"layout section at {lo} starts inside the type section "
                                  f"[{hdr.type_off}, +{hdr.type_len})", 24),
                        f"Invalid BTF data sections layout: type data at {hdr.type_off} + {hdr.type_len},  "
                        f"layout data at {lo} + {ll}")]
    if lo + ll > hdr.str_off or lo > hdr.str_off:
        return [Problem(Violation("layout.place", f"layout section [{lo}, +{ll}) does not end before the "
                                  f"string section at {hdr.str_off}", 28),
                        f"Invalid BTF data sections layout: layout data at {lo} + {ll}, strings data at "
                        f"{hdr.str_off}")]
    return []


def _layout_section(hdr: Header) -> list[Problem]:
    """libbpf master's ``btf_parse_layout_sec``: whole ``struct btf_layout`` entries."""
    if hdr.layout_len and hdr.layout_len % LAYOUT_ENTRY_SIZE:
        return [Problem(Violation("layout.len", f"layout section length {hdr.layout_len} is not a multiple of "
                                  f"{LAYOUT_ENTRY_SIZE}", 28), "Invalid BTF kind layout section")]
    return []


def _walk(blob: bytes, hdr: Header, base: Btf | None, rules: RuleSet = LIBBPF_1_6) -> Btf:
    """The type-section walk (the model's parser); :class:`LibbpfReject` on an unknown kind or overrun."""
    # v1.6 never reads header bytes past 24; the model would interpret 24..32 as a layout section.
    # Master reads min(hdr_len, 32) of them: a partly copied layout_len is what it reads (cut to 0 here).
    hide = not rules.knows_layout or not hdr.layout_len or hdr.hdr_len < 32
    model_blob = blob if hdr.hdr_len < 32 or not hide else blob[:24] + bytes(8) + blob[32:]
    try:
        return Btf.from_bytes(model_blob, base, info=rules.info, use_layout=rules.sizes_unknown_kinds,
                              start_str_off=rules.split_start_str_off(base))
    except BtfError as exc:
        raise LibbpfReject(walk_problem(exc, model_blob, hdr.order, 0, rules.info,
                                        modern=rules.sizes_unknown_kinds)) from None


# --------------------------------------------------------------------------------------------------
# btf_sanity_check
# --------------------------------------------------------------------------------------------------

@functools.cache
def _sanity_tables(info: InfoLayout) -> tuple[Any, Any, Any, Any, Any, tuple[tuple[int, tuple[int, ...]], ...]]:
    """From the grammar's layouts, per kind value: words before the elements, words per element, the
    element word holding a string offset and the one holding a type id (-1: none), whether the second
    word is a checked id (:data:`CHECKED_REF`); and the kinds with fixed-record ids. Kinds sized from a
    layout section have no checked fields but the name."""
    import numpy as np

    n = info.kinds
    fixed, ew = np.zeros(n, np.int64), np.zeros(n, np.int64)
    str_pos, id_pos = np.full(n, -1, np.int64), np.full(n, -1, np.int64)
    checked = np.zeros(n, bool)
    checked[sorted(CHECKED_REF)] = True
    fixed_ids = []
    for k, lay in layouts().items():
        assert len(lay.elem_strs) <= 1 and len(lay.elem_ids) <= 1
        fixed[k], ew[k] = lay.fixed_words, lay.elem_words
        str_pos[k] = lay.elem_strs[0] if lay.elem_strs else -1
        id_pos[k] = lay.elem_ids[0] if lay.elem_ids else -1
        if lay.fixed_ids:
            fixed_ids.append((k, lay.fixed_ids))
    return fixed, ew, str_pos, id_pos, checked, tuple(fixed_ids)




def _bad_types(parsed: LibbpfParse) -> Any:
    """Indexes (from ``start_id``) of the own types libbpf's sanity check rejects: a string offset
    past the strings, a checked id field >= type_cnt (not FWD's or FUNC_PROTO's return: Q12), a FUNC
    not referring to a FUNC_PROTO.  Vectorised over every record and element at once (a loop over
    the records of a small object, :func:`_bad_types_looped`, answers the same)."""
    btf = parsed.btf
    if 0 < btf.nr_types <= LOOP_MAX_TYPES:
        return _bad_types_looped(btf)
    return _bad_types_vectorised(btf, parsed.cols)


def _bad_types_vectorised(btf: Btf, cols: Columns) -> Any:
    """:func:`_bad_types` over numpy columns."""
    import numpy as np

    if btf.nr_types == 0:
        return np.zeros(0, np.int64)
    tc = btf.type_cnt
    str_end = btf.start_str_off + btf.str_len
    kind, words, offs = cols.kind, cols.words, cols.offs
    fixed, ew, str_pos, id_pos, checked, fixed_ids = _sanity_tables(btf.info)
    bad = cols.name_off >= str_end
    bad |= checked[kind] & (cols.size_type >= tc)
    for k, positions in fixed_ids:
        sel = np.flatnonzero(kind == k)
        for i in positions:
            bad[sel] |= words[offs[sel] + 3 + i] >= tc
    func = np.flatnonzero((kind == Kind.FUNC) & (cols.size_type < tc))
    if len(func):
        tgt = cols.size_type[func].astype(np.int64)
        own = tgt >= btf.start_id
        tk = np.zeros(len(tgt), dtype=np.int64)
        tk[own] = kind[tgt[own] - btf.start_id]
        for j in np.flatnonzero(~own & (tgt > 0)):
            tk[j] = btf.type(int(tgt[j])).kind
        bad[func] |= tk != Kind.FUNC_PROTO
    sel = np.flatnonzero((ew[kind] > 0) & (cols.vlen > 0))
    if len(sel):  # every element of every type at once
        cnt = cols.vlen[sel].astype(np.int64)
        owner = np.repeat(sel, cnt)
        within = np.arange(int(cnt.sum()), dtype=np.int64) - np.repeat(np.cumsum(cnt) - cnt, cnt)
        ek = kind[owner]
        start = offs[owner] + 3 + fixed[ek] + within * ew[ek]
        sp, ip = str_pos[ek], id_pos[ek]
        bad_el = ((sp >= 0) & (words[start + np.maximum(sp, 0)] >= str_end)) \
            | ((ip >= 0) & (words[start + np.maximum(ip, 0)] >= tc))
        bad[owner[bad_el]] = True
    return np.flatnonzero(bad)


def _bad_types_looped(btf: Btf) -> list[int]:
    """:func:`_bad_types` one record at a time, over the word index (no numpy)."""
    fixed, ew, str_pos, id_pos, checked, fixed_ids = (
        t if isinstance(t, tuple) else t.tolist() for t in _sanity_tables(btf.info))
    fixed_of = dict(fixed_ids)
    words, starts = btf.flat_words()
    tc, start_id = btf.type_cnt, btf.start_id
    str_end = btf.start_str_off + btf.str_len
    kmask, vmask = btf.info.kind_mask, btf.info.vlen_mask
    kinds = [(words[o + 1] >> 24) & kmask for o in starts]
    out: list[int] = []
    for i, o in enumerate(starts):
        k = kinds[i]
        ref = words[o + 2]
        bad = words[o] >= str_end or (checked[k] and ref >= tc)
        if not bad and k in fixed_of:
            bad = any(words[o + 3 + p] >= tc for p in fixed_of[k])
        if not bad and k == Kind.FUNC and ref < tc:
            target = kinds[ref - start_id] if ref >= start_id else (btf.type(ref).kind if ref else 0)
            bad = target != Kind.FUNC_PROTO
        vlen = words[o + 1] & vmask
        if not bad and vlen and ew[k]:
            at, step, sp, ip = o + 3 + fixed[k], ew[k], str_pos[k], id_pos[k]
            for e in range(at, at + vlen * step, step):
                if (sp >= 0 and words[e + sp] >= str_end) or (ip >= 0 and words[e + ip] >= tc):
                    bad = True
                    break
        if bad:
            out.append(i)
    return out


def _type_problems(c: Checker, btf: Btf, tid: int) -> list[tuple[int, Problem]]:
    """What ``btf_validate_type`` finds wrong with one type, in libbpf's order, each with its listing
    group (:data:`_NAME` ... :data:`_TARGET`); libbpf logs the first."""
    t = btf.type(tid)
    k = t.kind
    cnt = btf.type_cnt
    str_end = btf.start_str_off + btf.str_len
    head = f"btf: type [{tid}]: "
    out: list[tuple[int, Problem]] = []

    def bad_ref(ref: int, off: int | None, label: str) -> None:
        if ref >= cnt:
            out.append((_REF, Problem(Violation("ref.range", f"{c.desc(tid, t)}{label} references type {ref} but "
                                                f"type_cnt is {cnt}", off, tid),
                                      f"{head}invalid referenced type ID {ref}")))

    if t.name_off >= str_end:
        out.append((_NAME, Problem(Violation("name.offset", f"{kind_name(k)} name offset {t.name_off} is outside "
                                             "the strings", c.field(tid, t, pos=0), tid),
                                   f"{head}invalid type name (string offset {t.name_off})")))
    if k in CHECKED_REF:
        bad_ref(t.size_type, c.field(tid, t, pos=2), "")
        if k == Kind.FUNC and t.size_type < cnt:
            target = t.size_type
            tk = btf.type(target).kind if target else 0
            if tk != Kind.FUNC_PROTO:
                what = f"[{target}] {kind_name(tk)}" if target else "void"
                out.append((_TARGET, Problem(Violation("ref.kind", f"{c.desc(tid, t)}: references {what}, not a "
                                                       "FUNC_PROTO", c.field(tid, t, pos=2), tid),
                                             f"{head}referenced type [{target}] is not FUNC_PROTO")))
    elif k == Kind.ARRAY:
        bad_ref(t.fixed[0], c.field(tid, t, fixed=0), ": element type")
        bad_ref(t.fixed[1], c.field(tid, t, fixed=1), ": index type")
    lay = layouts().get(k)
    for j, e in enumerate(t.elems if lay is not None else ()):
        for p in lay.elem_strs:
            if e[p] >= str_end:
                out.append((_ELEM_NAME, Problem(
                    Violation("name.offset", f"{c.desc(tid, t)}: {_ELEM_NOUN[k]} #{j} name offset {e[p]} is "
                              "outside the strings", c.field(tid, t, elem=j, pos=p), tid),
                    f"{head}invalid {_ELEM_NAME_LOG[k]} (string offset {e[p]})")))
        for p in lay.elem_ids:
            bad_ref(e[p], c.field(tid, t, elem=j, pos=p), ": " + _elem_label(c, k, j, e))
    if not out:  # the vectorised check and this one disagree: a bug, but never a silent accept
        out.append((_NAME, Problem(Violation("internal", f"{c.desc(tid, t)}: rejected by the sanity check",
                                             c.rec(tid), tid), f"{head}invalid")))
    return out


def _elem_label(c: Checker, k: int, j: int, e: tuple[int, ...]) -> str:
    if k == Kind.DATASEC:
        return f"variable #{j}"
    name = c.strs.at(e[0]) if e[0] else None
    noun = _ELEM_NOUN[k]
    return f"{noun} {show(name)}" if name else f"{noun} #{j}"


__all__ = ["CHECKED_REF", "LibbpfParse", "LibbpfReject", "parse", "violations"]

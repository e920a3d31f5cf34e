"""bpftool's text forms of BTF: ``bpftool btf dump file F format raw`` and its ``-j`` JSON.

:func:`dump_raw` is byte-identical to bpftool 7.1 (libbpf 1.1) when encoded as latin-1: names are
printed as raw bytes without escaping, so the returned ``str`` holds one character per output byte
(``dump_raw(b).encode("latin-1")`` is bpftool's stdout). :func:`dump_json` returns the objects of
bpftool's ``{"types": [...]}`` list with the same field names and order.

For speed the raw dump reads the model's word array and record index directly (types the model
has decoded, and maybe edited, are taken from the model; see :meth:`spec.model.Btf.flat_words`) and
prints a kind at a time: one list comprehension per line shape, each line written at its place in
the output. The records are read one by one (:class:`_ListRecords`) or, for large objects, as numpy
columns (:class:`_ArrayRecords`, names by table lookup); both feed the one printer,
:func:`_print_records`. The word position of every printed field is looked up by name in
:func:`btfspec.spec.fastpath.layouts`. An object of more than ``FORK_MIN_WORDS`` words of records is
split in two by lines: a forked helper (:mod:`btfspec.spec.forked`) formats the second part on another
core while this process formats the first, both naming types from one string table built before the
fork. On a 125.9k-type vmlinux (12 MB of text) loading plus dumping takes 1.4-1.5x bpftool's own
time, process start included for bpftool (2.0x in one process).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Iterator, Sequence
from itertools import accumulate
from typing import Any

from btfspec.spec.fastpath import VECTOR_MIN_WORDS, layouts, step_tables
from btfspec.spec.forked import ForkedCall, can_fork
from btfspec.spec.kinds import INFO_WIDE, KIND_MAX, LINKAGE_NAMES, Kind
from btfspec.spec.model import Btf

# bpftool's btf_kind_str: index 0 (void, and any kind above KIND_MAX) is "UNKNOWN"; one entry per
# 7-bit kind value, so wide-info BTF (kinds up to 127) indexes it too.
KIND_STR: tuple[str, ...] = tuple(Kind(k).name if 0 < k <= KIND_MAX else "UNKNOWN" for k in range(INFO_WIDE.kinds))
# Kind numbers as plain ints (IntEnum comparisons are slower).
INT, PTR, ARRAY, STRUCT, UNION, ENUM, FWD, TYPEDEF, VOLATILE, CONST, RESTRICT, FUNC, FUNC_PROTO, VAR, \
    DATASEC, FLOAT, DECL_TAG, TYPE_TAG, ENUM64 = (int(k) for k in Kind if k != Kind.UNKN)
REF_LINE_KINDS = frozenset({PTR, CONST, VOLATILE, RESTRICT, TYPEDEF, TYPE_TAG})  # "type_id=N" lines
ELEM_LINE_KINDS = frozenset({STRUCT, UNION, ENUM, ENUM64, FUNC_PROTO, DATASEC})  # a line per element
PRINTED_KINDS = frozenset({INT, ARRAY, FWD, FUNC, VAR, FLOAT, DECL_TAG}) | REF_LINE_KINDS | ELEM_LINE_KINDS
# btf_int_enc_str: any other value, including SIGNED|CHAR (3), is "UNKN".
INT_ENC_STR: dict[int, str] = {0: "(none)", 1: "SIGNED", 2: "CHAR", 4: "BOOL"}
UNKNOWN_LINKAGE = "(unknown)"
FORK_MIN_WORDS = 1 << 18  # a dump of fewer words of records (1 MB) is not worth a forked helper
PARENT_SHARE = 0.5  # of the lines, when a helper formats the rest (it also joins, encodes and writes them)


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

    With ``prefill`` every string start of the own section is filled in one pass; other offsets (the
    middle of a string, the base's strings) are looked up on first use.
    """

    def __init__(self, btf: Btf, *, prefill: bool = True) -> None:
        if prefill:
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


def dump_raw(btf: Btf, *, start_id: int | None = None, fork: bool = True) -> str:
    """``bpftool btf dump file F [-B BASE] format raw`` as text (one character per output byte).

    Prints ids from ``start_id`` (default: the object's own types, as bpftool does for split BTF)
    to ``type_cnt - 1``; encode the result as latin-1 to get bpftool's bytes. ``fork``: let a forked
    helper format the second half of a large object on another core (:mod:`btfspec.spec.forked`).
    """
    return b"".join(dump_raw_chunks(btf, start_id=start_id, fork=fork)).decode("latin-1")


def dump_raw_chunks(btf: Btf, *, start_id: int | None = None, fork: bool = True) -> list[bytes]:
    """:func:`dump_raw` as bpftool's bytes, in runs of whole lines to write one after the other (a large
    object's text is never joined into one piece)."""
    out: list[bytes] = []
    for obj, first in _ranges(btf, start_id):
        _dump_own(obj, first, btf.type_cnt, out, btf, fork=fork)
    return out


def _line_run(lines: list[str]) -> bytes:
    """Lines as one run of bpftool's bytes, each ending in a newline (``lines`` gets an empty last
    one: the text is not copied again to end it)."""
    lines.append("")
    return "\n".join(lines).encode("latin-1")


def _datasec_target(btf: Btf, tid: int, names: _Names, type_cnt: int) -> str:
    """`` (KIND 'name')`` of a DATASEC entry's type, printed only for ids below ``type_cnt``."""
    if tid >= type_cnt:
        return ""
    if tid == 0:  # libbpf's void: kind 0, no name
        return " (UNKNOWN '(anon)')"
    t = btf.type(tid)
    return f" ({KIND_STR[t.kind]} '{names[t.name_off]}')"


class _ListRecords:
    """The records to print, read one by one from the word array (small objects, hand-made models).

    :class:`_ArrayRecords` answers the same questions with numpy for large objects; the printer
    (:func:`_print_records`) cannot tell them apart. A selection is a list of record numbers; the
    output is a list of lines, each written at the position the record and element numbers give it.
    """

    def __init__(self, words: Sequence[int], starts: Sequence[int], btf: Btf, first: int, top: Btf) -> None:
        fixed, elem = _record_words(btf)
        kmask, vmask = btf.info.kind_mask, btf.info.vlen_mask
        self.words, self.first, self.names = words, first, _Names(top)
        self.starts = list(starts)
        infos = [words[p + 1] for p in self.starts]
        self.kinds = [(i >> 24) & kmask for i in infos]
        self.vlens = [i & vmask for i in infos]
        self.kflags = [i >> 31 for i in infos]
        self.elem_at = [p + fixed[k] for p, k in zip(self.starts, self.kinds, strict=True)]
        self.elem_words = elem
        self.heads: list[int] = []
        line = 0
        for k, v in zip(self.kinds, self.vlens, strict=True):
            self.heads.append(line)
            line += 1 + (v if k in ELEM_LINE_KINDS else 0)
        self.total_lines = line

    def select(self, kinds: Collection[int], *, others: bool = False) -> list[int]:
        """The records of ``kinds`` (of every other kind with ``others``)."""
        return [i for i, k in enumerate(self.kinds) if (k in kinds) != others]

    def ids(self, sel: list[int]) -> list[int]:
        return [self.first + i for i in sel]

    def field(self, sel: list[int], pos: int) -> list[int]:
        w, starts = self.words, self.starts
        return [w[starts[i] + pos] for i in sel]

    def name_field(self, sel: list[int]) -> list[str]:
        return list(map(self.names.__getitem__, self.field(sel, 0)))

    def column(self, sel: list[int], values: list[int]) -> list[int]:
        return [values[i] for i in sel]

    def lines(self, sel: list[int]) -> list[int]:
        return [self.heads[i] for i in sel]

    def elements(self, sel: list[int], name_pos: int | None, positions: Sequence[int]
                 ) -> tuple[list[str], list[list[int]], list[int], list[int]]:
        """Per element of the selected records: its name (the string at ``name_pos``), its words at
        ``positions``, its output line, and its record's kind_flag."""
        w = self.words
        cols: list[list[int]] = [[] for _ in positions]
        name_offs, lines, kflags = [], [], []
        for i in sel:
            q, step, head, kf = self.elem_at[i], self.elem_words[self.kinds[i]], self.heads[i], self.kflags[i]
            for e in range(self.vlens[i]):
                at = q + e * step
                if name_pos is not None:
                    name_offs.append(w[at + name_pos])
                for col, pos in zip(cols, positions, strict=True):
                    col.append(w[at + pos])
                lines.append(head + 1 + e)
                kflags.append(kf)
        return list(map(self.names.__getitem__, name_offs)), cols, lines, kflags

    def new_lines(self) -> list[str | None]:
        return [None] * self.total_lines

    @staticmethod
    def place(lines: list[str | None], at: list[int], texts: list[str]) -> None:
        for i, text in zip(at, texts, strict=True):
            lines[i] = text

    @staticmethod
    def finish(lines: list[str | None]) -> list[str]:
        return lines  # type: ignore[return-value]


def _element_lines(kinds: Any, vlens: Any, btf: Btf) -> Any:
    """Per record (numpy arrays of its kind and vlen): how many element lines it prints below its own."""
    import numpy as np

    shows = np.zeros(btf.info.kinds, dtype=bool)
    shows[list(ELEM_LINE_KINDS)] = True
    return np.where(shows[kinds], vlens, 0)


class _StringTable:
    """``top``'s names for whole arrays of string offsets: ``table`` holds every string of its own
    section, then "(anon)", then a marker for offsets looked up one by one (the middle of a string, the
    base's strings); ``index`` maps an offset in the section to its string's number (or the marker).

    Built once per dump: a forked helper shares the parent's instead of building its own.
    """

    def __init__(self, top: Btf) -> None:
        import numpy as np

        self.np = np
        self.names = _Names(top, prefill=False)
        own = top.strings
        nuls = np.flatnonzero(np.frombuffer(own, dtype=np.uint8) == 0)
        parts = own.decode("latin-1").split("\0")[:len(nuls)]
        self.table = np.array([*parts, "(anon)", None], dtype=object)
        self.index = np.full(len(own) + 1, len(parts) + 1, dtype=np.int32)
        if parts:
            self.index[0] = 0
        self.index[nuls[:-1] + 1] = np.arange(1, len(parts), dtype=np.int32)
        self.base = top.start_str_off

    def names_of(self, offs: Any) -> list[str]:
        """The names at the string offsets ``offs`` (an array)."""
        np, index, table = self.np, self.index, self.table
        local = offs.astype(np.int64) - self.base
        inside = (local >= 0) & (local < len(index))
        pick = index[np.where(inside, local, len(index) - 1)]
        pick[~inside] = len(table) - 1
        pick[offs == 0] = len(table) - 2
        out = table[pick].tolist()
        for i in np.flatnonzero(pick == len(table) - 1).tolist():  # not a string start of the section
            out[i] = self.names[int(offs[i])]
        return out


class _ArrayRecords:
    """:class:`_ListRecords` over numpy arrays: each question is a few gathers over all records, and
    names are looked up in a :class:`_StringTable` instead of one by one.

    Only for records that end within the word array (:meth:`fits`); a selection is an index array.
    """

    def __init__(self, words: Any, starts: Any, btf: Btf, first: int, top: Btf,
                 strings: _StringTable | None = None) -> None:
        import numpy as np

        self.np = np
        fixed, elem = (np.array(t, dtype=np.int64) for t in _record_words(btf))
        self.words, self.first, self.starts = words, first, starts
        info = words[starts + 1]
        self.kinds = (info >> 24) & btf.info.kind_mask
        self.vlens = (info & btf.info.vlen_mask).astype(np.int64)
        self.kflags = info >> 31
        self.elem_at = starts + fixed[self.kinds]
        self.elem_words = elem
        printed = _element_lines(self.kinds, self.vlens, btf)
        ends = np.cumsum(printed)
        self.heads = np.arange(len(starts)) + ends - printed
        self.total_lines = len(starts) + (int(ends[-1]) if len(ends) else 0)
        self.strings = strings if strings is not None else _StringTable(top)
        self.names = self.strings.names
        self.kind_order = np.argsort(self.kinds, kind="stable")
        self.kind_bounds = np.searchsorted(self.kinds[self.kind_order], np.arange(btf.info.kinds + 1))

    @staticmethod
    def fits(words: Any, starts: Any, btf: Btf) -> bool:
        """True when every record of ``starts`` ends within ``words`` (as every record of a parsed or
        built object does), so that gathering reads what :class:`_ListRecords` reads."""
        import numpy as np

        fixed, elem = (np.array(t, dtype=np.int64) for t in _record_words(btf))
        info = words[starts + 1]
        kinds = (info >> 24) & btf.info.kind_mask
        ends = starts + fixed[kinds] + elem[kinds] * (info & btf.info.vlen_mask)
        return bool(ends.max() <= len(words))

    def select(self, kinds: Collection[int], *, others: bool = False) -> Any:
        np, order, bounds = self.np, self.kind_order, self.kind_bounds
        chosen = [k for k in range(len(bounds) - 1) if (k in kinds) != others and bounds[k] < bounds[k + 1]]
        if len(chosen) == 1:
            return order[bounds[chosen[0]]:bounds[chosen[0] + 1]]
        return np.sort(np.concatenate([order[bounds[k]:bounds[k + 1]] for k in chosen] or [order[:0]]))

    def ids(self, sel: Any) -> list[int]:
        return (sel + self.first).tolist()

    def field(self, sel: Any, pos: int) -> list[int]:
        return self.words[self.starts[sel] + pos].tolist()

    def name_field(self, sel: Any) -> list[str]:
        return self.strings.names_of(self.words[self.starts[sel]])

    def column(self, sel: Any, values: Any) -> list[int]:
        return values[sel].tolist()

    def lines(self, sel: Any) -> Any:
        return self.heads[sel]

    def elements(self, sel: Any, name_pos: int | None, positions: Sequence[int]
                 ) -> tuple[list[str], list[list[int]], list[int], list[int]]:
        np = self.np
        cnt = self.vlens[sel]
        total = int(cnt.sum())
        owner = np.repeat(np.arange(len(sel)), cnt)  # the selected record each element belongs to
        within = np.arange(total) - (np.cumsum(cnt) - cnt)[owner]
        rec = sel[owner]
        at = self.elem_at[rec] + self.elem_words[self.kinds[rec]] * within
        names = self.strings.names_of(self.words[at + name_pos]) if name_pos is not None else []
        cols = [self.words[at + pos].tolist() for pos in positions]
        return names, cols, self.heads[rec] + 1 + within, self.kflags[rec].tolist()

    def new_lines(self) -> Any:
        return self.np.empty(self.total_lines, dtype=object)

    @staticmethod
    def place(lines: Any, at: Any, texts: list[str]) -> None:
        if len(at):
            lines[at] = texts

    @staticmethod
    def finish(lines: Any) -> list[str]:
        return lines.tolist()


_Records = _ListRecords | _ArrayRecords
Flat = tuple[Sequence[int], Sequence[int]]  # a model's flat_words(): record words and record starts


def _records(flat: Flat, btf: Btf, first: int, stop: int, top: Btf, strings: _StringTable | None = None
             ) -> _Records:
    """The own records of ``btf`` (``flat``: its :meth:`~btfspec.spec.model.Btf.flat_words`) with ids
    ``first`` to ``stop - 1``, read with numpy when there are many (naming them from ``strings`` when
    given)."""
    words, starts = flat
    skip, end = first - btf.start_id, stop - btf.start_id
    if len(words) >= VECTOR_MIN_WORDS and len(starts):
        import numpy as np

        w = np.frombuffer(words, dtype=np.uint32)
        s = np.frombuffer(starts, dtype=np.uint32).astype(np.int64)
        if _ArrayRecords.fits(w, s, btf):
            return _ArrayRecords(w, s[skip:end], btf, first, top, strings)
    return _ListRecords(words, starts[skip:end], btf, first, top)


def _own_lines(flat: Flat, btf: Btf, first: int, stop: int, type_cnt: int, top: Btf,
               strings: _StringTable | None = None) -> list[str]:
    """The lines of ``btf``'s own types with ids ``first`` to ``stop - 1``."""
    recs = _records(flat, btf, first, stop, top, strings)
    lines = recs.new_lines()
    _print_records(recs, top, type_cnt, lines)
    return recs.finish(lines)


def _halfway(flat: Flat, btf: Btf, first: int) -> int | None:
    """The id where a forked helper (:mod:`btfspec.spec.forked`) takes over the lines of the records from
    ``first`` on, when they are many enough for that to pay; the caller keeps ``PARENT_SHARE`` of them."""
    words, starts = flat
    skip = first - btf.start_id
    if skip >= len(starts) or len(words) - starts[skip] < FORK_MIN_WORDS or not can_fork():
        return None
    import numpy as np

    w = np.frombuffer(words, dtype=np.uint32)
    s = np.frombuffer(starts, dtype=np.uint32).astype(np.int64)[skip:]
    if not _ArrayRecords.fits(w, s, btf):
        return None
    info = w[s + 1]
    lines = np.cumsum(1 + _element_lines((info >> 24) & btf.info.kind_mask, info & btf.info.vlen_mask, btf))
    mid = int(np.searchsorted(lines, lines[-1] * PARENT_SHARE))
    return first + mid if 0 < mid < len(s) else None


def _dump_own(btf: Btf, first: int, type_cnt: int, out: list[bytes], top: Btf, *, fork: bool) -> None:
    """Append the lines of ``btf``'s own types with ids >= ``first`` to ``out``; with ``fork``, a large
    object's second half is formatted by a forked helper meanwhile (the same lines: it only saves time)."""
    stop, flat = btf.type_cnt, btf.flat_words()
    mid = _halfway(flat, btf, first) if fork else None
    if mid is None:
        out.append(_line_run(_own_lines(flat, btf, first, stop, type_cnt, top)))
        return
    strings = _StringTable(top)  # built before the fork: the helper shares it
    helper = ForkedCall(lambda: _line_run(_own_lines(flat, btf, mid, stop, type_cnt, top, strings)))
    try:
        out.append(_line_run(_own_lines(flat, btf, first, mid, type_cnt, top, strings)))
    except BaseException:
        helper.close()
        raise
    second = helper.result()
    if second is None:
        second = [_line_run(_own_lines(flat, btf, mid, stop, type_cnt, top, strings))]
    out.extend(second)


@functools.cache
def _linkage_by_vlen() -> list[str]:
    """FUNC's linkage is its vlen: its name for every 16-bit value, then "(unknown)" for any larger one."""
    names = [UNKNOWN_LINKAGE] * 0x10001
    for v, name in LINKAGE_NAMES.items():
        names[v] = name
    return names


def _print_records(r: _Records, top: Btf, type_cnt: int, lines: Any) -> None:
    """Write the lines of every record ``r`` holds into ``lines``, a kind at a time."""
    P = _pos()
    kstr, link, place, names = KIND_STR, _linkage_by_vlen(), r.place, r.names

    def head(kinds: Collection[int]) -> tuple[Any, list[int], list[str], list[int]]:
        sel = r.select(kinds)
        return sel, r.ids(sel), r.name_field(sel), r.field(sel, 2)

    sel, ids, ns, st = head((FUNC,))
    place(lines, r.lines(sel), [f"[{t}] FUNC '{n}' type_id={y} linkage={link[v] if v < 0x10000 else link[-1]}"
                                for t, n, y, v in zip(ids, ns, st, r.column(sel, r.vlens), strict=True)])
    sel, ids, ns, st = head(REF_LINE_KINDS)
    place(lines, r.lines(sel), [f"[{t}] {kstr[k]} '{n}' type_id={y}"
                                for t, k, n, y in zip(ids, r.column(sel, r.kinds), ns, st, strict=True)])
    sel, ids, ns, st = head((FUNC_PROTO,))
    place(lines, r.lines(sel), [f"[{t}] FUNC_PROTO '{n}' ret_type_id={y} vlen={v}"
                                for t, n, y, v in zip(ids, ns, st, r.column(sel, r.vlens), strict=True)])
    pn, (pt,), at, _ = r.elements(sel, P["p_name"], (P["p_type"],))
    place(lines, at, [f"\t'{n}' type_id={t}" for n, t in zip(pn, pt, strict=True)])
    sel, ids, ns, st = head((STRUCT, UNION))
    place(lines, r.lines(sel), [f"[{t}] {kstr[k]} '{n}' size={y} vlen={v}" for t, k, n, y, v in
                                zip(ids, r.column(sel, r.kinds), ns, st, r.column(sel, r.vlens), strict=True)])
    mn, (mt, mo), at, kfs = r.elements(sel, P["m_name"], (P["m_type"], P["m_off"]))
    place(lines, at, [f"\t'{n}' type_id={t} bits_offset={o & 0xFFFFFF} bitfield_size={o >> 24}"
                      if kf and o >> 24 else f"\t'{n}' type_id={t} bits_offset={o}"
                      for n, t, o, kf in zip(mn, mt, mo, kfs, strict=True)])
    for kind in (ENUM, ENUM64):
        sel, ids, ns, st = head((kind,))
        place(lines, r.lines(sel), [f"[{t}] {kstr[kind]} '{n}' encoding={'SIGNED' if kf else 'UNSIGNED'} "
                                    f"size={y} vlen={v}" for t, n, y, v, kf in
                                    zip(ids, ns, st, r.column(sel, r.vlens), r.column(sel, r.kflags), strict=True)])
        if kind == ENUM:
            en, (ev,), at, kfs = r.elements(sel, P["e_name"], (P["e_val"],))
            place(lines, at, [f"\t'{n}' val={_s32(v) if kf else v}" for n, v, kf in zip(en, ev, kfs, strict=True)])
        else:
            en, (lo, hi), at, kfs = r.elements(sel, P["e64_name"], (P["e64_lo"], P["e64_hi"]))
            place(lines, at, [f"\t'{n}' val={_s64(h << 32 | v)}LL" if kf else f"\t'{n}' val={h << 32 | v}ULL"
                              for n, v, h, kf in zip(en, lo, hi, kfs, strict=True)])
    sel, ids, ns, _ = head((ARRAY,))
    place(lines, r.lines(sel), [f"[{t}] ARRAY '{n}' type_id={y} index_type_id={x} nr_elems={c}" for t, n, y, x, c in
                                zip(ids, ns, r.field(sel, P["arr_type"]), r.field(sel, P["arr_index"]),
                                    r.field(sel, P["arr_nelems"]), strict=True)])
    sel, ids, ns, st = head((INT,))
    place(lines, r.lines(sel), [f"[{t}] INT '{n}' size={y} bits_offset={(d >> 16) & 0xFF} nr_bits={d & 0xFF} "
                                f"encoding={INT_ENC_STR.get((d >> 24) & 0x0F, 'UNKN')}" for t, n, y, d in
                                zip(ids, ns, st, r.field(sel, P["int_data"]), strict=True)])
    sel, ids, ns, st = head((VAR,))  # the only field printed with a comma
    place(lines, r.lines(sel), [f"[{t}] VAR '{n}' type_id={y}, linkage={LINKAGE_NAMES.get(li, UNKNOWN_LINKAGE)}"
                                for t, n, y, li in zip(ids, ns, st, r.field(sel, P["var_linkage"]), strict=True)])
    sel, ids, ns, st = head((DECL_TAG,))  # kind_flag not shown
    place(lines, r.lines(sel), [f"[{t}] DECL_TAG '{n}' type_id={y} component_idx={_s32(c)}"
                                for t, n, y, c in zip(ids, ns, st, r.field(sel, P["tag_idx"]), strict=True)])
    sel, ids, ns, _ = head((FWD,))
    place(lines, r.lines(sel), [f"[{t}] FWD '{n}' fwd_kind={'union' if kf else 'struct'}"
                                for t, n, kf in zip(ids, ns, r.column(sel, r.kflags), strict=True)])
    sel, ids, ns, st = head((FLOAT,))
    place(lines, r.lines(sel), [f"[{t}] FLOAT '{n}' size={y}" for t, n, y in zip(ids, ns, st, strict=True)])
    sel, ids, ns, st = head((DATASEC,))
    place(lines, r.lines(sel), [f"[{t}] DATASEC '{n}' size={y} vlen={v}"
                                for t, n, y, v in zip(ids, ns, st, r.column(sel, r.vlens), strict=True)])
    _, (vt, vo, vs), at, _ = r.elements(sel, None, (P["v_type"], P["v_off"], P["v_size"]))
    place(lines, at, [f"\ttype_id={t} offset={o} size={s}{_datasec_target(top, t, names, type_cnt)}"
                      for t, o, s in zip(vt, vo, vs, strict=True)])
    # kind 0, or a kind only a layout section describes: bpftool prints no fields for it
    sel = r.select(PRINTED_KINDS, others=True)
    place(lines, r.lines(sel), [f"[{t}] {kstr[k]} '{n}'" for t, k, n in
                                zip(r.ids(sel), r.column(sel, r.kinds), r.name_field(sel), strict=True)])


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

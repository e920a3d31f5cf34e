"""The BTF model: types as raw 32-bit words with named accessors, id/name lookup, split bases.

A :class:`Btf` parsed from bytes keeps the blob and a word-offset index and decodes a type only
when it is asked for (vmlinux opens in a few times libbpf's ``btf__new``). Types are
:class:`BtfType` records holding the raw words, so re-encoding is exact; accessors give the
meaning of each field. Field iteration (:func:`id_fields`, :func:`str_fields`) follows libbpf's
``btf_field_iter`` order and is derived from the grammar's field names.
"""

from __future__ import annotations

import array
import functools
import struct
from collections.abc import Callable, Iterator
from typing import Any

from btfspec.spec.derived import ByteOrder
from btfspec.spec.errors import BtfError
from btfspec.spec.fastpath import (
    Header,
    KindLayoutEntries,
    index_types,
    layouts,
    pack_header,
    pack_layout,
    pack_words,
    read_header,
    read_layout,
    step_tables,
    type_words,
)
from btfspec.spec.gcpause import gc_paused
from btfspec.spec.kinds import (
    HDR_LEN,
    HDR_LEN_LAYOUT,
    INFO_CLASSIC,
    INFO_WIDE,
    LAYOUT_ENTRY_SIZE,
    InfoLayout,
    Kind,
    info_kflag,
    kind_name,
)


@functools.cache
def _word_tables(info: InfoLayout = INFO_CLASSIC, kind_layout: KindLayoutEntries | None = None
                 ) -> tuple[Any, Any]:
    """Per kind value: fixed trailing words and words per element (0 for kinds nobody can size)."""
    import numpy as np

    fixed, elem = step_tables(info, kind_layout)
    fw = np.array([max(f - 3, 0) for f in fixed], np.int64)
    ew = np.array(elem, np.int64)
    return fw, ew


LOOP_MAX_TYPES = 256  # up to this many own types, scans loop over the records (numpy's per-call cost dominates)
_KIND_MASK, _VLEN_MASK = INFO_CLASSIC.kind_mask, INFO_CLASSIC.vlen_mask
_WIDE_KIND_MASK, _WIDE_VLEN_MASK = INFO_WIDE.kind_mask, INFO_WIDE.vlen_mask


class BtfType:
    """One type record: ``name_off``, ``info``, ``size_type`` and the kind's trailing words."""

    __slots__ = ("name_off", "info", "size_type", "fixed", "elems")

    def __init__(self, name_off: int, info: int, size_type: int,
                 fixed: tuple[int, ...] = (), elems: list[tuple[int, ...]] | None = None) -> None:
        self.name_off = name_off
        self.info = info
        self.size_type = size_type
        self.fixed = fixed
        self.elems = elems if elems is not None else []

    # --- info word -------------------------------------------------------------------------
    @property
    def kind(self) -> int:
        return (self.info >> 24) & _KIND_MASK  # info_kind(self.info) inlined: the hottest property

    @property
    def vlen(self) -> int:
        return self.info & _VLEN_MASK

    @property
    def kflag(self) -> int:
        return info_kflag(self.info)

    @property
    def kind_name(self) -> str:
        return kind_name(self.kind)

    # --- named views -----------------------------------------------------------------------
    @property
    def size(self) -> int:
        """``size`` of INT/STRUCT/UNION/ENUM/ENUM64/DATASEC/FLOAT."""
        return self.size_type

    @property
    def type(self) -> int:
        """Referenced id of PTR/TYPEDEF/modifiers/FUNC/VAR/DECL_TAG/TYPE_TAG/FWD, or ARRAY element."""
        return self.fixed[0] if self.kind == Kind.ARRAY else self.size_type

    @property
    def int_encoding(self) -> int:
        return (self.fixed[0] >> 24) & 0x0F

    @property
    def int_offset(self) -> int:
        return (self.fixed[0] >> 16) & 0xFF

    @property
    def int_bits(self) -> int:
        return self.fixed[0] & 0xFF

    def copy(self) -> BtfType:
        """An independent copy (elements are immutable tuples; the info layout is kept)."""
        return type(self)(self.name_off, self.info, self.size_type, self.fixed, list(self.elems))

    def words(self) -> list[int]:
        """The record as 32-bit words."""
        out = [self.name_off, self.info, self.size_type, *self.fixed]
        for e in self.elems:
            out.extend(e)
        return out

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BtfType) and self.words() == other.words()

    def __hash__(self) -> int:
        return hash(tuple(self.words()))

    def __repr__(self) -> str:
        return f"BtfType({self.kind_name}, name_off={self.name_off}, size_type={self.size_type}, " \
               f"fixed={self.fixed}, elems={self.elems})"


class WideBtfType(BtfType):
    """A type record read with the wide ``info`` layout (7-bit kind, 24-bit vlen; libbpf 9801e029)."""

    __slots__ = ()

    @property
    def kind(self) -> int:
        return (self.info >> 24) & _WIDE_KIND_MASK

    @property
    def vlen(self) -> int:
        return self.info & _WIDE_VLEN_MASK


def type_class(info: InfoLayout) -> type[BtfType]:
    """The record class that reads ``info`` words with this layout."""
    return WideBtfType if info is INFO_WIDE else BtfType


def s32(v: int) -> int:
    """Reinterpret a u32 word as signed."""
    return v - (1 << 32) if v & 0x80000000 else v


def u32(v: int) -> int:
    """Two's-complement u32 of a (possibly negative) int."""
    return v & 0xFFFFFFFF


@functools.cache
def _field_table() -> dict[int, tuple[bool, tuple[int, ...], tuple[int, ...], tuple[int, ...], int, int]]:
    """Per known kind, from :func:`layouts`: (prefix is an id, fixed id positions, element id
    positions, element string positions, words before the elements, words per element)."""
    return {k: (lay.prefix_is_id, lay.fixed_ids, lay.elem_ids, lay.elem_strs, 3 + lay.fixed_words,
                lay.elem_words) for k, lay in layouts().items()}


def id_fields(t: BtfType) -> list[int]:
    """Values of the type-id fields, in libbpf's field-iterator order."""
    row = _field_table().get(t.kind)
    if row is None:
        return []
    prefix_is_id, fixed_ids, elem_ids, *_ = row
    out = [t.size_type] if prefix_is_id else []
    if fixed_ids:
        fixed = t.fixed
        out += [fixed[i] for i in fixed_ids]
    if elem_ids and t.elems:
        if len(elem_ids) == 1:
            j = elem_ids[0]
            out += [e[j] for e in t.elems]
        else:
            out += [e[i] for e in t.elems for i in elem_ids]
    return out


def str_fields(t: BtfType) -> list[int]:
    """Values of the string-offset fields, in libbpf's field-iterator order."""
    row = _field_table().get(t.kind)
    out = [t.name_off]
    if row is not None and row[3] and t.elems:
        out += [e[i] for e in t.elems for i in row[3]]
    return out


def _map_elems(t: BtfType, positions: tuple[int, ...], fn: Callable[[int], int]) -> None:
    elems = t.elems
    for n, e in enumerate(elems):
        le = list(e)
        for i in positions:
            le[i] = fn(le[i])
        elems[n] = tuple(le)


def map_ids(t: BtfType, fn: Callable[[int], int]) -> None:
    """Replace every type-id field ``v`` with ``fn(v)`` in place, in iterator order."""
    row = _field_table().get(t.kind)
    if row is None:
        return
    prefix_is_id, fixed_ids, elem_ids, *_ = row
    if prefix_is_id:
        t.size_type = fn(t.size_type)
    if fixed_ids:
        f = list(t.fixed)
        for i in fixed_ids:
            f[i] = fn(f[i])
        t.fixed = tuple(f)
    if elem_ids and t.elems:
        _map_elems(t, elem_ids, fn)


def map_strs(t: BtfType, fn: Callable[[int], int]) -> None:
    """Replace every string-offset field ``s`` with ``fn(s)`` in place, in iterator order."""
    t.name_off = fn(t.name_off)
    row = _field_table().get(t.kind)
    if row is not None and row[3] and t.elems:
        _map_elems(t, row[3], fn)


def blanked(t: BtfType) -> tuple[list[int], list[int]]:
    """The record's words with every type-id and string-offset field zeroed, and the string offsets
    (:func:`str_fields`' order): what :func:`map_ids` and :func:`map_strs` with ``0`` would leave."""
    words = t.words()
    strs = [words[0]]
    words[0] = 0
    row = _field_table().get(t.kind)
    if row is None:
        return words, strs
    prefix_is_id, fixed_ids, elem_ids, elem_strs, start, step = row
    n = len(t.elems)
    if len(words) != start + n * step:  # a hand-made record off its kind's layout: field by field
        c = t.copy()
        map_ids(c, lambda v: 0)
        map_strs(c, lambda v: 0)
        return c.words(), str_fields(t)
    if prefix_is_id:
        words[2] = 0
    for i in fixed_ids:
        words[3 + i] = 0
    if n:
        zeros = [0] * n
        for j in elem_ids:
            words[start + j::step] = zeros
        if len(elem_strs) == 1:
            j = start + elem_strs[0]
            strs += words[j::step]
            words[j::step] = zeros
        elif elem_strs:
            strs += [e[i] for e in t.elems for i in elem_strs]
            for j in elem_strs:
                words[start + j::step] = zeros
    return words, strs


class Btf:
    """A BTF object: own types and strings, plus an optional base (split BTF)."""

    def __init__(self, *, base: Btf | None = None, order: ByteOrder | None = None,
                 strings: bytes | memoryview | None = None, info: InfoLayout = INFO_CLASSIC,
                 start_str_off: int | None = None, kind_layout: KindLayoutEntries | None = None) -> None:
        self.base = base
        self.order: ByteOrder = order or (base.order if base is not None else "little")
        self.start_id = base.type_cnt if base is not None else 1
        if start_str_off is None:
            start_str_off = base.str_len_total if base is not None else 0
        self.start_str_off = start_str_off
        self.info = info  # how kind and vlen sit in each info word
        self.kind_layout = kind_layout  # own layout section entries (None: no layout section)
        self.sizing_layout: KindLayoutEntries | None = None  # the entries unknown kinds were sized from
        self.header = Header(order=self.order)
        self.raw: bytes | None = None  # the blob this object was parsed from (not kept in sync)
        self._words: array.array | None = None
        self._offsets: array.array | None = None
        self._types: list[BtfType | None] = []
        if strings is None:
            strings = b"" if base is not None else b"\0"
        self._strings = bytearray(strings)
        self._str_index: dict[bytes, int] | None = None
        self._name_index: dict[bytes, list[int]] | None = None
        self._steps: tuple[Any, Any, tuple[list[int], list[int]]] | None = None  # _decode's tables, with keys

    # --- construction ------------------------------------------------------------------------
    @classmethod
    def from_bytes(cls, blob: bytes, base: Btf | None = None, *, info: InfoLayout = INFO_CLASSIC,
                   use_layout: bool = False, start_str_off: int | None = None) -> Btf:
        """Parse a blob (lazily: types are decoded on access). Raises :class:`BtfError`.

        ``info``: the info-word layout; ``use_layout``: read the layout section and size kinds the
        grammar does not know from it (falling back to the base's, as libbpf does); ``start_str_off``:
        where the own strings start (default: the base's cumulative end, libbpf's v1.7 rule).
        """
        hdr = read_header(blob)
        s0 = hdr.hdr_len + hdr.str_off
        own_layout = read_layout(blob, hdr) if use_layout else None
        btf = cls(base=base, order=hdr.order, strings=memoryview(blob)[s0:s0 + hdr.str_len], info=info,
                  start_str_off=start_str_off, kind_layout=own_layout)
        if use_layout:
            btf.sizing_layout = own_layout if own_layout is not None else \
                (base.kind_layout if base is not None else None)
        btf.header = hdr
        btf.raw = blob
        btf._words = type_words(blob, hdr)
        btf._offsets = index_types(btf._words, hdr, btf.start_id, info, btf.sizing_layout)
        btf._types = [None] * len(btf._offsets)
        return btf

    # --- sizes -------------------------------------------------------------------------------
    @property
    def nr_types(self) -> int:
        """Number of own types (not counting void or the base)."""
        return len(self._types)

    @property
    def type_cnt(self) -> int:
        """libbpf's ``btf__type_cnt``: last id + 1 (counts void and the base)."""
        return self.start_id + len(self._types)

    @property
    def str_len(self) -> int:
        """Length of the own string section."""
        return len(self._strings)

    @property
    def str_len_total(self) -> int:
        """Cumulative end of the strings of this BTF and its bases: where a split on top of it starts its
        strings under libbpf's ``btf__new_empty_split`` (and, since 0e14a12a/v1.7, ``btf_new``); libbpf
        v1.6's parser uses the base's own ``str_len`` instead (see :mod:`btfspec.spec.formats`)."""
        return len(self._strings) if self.base is None else self.start_str_off + len(self._strings)

    @property
    def strings(self) -> bytes:
        """The own string section."""
        return bytes(self._strings)

    # --- types -------------------------------------------------------------------------------
    def type(self, type_id: int) -> BtfType:
        """The type with this id (from the base when below ``start_id``); id 0 is not a record."""
        i = type_id - self.start_id
        if i >= 0:
            try:
                t = self._types[i]
            except IndexError:
                raise BtfError(f"type id {type_id} is out of range (type_cnt {self.type_cnt})",
                               type_id=type_id) from None
            if t is None:
                t = self._types[i] = self._decode(i)
            return t
        if self.base is None or type_id <= 0:
            raise BtfError(f"type id {type_id} is not a type record", type_id=type_id)
        return self.base.type(type_id)

    def _decode(self, i: int) -> BtfType:
        assert self._words is not None and self._offsets is not None
        w = self._words
        p = self._offsets[i]
        info = w[p + 1]
        steps = self._steps
        if steps is None or steps[0] is not self.info or steps[1] is not self.sizing_layout:  # made once per object
            steps = self._steps = (self.info, self.sizing_layout, step_tables(self.info, self.sizing_layout))
        fixed_of, elem_of = steps[2]
        k = (info >> 24) & self.info.kind_mask
        vlen = info & self.info.vlen_mask
        q = p + fixed_of[k]
        fixed = tuple(w[p + 3:q])
        ew = elem_of[k]
        if ew and vlen:
            seg = w[q:q + ew * vlen]
            elems = list(zip(*[iter(seg)] * ew, strict=True))
        else:
            elems = []
        return type_class(self.info)(w[p], info, w[p + 2], fixed, elems)

    def flat_words(self) -> tuple[array.array, array.array]:
        """All own records as one host-order word array plus the start of each record in it.

        A parsed object answers straight from its word index; records that were decoded (and
        maybe edited) or added come from their objects. Read-only: do not modify the result.
        """
        words, offsets, types = self._words, self._offsets, self._types
        if words is None or offsets is None:
            flat, starts = array.array("I"), array.array("I")
            for _, t in self.own_types():
                starts.append(len(flat))
                flat.extend(t.words())
            return flat, starts
        if types.count(None) == len(types):
            return words, offsets
        flat, starts = array.array("I", words), array.array("I", offsets)
        for i, t in enumerate(types):
            if t is not None:
                starts[i] = len(flat)
                flat.extend(t.words())
        return flat, starts

    def own_types(self) -> Iterator[tuple[int, BtfType]]:
        """(id, type) for every own type, in id order."""
        for i in range(len(self._types)):
            yield self.start_id + i, self.type(self.start_id + i)

    def all_types(self) -> Iterator[tuple[int, BtfType]]:
        """(id, type) for the base's types and then the own ones."""
        if self.base is not None:
            yield from self.base.all_types()
        yield from self.own_types()

    def type_offset(self, type_id: int) -> int | None:
        """Byte offset of an own type's record in the parsed blob (``None`` for built types)."""
        if self._offsets is None or not self.start_id <= type_id < self.type_cnt:
            return None
        i = type_id - self.start_id
        if i >= len(self._offsets):
            return None
        return self.header.hdr_len + self.header.type_off + 4 * self._offsets[i]

    def add_type(self, t: BtfType) -> int:
        """Append a type record; returns its id."""
        if self._offsets is not None:
            self.decode_all()  # every parsed record becomes an object; the word index is retired
            self._offsets = self._words = None
        self._types.append(t)
        self._name_index = None
        return self.type_cnt - 1

    def decode_all(self) -> None:
        """Decode every own type now (the full-decode path: record by record for a small object, else
        vectorised over the word array).

        The cyclic garbage collector is paused meanwhile (:mod:`btfspec.spec.gcpause`).
        """
        if self._words is None or self._offsets is None or not self._offsets:
            return
        if len(self._offsets) <= LOOP_MAX_TYPES:
            for i in range(len(self._types)):
                if self._types[i] is None:
                    self._types[i] = self._decode(i)
            return
        with gc_paused():
            self._decode_all_vectorised()

    def _decode_all_vectorised(self) -> None:
        import numpy as np  # imported here: it costs ~45 ms at start-up of every command

        fw_of, ew_of = _word_tables(self.info, self.sizing_layout)
        words = np.frombuffer(self._words, dtype=np.uint32)
        offs = np.frombuffer(self._offsets, dtype=np.uint32).astype(np.int64)
        info = words[offs + 1]
        kinds = (info >> 24) & self.info.kind_mask
        vlen = (info & self.info.vlen_mask).astype(np.int64)
        fw, ew = fw_of[kinds], ew_of[kinds]
        n = len(offs)
        fixed: list[tuple[int, ...]] = [()] * n

        def tuples(starts: Any, width: int) -> Iterator[tuple[int, ...]]:
            """The ``width``-word tuples at each word index of ``starts``, gathered contiguously."""
            gathered = words[(starts[:, None] + np.arange(width)).ravel()]
            return struct.iter_unpack(f"={width}I", gathered.tobytes())

        for width in set(fw_of.tolist()) - {0}:
            sel = np.nonzero(fw == width)[0]
            for i, v in zip(sel.tolist(), tuples(offs[sel] + 3, width), strict=True):
                fixed[i] = v
        elems: list[list[tuple[int, ...]] | None] = [None] * n
        for width in set(ew_of.tolist()) - {0}:
            sel = np.nonzero((ew == width) & (vlen > 0))[0]
            if not len(sel):
                continue
            cnt = vlen[sel]
            ends = np.cumsum(cnt)
            begins = ends - cnt
            idx = np.repeat(offs[sel] + 3 + fw[sel], cnt) + width * (np.arange(int(ends[-1])) - np.repeat(begins, cnt))
            flat = list(tuples(idx, width))
            for i, a, b in zip(sel.tolist(), begins.tolist(), ends.tolist(), strict=True):
                elems[i] = flat[a:b]
        new = object.__new__
        cls = type_class(self.info)
        types = self._types
        for i, name_off, inf, st, fx, e in zip(range(n), words[offs].tolist(), info.tolist(),
                                               words[offs + 2].tolist(), fixed, elems, strict=True):
            if types[i] is not None:
                continue
            t = new(cls)
            t.name_off, t.info, t.size_type, t.fixed = name_off, inf, st, fx
            t.elems = e if e is not None else []
            types[i] = t

    # --- strings -----------------------------------------------------------------------------
    def str_at(self, off: int) -> bytes | None:
        """The NUL-terminated string at a (split-absolute) offset; ``None`` when invalid."""
        if off < self.start_str_off:
            return self.base.str_at(off) if self.base is not None else None
        local = off - self.start_str_off
        if local >= len(self._strings):
            return None
        end = self._strings.find(b"\0", local)
        if end < 0:
            return None
        return bytes(self._strings[local:end])

    def name(self, t_or_off: BtfType | int) -> str:
        """Name as text (latin-1, so every byte survives); ``''`` for anonymous or invalid."""
        off = t_or_off.name_off if isinstance(t_or_off, BtfType) else t_or_off
        s = self.str_at(off)
        return s.decode("latin-1") if s is not None else ""

    def find_str(self, s: bytes) -> int | None:
        """Offset of an exact string in this BTF or its base (base first), like ``btf__find_str``."""
        if self.base is not None:
            off = self.base.find_str(s)
            if off is not None:
                return off
        if s == b"":
            return 0
        idx = self._own_str_index()
        local = idx.get(s)
        return None if local is None else self.start_str_off + local

    def _own_str_index(self) -> dict[bytes, int]:
        if self._str_index is None:
            idx: dict[bytes, int] = {}
            pos = 0
            data = bytes(self._strings)
            for piece in data.split(b"\0")[:-1]:
                idx.setdefault(piece, pos)
                pos += len(piece) + 1
            self._str_index = idx
        return self._str_index

    def add_str(self, s: bytes | str, *, dedup: bool = True) -> int:
        """Intern a string like ``btf__add_str`` (base first, exact-content dedup); returns its offset."""
        if isinstance(s, str):
            s = s.encode("latin-1")
        if b"\0" in s:
            raise ValueError("BTF strings cannot contain NUL")
        if dedup:
            off = self.find_str(s)
            if off is not None:
                return off
        idx = self._own_str_index()
        local = len(self._strings)
        self._strings += s + b"\0"
        idx.setdefault(s, local)
        return self.start_str_off + local

    def append_raw_strings(self, data: bytes) -> int:
        """Append raw bytes to the string section (for hand-made layouts); returns their offset."""
        local = len(self._strings)
        self._strings += data
        self._str_index = None
        return self.start_str_off + local

    # --- lookup ------------------------------------------------------------------------------
    def find_by_name(self, name: str | bytes, kind: int | None = None) -> list[int]:
        """Ids (base first) of types with this name, optionally of one kind."""
        if isinstance(name, str):
            name = name.encode("latin-1")
        ids = list(self.base.find_by_name(name, kind)) if self.base is not None else []
        if self._name_index is None:
            index: dict[bytes, list[int]] = {}
            for tid, t in self.own_types():
                if t.name_off:
                    s = self.str_at(t.name_off)
                    if s is not None:
                        index.setdefault(s, []).append(tid)
            self._name_index = index
        for tid in self._name_index.get(name, []):
            if kind is None or self.type(tid).kind == kind:
                ids.append(tid)
        return ids

    # --- output ------------------------------------------------------------------------------
    def to_bytes(self, *, hdr_len: int | None = None, order: ByteOrder | None = None) -> bytes:
        """Raw BTF like ``btf__raw_data``: header, types, layout section, strings, no gaps.

        The header length defaults to the parsed one (at least 24) for parsed objects, and to 32 when
        the object has a layout section (``kind_layout``), which libbpf places between types and strings.
        """
        order = order or self.order
        default = max(HDR_LEN, self.header.hdr_len if self.raw else HDR_LEN)
        if self.kind_layout is not None:
            default = max(default, HDR_LEN_LAYOUT)
        hl = hdr_len if hdr_len is not None else default
        words: list[int] = []
        for _, t in self.own_types():
            words.extend(t.words())
        types = pack_words(words, order)
        layout = pack_layout(self.kind_layout, order) if self.kind_layout is not None and hl >= 32 else b""
        hdr = Header(order=order, hdr_len=hl, type_off=0, type_len=len(types),
                     str_off=len(types) + len(layout), str_len=len(self._strings))
        if hl >= 32:
            hdr.layout_off, hdr.layout_len = (len(types) if layout else 0), len(layout)
        return pack_header(hdr) + types + layout + bytes(self._strings)

    def set_kind_layout(self, entries: KindLayoutEntries | None) -> None:
        """Give the object a layout section (written by :meth:`to_bytes`), or drop it with ``None``."""
        if entries is not None and any(len(e) != 3 for e in entries):
            raise ValueError(f"layout entries are (info_sz, elem_sz, flags) triples of {LAYOUT_ENTRY_SIZE} bytes")
        self.kind_layout = tuple(tuple(e) for e in entries) if entries is not None else None

    def describe(self, type_id: int) -> str:
        """Short human label: ``[id] KIND 'name'``."""
        t = self.type(type_id)
        return f"[{type_id}] {t.kind_name} '{self.name(t) if t.name_off else '(anon)'}'"

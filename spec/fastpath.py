"""Fast codec derived from the Construct declarations in :mod:`btfspec.spec.grammar`.

Every record in BTF is a sequence of 32-bit words, so the fast path works on an ``array('I')``
of the type section (byte-swapped once for the other byte order): an offset walk builds the
index, and each type is decoded on demand into words. Record sizes, field names and which
fields hold type ids or string offsets all come from ``grammar.tails`` — the layout is declared
once — through the tables :mod:`btfspec.spec.derived` caches, so reading BTF never imports Construct.
"""

from __future__ import annotations

import array
import functools
import struct
import sys
from dataclasses import dataclass

from btfspec.spec.derived import KIND_RECORDS, LAYOUT_ENTRY, ByteOrder, byteorder_of, header_format, prefix
from btfspec.spec.errors import BtfError
from btfspec.spec.kinds import HDR_LEN, INFO_CLASSIC, LAYOUT_ENTRY_SIZE, REF_KINDS, InfoLayout, Kind

NATIVE: ByteOrder = "little" if sys.byteorder == "little" else "big"


@dataclass(frozen=True)
class KindLayout:
    """Word layout of one kind, derived from its Construct declaration."""

    fixed_names: tuple[str, ...]
    elem_names: tuple[str, ...]
    fixed_signed: tuple[bool, ...]
    elem_signed: tuple[bool, ...]
    prefix_is_id: bool  # size_or_type holds a type id
    fixed_ids: tuple[int, ...]  # positions in the fixed record that are type ids
    elem_ids: tuple[int, ...]
    elem_strs: tuple[int, ...]  # positions in each element that are string offsets

    @property
    def fixed_words(self) -> int:
        return len(self.fixed_names)

    @property
    def elem_words(self) -> int:
        return len(self.elem_names)


ID_FIELDS = ("type", "index_type")
STR_FIELDS = ("name_off",)


@functools.cache
def layouts() -> dict[int, KindLayout]:
    """Layout per known kind (byte order does not change the word layout)."""
    out: dict[int, KindLayout] = {}
    for kind, (ffmt, fnames, efmt, enames) in KIND_RECORDS.items():
        out[kind] = KindLayout(
            fixed_names=fnames,
            elem_names=enames,
            fixed_signed=tuple(c.islower() for c in ffmt),
            elem_signed=tuple(c.islower() for c in efmt),
            prefix_is_id=kind in REF_KINDS or kind == Kind.FUNC_PROTO,
            fixed_ids=tuple(i for i, n in enumerate(fnames) if n in ID_FIELDS),
            elem_ids=tuple(i for i, n in enumerate(enames) if n in ID_FIELDS),
            elem_strs=tuple(i for i, n in enumerate(enames) if n in STR_FIELDS),
        )
    return out


KindLayoutEntries = tuple[tuple[int, int, int], ...]  # the layout section: (info_sz, elem_sz, flags) per kind


@functools.cache
def step_tables(info: InfoLayout = INFO_CLASSIC, kind_layout: KindLayoutEntries | None = None
                 ) -> tuple[list[int], list[int]]:
    """Per kind value of ``info``: words before the elements (-1 = a kind the reader cannot size),
    words per element.

    Known kinds have the grammar's sizes whatever the layout section says; every other kind value
    (0 and those past the grammar's) is sized from ``kind_layout`` when it has an entry for it whose
    ``info_sz`` and ``elem_sz`` are multiples of 4 (libbpf ``btf_type_size_unknown``).
    """
    fixed = [-1] * info.kinds
    elem = [0] * info.kinds
    known = layouts()
    for k in range(min(info.kinds, len(kind_layout or ()))):
        info_sz, elem_sz, _ = kind_layout[k]  # type: ignore[index]
        if k not in known and not info_sz % 4 and not elem_sz % 4:
            fixed[k], elem[k] = 3 + info_sz // 4, elem_sz // 4
    for k, lay in known.items():
        fixed[k] = 3 + lay.fixed_words
        elem[k] = lay.elem_words
    return fixed, elem


def read_layout(blob: bytes, hdr: Header) -> KindLayoutEntries | None:
    """The layout section's entries (``None`` without one: header shorter than 32 or ``layout_len`` 0).

    Whole entries only (a trailing partial entry is not read); the byte order is the header's.
    """
    if hdr.hdr_len < 32 or not hdr.layout_len or hdr.layout_off is None:
        return None
    start = hdr.hdr_len + hdr.layout_off
    n = hdr.layout_len // LAYOUT_ENTRY_SIZE
    data = blob[start:start + n * LAYOUT_ENTRY_SIZE]
    return tuple(struct.iter_unpack(prefix(hdr.order) + LAYOUT_ENTRY[0], data))


def pack_layout(entries: KindLayoutEntries, order: ByteOrder) -> bytes:
    """Serialise layout entries in ``order`` (the grammar's ``struct btf_layout``)."""
    pack = struct.Struct(prefix(order) + LAYOUT_ENTRY[0]).pack
    return b"".join(pack(*e) for e in entries)


@dataclass
class Header:
    """``struct btf_header`` as read from a blob (offsets relative to the end of the header)."""

    order: ByteOrder = "little"
    magic: int = 0xEB9F
    version: int = 1
    flags: int = 0
    hdr_len: int = HDR_LEN
    type_off: int = 0
    type_len: int = 0
    str_off: int = 0
    str_len: int = 0
    layout_off: int | None = None
    layout_len: int | None = None


def read_header(blob: bytes) -> Header:
    """Decode and bounds-check the header (the checks any reader needs; rules live in the validator)."""
    if len(blob) < HDR_LEN:
        raise BtfError(f"truncated header: {len(blob)} bytes, need {HDR_LEN}", offset=0)
    try:
        order = byteorder_of(blob)
    except ValueError as exc:
        raise BtfError(str(exc), offset=0) from None
    fmt, names = header_format(order)
    c = dict(zip(names, struct.unpack(fmt, blob[:32] if len(blob) >= 32 else blob[:HDR_LEN] + b"\0" * 8),
                 strict=True))
    hdr = Header(order, c["magic"], c["version"], c["flags"], c["hdr_len"], c["type_off"], c["type_len"],
                 c["str_off"], c["str_len"])
    if hdr.hdr_len >= 32:
        if len(blob) < 32:
            raise BtfError(f"hdr_len {hdr.hdr_len} but only {len(blob)} bytes", offset=4)
        hdr.layout_off, hdr.layout_len = c["layout_off"], c["layout_len"]
    if hdr.hdr_len > len(blob):
        raise BtfError(f"hdr_len {hdr.hdr_len} is past the end of the data ({len(blob)} bytes)", offset=4)
    body = len(blob) - hdr.hdr_len
    if hdr.type_off + hdr.type_len > body:
        raise BtfError(f"type section [{hdr.type_off}, +{hdr.type_len}) is past the end of the data "
                       f"({body} bytes after the header)", offset=8)
    if hdr.str_off + hdr.str_len > body:
        raise BtfError(f"string section [{hdr.str_off}, +{hdr.str_len}) is past the end of the data "
                       f"({body} bytes after the header)", offset=16)
    if hdr.type_off % 4:
        raise BtfError(f"type section offset {hdr.type_off} is not 4-byte aligned", offset=8)
    if hdr.layout_len and hdr.layout_off is not None and hdr.layout_off + hdr.layout_len > body:
        raise BtfError(f"layout section [{hdr.layout_off}, +{hdr.layout_len}) is past the end of the data",
                       offset=24)
    return hdr


def type_words(blob: bytes, hdr: Header) -> array.array:
    """The type section as host-order 32-bit words (a copy, swapped when the blob is foreign-endian)."""
    start = hdr.hdr_len + hdr.type_off
    words = array.array("I")
    words.frombytes(memoryview(blob)[start:start + hdr.type_len - hdr.type_len % 4])
    if hdr.order != NATIVE:
        words.byteswap()
    return words


VECTOR_MIN_WORDS = 1 << 16  # below this the walk is faster than importing numpy and setting up


def index_types(words: array.array, hdr: Header, start_id: int = 1, info: InfoLayout = INFO_CLASSIC,
                kind_layout: KindLayoutEntries | None = None) -> array.array:
    """Word offset of every type record; raises on kinds it cannot size and on overruns.

    ``info`` says how kind and vlen sit in ``info``; ``kind_layout`` sizes kinds the grammar does not
    know. Large sections are indexed by :func:`_index_vectorised`; anything it cannot vouch for (and
    every small section) goes through the plain offset walk :func:`_index_walk`, which also words the
    errors.
    """
    if len(words) >= VECTOR_MIN_WORDS and not hdr.type_len % 4:
        offsets = _index_vectorised(words, info, kind_layout)
        if offsets is not None:
            return offsets
    return _index_walk(words, hdr, start_id, info, kind_layout)


def _index_vectorised(words: array.array, info_layout: InfoLayout = INFO_CLASSIC,
                      kind_layout: KindLayoutEntries | None = None) -> array.array | None:
    """The record starts of a well-formed type section without a Python loop per record, or None.

    Every word position whose next word has a known kind is a *candidate* start (true starts, plus a
    few member or enumerator words that look like one). A candidate whose record ends exactly where
    the next candidate starts is *plain*: the chain from position 0 runs through plain candidates one
    by one, so only the others (the *breaks*, a few per cent) are followed in Python, each to the
    candidate its record ends on. None when the chain leaves the candidates or runs past the end: the
    walk then finds and words the error. Temporaries stay small (kinds as bytes, no index table per
    record), since fresh memory costs page faults that dominate a one-shot parse.
    """
    import numpy as np

    fixed_of, elem_of = step_tables(info_layout, kind_layout)
    w = np.frombuffer(words, dtype=np.uint32)
    n = int(w.size)
    if n < 3:
        return array.array("I") if not n else None
    # The top byte of the info word of a record starting at p = 0 .. n-3, read in place.
    top = w.view(np.uint8)[(7 if NATIVE == "little" else 4)::4][:n - 2]
    kinds = top & info_layout.kind_mask
    sizable = [k for k, f in enumerate(fixed_of) if f >= 0]
    if sizable and sizable == list(range(sizable[0], sizable[-1] + 1)):  # a range: two byte operations
        kinds -= sizable[0]
        cand = np.flatnonzero(kinds < len(sizable))
    else:
        cand = np.flatnonzero(np.take(np.array([f >= 0 for f in fixed_of]), kinds))
    m = int(cand.size)
    if not m or cand[0] != 0:
        return None
    info = np.take(w[1:], cand)
    ck = info >> 24
    ck &= info_layout.kind_mask
    after = np.take(np.array(fixed_of, dtype=np.int64), ck)
    after += cand
    if any(elem_of):
        info &= info_layout.vlen_mask
        tail = np.take(np.array(elem_of, dtype=np.int64), ck)
        tail *= info
        after += tail
    following = np.empty_like(after)
    following[:-1] = cand[1:]
    following[-1] = n
    breaks = np.flatnonzero(after != following)
    brk_after = after[breaks]
    land = np.searchsorted(cand, brk_after)
    lands = cand[np.minimum(land, m - 1)] == brk_after
    run_starts, run_ends = [0], []
    ends_at_n = brk_after == n
    for b, a_is_n, ok, j in zip(breaks.tolist(), ends_at_n.tolist(), lands.tolist(), land.tolist(), strict=True):
        if b < run_starts[-1]:
            continue  # a candidate inside a record the chain jumped over
        run_ends.append(b)
        if a_is_n:
            break
        if not ok:
            return None  # past the end, or onto a word that cannot start a record
        run_starts.append(j)
    else:
        run_ends.append(m - 1)  # the last candidate is plain: its record ends the section
    if len(run_starts) == 1:
        path = cand[:run_ends[0] + 1]
    else:
        mark = np.zeros(m + 1, dtype=np.int8)
        mark[run_starts] = 1
        mark[np.array(run_ends) + 1] -= 1
        path = cand[np.cumsum(mark[:m], dtype=np.int8).astype(bool)]
    out = array.array("I")
    out.frombytes(memoryview(path.astype(np.uint32)).cast("B"))
    return out


def _index_walk(words: array.array, hdr: Header, start_id: int = 1, info_layout: InfoLayout = INFO_CLASSIC,
                kind_layout: KindLayoutEntries | None = None) -> array.array:
    """Offset walk: word offset of every type record; raises on kinds it cannot size and overruns."""
    fixed, elem = step_tables(info_layout, kind_layout)
    kmask, vmask = info_layout.kind_mask, info_layout.vlen_mask
    offsets = array.array("I")
    append = offsets.append
    pos = 0
    n = len(words)
    while pos + 3 <= n:
        append(pos)
        info = words[pos + 1]
        k = (info >> 24) & kmask
        step = fixed[k]
        if step < 0:
            tid = start_id + len(offsets) - 1
            raise BtfError(f"unsupported BTF kind {k}", type_id=tid,
                           offset=hdr.hdr_len + hdr.type_off + 4 * pos)
        pos += step + elem[k] * (info & vmask)
    if pos != n or hdr.type_len % 4:
        tid = start_id + len(offsets) - 1
        if pos > n:
            raise BtfError("type record runs past the end of the type section", type_id=tid,
                           offset=hdr.hdr_len + hdr.type_off + 4 * offsets[-1])
        raise BtfError(f"{hdr.type_len - 4 * pos} trailing bytes in the type section are not a whole record",
                       offset=hdr.hdr_len + hdr.type_off + 4 * pos)
    return offsets


def pack_words(words: array.array | list[int], order: ByteOrder) -> bytes:
    """Serialise 32-bit words in the given byte order."""
    arr = words if isinstance(words, array.array) else array.array("I", words)
    if order != NATIVE:
        arr = array.array("I", arr)
        arr.byteswap()
    return arr.tobytes()


def pack_header(hdr: Header) -> bytes:
    """Serialise a header (``hdr_len`` bytes; bytes past the known fields are zero).

    The field order and widths are the grammar's (:func:`btfspec.spec.derived.header_format`); fields past
    ``hdr_len`` are cut (a 24-byte header has no layout fields).
    """
    fmt, names = header_format(hdr.order)
    values = [getattr(hdr, n) or 0 for n in names]
    out = struct.pack(fmt, *values)
    return out[:hdr.hdr_len] + b"\0" * max(0, hdr.hdr_len - len(out))

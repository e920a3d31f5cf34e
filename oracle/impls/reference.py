"""Python reference implementation of libbpf v1.6 ``btf__distill_base`` and ``btf__relocate``.

Bytes in, bytes out, following distill-relocate-behaviour.md §1-§2 and the libbpf v1.6 sources.

Two modes:

* ``python`` (``strict=False``): byte-identical to libbpf v1.6 on every input libbpf accepts, the
  same negative errno on every input it rejects, and the same log lines (``libbpf: ...``, every
  level, as :mod:`btfspec.oracle.impls.libbpf` captures them). Quirks Q1-Q10, Q12, Q14, Q16, Q18 are reproduced.
  Where libbpf has no answer, python gives a deterministic one: a modifier cycle under a split
  struct member (Q5, libbpf hangs) returns -ELOOP with a ``btfspec: Q5: ...`` line naming the
  cycle; a deep base chain (Q17, libbpf overflows its C stack) just succeeds (worklists, no
  recursion); an id map entry libbpf reads out of bounds (Q12: an unchecked FWD type or
  FUNC_PROTO return id >= type_cnt) reads as 0 here.
* ``python-strict`` (``strict=True``): "what a correct implementation should do". Every quirk has
  one detection point; strict mode takes the corrected branch there (see each entry's ``strict``
  in :mod:`btfspec.oracle.impls.quirks`): a corrected *decision* (Q1, Q2, Q3, Q4, Q6, Q7, Q16) changes the
  result, a corrected *rule* (Q3 for a distilled type, Q8, Q9, Q12, Q14, Q18) fails the operation
  with -EINVAL (Q5: -ELOOP), and the log gets a ``btfspec: strict: Qn ...`` line for each quirk.

Both modes record in ``quirks`` every catalogue id whose trigger condition was met on their own
path (first-fired order). Up to the first trigger both modes run identically, so an input gives
an empty quirk list in one mode exactly when it does in the other, and the two modes can only
differ on inputs with a non-empty list.

Why one module of ~700 lines: it reads like libbpf's own ``btf_distill_base()`` and ``btf_relocate.c``
function by function, so that a reader can hold it next to the C; split, that correspondence is lost.
"""

from __future__ import annotations

import errno as _errno
import functools
import struct
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

from btfspec.oracle.impls.outcome import ERROR, OK, Outcome
from btfspec.oracle.impls.quirks import (
    Q1,
    Q2,
    Q3,
    Q4,
    Q5,
    Q6,
    Q7,
    Q8,
    Q9,
    Q10,
    Q12,
    Q14,
    Q16,
    Q17,
    Q17_DEPTH,
    Q18,
    strict_line,
)
from btfspec.spec.columns import Columns
from btfspec.spec.kinds import COMPOSITE_KINDS, MODIFIER_KINDS, Kind, make_info
from btfspec.spec.model import LOOP_MAX_TYPES, Btf, BtfType, id_fields, map_ids, map_strs
from btfspec.spec.validate_common import layout_fields
from btfspec.spec.validate_libbpf import LibbpfParse, LibbpfReject, parse

IMPL = "python"
IMPL_STRICT = "python-strict"

EINVAL = -_errno.EINVAL
ENOENT = -_errno.ENOENT
ELOOP = -_errno.ELOOP
ENOTSUP = -_errno.EOPNOTSUPP  # libbpf's -ENOTSUP is EOPNOTSUPP (95) on Linux

NATIVE = sys.byteorder
BTF_IS_EMBEDDED = 0xFFFFFFFF
U32 = 0xFFFFFFFF
RESERVED_INFO_BITS = 0x60FF0000  # bits 16-23 and 29-30 (ignored by v1.6, Q9)
_FWD, _FUNC_PROTO = int(Kind.FWD), int(Kind.FUNC_PROTO)

_MARKABLE = frozenset({Kind.INT, Kind.FLOAT, Kind.FWD, Kind.ARRAY, Kind.STRUCT, Kind.UNION, Kind.TYPEDEF,
                       Kind.ENUM, Kind.ENUM64, Kind.PTR, Kind.CONST, Kind.RESTRICT, Kind.VOLATILE,
                       Kind.FUNC_PROTO, Kind.TYPE_TAG})
_TO_SPLIT = frozenset({Kind.ARRAY, Kind.TYPEDEF, Kind.PTR, Kind.CONST, Kind.RESTRICT, Kind.VOLATILE,
                       Kind.FUNC_PROTO, Kind.TYPE_TAG})
_BASE_LEAF = frozenset({Kind.INT, Kind.FLOAT, Kind.FWD})
_ENUMS = frozenset({Kind.ENUM, Kind.ENUM64})
DIST_KINDS = frozenset({Kind.INT, Kind.FLOAT, Kind.ENUM, Kind.STRUCT, Kind.UNION, Kind.FWD})
_SIZED_KEY = frozenset({Kind.INT, Kind.FLOAT, Kind.ENUM, Kind.ENUM64})
_KEYED = _SIZED_KEY | COMPOSITE_KINDS | {Kind.FWD}
_KEYED_VALUES = frozenset(int(k) for k in _KEYED)


# --- results -------------------------------------------------------------------------------------

@dataclass
class _Result:
    """What both operations return: the return code, libbpf's log lines, the id map, the quirks
    whose trigger fired (first-fired order) and the mode."""

    rc: int
    log: list[str] = field(default_factory=list)
    id_map: list[int] = field(default_factory=list)
    quirks: list[str] = field(default_factory=list)
    strict: bool = False

    @property
    def ok(self) -> bool:
        return self.rc == 0

    def _outcome(self, outputs: dict[str, bytes | None]) -> Outcome:
        """As an :class:`Outcome` (``outputs`` only on success; ``detail`` = comma-joined quirk ids)."""
        kept = {k: v or b"" for k, v in outputs.items()} if self.ok else {}
        return Outcome(status=OK if self.ok else ERROR, errno=self.rc, outputs=kept,
                       log="".join(x + "\n" for x in self.log), impl=IMPL_STRICT if self.strict else IMPL,
                       detail=",".join(self.quirks), id_map=tuple(self.id_map) if self.ok else ())


@dataclass
class DistillResult(_Result):
    """Outcome of :func:`distill`; ``base``/``split`` are ``None`` unless ``rc == 0``.

    ``id_map[old_id]`` is libbpf's final map: the new id of a reached base type (its provisional,
    unchanged id when Q6 dropped it), ``old - diff`` for a split id, 0 elsewhere.
    """

    base: bytes | None = None
    split: bytes | None = None

    def outcome(self) -> Outcome:
        """As an :class:`Outcome` (outputs ``base``/``split``)."""
        return self._outcome({"base": self.base, "split": self.split})


@dataclass
class RelocateResult(_Result):
    """Outcome of :func:`relocate`; ``split`` is ``None`` unless ``rc == 0``.

    ``id_map[old_id]`` (old ids of the split on its distilled base) is the new id: what the
    kernel keeps as ``base_id_map`` to remap ``.BTF_ids``. Empty on failure.
    """

    split: bytes | None = None

    def outcome(self) -> Outcome:
        """As an :class:`Outcome` (output ``split``)."""
        return self._outcome({"split": self.split})


# --- one run: log, quirk bookkeeping, the mode switch -----------------------------------------------

class Fail(Exception):
    """An operation failed with negative errno ``errno`` (its log line is already in the :class:`Run`)."""

    def __init__(self, err: int) -> None:
        super().__init__(err)
        self.errno = err


class Run:
    """Log and quirk record of one operation; the only place where the two modes differ."""

    def __init__(self, strict: bool) -> None:
        self.strict = strict
        self.log: list[str] = []
        self._quirks: dict[str, str] = {}

    @property
    def quirks(self) -> list[str]:
        return list(self._quirks)

    def warn(self, msg: str) -> None:
        """A libbpf ``pr_warn`` line."""
        self.log.append("libbpf: " + msg)

    def fail(self, err: int, msg: str | None = None) -> Fail:
        if msg is not None:
            self.warn(msg)
        return Fail(err)

    def flag(self, qid: str, detail: str = "") -> None:
        """Record that ``qid``'s trigger condition was met."""
        if qid not in self._quirks:
            self._quirks[qid] = detail
            if self.strict:
                self.log.append(strict_line(qid, detail))

    def choose(self, qid: str, libbpf: object, correct: object, detail: str = "") -> object:
        """A quirky decision: record ``qid`` when the two answers differ; return this mode's answer."""
        if libbpf != correct:
            self.flag(qid, detail)
        return correct if self.strict else libbpf

    def enforce(self, qid: str, detail: str = "", err: int = EINVAL) -> None:
        """A rule libbpf does not check: record ``qid``; strict mode fails here."""
        self.flag(qid, detail)
        if self.strict:
            raise Fail(err)

    def named(self, btf: Btf, t: BtfType, tid: int) -> bool:
        """Is ``t`` named? libbpf: ``name_off != 0``; strict: the name is non-empty (Q3)."""
        if not t.name_off:
            return False
        if btf.str_at(t.name_off):
            return True
        self.flag(Q3, f"type [{tid}] name offset {t.name_off} points at ''")
        return not self.strict


# --- parsing (libbpf v1.6 btf_new: §8.5) ---------------------------------------------------------------

LARGE_BLOB = 64 << 10  # a standalone blob this large is a kernel's BTF: at most 2 such parses are kept


@functools.lru_cache(maxsize=2)
def _kept_large(blob: bytes) -> LibbpfParse:
    return parse(blob, None)


@functools.lru_cache(maxsize=16)
def _kept_small(blob: bytes) -> LibbpfParse:
    return parse(blob, None)


def kept_parse(blob: bytes) -> LibbpfParse:
    """:func:`~btfspec.spec.validate_libbpf.parse` of a standalone blob, kept for the next call on the same
    bytes (a case's bases are parsed once for both modes and both operations; a kernel's BTF once for
    all its modules, as a tool that loads vmlinux once keeps its ``struct btf``). Nothing here modifies a
    standalone parse: only a split's own records are rewritten (:func:`_rewrite_split`), and a split is
    always parsed afresh."""
    return (_kept_large if len(blob) >= LARGE_BLOB else _kept_small)(blob)


@functools.lru_cache(maxsize=4)
def _kept_split(blob: bytes, base: bytes) -> LibbpfParse:
    return parse(blob, kept_parse(base).btf)


def forget_kept_parses() -> None:
    """Drop the kept parses (benchmarks that measure a parse on every call)."""
    _kept_large.cache_clear()
    _kept_small.cache_clear()
    _kept_split.cache_clear()


def parse_btf(blob: bytes, base: Btf | None, run: Run, role: str, *, read_only_on: bytes | None = None) -> LibbpfParse:
    """Parse like ``btf__new``/``btf__new_split`` (:func:`btfspec.spec.validate_libbpf.parse`: libbpf's rules,
    errno and log line), then check the parse-level quirks (Q18, Q9, Q12).

    ``read_only_on``: the bytes of ``base`` (parsed by :func:`kept_parse`), for a caller that only reads the
    split (distill): its parse is then kept too, so both modes distilling one case parse the split once."""
    blob = bytes(blob)
    try:
        if base is None:
            p = kept_parse(blob)
        elif read_only_on is not None and kept_parse(bytes(read_only_on)).btf is base:
            p = _kept_split(blob, bytes(read_only_on))
        else:
            p = parse(blob, base)
    except LibbpfReject as bad:
        run.warn(bad.line)
        raise Fail(bad.errno) from None
    _parse_quirks(p, run, role)
    return p


def _kernel_layout_section(p: LibbpfParse) -> int:
    """The length of a kind layout section the kernel (7.1, ``btf_parse_layout_sec``) accepts right after
    the types -- 32-byte header, 4-byte aligned, whole entries, at least one -- else 0. Its header fields
    and its bytes are then part of the format, not Q18's lenient header or gap."""
    h = p.hdr
    if h.hdr_len < 32 or len(p.raw) < 32:
        return 0
    lo, ll = layout_fields(p.raw[24:32], h.order)
    ok = ll and lo % 4 == 0 and ll % 4 == 0 and lo == h.type_off + h.type_len and lo + ll == h.str_off
    return ll if ok else 0


def _parse_quirks(p: LibbpfParse, run: Run, role: str) -> None:
    """Q18 (lenient header), Q9 (reserved info bits), Q12 (unchecked FWD/FUNC_PROTO ids)."""
    h = p.hdr
    layout = _kernel_layout_section(p)
    tail = p.raw[32 if layout else 24:h.hdr_len]
    between = h.str_off - (h.type_off + h.type_len) - layout
    problems = [f"version {h.version}" if h.version != 1 else "", f"flags {h.flags}" if h.flags else "",
                f"hdr_len {h.hdr_len} < 24" if h.hdr_len < 24 else "",
                f"non-zero header bytes past {32 if layout else 24} (hdr_len {h.hdr_len})" if any(tail) else "",
                "gap before the type section" if h.type_off else "",
                "gap between the type and string sections" if between else "",
                "trailing bytes" if h.hdr_len + h.str_off + h.str_len != len(p.raw) else ""]
    problems = [x for x in problems if x]
    if problems:
        run.enforce(Q18, f"{role}: " + ", ".join(problems))
    btf = p.btf
    if btf.nr_types == 0:
        return
    reserved, odd = (_odd_types_looped if btf.nr_types <= LOOP_MAX_TYPES else _odd_types_vectorised)(p)
    if reserved is not None:
        t = btf.type(btf.start_id + reserved)
        run.enforce(Q9, f"{role} type [{btf.start_id + reserved}] info {t.info:#010x}")
    if odd is not None:
        t = btf.type(btf.start_id + odd)
        run.enforce(Q12, f"{role} type [{btf.start_id + odd}] {Kind(t.kind).name} refers to id {t.size_type}")


def _odd_types_vectorised(p: LibbpfParse) -> tuple[int | None, int | None]:
    """The first own type (index from ``start_id``) with reserved info bits set, and the first FWD
    with a non-zero ``type`` or FUNC_PROTO with an out-of-range return id: over numpy columns."""
    import numpy as np

    cols = p.cols
    reserved = np.flatnonzero(cols.info & RESERVED_INFO_BITS)
    kind = cols.kind
    odd = np.flatnonzero(((kind == Kind.FWD) & (cols.size_type != 0))
                         | ((kind == Kind.FUNC_PROTO) & (cols.size_type >= p.btf.type_cnt)))
    return (int(reserved[0]) if len(reserved) else None), (int(odd[0]) if len(odd) else None)


def _odd_types_looped(p: LibbpfParse) -> tuple[int | None, int | None]:
    """:func:`_odd_types_vectorised` one record at a time over the word index (small objects)."""
    words, starts = p.btf.flat_words()
    kmask, tc = p.btf.info.kind_mask, p.btf.type_cnt
    reserved = odd = None
    for i, o in enumerate(starts):
        info, ref = words[o + 1], words[o + 2]
        if reserved is None and info & RESERVED_INFO_BITS:
            reserved = i
        if odd is None:
            k = (info >> 24) & kmask
            if (k == _FWD and ref) or (k == _FUNC_PROTO and ref >= tc):
                odd = i
        if reserved is not None and odd is not None:
            break
    return reserved, odd


# --- distill (§1) ---------------------------------------------------------------------------------

def distill(split: bytes, base: bytes, *, strict: bool = False) -> DistillResult:
    """``btf__distill_base`` of ``split`` (raw split BTF on ``base``): new base + new split bytes."""
    run = Run(strict)
    try:
        b = parse_btf(base, None, run, "base")
        s = parse_btf(split, b.btf, run, "split", read_only_on=base)  # _distill only reads it
        new_base, new_split, id_map = _distill(s.btf, run)
    except Fail as f:
        return DistillResult(f.errno, log=run.log, quirks=run.quirks, strict=strict)
    return DistillResult(0, run.log, id_map, run.quirks, strict, base=new_base.to_bytes(hdr_len=24),
                         split=new_split.to_bytes(hdr_len=24))


def _distill(src: Btf, run: Run) -> tuple[Btf, Btf, list[int]]:
    split_start = src.start_id
    n = src.type_cnt
    id_map = [0] * n
    marked = _mark(src, split_start, id_map, run)
    smap: dict[int, int] = {}
    new_base = Btf(order=src.order)
    _emit(src, new_base, marked, id_map, smap, True, run)
    new_split = Btf(base=new_base)
    for i in range(split_start, n):
        _copy(src, new_split, src.type(i), smap)
    to_base = run.choose(Q6, bool(marked) and new_split.start_id == 1, False,
                         "no base type went to the distilled base; pass 2 ran in base mode")
    _emit(src, new_split, marked, id_map, smap, to_base, run)

    diff = split_start - new_base.type_cnt

    def remap(v: int) -> int:
        m = id_map[v] if v < n else 0  # Q12: libbpf reads past id_map here; we read 0
        if m:
            return m
        return (v - diff) & U32 if v >= split_start else v

    for i in range(1, new_split.type_cnt):
        map_ids(new_split.type(i), remap)
    for i in range(split_start, n):
        id_map[i] = remap(i)
    return new_base, new_split, id_map


def _mark(src: Btf, split_start: int, id_map: list[int], run: Run) -> list[int]:
    """Mark reachable base types (``btf_add_distilled_type_ids``) in libbpf's depth-first order,
    with an explicit stack. Returns the marked ids, ascending."""
    marked: list[int] = []
    deep = False
    for i in range(split_start, src.type_cnt):
        stack: list[Iterator[int]] = [iter(id_fields(src.type(i)))]
        while stack:
            for ref in stack[-1]:
                if ref == 0 or ref >= split_start or id_map[ref] > 0:
                    continue
                t = src.type(ref)
                if t.kind not in _MARKABLE:
                    raise run.fail(EINVAL, f"unexpected reference to base type[{ref}] of kind [{t.kind}] "
                                           "when creating distilled base BTF.")
                id_map[ref] = ref
                marked.append(ref)
                if t.kind in COMPOSITE_KINDS and run.named(src, t, ref):
                    continue
                stack.append(iter(id_fields(t)))
                if len(stack) > Q17_DEPTH and not deep:
                    deep = True
                    run.flag(Q17, f"marking depth above {Q17_DEPTH} below split type [{i}]")
                break
            else:
                stack.pop()
    marked.sort()
    return marked


def _emit(src: Btf, dst: Btf, marked: list[int], id_map: list[int], smap: dict[int, int],
          to_base: bool, run: Run) -> None:
    """One emission pass (``btf_add_distilled_types``) in base or split mode."""
    next_id = dst.type_cnt
    for i in marked:
        t = src.type(i)
        k = t.kind
        if k in _BASE_LEAF:
            if not to_base:
                continue
            if not (t.name_off and src.str_at(t.name_off)):
                run.named(src, t, i)  # records Q3 for an empty string at a non-zero offset
                run.enforce(Q8, f"base type [{i}] {Kind(k).name} is anonymous")
            _copy(src, dst, t, smap)
        elif k in COMPOSITE_KINDS or k in _ENUMS:
            named = run.named(src, t, i)
            if named != to_base:
                continue
            if not to_base:
                _copy(src, dst, t, smap)
            else:
                name = src.str_at(t.name_off) or b""
                if k in _ENUMS:
                    size = t.size
                    if not size or size & (size - 1) or size > 8:
                        raise run.fail(EINVAL)  # btf__add_enum: no log line
                    k = Kind.ENUM
                name_off = dst.add_str(name) if name else 0
                dst.add_type(BtfType(name_off, make_info(k), t.size))
        elif k in _TO_SPLIT:
            if to_base:
                continue
            _copy(src, dst, t, smap)
        else:  # unreachable after marking
            raise run.fail(EINVAL, f"unexpected kind when adding base type '{src.name(t)}'[{i}] of kind "
                                   f"[{k}] to distilled base BTF.")
        id_map[i] = next_id
        next_id += 1


def _copy(src: Btf, dst: Btf, t: BtfType, smap: dict[int, int]) -> int:
    """``btf_add_type``: verbatim record (raw info word kept), strings re-added through ``smap``."""
    c = t.copy()

    def rewrite(off: int) -> int:
        if not off:
            return 0
        mapped = smap.get(off)
        if mapped is None:
            mapped = dst.add_str(src.str_at(off) or b"")
            smap[off] = mapped
        return mapped

    map_strs(c, rewrite)
    return dst.add_type(c)


# --- relocate (§2) ---------------------------------------------------------------------------------

def relocate(split: bytes, distilled_base: bytes, base: bytes, *, strict: bool = False) -> RelocateResult:
    """``btf__relocate`` of ``split`` (raw split BTF on ``distilled_base``) onto ``base``.

    The output is what ``btf__raw_data`` returns for the relocated split parsed from raw bytes:
    the input blob with type records rewritten in place (header, gaps and trailing bytes kept);
    for a foreign-endian split, libbpf's re-serialisation (header, types, strings).
    """
    run = Run(strict)
    try:
        d = parse_btf(distilled_base, None, run, "distilled base")
        s = parse_btf(split, d.btf, run, "split")
        b = parse_btf(base, None, run, "base")
        out, id_map = _relocate(s, d.btf, b, run)
    except Fail as f:
        return RelocateResult(f.errno, log=run.log, quirks=run.quirks, strict=strict)
    return RelocateResult(0, run.log, id_map, run.quirks, strict, split=out)


def _relocate(sp: LibbpfParse, dist: Btf, bp: LibbpfParse, run: Run) -> tuple[bytes, list[int]]:
    btf, base = sp.btf, bp.btf
    if base.order != btf.order:
        run.enforce(Q14, f"split is {btf.order}-endian, target base is {base.order}-endian")
    nr_dist, nr_base, nr_types = dist.type_cnt, base.type_cnt, btf.type_cnt
    for i in range(1, nr_dist):
        t = dist.type(i)
        if t.kind not in DIST_KINDS:
            raise run.fail(EINVAL, f"type [{i}] in distilled based BTF has unexpected kind [{t.kind}]")
        if not t.name_off:
            raise run.fail(EINVAL, f"type [{i}], kind [{t.kind}] is invalid for distilled base BTF; "
                                   "it is anonymous")
        if not run.named(dist, t, i):
            raise Fail(EINVAL)  # strict only: Q3, an empty name is anonymous
    id_map = [0] * nr_types
    for i in range(nr_dist, nr_types):
        id_map[i] = (i + nr_base - nr_dist) & U32
    str_map: dict[int, int] = {}
    index = DistIndex(dist)
    mark_embedded(btf, nr_dist, nr_types, id_map, run)
    _match_base(bp, dist, index, id_map, str_map, run)
    for i in range(1, nr_dist):
        if id_map[i] in (0, BTF_IS_EMBEDDED):
            raise run.fail(EINVAL, f"distilled base BTF type '{dist.name(dist.type(i))}' [{i}] is not "
                                   "mapped to base BTF id")
    _rewrite_split(sp, dist, base, id_map, str_map, run)
    return _raw_output(sp), id_map


@dataclass(frozen=True)
class DistEntry:
    """A distilled type in the :class:`DistIndex`: its size (31-bit and full) and id (0: void)."""

    size31: int
    size: int
    id: int


class DistIndex:
    """The sorted name/size index of the distilled base (void included), grouped by name.

    Within a name, entries are in ``cmp_btf_name_size`` order (31-bit size descending; glibc's
    qsort is a stable merge sort, so ties keep id order).
    """

    def __init__(self, dist: Btf) -> None:
        groups: dict[bytes, list[DistEntry]] = {}
        groups.setdefault(b"", []).append(DistEntry(0, 0, 0))
        for i in range(1, dist.type_cnt):
            t = dist.type(i)
            groups.setdefault(dist.str_at(t.name_off) or b"", []).append(DistEntry(t.size & 0x7FFFFFFF, t.size, i))
        for entries in groups.values():
            entries.sort(key=lambda e: -e.size31)
        self.groups = groups

    def lookup(self, name: bytes, sized: bool, size: int, *, full: bool = False) -> list[DistEntry]:
        """Entries with this name (and this size if ``sized``; 31-bit compare unless ``full``)."""
        entries = self.groups.get(name, [])
        if not sized:
            return entries
        if full:
            return [e for e in entries if e.size == size]
        return [e for e in entries if e.size31 == size & 0x7FFFFFFF]


def mark_embedded(btf: Btf, nr_dist: int, nr_types: int, id_map: list[int], run: Run) -> None:
    """``btf_mark_embedded_composite_type_ids`` for every split composite, with a cycle check (Q5)."""
    for i in range(nr_dist, nr_types):
        t = btf.type(i)
        if t.kind not in COMPOSITE_KINDS:
            continue
        for j, nxt in enumerate(id_fields(t)):
            chain: dict[int, None] = {}
            while nxt:
                c = btf.type(nxt)
                if c.kind in MODIFIER_KINDS or c.kind == Kind.ARRAY:
                    chain[nxt] = None
                    nxt = c.type
                    if nxt in chain:
                        ids = list(chain)
                        cycle = " -> ".join(f"[{x}]" for x in ids[ids.index(nxt):] + [nxt])
                        run.flag(Q5, f"cycle {cycle} below member {j} of [{i}]")
                        run.log.append(f"btfspec: Q5: cyclic modifier chain {cycle} below member {j} of "
                                       f"type [{i}]; libbpf v1.6 loops forever here")
                        raise Fail(ELOOP)
                    continue
                if c.kind in COMPOSITE_KINDS and nxt < nr_dist:
                    id_map[nxt] = BTF_IS_EMBEDDED
                break


class Candidate(NamedTuple):
    """One (base type, distilled entry) pair of the base scan, in scan order.

    ``compatible`` is :func:`compatible`'s answer, or None when the entry is the void entry or out of
    range (a base type keyed like an invalid distilled id: libbpf fails the relocation there).
    """

    base_id: int
    name_off: int
    name: bytes
    entry: DistEntry
    compatible: bool | None


BaseKey = tuple[int, int, bytes, int]  # (id, name_off, name, kind) of a keyed base type


def candidates(bp: LibbpfParse, dist: Btf, index: DistIndex, found: list[BaseKey], run: Run,
               embedded: Callable[[int], bool]) -> Iterator[Candidate]:
    """The base scan of ``btf_relocate_map_distilled_base``: for each keyed base type in ``found``
    (:func:`named_base_types`, ascending id), the distilled entries its key selects, in libbpf's order.

    The key rule lives here: INT/FLOAT/ENUM/ENUM64 are keyed by name and size, FWD by name, a
    STRUCT/UNION by name and size only when several composites share its name offset (Q4; strict:
    its name), sizes compared on 31 bits (Q7; strict: full).  ``embedded(dist_id)`` is asked lazily,
    once per candidate, so a consumer that updates its id map between candidates is seen.  Never
    stops by itself: the caller decides what a failure means.
    """
    base = bp.btf
    nr_dist = dist.type_cnt
    by_off = Counter(off for _, off, _, k in found if k in COMPOSITE_KINDS)
    by_name = Counter(name for _, _, name, k in found if k in COMPOSITE_KINDS)
    for bid, name_off, name, bk in found:
        bt = base.type(bid)
        if not run.named(base, bt, bid):
            continue  # strict only: Q3, an empty name is anonymous
        size = bt.size
        if bk in _SIZED_KEY:
            sized_lib = sized_ok = True
        elif bk == Kind.FWD:
            sized_lib = sized_ok = False
        else:
            sized_lib, sized_ok = by_off[name_off] > 1, by_name[name] > 1
        cands = index.lookup(name, sized_lib, size)
        by_content = index.lookup(name, sized_ok, size)
        exact = index.lookup(name, sized_ok, size, full=True)
        if cands != by_content:
            run.flag(Q4, f"base [{bid}] '{name.decode('latin-1')}': {by_off[name_off]} composite(s) at "
                           f"offset {name_off}, {by_name[name]} by name")
        if by_content != exact:
            run.flag(Q7, f"base [{bid}] '{name.decode('latin-1')}' size {size:#x}")
        for e in exact if run.strict else cands:
            if e.id == 0 or e.id >= nr_dist:
                yield Candidate(bid, name_off, name, e, None)
                continue
            ok = compatible(dist.type(e.id), e.id, bt, bid, embedded(e.id), run)
            yield Candidate(bid, name_off, name, e, ok)


def _match_base(bp: LibbpfParse, dist: Btf, index: DistIndex, id_map: list[int], str_map: dict[int, int],
                run: Run) -> None:
    """``btf_relocate_map_distilled_base``: scan the base in id order and map distilled ids; fail at the
    first invalid entry or second compatible candidate, like libbpf."""
    found = named_base_types(bp, index.groups.keys())
    for c in candidates(bp, dist, index, found, run, lambda did: id_map[did] == BTF_IS_EMBEDDED):
        did = c.entry.id
        if c.compatible is None:
            raise run.fail(EINVAL, f"base BTF id [{c.base_id}] maps to invalid distilled base BTF id [{did}]")
        if not c.compatible:
            continue
        prev = id_map[did]
        if prev and prev != BTF_IS_EMBEDDED:
            raise run.fail(EINVAL, f"distilled base BTF type '{c.name.decode('latin-1')}' [{did}], size "
                                   f"{bp.btf.type(c.base_id).size} has multiple candidates of the same size "
                                   f"(ids [{c.base_id}, {prev}]) in base BTF")
        id_map[did] = c.base_id
        str_map[dist.type(did).name_off] = c.name_off


def compatible(dt: BtfType, did: int, bt: BtfType, bid: int, embedded: bool, run: Run) -> bool:
    """The per-candidate compatibility check (a mismatch means: try the next candidate)."""
    dk, bk = dt.kind, bt.kind
    if dk == Kind.FWD:
        if bk == Kind.FWD:
            return dt.kflag == bt.kflag
        if bk not in COMPOSITE_KINDS:
            return False
        lib = bt.kflag == (bk == Kind.UNION)
        ok = dt.kflag == (bk == Kind.UNION)
        return bool(run.choose(Q1, lib, ok, f"distilled FWD [{did}] kflag {dt.kflag} vs base "
                                              f"{Kind(bk).name} [{bid}] kflag {bt.kflag}"))
    if dk == Kind.INT:
        return bk == Kind.INT and bt.int_encoding == dt.int_encoding
    if dk == Kind.FLOAT:
        return bk == Kind.FLOAT
    if dk == Kind.ENUM:
        return bk in _ENUMS
    if dk in COMPOSITE_KINDS:
        size_ok = not embedded or bt.size == dt.size
        return bool(run.choose(Q2, size_ok, size_ok and bk == dk,
                               f"distilled {Kind(dk).name} [{did}] vs base {Kind(bk).name} [{bid}]"))
    return False


def named_base_types(base: LibbpfParse, names: Iterable[bytes]) -> list[BaseKey]:
    """(id, name_off, name, kind), ascending id, of every type of the (standalone) base libbpf's scan
    builds a key for (``name_off != 0``, kind INT/FLOAT/ENUM/ENUM64/FWD/STRUCT/UNION) whose name is
    one of ``names``: a loop over the word index for a small base, else vectorised."""
    if base.btf.nr_types <= LOOP_MAX_TYPES:
        return _named_base_types_looped(base.btf, set(names))
    return _named_base_types_vectorised(base.btf, base.cols, set(names))


def _named_base_types_looped(base: Btf, wanted: set[bytes]) -> list[BaseKey]:
    """:func:`named_base_types` one record at a time."""
    words, starts = base.flat_words()
    kmask, out = base.info.kind_mask, []
    for i, o in enumerate(starts):
        name_off = words[o]
        if name_off and (kind := (words[o + 1] >> 24) & kmask) in _KEYED_VALUES:
            name = base.str_at(name_off)
            if name is not None and name in wanted:
                out.append((base.start_id + i, name_off, name, kind))
    return out


def _named_base_types_vectorised(base: Btf, cols: Columns, wanted: set[bytes]) -> list[BaseKey]:
    """:func:`named_base_types` over numpy columns: a (length, first byte, last byte) fingerprint filters
    the candidates, then the exact names are compared, so only a handful of base types are decoded."""
    import numpy as np

    if not len(cols.offs):
        return []
    sel = np.flatnonzero((cols.name_off != 0) & np.isin(cols.kind, list(_KEYED)))
    strings = base.strings
    buf = np.frombuffer(strings, dtype=np.uint8)
    no = cols.name_off[sel].astype(np.int64) - base.start_str_off
    nul = np.flatnonzero(buf == 0)
    end = nul[np.searchsorted(nul, no)]
    length = end - no
    code = np.where(length == 0, 0, (length << 16) | (buf[no].astype(np.int64) << 8) | buf[end - 1])
    codes = [0 if not w else (len(w) << 16) | (w[0] << 8) | w[-1] for w in wanted]
    keep = np.flatnonzero(np.isin(code, codes))
    out = []
    for j in keep:
        name = strings[no[j]:end[j]]
        if name in wanted:
            i = int(sel[j])
            out.append((base.start_id + i, int(cols.name_off[i]), name, int(cols.kind[i])))
    return out


def _rewrite_split(sp: LibbpfParse, dist: Btf, base: Btf, id_map: list[int], str_map: dict[int, int],
                   run: Run) -> None:
    """Rewrite the split's own records in place: all ids first, then strings (-ENOENT: Q10)."""
    btf = sp.btf
    nr_types = len(id_map)

    def new_id(v: int) -> int:
        return id_map[v] if v < nr_types else 0  # Q12: libbpf reads past id_map here; we read 0

    own = [btf.type(i) for i in range(btf.start_id, btf.type_cnt)]
    for t in own:
        map_ids(t, new_id)
    dist_str_len, base_str_len = dist.str_len, base.str_len

    def new_off(s: int) -> int:
        if not s:
            return 0
        if s >= dist_str_len:
            return (s + base_str_len - dist_str_len) & U32
        mapped = str_map.get(s, 0)
        if not mapped:
            run.flag(Q10, f"string offset {s}")
            shown = run.choose(Q16, "", dist.name(s), f"offset {s}")
            raise run.fail(ENOENT, f"string '{shown}' [offset {s}] is not mapped to base BTF")
        return mapped

    for t in own:
        map_strs(t, new_off)


def _raw_output(sp: LibbpfParse) -> bytes:
    """``btf__raw_data`` of the relocated split: the edited raw buffer (native order) or libbpf's
    re-serialisation of a foreign-endian one (24-byte header as read, types, strings)."""
    btf, h = sp.btf, sp.hdr
    out = bytearray(sp.raw)
    fmt = ("<" if h.order == "little" else ">") + "I"
    pack = struct.Struct(fmt).pack_into
    for tid in range(btf.start_id, btf.type_cnt):
        pos = btf.type_offset(tid)
        assert pos is not None
        for k, w in enumerate(btf.type(tid).words()):
            pack(out, pos + 4 * k, w)
    if h.order == NATIVE:
        return bytes(out)
    types = h.hdr_len + h.type_off
    strs = h.hdr_len + h.str_off
    return bytes(out[:h.hdr_len] + out[types:types + h.type_len] + out[strs:strs + h.str_len])


# --- Outcome wrappers ---------------------------------------------------------------------------------

def distill_outcome(split: bytes, base: bytes, *, strict: bool = False) -> Outcome:
    """:func:`distill` as an :class:`Outcome` (impl ``python`` or ``python-strict``)."""
    return distill(split, base, strict=strict).outcome()


def relocate_outcome(split: bytes, distilled_base: bytes, base: bytes, *, strict: bool = False) -> Outcome:
    """:func:`relocate` as an :class:`Outcome` (impl ``python`` or ``python-strict``)."""
    return relocate(split, distilled_base, base, strict=strict).outcome()


__all__ = ["DIST_KINDS", "BaseKey", "Candidate", "DistEntry", "DistIndex", "DistillResult", "Fail", "IMPL",
           "IMPL_STRICT", "RelocateResult", "Run", "candidates", "compatible", "distill", "distill_outcome",
           "forget_kept_parses", "kept_parse", "mark_embedded", "named_base_types", "parse_btf", "relocate",
           "relocate_outcome"]

"""Stale copies: types a distilled split carries that the base it was relocated onto does not contain.

Distillation copies some base types into the new split (an anonymous struct/union/enum, a typedef, an
array, a pointer or other modifier, a function prototype); relocation only rewrites the ids of such a
copy, so when the target base has no structurally identical type the module describes the type as it
was in the old kernel.  :class:`StaleFinder` lists those copies and, given the source base, says
whether each *differs* in the target or is *gone*; :class:`BaseIndex` is its vectorised index of a
base BTF (twins of split types, types by name, referrers).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from btfspec.spec.fastpath import index_types, layouts, type_words
from btfspec.spec.kinds import Kind
from btfspec.spec.model import Btf

_TERMINAL_KINDS = (Kind.INT, Kind.FLOAT, Kind.FWD)
_NAMED_TERMINAL_KINDS = (Kind.STRUCT, Kind.UNION, Kind.ENUM, Kind.ENUM64)

_WILD = 1 << 32  # "any type" in a candidate key (a reference that is compared structurally)
_FIRST_ELEM_KINDS = (Kind.STRUCT, Kind.UNION, Kind.FUNC_PROTO)  # elements (name_off, type, ...)


class BaseIndex:
    """Vectorised lookups over a parsed base BTF: twins of split types, types by name, referrers.

    Two types are the same when they have the same kind, name, info word, sizes, member names and
    offsets, and their references are the same: a reference to a base type only matches that very
    id (relocation maps named STRUCT/UNION/ENUM/ENUM64, INT, FLOAT and FWD by id), a reference to
    a split type is compared recursively. Candidates for a twin share the info word, the name and,
    when it is a size or a reference to such a base type, the size/type word.
    """

    def __init__(self, base: Btf) -> None:
        if base.raw is None or base.base is not None:
            raise ValueError("BaseIndex needs a base BTF parsed from bytes")
        self.btf = base
        words = type_words(base.raw, base.header)
        offs = index_types(words, base.header, base.start_id)
        self.words = np.frombuffer(words, dtype=np.uint32) if len(words) else np.zeros(0, np.uint32)
        self.offs = np.frombuffer(offs, dtype=np.uint32).astype(np.int64) if len(offs) else np.zeros(0, np.int64)
        self.name = self.words[self.offs]
        info = self.words[self.offs + 1]
        st = self.words[self.offs + 2].astype(np.int64)
        kind = (info >> 24) & 31
        term_kinds = np.isin(kind, [int(k) for k in _TERMINAL_KINDS])
        named_kinds = np.isin(kind, [int(k) for k in _NAMED_TERMINAL_KINDS])
        self.term = term_kinds | (named_kinds & (self.name != 0))
        self.kind = kind
        pid = np.zeros(32, bool)
        for k, lay in layouts().items():
            pid[k] = lay.prefix_is_id
        n = len(self.offs)
        ref_ok = (st == 0) | ((st >= 1) & (st <= n) & self.term[np.clip(st - 1, 0, n - 1)]) if n else st == 0
        kst = np.where(~pid[kind] | ref_ok, st, _WILD)
        self._pid = pid
        self._infos, self._names, self._ksts = info.tolist(), self.name.tolist(), kst.tolist()
        self._terms = self.term.tolist()
        words, offsets, kinds = self.words.tolist(), self.offs.tolist(), kind.tolist()
        infos, names, ksts, terms = self._infos, self._names, self._ksts, self._terms
        array_kind, first_kinds = int(Kind.ARRAY), {int(k) for k in _FIRST_ELEM_KINDS}

        def ref(r: int) -> Any:  # as _ref, inlined for speed
            return r if r == 0 or terms[r - 1] else (infos[r - 1], names[r - 1], ksts[r - 1])

        by_key: dict[tuple[Any, ...], list[int]] = {}
        for i in range(n):
            p, k, kst = offsets[i], kinds[i], ksts[i]
            third = ref(words[p + 2]) if kst == _WILD else kst
            if k == array_kind:
                first: tuple[Any, ...] = (ref(words[p + 3]), words[p + 5])
            elif k in first_kinds and infos[i] & 0xFFFF:
                first = (words[p + 3], ref(words[p + 4]))
            else:
                first = ()
            key = (infos[i], names[i], third, first)
            lst = by_key.get(key)
            if lst is None:
                by_key[key] = [i + 1]
            else:
                lst.append(i + 1)
        self._by_key = by_key

    def _ref(self, r: int) -> Any:
        """Key part for a reference from a base type: the id when compared by id, else its record's level."""
        if r == 0 or self._terms[r - 1]:
            return r
        return self._infos[r - 1], self._names[r - 1], self._ksts[r - 1]

    def _base_name(self, btf: Btf, off: int) -> int:
        """The base string offset of a (split) string offset; -1 when the base lacks the string."""
        if off < self.btf.str_len_total:
            return off
        text = btf.str_at(off)
        found = self.btf.find_str(text) if text is not None else None
        return found if found is not None else -1

    def _split_ref(self, btf: Btf, r: int) -> Any:
        """Key part for a reference from a split type (compare :meth:`_ref`)."""
        if r < self.btf.type_cnt:
            return self._ref(r)
        t = btf.type(r)
        lay = layouts().get(t.kind)
        st = t.size_type
        if lay is not None and lay.prefix_is_id and st and not (st < self.btf.type_cnt and self._terms[st - 1]):
            st = _WILD
        return t.info, self._base_name(btf, t.name_off), st

    def _key(self, btf: Btf, tid: int) -> tuple[Any, ...]:
        """The candidate key of split type ``tid`` (equal to its twin's key in :attr:`_by_key`)."""
        t = btf.type(tid)
        level = self._split_ref(btf, tid)
        third = self._split_ref(btf, t.size_type) if level[2] == _WILD else level[2]
        first: tuple[Any, ...] = ()
        if t.kind == Kind.ARRAY:
            first = (self._split_ref(btf, t.fixed[0]), t.fixed[2])
        elif t.kind in _FIRST_ELEM_KINDS and t.elems:
            first = (self._base_name(btf, t.elems[0][0]), self._split_ref(btf, t.elems[0][1]))
        return level[0], level[1], third, first

    def same(self, btf: Btf, a: int, b: int, memo: dict[tuple[int, int], bool]) -> bool:
        """Is type ``a`` of split ``btf`` (on this base) the same as base type ``b``?"""
        if a < self.btf.type_cnt or b == 0:
            return a == b
        key = (a, b)
        got = memo.get(key)
        if got is not None:
            return got
        memo[key] = True  # a cycle back to this pair does not make them differ
        ta, tb = btf.type(a), self.btf.type(b)
        lay = layouts().get(ta.kind)
        res = ta.info == tb.info and self._base_name(btf, ta.name_off) == tb.name_off and lay is not None
        if res and lay is not None:
            res = (self.same(btf, ta.size_type, tb.size_type, memo) if lay.prefix_is_id
                   else ta.size_type == tb.size_type)
            for i, (x, y) in enumerate(zip(ta.fixed, tb.fixed, strict=True)):
                res = res and (self.same(btf, x, y, memo) if i in lay.fixed_ids else x == y)
            for ea, eb in zip(ta.elems, tb.elems, strict=True):
                for i, (x, y) in enumerate(zip(ea, eb, strict=True)):
                    if not res:
                        break
                    if i in lay.elem_ids:
                        res = self.same(btf, x, y, memo)
                    elif i in lay.elem_strs:
                        res = self._base_name(btf, x) == y
                    else:
                        res = x == y
        memo[key] = res
        return res

    def twin(self, btf: Btf, tid: int, memo: dict[tuple[int, int], bool]) -> int | None:
        """A base type that is the same as type ``tid`` of split ``btf`` (on this base), or None."""
        for cand in self._by_key.get(self._key(btf, tid), ()):
            if self.same(btf, tid, cand, memo):
                return cand
        return None

    def named(self, name: str, kind: int) -> list[int]:
        """Ids of base types of ``kind`` called ``name``."""
        off = self.btf.find_str(name.encode("latin-1"))
        if not off:
            return []
        return [int(i) + 1 for i in np.nonzero((self.name == off) & (self.kind == kind))[0]]

    def referrers(self, tid: int) -> list[tuple[int, Label]]:
        """(parent id, label) of every reference to ``tid`` from another base type."""
        pos = np.nonzero(self.words == tid)[0]
        owners = np.unique(np.searchsorted(self.offs, pos, side="right") - 1)
        out = []
        for o in owners.tolist():
            pid = o + 1
            out.extend((pid, label) for label, child in _edges(self.btf, self.btf.type(pid)) if child == tid)
        return out


Label = tuple[Any, ...]
_ROOT_KINDS = (Kind.STRUCT, Kind.UNION, Kind.TYPEDEF, Kind.FUNC, Kind.VAR)
_MAX_PATHS, _MAX_SCANS, _MAX_DEPTH = 8, 200, 8


def _edges(btf: Btf, t: Any) -> list[tuple[Label, int]]:
    """(label, referenced id) of a type's references, labelled so they can be followed in another BTF."""
    lay = layouts().get(t.kind)
    if lay is None or t.kind in (Kind.DATASEC, Kind.DECL_TAG):
        return []
    out: list[tuple[Label, int]] = []
    if lay.prefix_is_id:
        out.append((("ret",) if t.kind == Kind.FUNC_PROTO else ("t",), t.size_type))
    out.extend(((lay.fixed_names[i],), t.fixed[i]) for i in lay.fixed_ids)
    for n, e in enumerate(t.elems):
        for i in lay.elem_ids:
            if t.kind in (Kind.STRUCT, Kind.UNION):
                name = btf.str_at(e[lay.elem_strs[0]]) if lay.elem_strs else b""
                out.append((("m", name) if name else ("m#", n), e[i]))
            else:
                out.append((("p", n), e[i]))
    return out


def _label_text(label: Label) -> str:
    tag = label[0]
    if tag == "m":
        return "." + label[1].decode("latin-1")
    if tag == "m#":
        return f".<member {label[1]}>"
    if tag == "p":
        return f"(arg {label[1]})"
    if tag == "ret":
        return "()"
    return "->" if tag == "t" else f"[{tag}]"


@dataclass(frozen=True)
class StaleCopy:
    """A copied type with no identical twin in the target base.

    ``verdict`` is ``"differs"`` when a path that reaches the copy's original in the source base
    (from a named struct/union/typedef/function/variable) reaches a different type in the target,
    ``"gone"`` when no such path exists in the target (or no source base was given).
    ``target_id`` is, for ``"differs"``, the target type that path reaches instead (else None).
    """

    type_id: int
    verdict: str
    text: str
    target_id: int | None = None


class StaleFinder:
    """Finds copied types in a split relocated onto ``target`` that the target does not contain.

    With ``source`` (the base the module was distilled from) it also locates each such copy in the
    source and follows the same path in the target to say whether the type *differs* or is *gone*.
    Indexes are built on first use.
    """

    def __init__(self, target: Btf, source: Btf | None = None) -> None:
        self.target = target
        self.source = source
        self._new: BaseIndex | None = None
        self._old: BaseIndex | None = None

    @property
    def new(self) -> BaseIndex:
        """Index of the target base."""
        if self._new is None:
            self._new = BaseIndex(self.target)
        return self._new

    @property
    def old(self) -> BaseIndex | None:
        """Index of the source base (None without one)."""
        if self._old is None and self.source is not None:
            self._old = BaseIndex(self.source)
        return self._old

    def missing(self, relocated: Btf, first_copy: int) -> list[int]:
        """Ids (``>= first_copy``) of copies in ``relocated`` (a split on the target) with no twin."""
        memo: dict[tuple[int, int], bool] = {}
        return [tid for tid in range(first_copy, relocated.type_cnt) if self.new.twin(relocated, tid, memo) is None]

    def classify(self, relocated: Btf, first_copy: int, on_source: Btf | None = None) -> list[StaleCopy]:
        """:meth:`missing` copies with a verdict; ``on_source`` is the same split relocated onto the source."""
        out = []
        memo: dict[tuple[int, int], bool] = {}
        old_memo: dict[tuple[int, int], bool] = {}
        old = self.old if on_source is not None else None
        for tid in self.missing(relocated, first_copy):
            desc = _describe(relocated, tid)
            twin = None
            if old is not None and on_source is not None:
                twin = old.twin(on_source, on_source.start_id + (tid - relocated.start_id), old_memo)
            if twin is None:
                out.append(StaleCopy(tid, "gone", f"{desc}: not in the target"))
                continue
            found = self._follow_paths(old, twin, functools.partial(self.new.same, relocated, tid, memo=memo))
            if found is None:
                out.append(StaleCopy(tid, "gone", f"{desc}: not in the target (no path to it there)"))
            else:
                path, got = found
                out.append(StaleCopy(tid, "differs", f"{desc}: {path} is {_describe(self.target, got)} in the target",
                                     got))
        return out

    def _root_paths(self, old: BaseIndex, tid: int) -> list[tuple[int, list[Label]]]:
        """Paths from named source types down to ``tid`` (breadth first, bounded)."""
        out: list[tuple[int, list[Label]]] = []
        queue: list[tuple[int, list[Label]]] = [(tid, [])]
        seen = {tid}
        scans = 0
        while queue and len(out) < _MAX_PATHS and scans < _MAX_SCANS:
            cur, path = queue.pop(0)
            scans += 1
            for pid, label in old.referrers(cur):
                p = old.btf.type(pid)
                if p.kind in _ROOT_KINDS and p.name_off:
                    out.append((pid, [label, *path]))
                elif pid not in seen and len(path) < _MAX_DEPTH:
                    seen.add(pid)
                    queue.append((pid, [label, *path]))
        return out

    def _follow_paths(self, old: BaseIndex, twin: int, is_same: Callable[[int], bool]) -> tuple[str, int] | None:
        """(path text, target id) of the first source path that resolves in the target, or None."""
        for root, path in self._root_paths(old, twin):
            r = old.btf.type(root)
            name = old.btf.name(r)
            for cand in self.new.named(name, r.kind):
                cur: int | None = cand
                for label in path:
                    cur = _child(self.target, cur, label) if cur else None
                if cur and not is_same(cur):
                    return f"{r.kind_name.lower()} {name}" + "".join(_label_text(lb) for lb in path), cur
        return None


def _child(btf: Btf, tid: int, label: Label) -> int | None:
    for lb, child in _edges(btf, btf.type(tid)):
        if lb == label:
            return child or None
    return None


def _describe(btf: Btf, tid: int) -> str:
    t = btf.type(tid)
    extra = f", {t.vlen} {'params' if t.kind == Kind.FUNC_PROTO else 'members'}" if t.vlen else ""
    size = f", size {t.size}" if t.kind in (Kind.STRUCT, Kind.UNION, Kind.ENUM, Kind.ENUM64) else ""
    return f"[{tid}] {t.kind_name} '{btf.name(t) or '(anon)'}'{size}{extra}"

"""THE matching rule: which type of one type graph is the counterpart of a type of another.

The rule (used by the direct encoder and by the equivalence checker):

* **Named STRUCT, UNION, ENUM/ENUM64 and TYPEDEF** match by kind and name (ENUM and ENUM64 are one
  kind here).  Members, values and targets are not compared: whether a named type "changed" is
  decided by the logical universe (a node keeps its key), not by the match.  When several
  candidates share the kind and name, they are narrowed by size (composites, enums) or by the
  typedef's target (matched recursively); what is left, first in id order, is the match.
* **Everything else** matches structurally: the record's own fields (kind, flags, sizes, encodings,
  counts, offsets, names of the type and of its members/enumerators/parameters) are equal and every
  referenced type matches in turn (void only void).  Reference cycles are resolved coinductively:
  a pair met again while it is being compared is assumed to match.

An empty name is anonymous for matching (an empty string at a non-zero offset included).

The rule is written once, over two *views* (:class:`UniverseView` for a logical universe,
:class:`BtfView` for a BTF object): ``Matcher(a, b)`` answers ``equiv(x, y)`` and ``match(x)``
for any pair of views, so a relocated split can also be compared with a directly encoded one.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any, Protocol

from btfspec.btfgen.universe import NAMED_MATCH_KINDS, Composite, Enum, Key, Ref, Universe, has_name
from btfspec.spec.builder import Builder
from btfspec.spec.kinds import Kind
from btfspec.spec.model import Btf, BtfType, blanked, id_fields

# kind -> family for name matching (ENUM and ENUM64 are one family)
NAME_FAMILY = {Kind.STRUCT: Kind.STRUCT, Kind.UNION: Kind.UNION, Kind.ENUM: Kind.ENUM, Kind.ENUM64: Kind.ENUM,
               Kind.TYPEDEF: Kind.TYPEDEF}

Shape = tuple[tuple[int, ...], tuple[bytes, ...]]


def record_shape(t: BtfType, str_at: Any) -> Shape:
    """A record with its type ids and string offsets blanked, plus the strings they named."""
    words, strs = blanked(t)
    return tuple(words), tuple((str_at(off) or b"") if off else b"" for off in strs)


class View(Protocol):
    """One side of a comparison: types addressed by some reference; ``void`` is the void reference."""

    void: Any

    def is_void(self, x: Any) -> bool: ...

    def shape(self, x: Any) -> tuple[Shape, tuple[Any, ...]]: ...

    def name_key(self, x: Any) -> tuple[int, bytes] | None: ...

    def size(self, x: Any) -> int: ...

    def all_refs(self) -> list[Any]: ...


class BtfView:
    """A :class:`~btfspec.spec.model.Btf` (with its base, if split): references are type ids, void is 0."""

    void = 0

    def __init__(self, btf: Btf) -> None:
        self.btf = btf
        self._shapes: dict[int, tuple[Shape, tuple[int, ...]]] = {}

    def is_void(self, x: int) -> bool:
        return x == 0

    def shape(self, x: int) -> tuple[Shape, tuple[int, ...]]:
        s = self._shapes.get(x)
        if s is None:
            t = self.btf.type(x)
            s = self._shapes[x] = (record_shape(t, self.btf.str_at), tuple(id_fields(t)))
        return s

    def name_key(self, x: int) -> tuple[int, bytes] | None:
        t = self.btf.type(x)
        fam = NAME_FAMILY.get(t.kind)  # type: ignore[call-overload]
        if fam is None or not t.name_off:
            return None
        name = self.btf.str_at(t.name_off)
        return (fam, name) if name else None

    def size(self, x: int) -> int:
        return self.btf.type(x).size_type

    def all_refs(self) -> list[int]:
        return list(range(1, self.btf.type_cnt))


class UniverseView:
    """A logical :class:`~btfspec.btfgen.universe.Universe`: references are keys, void is None.

    Shapes come from encoding the node with :func:`btfspec.btfgen.encoder.emit` into a scratch builder, so
    the record layout is defined in one place.  With ``encoded`` (the ids of the nodes a BTF view holds
    as their own encoding, like a base made by :func:`~btfspec.btfgen.encoder.encode_base`), those nodes'
    shapes are that view's records, read back with their references as keys: the same shapes, made once.
    """

    void = None

    def __init__(self, u: Universe, encoded: tuple[Mapping[Key, int], BtfView] | None = None) -> None:
        self.u = u
        self._scratch = Builder()
        self._empty_off: int | None = None
        self._shapes: dict[Key, tuple[Shape, tuple[Ref, ...]]] = {}
        self._encoded = encoded
        self._key_of = {i: k for k, i in encoded[0].items()} if encoded is not None else {}

    def is_void(self, x: Ref) -> bool:
        return x is None

    def _empty(self) -> int:
        if self._empty_off is None:
            self._empty_off = self._scratch.btf.append_raw_strings(b"\0")
        return self._empty_off

    def shape(self, x: Key) -> tuple[Shape, tuple[Ref, ...]]:
        s = self._shapes.get(x)
        if s is None and self._encoded is not None and x in self._encoded[0]:
            shape, ids = self._encoded[1].shape(self._encoded[0][x])
            key_of = self._key_of
            s = self._shapes[x] = (shape, tuple(key_of[i] if i else None for i in ids))
        if s is None:
            from btfspec.btfgen.encoder import emit

            placeholders: list[Key] = []

            def rid(r: Ref) -> int:
                if r is None:
                    return 0
                placeholders.append(r)
                return len(placeholders)

            tid = emit(self._scratch, self.u[x], rid, self._empty)
            t = self._scratch.btf.type(tid)
            keys = tuple(None if v == 0 else placeholders[v - 1] for v in id_fields(t))
            s = self._shapes[x] = (record_shape(t, self._scratch.btf.str_at), keys)
        return s

    def name_key(self, x: Key) -> tuple[int, bytes] | None:
        n = self.u[x]
        if not isinstance(n, NAMED_MATCH_KINDS) or not has_name(n):
            return None
        return NAME_FAMILY[n.btf_kind], n.name.encode("latin-1")  # type: ignore[union-attr]

    def size(self, x: Key) -> int:
        n = self.u[x]
        return n.size if isinstance(n, Composite | Enum) else 0

    def all_refs(self) -> list[Key]:
        return [n.key for n in self.u.nodes]


class Matcher:
    """Counterparts in view ``b`` of types of view ``a`` under the matching rule (module docstring).

    Both questions are answered without recursion (reference chains may be thousands deep):
    ``equiv`` checks a bisimulation with a worklist, ``match`` resolves references bottom-up.
    """

    def __init__(self, a: View, b: View) -> None:
        self.a, self.b = a, b
        self._by_name: dict[tuple[int, bytes], list[Any]] | None = None
        self._by_shape: dict[Shape, list[Any]] = {}
        self._by_refs: dict[tuple[Shape, tuple[Any, ...]], list[Any]] = {}
        self._equiv: dict[tuple[Hashable, Hashable], bool] = {}
        self._match: dict[Any, Any] = {}

    def _index(self) -> None:
        by_name: dict[tuple[int, bytes], list[Any]] = {}
        for y in self.b.all_refs():
            nk = self.b.name_key(y)
            if nk is not None:
                by_name.setdefault(nk, []).append(y)
            else:
                shape, refs = self.b.shape(y)
                self._by_shape.setdefault(shape, []).append(y)
                self._by_refs.setdefault((shape, refs), []).append(y)
        self._by_name = by_name

    def candidates(self, x: Any) -> list[Any]:
        """Name-matched candidates of a named ``x`` in ``b`` after narrowing (see the module docstring)."""
        if self._by_name is None:
            self._index()
        assert self._by_name is not None
        nk = self.a.name_key(x)
        cands = self._by_name.get(nk, []) if nk is not None else []
        if len(cands) <= 1:
            return cands
        if nk is not None and nk[0] == Kind.TYPEDEF:
            target = self.a.shape(x)[1][0]
            return [c for c in cands if self.equiv(target, self.b.shape(c)[1][0])]
        size = self.a.size(x)
        return [c for c in cands if self.b.size(c) == size]

    def match(self, x: Any) -> Any | None:
        """The counterpart of ``x`` in ``b`` (first in ``b``'s order), or None."""
        if self.a.is_void(x):
            return None
        if x in self._match:
            return self._match[x]
        if self._by_name is None:
            self._index()
        stack: list[tuple[Any, bool]] = [(x, False)]
        open_: set[Any] = set()
        while stack:
            node, expanded = stack.pop()
            if node in self._match or self.a.is_void(node):
                continue
            if self.a.name_key(node) is not None:
                c = self.candidates(node)
                self._match[node] = c[0] if c else None
            elif not expanded:
                if node in open_:
                    continue  # a cycle: its members are matched by the slow path below
                open_.add(node)
                stack.append((node, True))
                stack.extend((r, False) for r in self.a.shape(node)[1] if not self.a.is_void(r))
            else:
                open_.discard(node)
                self._match[node] = self._match_one(node)
        return self._match.get(x)

    def _match_one(self, x: Any) -> Any | None:
        shape, refs = self.a.shape(x)
        want = tuple(self.b.void if self.a.is_void(r) else self._match.get(r) for r in refs)
        for y in self._by_refs.get((shape, want), ()):  # the candidate whose references are the refs' matches
            if self.equiv(x, y):
                return y
        for y in self._by_shape.get(shape, ()):
            if self.equiv(x, y):
                return y
        return None

    def same(self, x: Any, y: Any) -> bool:
        """Content equality of a matched pair: same record fields, every reference matches.

        Unlike :meth:`equiv`, named types are compared by content too (one level: their references
        still match by the rule), so a typedef retargeted or a struct whose members changed differs.
        """
        if self.a.is_void(x) or self.b.is_void(y):
            return self.a.is_void(x) and self.b.is_void(y)
        (sa, ra), (sb, rb) = self.a.shape(x), self.b.shape(y)
        return sa == sb and len(ra) == len(rb) and all(self.equiv(p, q) for p, q in zip(ra, rb, strict=True))

    def equiv(self, x: Any, y: Any) -> bool:
        """Does ``y`` (in ``b``) match ``x`` (in ``a``)?  Pairs met again are assumed to match."""
        top = (x, y)
        hit = self._equiv.get(top)
        if hit is not None:
            return hit
        assumed = {top}
        work = [top]
        ok = True
        while work and ok:
            p, q = work.pop()
            if self.a.is_void(p) or self.b.is_void(q):
                ok = self.a.is_void(p) and self.b.is_void(q)
                continue
            known = self._equiv.get((p, q))
            if known is not None and (p, q) != top:
                ok = known
                continue
            nk = self.a.name_key(p)
            if nk is not None:
                ok = self.b.name_key(q) == nk and q in self.candidates(p)
                continue
            (sa, ra), (sb, rb) = self.a.shape(p), self.b.shape(q)
            if sa != sb or len(ra) != len(rb) or self.b.name_key(q) is not None:
                ok = False
                continue
            for pair in zip(ra, rb, strict=True):
                if pair not in assumed:
                    assumed.add(pair)
                    work.append(pair)
        if ok:  # every pair visited is part of one bisimulation
            for pair in assumed:
                self._equiv[pair] = True
        else:
            self._equiv[top] = False
        return ok


def universe_to_btf(u: Universe, btf: Btf, encoded: Mapping[Key, int] | None = None) -> Matcher:
    """A matcher from a logical universe to a BTF object (base or split); ``encoded``: the ids of the
    nodes ``btf`` holds as their own encoding (its kernel part's ids when ``btf`` is its base)."""
    view = BtfView(btf)
    return Matcher(UniverseView(u, (encoded, view) if encoded is not None else None), view)


def btf_to_btf(a: Btf, b: Btf) -> Matcher:
    """A matcher between two BTF objects (for example a relocated split and a directly encoded one)."""
    return Matcher(BtfView(a), BtfView(b))

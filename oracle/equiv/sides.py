"""One side of an equivalence check: a split on its base, what is reachable from it, and the canonical
hashes that bucket its types (step 1 of :mod:`btfspec.oracle.equiv.compare`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from btfspec.btfgen.matching import BtfView
from btfspec.spec.kinds import Kind
from btfspec.spec.model import Btf, BtfType, id_fields

IDENTITY_KINDS = frozenset({Kind.STRUCT, Kind.UNION, Kind.ENUM, Kind.ENUM64})

Pair = tuple[int, int]


# --------------------------------------------------------------------------------------------------
# one side
# --------------------------------------------------------------------------------------------------

class Side:
    """One split (with its base): typed access, the matching view, hashes of the reachable types."""

    def __init__(self, btf: Btf, label: str) -> None:
        self.btf = btf
        self.label = label
        self.view = BtfView(btf)
        self.start = btf.start_id
        self.cnt = btf.type_cnt
        self.hash: dict[int, int] = {}
        self.reached: set[int] = set()
        self.referenced: set[int] = set()  # split ids referenced by another split type
        self.bounded: dict[tuple[int, int], int] = {}  # memo of _bounded_hash
        self._ident: dict[int, tuple[int, bytes, int] | None] = {}  # memo of ident_key
        self.t: Callable[[int], BtfType] = btf.type  # the type with this id (bound once: a hot call)

    def valid(self, x: int) -> bool:
        return 0 < x < self.cnt

    def in_base(self, x: int) -> bool:
        return 0 < x < self.start

    def split_ids(self) -> range:
        return range(self.start, self.cnt)

    def name(self, x: int) -> str:
        t = self.t(x)
        return self.btf.name(t) if t.name_off else ""

    def ident_key(self, x: int) -> tuple[int, bytes, int] | None:
        """Family, name and size of a named STRUCT/UNION/ENUM/ENUM64 (anywhere), else None."""
        try:
            return self._ident[x]
        except KeyError:
            pass
        t = self.t(x)
        key = None
        if t.kind in IDENTITY_KINDS:
            nk = self.view.name_key(x)
            key = None if nk is None else (nk[0], nk[1], t.size)
        self._ident[x] = key
        return key

    def is_ident(self, x: int) -> bool:
        """A named composite/enum in the base: compared by identity against another base one."""
        return self.in_base(x) and self.ident_key(x) is not None

    def children(self, x: int) -> list[int]:
        """Referenced ids in field-iterator order (the shape's references, without building the shape)."""
        return id_fields(self.t(x))

    def where(self, x: int) -> str:
        if x == 0:
            return "void"
        if not self.valid(x):
            return f"invalid id [{x}]"
        return f"{'base' if self.in_base(x) else 'split'} [{x}]"

    def describe(self, x: int) -> str:
        """``split [14] STRUCT 'foo'``."""
        if x == 0 or not self.valid(x):
            return self.where(x)
        return f"{self.where(x)} {self.short(x)}"

    def short(self, x: int) -> str:
        """``STRUCT 'foo'``, ``PTR``, ``STRUCT (anon)``."""
        if x == 0 or not self.valid(x):
            return self.where(x)
        t = self.t(x)
        n = self.name(x)
        if n:
            return f"{t.kind_name} '{n}'"
        return f"{t.kind_name} (anon)" if t.kind in IDENTITY_KINDS else t.kind_name


def same_base(a: Btf, b: Btf) -> bool:
    """Do both splits sit on the same base (the same object or identical bytes)?"""
    if a.base is None or b.base is None:
        return False
    if a.base is b.base:
        return True
    return a.base.raw is not None and a.base.raw == b.base.raw and a.base.start_id == b.base.start_id


# --------------------------------------------------------------------------------------------------
# canonical hashes (bucketing only: equivalent types hash alike)
# --------------------------------------------------------------------------------------------------

def reach(side: Side) -> None:
    """Every type reachable from the split (base named composites/enums are not descended)."""
    seen: set[int] = set(side.split_ids())
    work = list(side.split_ids())
    while work:
        x = work.pop()
        if not side.valid(x) or side.is_ident(x):
            continue
        split = x >= side.start
        for c in side.children(x):
            if c == 0:
                continue
            if split and c >= side.start:
                side.referenced.add(c)
            if c not in seen:
                seen.add(c)
                work.append(c)
    side.reached = seen


def hash_leaf(side: Side, x: int) -> int | None:
    if not side.valid(x):
        return hash(("invalid", x))
    key = side.ident_key(x)
    return hash(("named", key)) if key is not None else None


def hash_all(side: Side) -> None:
    """Hashes of every reached type, bottom-up over strongly connected components (iterative Tarjan)."""
    h = side.hash

    def kids(x: int) -> tuple[int, ...]:
        if not side.valid(x) or side.ident_key(x) is not None:
            return ()
        return tuple(c for c in side.children(x) if c != 0)

    index: dict[int, int] = {}
    low: dict[int, int] = {}
    on: set[int] = set()
    stack: list[int] = []
    counter = 0
    for root in sorted(side.reached):
        if root in index:
            continue
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on.add(root)
        calls: list[tuple[int, Iterator[int]]] = [(root, iter(kids(root)))]
        while calls:
            v, it = calls[-1]
            pushed = False
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on.add(w)
                    calls.append((w, iter(kids(w))))
                    pushed = True
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            if pushed:
                continue
            calls.pop()
            if calls:
                u = calls[-1][0]
                low[u] = min(low[u], low[v])
            if low[v] != index[v]:
                continue
            comp: list[int] = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            cyclic = len(comp) > 1 or v in kids(v)
            for w in comp:
                leaf = hash_leaf(side, w)
                if leaf is not None:
                    h[w] = leaf
                elif cyclic:
                    h[w] = hash(("cycle", side.view.shape(w)[0]))
                else:
                    h[w] = hash((side.view.shape(w)[0], tuple(h[c] if c else 0 for c in side.children(w))))

"""Semantic equivalence of two split BTFs, each on its own base: do they describe the same types?

Two splits are *equivalent* when their types form the same graph -- kinds, names, sizes, encodings,
members (name, type, bit offset, bitfield size), enumerators, array shapes, prototypes (parameter
names and types, variadic), linkage, tags (kflag attr included) -- whatever their type ids, order,
string offsets and *placement*.  (Vocabulary: *identity* is byte-identical; *equivalence* is this,
isomorphic up to id renumbering, string layout and placement; *compatibility* is relocation-compatible,
whether relocation may map one onto the other.)

The record comparison and the name families are :mod:`btfspec.btfgen.matching`'s (``BtfView.shape``:
a record with ids and string offsets blanked plus the strings it names; ``NAME_FAMILY``), and so
is the rule for named types, applied by placement:

* a named STRUCT/UNION/ENUM/ENUM64 that lives **in the base on both sides** is "the kernel's type":
  it is compared by identity -- name family, name and size -- not by its members;
* everything else is compared **structurally**: the record (kind, flags, sizes, encodings, counts,
  offsets, the names of the type and of its members/enumerators/parameters) and every reference in
  turn.  A type in the split on one side and in the base on the other (distillation moves anonymous
  and reference types from the base into the split) is compared fully, so it is the same type exactly
  when both resolve to the same graph.  A named typedef in the base is compared by name and target.

How it works:

1. **Bucketing.**  Every type reachable from either split gets a canonical hash computed bottom-up over
   strongly connected components (iterative Tarjan): named composites/enums hash by family, name and
   size; other types by their record and their references' hashes; a type on a reference cycle that
   avoids named composites hashes by its record only.  Equivalent types always hash alike.
2. **Pairs.**  ``(a, b)`` is compared by exploring the product graph from it (a worklist with a visited
   set, so cycles such as ``list_head`` terminate): a pair whose own records differ is a *local
   difference*; a pair is equal exactly when no local difference is reachable from it (the greatest
   bisimulation).  Results are memoised across pairs.
3. **Split types.**  Split types of A and B are paired within a bucket.  A split type left over is
   *covered* when a committed pair's exploration already paired it (a copy in one split, its original
   in the other side's base), or *placed* when an equivalent type in the other side's base exists.
   Whatever is still left is explained against a counterpart of the same kind and name (or the most
   alike record), or reported as having none.
4. **Routes.**  Each local difference the verdict rests on is reported once, as a route from the nearest
   named split type above it: ``split type [14] STRUCT 'foo' member 'bar' -> PTR -> base [2301] STRUCT
   'baz' size 24 vs 16``.

:func:`equivalent` is the entry point; :func:`only_at` checks that every difference is at or below
given types (the stale copies of a perturbation).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

from btfspec.oracle.equiv.explain import child_label, explain_local, normalize
from btfspec.oracle.equiv.sides import Pair, Side, hash_all, hash_leaf, reach, same_base
from btfspec.spec.model import Btf

MAX_DIFFERENCES = 20

# --------------------------------------------------------------------------------------------------
# the product graph
# --------------------------------------------------------------------------------------------------

class _Compare:
    """Pairs of A and B types, explored and decided (memoised across calls)."""

    def __init__(self, A: Side, B: Side, same_base: bool) -> None:
        self.A, self.B = A, B
        self.same_base = same_base
        self.status: dict[Pair, bool] = {}
        self.edges: dict[Pair, tuple[Pair, ...]] = {}
        self.local: dict[Pair, str] = {}
        self._hops: dict[Pair, tuple[int, Pair]] | None = None

    def _local(self, p: Pair) -> tuple[bool, tuple[Pair, ...]]:
        """(records differ, child pairs) of one pair."""
        A, B = self.A, self.B
        a, b = p
        if a == 0 or b == 0:
            return a != b, ()
        if not A.valid(a) or not B.valid(b):
            return not (a == b and not A.valid(a) and not B.valid(b)), ()
        if self.same_base and a == b and A.in_base(a):
            return False, ()
        if A.is_ident(a) and B.is_ident(b):
            return A.ident_key(a) != B.ident_key(b), ()
        (sa, ra), (sb, rb) = A.view.shape(a), B.view.shape(b)
        if sa != sb or len(ra) != len(rb):
            return True, ()
        return False, tuple(zip(ra, rb, strict=True))

    def equal(self, a: int, b: int) -> bool:
        """Are ``a`` (in A) and ``b`` (in B) equivalent?  Explores what is not yet decided."""
        top = (a, b)
        got = self.status.get(top)
        if got is not None:
            return got
        self._hops = None
        new: list[Pair] = []
        seen = {top}
        work = [top]
        while work:
            p = work.pop()
            new.append(p)
            differs, kids = self._local(p)
            if differs:
                self.local[p] = ""  # explained lazily
                continue
            self.edges[p] = kids
            for q in kids:
                if q not in seen and q not in self.status:
                    seen.add(q)
                    work.append(q)
        bad = {p for p in new if p in self.local}
        rev: dict[Pair, list[Pair]] = {}
        for p in new:
            for q in self.edges.get(p, ()):
                if self.status.get(q) is False:
                    bad.add(p)
                else:
                    rev.setdefault(q, []).append(p)
        work = list(bad)
        while work:
            for p in rev.get(work.pop(), ()):
                if p not in bad:
                    bad.add(p)
                    work.append(p)
        for p in new:
            self.status[p] = p not in bad
        return top not in bad

    def reason(self, p: Pair) -> str:
        if not self.local.get(p):
            self.local[p] = explain_local(self.A, p[0], self.B, p[1])
        return self.local[p]

    def below(self, starts: Iterable[Pair]) -> set[Pair]:
        """Every explored pair reachable from ``starts`` (themselves included)."""
        seen = set(starts)
        work = list(seen)
        while work:
            for q in self.edges.get(work.pop(), ()):
                if q not in seen:
                    seen.add(q)
                    work.append(q)
        return seen

    def _next_hops(self) -> dict[Pair, tuple[int, Pair]]:
        """For every pair that reaches a local difference: (child index, child) one step nearer to the
        nearest one (a breadth-first search backwards from all local differences at once)."""
        if self._hops is None:
            rev: dict[Pair, list[tuple[Pair, int]]] = {}
            for p, kids in self.edges.items():
                if self.status.get(p) is False:
                    for i, q in enumerate(kids):
                        rev.setdefault(q, []).append((p, i))
            hops: dict[Pair, tuple[int, Pair]] = {}
            seen = set(self.local)
            queue = deque(self.local)
            while queue:
                q = queue.popleft()
                for p, i in rev.get(q, ()):
                    if p not in seen:
                        seen.add(p)
                        hops[p] = (i, q)
                        queue.append(p)
            self._hops = hops
        return self._hops

    def path(self, top: Pair) -> tuple[list[tuple[Pair, int]], Pair] | None:
        """A shortest route from ``top`` to a local difference: ``([(pair, child index), ...], end)``."""
        hops = self._next_hops()
        steps: list[tuple[Pair, int]] = []
        cur = top
        while cur not in self.local:
            hop = hops.get(cur)
            if hop is None:
                return None
            steps.append((cur, hop[0]))
            cur = hop[1]
        return steps, cur

    def path_text(self, top: Pair) -> tuple[str, Pair | None]:
        """A route a person can follow, ending in the local difference, and that difference's pair."""
        A, B = self.A, self.B
        a, b = top
        if A.valid(a):
            text = f"{'base' if A.in_base(a) else 'split'} type [{a}] {A.short(a)}"
        else:
            text = A.describe(a)
        if A.where(a) != B.where(b):
            text += f" (B: {B.where(b)})"
        found = self.path(top)
        if found is None:
            return f"{text}: differs", None
        steps, end = found
        nodes = [p for p, _ in steps[1:]] + [end] if steps else []
        for (p, i), nxt in zip(steps, nodes, strict=True):
            label = child_label(A, p[0], i)
            text += f" {label} ->" if label else " ->"
            if nxt != end:
                text += f" {A.short(nxt[0])}"
        ea, eb = end
        if not (A.valid(ea) and B.valid(eb)):
            return f"{text} {A.describe(ea)} vs {B.describe(eb)}", end
        if steps:
            text += f" {A.describe(end[0])}"
            if A.short(end[0]) != B.short(end[1]):
                text += f" (B: {B.describe(end[1])})"
            elif A.where(end[0]) != B.where(end[1]):
                text += f" (B: {B.where(end[1])})"
        return f"{text} {self.reason(end)}", end


# --------------------------------------------------------------------------------------------------
# the result and the entry point
# --------------------------------------------------------------------------------------------------

@dataclass
class EquivResult:
    """The verdict of :func:`equivalent`.

    ``differences`` (at most ``MAX_DIFFERENCES``) are routes from a split type to a local difference,
    or ``... has no counterpart`` lines; ``count`` is how many there are in all.  ``mapping`` maps
    every A split type with an equivalent counterpart to it (a B split or base id).  ``local`` holds
    every explored pair whose own records differ (with the reason); ``unmatched_a``/``unmatched_b``
    the split types with no counterpart at all.
    """

    equal: bool
    first_difference: str | None
    differences: list[str]
    mapping: dict[int, int]
    local: dict[Pair, str] = field(default_factory=dict)
    unmatched_a: list[int] = field(default_factory=list)
    unmatched_b: list[int] = field(default_factory=list)
    count: int = 0
    first_pair: Pair | None = None  # the local difference the first route ends in
    _cmp: _Compare | None = field(default=None, repr=False, compare=False)
    _tops: list[Pair] = field(default_factory=list, repr=False, compare=False)

    @property
    def differing_pairs(self) -> set[Pair]:
        """Pairs (A id, B id) whose own records differ, within what the verdict rests on."""
        return set(self.local)

    def below(self, pairs: Iterable[Pair]) -> set[Pair]:
        """Every compared pair reachable from ``pairs`` (themselves included)."""
        return self._cmp.below(pairs) if self._cmp is not None else set(pairs)

    def compared_pairs(self) -> set[Pair]:
        """Every pair the verdict rests on."""
        return self.below(self._tops)

    def to_dict(self) -> dict[str, Any]:
        """JSON form (``mapping`` keys as strings)."""
        return {"equal": self.equal, "first_difference": self.first_difference, "differences": self.differences,
                "count": self.count, "unmatched_a": self.unmatched_a, "unmatched_b": self.unmatched_b,
                "mapping": {str(a): b for a, b in sorted(self.mapping.items())}}


class _Lazy:
    """A value computed on first use."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.fn: Callable[[], Any] | None = fn
        self.value: Any = None

    def get(self) -> Any:
        if self.fn is not None:
            self.value, self.fn = self.fn(), None
        return self.value


class _Pairing:
    """Step 3 of the module docstring: split types paired, covered, placed, explained."""

    def __init__(self, A: Side, B: Side, cmp: _Compare) -> None:
        self.A, self.B, self.cmp = A, B, cmp
        self.tops: list[Pair] = []
        self.done: set[Pair] = set()  # pairs reachable from committed tops
        self.cov_a: set[int] = set()
        self.cov_b: set[int] = set()

    def commit(self, a: int, b: int) -> None:
        self.cmp.equal(a, b)
        self.tops.append((a, b))
        work = [(a, b)] if (a, b) not in self.done else []
        self.done.update(work)
        while work:
            p = work.pop()
            self.cov_a.add(p[0])
            self.cov_b.add(p[1])
            for q in self.cmp.edges.get(p, ()):
                if q not in self.done:
                    self.done.add(q)
                    work.append(q)

    def by_hash(self, side: Side, ids: Iterable[int]) -> dict[int, list[int]]:
        out: dict[int, list[int]] = {}
        for x in ids:
            out.setdefault(side.hash.get(x, 0), []).append(x)
        return out

    def pair_buckets(self) -> None:
        """Split types of A and B equal within a hash bucket."""
        A, B = self.A, self.B
        free = self.by_hash(B, B.split_ids())
        for a in A.split_ids():
            cands = free.get(A.hash.get(a, 0))
            if not cands:
                continue
            for i, b in enumerate(cands):
                if self.cmp.equal(a, b):
                    del cands[i]
                    self.commit(a, b)
                    break

    def place(self) -> None:
        """Uncovered split types equal to a type in the other side's base (same bucket)."""
        A, B = self.A, self.B
        b_base = self.by_hash(B, (x for x in B.reached if B.in_base(x)))
        for a in A.split_ids():
            if a not in self.cov_a:
                for b in b_base.get(A.hash.get(a, 0), ()):
                    if self.cmp.equal(a, b):
                        self.commit(a, b)
                        break
        a_base = self.by_hash(A, (x for x in A.reached if A.in_base(x)))
        for b in B.split_ids():
            if b not in self.cov_b:
                for a in a_base.get(B.hash.get(b, 0), ()):
                    if self.cmp.equal(a, b):
                        self.commit(a, b)
                        break

    def explain(self) -> None:
        """Commit a best-effort counterpart for what is left (roots first, named first): same kind and
        name, else the same record."""
        A, B = self.A, self.B
        names_b, names_a = self._names(B, self.cov_b), self._names(A, self.cov_a)
        shapes_b, shapes_a = _Lazy(lambda: self._shapes(B, self.cov_b)), _Lazy(lambda: self._shapes(A, self.cov_a))
        for roots, named in ((True, True), (True, False), (False, True), (False, False)):
            for a in self._order(A, self.cov_a, named, roots):
                if a in self.cov_a:
                    continue
                b = self._counterpart(A, a, B, names_b if named else shapes_b.get(), self.cov_b, named)
                if b is not None:
                    self.commit(a, b)
            for b in self._order(B, self.cov_b, named, roots):
                if b in self.cov_b:
                    continue
                a = self._counterpart(B, b, A, names_a if named else shapes_a.get(), self.cov_a, named)
                if a is not None:
                    self.commit(b=b, a=a)

    @staticmethod
    def _names(side: Side, covered: set[int]) -> dict[tuple[int, str], list[int]]:
        out: dict[tuple[int, str], list[int]] = {}
        ids = [x for x in side.split_ids() if x not in covered]
        ids += [x for x in side.split_ids() if x in covered]
        ids += sorted(x for x in side.reached if side.in_base(x))
        for x in ids:
            if side.valid(x) and side.name(x):
                out.setdefault((side.t(x).kind, side.name(x)), []).append(x)
        return out

    @staticmethod
    def _shapes(side: Side, covered: set[int]) -> list[dict[int, list[int]]]:
        """Uncovered split types by their graph unrolled 0 .. AGREEMENT_DEPTH references deep (the
        candidates for an anonymous type)."""
        out: list[dict[int, list[int]]] = [{} for _ in range(AGREEMENT_DEPTH + 1)]
        for x in side.split_ids():
            if x not in covered and side.valid(x):
                for k in range(AGREEMENT_DEPTH + 1):
                    out[k].setdefault(_bounded_hash(side, x, k, side.bounded), []).append(x)
        return out

    @staticmethod
    def _order(side: Side, covered: set[int], named: bool, roots: bool) -> list[int]:
        """Uncovered split types, named or not, roots (referenced by no split type) or not: the
        explanation of a root usually covers what lies below it."""
        return [x for x in side.split_ids() if x not in covered and bool(side.name(x)) == named
                and (x not in side.referenced) == roots]

    @staticmethod
    def _counterpart(src: Side, x: int, dst: Side, index: Any, covered: set[int], named: bool) -> int | None:
        """The counterpart to explain ``x`` against.  Named: of the same kind and name, an uncovered one (a
        covered one already has its equal: two same-named FUNCs, one of them stale, must not be explained
        crosswise), then the one whose graph agrees the deepest, then of the same root-ness.  Anonymous:
        among uncovered split types whose graph agrees the deepest (at least the record), the one of the
        same root-ness."""
        root = x not in src.referenced
        if not named:
            for k in range(AGREEMENT_DEPTH, -1, -1):
                cands = [y for y in index[k].get(_bounded_hash(src, x, k, src.bounded), ()) if y not in covered]
                if cands:
                    return next((y for y in cands if (y not in dst.referenced) == root), cands[0])
            return None
        best, best_key = None, (False, -2, False)
        for y in index.get((src.t(x).kind, src.name(x)), ()):
            score = (y not in covered, _agreement(src, x, dst, y), (y not in dst.referenced) == root)
            if score > best_key:
                best, best_key = y, score
        return best


def _bounded_hash(side: Side, x: int, depth: int, memo: dict[tuple[int, int], int]) -> int:
    """A hash of ``x``'s graph unrolled ``depth`` references deep (named composites/enums by identity)."""
    key = (x, depth)
    got = memo.get(key)
    if got is None:
        leaf = hash(0) if x == 0 else hash_leaf(side, x)
        if leaf is not None:
            got = leaf
        else:
            shape, refs = side.view.shape(x)
            got = hash((shape, tuple(_bounded_hash(side, r, depth - 1, memo) for r in refs) if depth else ()))
        memo[key] = got
    return got


AGREEMENT_DEPTH = 4


def _agreement(A: Side, a: int, B: Side, b: int) -> int:
    """How many reference levels deep ``a`` and ``b`` look alike (-1: not even their records)."""
    depth = -1
    for k in range(AGREEMENT_DEPTH + 1):
        if _bounded_hash(A, a, k, A.bounded) != _bounded_hash(B, b, k, B.bounded):
            break
        depth = k
    return depth


def equivalent(split_a: Btf, split_b: Btf, *, limit: int = MAX_DIFFERENCES) -> EquivResult:
    """Do ``split_a`` and ``split_b`` (each on its own ``.base``) describe the same types?

    See the module docstring for the rule; a standalone BTF (no base) is compared as a split whose
    types are all its own.  Never decodes more of a base than the splits reach.
    """
    A, B = Side(split_a, "A"), Side(split_b, "B")
    for side in (A, B):
        reach(side)
        hash_all(side)
    cmp = _Compare(A, B, same_base(split_a, split_b))
    pairing = _Pairing(A, B, cmp)
    pairing.pair_buckets()
    pairing.place()
    pairing.explain()
    failing = [p for p in pairing.tops if not cmp.status[p]]
    routes = _routes(cmp, pairing.done, failing)
    texts = [cmp.path_text(start)[0] for start, _ in routes[:limit]]
    count = len(routes)
    un_a = [a for a in A.split_ids() if a not in pairing.cov_a]
    un_b = [b for b in B.split_ids() if b not in pairing.cov_b]
    for side, other, ids in ((A, B, un_a), (B, A, un_b)):
        count += len(ids)
        texts += [f"split type {side.describe(x)[len('split '):]} of {side.label} has no counterpart in {other.label}"
                  for x in ids[:max(0, limit - len(texts))]]
    done = pairing.done
    local = {p: cmp.reason(p) for p in cmp.local if p in done}
    mapping: dict[int, int] = {}
    for a, b in pairing.tops:
        if cmp.status[(a, b)] and a >= A.start:
            mapping.setdefault(a, b)
    for a, b in sorted(done):
        if a >= A.start and a not in mapping and cmp.status.get((a, b)):
            mapping[a] = b
    equal = not failing and not un_a and not un_b
    return EquivResult(equal, texts[0] if texts else None, texts, mapping, local, un_a, un_b, count,
                       routes[0][1] if routes else None, cmp, list(pairing.tops))


def identical(split: Btf) -> EquivResult:
    """The verdict of :func:`equivalent` on two splits of the same bytes on one base (found without
    comparing: every split type is its own counterpart)."""
    return EquivResult(True, None, [], {x: x for x in range(split.start_id, split.type_cnt)})


def type_difference(a_btf: Btf, a_id: int, b_btf: Btf, b_id: int) -> str | None:
    """The first difference between type ``a_id`` of ``a_btf`` and ``b_id`` of ``b_btf`` as a path a
    person can follow, or None when the two types are equivalent (same rules as :func:`equivalent`)."""
    cmp = _Compare(Side(a_btf, "A"), Side(b_btf, "B"), same_base(a_btf, b_btf))
    if cmp.equal(a_id, b_id):
        return None
    return cmp.path_text((a_id, b_id))[0]


def _routes(cmp: _Compare, done: set[Pair], tops: list[Pair]) -> list[tuple[Pair, Pair]]:
    """One route per local difference the verdict rests on: ``(start, end)``, in start order.

    The start is the nearest failing pair above the difference whose A side is a named split type with
    the same kind and name on the B side (a failing top where there is none), so a route reads from the
    closest type a person knows by name.
    """
    A, B = cmp.A, cmp.B
    hops = cmp._next_hops()
    found: dict[Pair, tuple[Pair, int]] = {p: (p, 0) for p in cmp.local}  # pair -> (end, distance)

    def end_of(p: Pair) -> tuple[Pair, int] | None:
        chain: list[Pair] = []
        cur = p
        while cur not in found:
            hop = hops.get(cur)
            if hop is None:
                return None
            chain.append(cur)
            cur = hop[1]
        end, dist = found[cur]
        for i, q in enumerate(reversed(chain), 1):
            found[q] = (end, dist + i)
        return found[p]

    best: dict[Pair, tuple[tuple[int, int, int], Pair]] = {}
    named = (p for p in done if p[0] >= A.start and A.valid(p[0]) and B.valid(p[1]) and cmp.status.get(p) is False
             and A.name(p[0]) and A.short(p[0]) == B.short(p[1]))
    for rank, cands in ((0, named), (1, iter(tops))):
        for p in cands:
            got = end_of(p)
            if got is None:
                continue
            end, dist = got
            score = (rank, dist, p[0])
            if end not in best or score < best[end][0]:
                best[end] = (score, p)
    return sorted(((p, end) for end, (_, p) in best.items()), key=lambda r: (r[0][0], r[0][1], r[1]))


def difference_class(result: EquivResult) -> str:
    """A stable one-line class of the first difference (no ids, names or numbers), for deduplication:
    ``STRUCT: member '…' bit offset N vs N``, ``unmatched FUNC``, ``equal``."""
    if result.equal:
        return "equal"
    cmp = result._cmp
    if result.first_pair is not None and cmp is not None:
        a, b = result.first_pair
        kind = cmp.A.t(a).kind_name if cmp.A.valid(a) else ("void" if a == 0 else "invalid")
        reason = normalize(cmp.reason((a, b)), limit=10_000)
        return f"{kind}: {reason}"
    for side, ids in ((cmp.A if cmp else None, result.unmatched_a), (cmp.B if cmp else None, result.unmatched_b)):
        if ids and side is not None:
            return f"unmatched {side.t(ids[0]).kind_name} in {side.label}"
    return "differs"


def only_at(result: EquivResult, b_nodes: Collection[int] = (), a_nodes: Collection[int] = ()) -> bool:
    """Are all differences at or below the given types (B ids ``b_nodes``, A ids ``a_nodes``)?

    True when every local difference is reachable from a compared pair whose B side is in ``b_nodes``
    or whose A side is in ``a_nodes``, and every split type without a counterpart is referenced (directly
    or not) from such a pair's own side: below a differing pair nothing is compared, so what only a
    stale copy refers to has no counterpart.  An equivalent result is trivially True.
    """
    if result.equal:
        return True
    starts = [p for p in result.compared_pairs() if p[1] in b_nodes or p[0] in a_nodes]
    below = result.below(starts)
    if not all(p in below for p in result.local):
        return False
    if not (result.unmatched_a or result.unmatched_b):
        return True
    cmp = result._cmp
    if cmp is None:
        return False
    for side, ids, unmatched in ((cmp.A, {a for a, _ in below}, result.unmatched_a),
                                 (cmp.B, {b for _, b in below}, result.unmatched_b)):
        left = {x for x in unmatched if not _alike_elsewhere(cmp, side, x)}
        if left and not left <= _references(side, ids):
            return False
    return True


def _alike_elsewhere(cmp: _Compare, side: Side, x: int) -> bool:
    """Is ``x``, a split type of ``side`` left without a counterpart, equivalent to a split type of the other
    side all the same?  The pairing gave that one to another type of ``side``: two pointers to one distilled
    copy of two alike types, one of which changed (the pointer to the unchanged one is no difference)."""
    other = cmp.B if side is cmp.A else cmp.A
    key = side.hash.get(x, 0)
    for y in other.split_ids():
        if other.hash.get(y, 0) == key and (cmp.equal(x, y) if side is cmp.A else cmp.equal(y, x)):
            return True
    return False


def _references(side: Side, roots: Iterable[int]) -> set[int]:
    """Every valid id reachable from ``roots`` on one side (roots included)."""
    seen: set[int] = set()
    work = [x for x in roots if x and side.valid(x)]
    while work:
        x = work.pop()
        if x in seen:
            continue
        seen.add(x)
        work.extend(c for c in side.children(x) if c and side.valid(c) and c not in seen)
    return seen


def equivalent_bytes(split_a: bytes, base_a: bytes | Btf | None, split_b: bytes, base_b: bytes | Btf | None,
                     **kw: Any) -> EquivResult:
    """:func:`equivalent` on blobs (a base given as bytes is parsed; the same bytes are parsed once)."""
    cache: dict[bytes, Btf] = {}

    def parse_base(b: bytes | Btf | None) -> Btf | None:
        if b is None or isinstance(b, Btf):
            return b
        if b not in cache:
            cache[b] = Btf.from_bytes(b)
        return cache[b]

    ba, bb = parse_base(base_a), parse_base(base_b)
    return equivalent(Btf.from_bytes(split_a, base=ba), Btf.from_bytes(split_b, base=bb), **kw)


__all__ = ["EquivResult", "MAX_DIFFERENCES", "child_label", "difference_class", "equivalent", "equivalent_bytes",
           "explain_local", "only_at"]

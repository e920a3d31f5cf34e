"""A universe-level reducer for a failing case.

Hypothesis shrinks the *choices* a case was drawn from; a construct whose deletion would move the
references the later choices make (they pick among the nodes made so far, by position) can stay in
the case although the failure does not need it, and a shrink takes thousands of checks.  This reducer
works on the universe itself: it deletes runs of nodes (halves first, as delta debugging does), then
one node at a time (repairing its users: a composite, a function prototype or a DATASEC loses the
member, parameter or entry that referred to it; any other user goes with it), then one member,
parameter, enumerator or DATASEC entry at a time, then tries each long name short, and keeps each
smaller universe on which the failure still happens, until a whole pass keeps nothing or a limit is
met.  Each pass first tries the property's simpler cases on the same universe (for P1: the same case
without its perturbation).

The property rebuilds its case from a smaller universe (:class:`CaseReduction`); for a relocation
case that re-runs the same perturbation with its recorded decisions
(:func:`btfspec.btfgen.perturb.replay`), so the label is derived from the smaller case, never
carried over: a reduction cannot turn a real finding into a false one.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from btfspec.btfgen.universe import Composite, Datasec, DeclTag, Enum, Func, FuncProto, Key, Node, Ref, Universe, refs

C = TypeVar("C")

# An edit: ("node", key, ...) deletes nodes; ("item", key, index) deletes one member, parameter,
# enumerator or DATASEC entry of a node; ("name", name) makes a long name short.
Edit = tuple[Any, ...]
MIN_RUN = 4  # the shortest run of nodes deleted as one edit (shorter runs go node by node)
LONG_NAME = 32  # a longer name is tried short (every use of it at once: same names stay the same)


@dataclass(frozen=True)
class CaseReduction(Generic[C]):
    """How a property's case is reduced: its universe, the case rebuilt from a smaller universe (None when
    the smaller universe makes no case of this property) and, tried first in every pass, simpler cases on
    the same universe (P1: no perturbation at all)."""

    universe: Callable[[C], Universe]
    rebuild: Callable[[C, Universe], C | None]
    simpler: Callable[[C], Iterable[C]] = lambda _case: ()


@dataclass
class Reduced(Generic[C]):
    """The smallest failing case reached, and what reaching it took."""

    case: C
    checks: int = 0
    kept: int = 0  # edits kept
    stopped: bool = False  # the time limit ended it


@dataclass(frozen=True)
class _ItemField:
    """A node's list of deletable items: the field, what an item refers to, how many must stay."""

    name: str
    ref: Callable[[Any], Ref] | None  # None: the items refer to nothing
    keep: int


_ITEM_FIELDS: dict[type, _ItemField] = {
    Composite: _ItemField("members", lambda m: m.type, 0),
    FuncProto: _ItemField("params", lambda p: p[1], 0),
    Datasec: _ItemField("entries", lambda e: e[0], 1),  # a DATASEC without entries goes as a whole
    Enum: _ItemField("values", None, 1),
}


def _items(n: Node) -> int:
    """How many deletable items (members, parameters, enumerators, entries) a node has."""
    f = _ITEM_FIELDS.get(type(n))
    if f is None:
        return 0
    count = len(getattr(n, f.name))
    return count if count > f.keep else 0


def edits(u: Universe) -> list[Edit]:
    """Every edit of ``u``: deletions of runs of nodes (halves, then quarters, ... down to
    :data:`MIN_RUN` nodes, newest run first), of single nodes (newest first), then of items (last first)."""
    keys = [n.key for n in u.nodes]
    out: list[Edit] = []
    run = len(keys) // 2
    while run >= MIN_RUN:
        out += [("node", *keys[i:i + run]) for i in reversed(range(0, len(keys) - run + 1, run))]
        run //= 2
    out += [("node", k) for k in reversed(keys)]
    for n in reversed(u.nodes):
        out += [("item", n.key, i) for i in reversed(range(_items(n)))]
    out += [("name", name) for name in dict.fromkeys(_names(u)) if len(name) > LONG_NAME]
    return out


def _names(u: Universe) -> Iterator[str]:
    """Every name in ``u``: of nodes, members, parameters and enumerators."""
    for n in u.nodes:
        if n.name:
            yield n.name
        if isinstance(n, Composite):
            yield from (m.name for m in n.members if m.name)
        elif isinstance(n, FuncProto):
            yield from (p for p, _ in n.params if p)
        elif isinstance(n, Enum):
            yield from (v for v, _ in n.values)


def _renamed(u: Universe, old: str) -> Universe:
    """``u`` with every use of the name ``old`` replaced by one short name no other use has."""
    used = set(_names(u))
    i = 0
    while f"n{i}" in used:
        i += 1
    new = f"n{i}"

    def name(x: str | None) -> str | None:
        return new if x == old else x

    nodes = []
    for n in u.nodes:
        if n.name == old:
            n = dataclasses.replace(n, name=new)  # type: ignore[call-arg]
        if isinstance(n, Composite):
            n = dataclasses.replace(n, members=tuple(dataclasses.replace(m, name=name(m.name)) for m in n.members))
        elif isinstance(n, FuncProto):
            n = dataclasses.replace(n, params=tuple((name(p), t) for p, t in n.params))
        elif isinstance(n, Enum):
            n = dataclasses.replace(n, values=tuple((new if v == old else v, x) for v, x in n.values))
        nodes.append(n)
    return dataclasses.replace(u, nodes=tuple(nodes))


def _drop_item(n: Node, i: int) -> Node:
    items = getattr(n, _ITEM_FIELDS[type(n)].name)
    return dataclasses.replace(n, **{_ITEM_FIELDS[type(n)].name: items[:i] + items[i + 1:]})


def _retag(nodes: dict[Key, Node], target: Key, i: int) -> None:
    """Item ``i`` of ``target`` is gone: a DECL_TAG on it goes too, those on later items move down one
    (for a function prototype, the tags on the FUNCs of it, whose component is the parameter)."""
    on = {target} | {k for k, n in nodes.items() if isinstance(n, Func) and n.proto == target}
    for k, n in list(nodes.items()):
        if isinstance(n, DeclTag) and n.target in on and n.component_idx >= i:
            if n.component_idx == i:
                del nodes[k]
            else:
                nodes[k] = dataclasses.replace(n, component_idx=n.component_idx - 1)


def _without(u: Universe, gone: set[Key]) -> Universe | None:
    """``u`` without the nodes ``gone``, their users repaired or deleted in turn (None: nothing left)."""
    nodes: dict[Key, Node] = {n.key: n for n in u.nodes}
    work = list(gone)
    while work:
        key = work.pop()
        if nodes.pop(key, None) is None:
            continue
        for k, n in list(nodes.items()):
            if key not in refs(n):
                continue
            f = _ITEM_FIELDS.get(type(n))
            if f is None or f.ref is None:  # no item to lose: the user goes too
                work.append(k)
                continue
            for i in reversed(range(len(getattr(n, f.name)))):
                if f.ref(getattr(n, f.name)[i]) == key:
                    n = _drop_item(n, i)
                    _retag(nodes, k, i)
            if isinstance(n, FuncProto) and n.ret == key:
                n = dataclasses.replace(n, ret=None)
            if len(getattr(n, f.name)) < f.keep:
                work.append(k)
                continue
            nodes[k] = n
    return _in_order(u, nodes) if nodes else None


def _in_order(u: Universe, nodes: dict[Key, Node]) -> Universe:
    """``u`` made of ``nodes`` (some of its nodes, maybe edited), in ``u``'s order."""
    kept = tuple(nodes[m.key] for m in u.nodes if m.key in nodes)
    return dataclasses.replace(u, nodes=kept, module=u.module & nodes.keys())


def apply(u: Universe, edit: Edit) -> Universe | None:
    """``u`` with one edit made (None when it does not apply or leaves nothing)."""
    if edit[0] == "node":
        gone = {k for k in edit[1:] if k in u}
        return _without(u, gone) if gone else None
    if edit[0] == "name":
        return _renamed(u, edit[1]) if edit[1] in set(_names(u)) else None
    _, key, i = edit
    n = u.get(key)
    if n is None or i >= _items(n):
        return None
    nodes = {m.key: m for m in u.nodes}
    nodes[key] = _drop_item(n, i)
    _retag(nodes, key, i)
    return _in_order(u, nodes)


def candidates(u: Universe, start: int = 0) -> Iterator[tuple[int, Universe]]:
    """(position, smaller universe) for each applicable edit from position ``start`` of :func:`edits`."""
    for pos, edit in enumerate(edits(u)[start:], start):
        smaller = apply(u, edit)
        if smaller is not None:
            yield pos, smaller


def reduce(case: C, how: CaseReduction[C], fails: Callable[[C], bool], deadline: float,
           max_checks: int | None = None, stop: Callable[[], bool] | None = None) -> Reduced[C]:
    """The smallest case reached from ``case`` (which ``fails``) by single edits that keep it failing,
    pass after pass, until a pass keeps nothing, ``time.monotonic()`` passes ``deadline``, ``fails``
    was asked ``max_checks`` times or ``stop()`` says so (asked before each check)."""
    limits = _Limits(deadline, max_checks, stop)
    out = Reduced(case)
    changed = True
    while changed:  # one pass: every edit in turn, going on after a kept one from where it was
        changed = False
        for simpler in how.simpler(out.case):
            if limits.met(out.checks):
                out.stopped = True
                return out
            out.checks += 1
            if fails(simpler):
                out.case, out.kept, changed = simpler, out.kept + 1, True
                break
        pos = 0
        while (step := _first_kept(out, how, fails, pos, limits)) is not None:
            pos, changed = step, True
        if out.stopped:
            break
    return out


@dataclass(frozen=True)
class _Limits:
    deadline: float
    max_checks: int | None
    stop: Callable[[], bool] | None

    def met(self, checks: int) -> bool:
        return (time.monotonic() > self.deadline or (self.max_checks is not None and checks >= self.max_checks)
                or (self.stop is not None and self.stop()))


def _first_kept(out: Reduced[C], how: CaseReduction[C], fails: Callable[[C], bool], start: int,
                limits: _Limits) -> int | None:
    """Try the edits from position ``start``: the position of the first one kept (``out`` then holds the
    smaller case), or None when none is kept or the limits end the search (``out.stopped``)."""
    for pos, smaller in candidates(how.universe(out.case), start):
        if limits.met(out.checks):
            out.stopped = True
            return None
        rebuilt = how.rebuild(out.case, smaller)
        if rebuilt is None:
            continue
        out.checks += 1
        if fails(rebuilt):
            out.case, out.kept = rebuilt, out.kept + 1
            return pos
    return None

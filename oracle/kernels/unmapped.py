"""Every distilled base type that does not map onto a target, in user terms (``btfspec check``).

libbpf stops at the first failing type; :func:`analyse_mapping` replays the matching of *every*
distilled base type against the target with the reference's own matching pieces
(:mod:`btfspec.oracle.impls.reference`) and says why each one fails: missing, embedded struct size
changed, several candidates, INT encoding changed (``char`` signedness), kind changed; plus which of the
module's own types reach it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from btfspec.oracle.impls import reference as ref
from btfspec.spec.errors import errno_text
from btfspec.spec.kinds import COMPOSITE_KINDS, INT_BOOL, INT_CHAR, INT_SIGNED, Kind
from btfspec.spec.model import Btf, BtfType, id_fields

if TYPE_CHECKING:
    from btfspec.oracle.kernels.check import Target

MAX_AFFECTED = 12
# problem reasons (MapProblem.reason)
MISSING, SIZE_CHANGED, SIZE_MISMATCH, AMBIGUOUS = "missing", "size-changed", "size-mismatch", "ambiguous"
ENCODING_CHANGED, KIND_CHANGED, INVALID, INCOMPATIBLE = "encoding-changed", "kind-changed", "invalid", "incompatible"
# what a problem of no one distilled type is about (MapProblem.about)
MODULE, TARGET = "the module's BTF", "the target"
_ROOT_KINDS = frozenset({Kind.STRUCT, Kind.UNION, Kind.ENUM, Kind.ENUM64, Kind.TYPEDEF, Kind.FUNC, Kind.VAR,
                         Kind.DATASEC})


@dataclass
class MapProblem:
    """One distilled base type that does not map onto the target, in user terms."""

    dist_id: int
    kind: str
    name: str
    reason: str  # MISSING, SIZE_CHANGED, ...
    text: str
    size: int | None = None  # in the distilled base (composites, INT, ENUM, FLOAT)
    target_ids: list[int] = field(default_factory=list)  # same-named types in the target
    embedded: bool = False
    affected: list[str] = field(default_factory=list)  # the module's own types that reach it
    about: str = ""  # for a problem of no one distilled type (dist_id 0): MODULE or TARGET

    @property
    def label(self) -> str:
        """``STRUCT 'device' [13]``, or what a problem of no one distilled type is about."""
        return f"{self.kind} '{self.name}' [{self.dist_id}]" if self.dist_id else self.about

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _c_kind(kind: int) -> str:
    return {Kind.STRUCT: "struct", Kind.UNION: "union", Kind.ENUM: "enum", Kind.ENUM64: "enum",
            Kind.FWD: "forward-declared"}.get(Kind(kind), Kind(kind).name)


def _encoding(e: int) -> str:
    parts = [n for bit, n in ((INT_SIGNED, "SIGNED"), (INT_CHAR, "CHAR"), (INT_BOOL, "BOOL")) if e & bit]
    return "|".join(parts) or "(none)"


def _sizes(btf: Btf, ids: Iterable[int]) -> str:
    sizes = sorted({btf.type(i).size for i in ids})
    return ", ".join(map(str, sizes))


def _explain(did: int, dt: BtfType, name: str, matched: list[int], named: list[tuple[int, int]],
             embedded: bool, target: Btf) -> MapProblem:
    """Why distilled type ``did`` maps to zero or several target types (``named``: same-named ones)."""
    k = dt.kind
    kind = Kind(k).name
    size = dt.size if k != Kind.FWD else None
    ids = [bid for bid, _ in named]
    p = MapProblem(did, kind, name, INCOMPATIBLE, "", size, ids, embedded)
    c = f"{_c_kind(k)} {name}" if k in (Kind.STRUCT, Kind.UNION, Kind.ENUM, Kind.FWD) else f"{kind} '{name}'"
    if len(matched) > 1:
        p.reason, p.target_ids = AMBIGUOUS, matched
        p.text = (f"{c} has {len(matched)} candidates in the target: ids {matched} (sizes "
                  f"{_sizes(target, matched)}), libbpf and the kernel refuse to guess")
        return p
    if not named:
        p.reason, p.text = MISSING, f"{c} is missing from the target"
        return p
    same = [bid for bid, bk in named if bk == k or (k == Kind.ENUM and bk == Kind.ENUM64)]
    if k in COMPOSITE_KINDS:
        comps = [bid for bid, bk in named if bk in COMPOSITE_KINDS]
        if not comps:
            p.reason = MISSING
            p.text = f"{c} is missing from the target (it has only {_kinds(target, ids)} named '{name}')"
        elif embedded:
            p.reason = SIZE_CHANGED
            p.text = (f"{c} is embedded by value in the module and its size changed from {dt.size} to "
                      f"{_sizes(target, comps)} bytes")
        elif len(comps) > 1:
            p.reason = SIZE_MISMATCH
            p.text = (f"the target has {len(comps)} types named '{name}' (sizes {_sizes(target, comps)}), so "
                      f"the size must match, and none has the module's {dt.size} bytes")
        else:
            p.text = f"no type in the target is compatible with {c} (size {dt.size}): {_kinds(target, ids)}"
        return p
    if k == Kind.INT:
        if not same:
            p.reason, p.text = MISSING, f"{c} is missing from the target (it has only {_kinds(target, ids)})"
            return p
        ts = [target.type(i) for i in same]
        if all(t.size != dt.size for t in ts):
            p.reason = SIZE_CHANGED
            p.text = f"{c} changed size from {dt.size} to {_sizes(target, same)} bytes"
        else:
            enc = sorted({_encoding(t.int_encoding) for t in ts if t.size == dt.size})
            p.reason = ENCODING_CHANGED
            p.text = (f"{c} (size {dt.size}) changed encoding from {_encoding(dt.int_encoding)} to "
                      f"{' or '.join(enc)}")
            if name.endswith("char"):
                p.text += " (char signedness differs between the kernels: -funsigned-char since 6.2)"
        return p
    if k in (Kind.ENUM, Kind.FLOAT):
        if not same:
            p.reason, p.text = MISSING, f"{c} is missing from the target (it has only {_kinds(target, ids)})"
        else:
            p.reason = SIZE_CHANGED
            p.text = f"{c} changed size from {dt.size} to {_sizes(target, same)} bytes"
        return p
    if k == Kind.FWD:
        want = "union" if dt.kflag else "struct"
        p.reason = KIND_CHANGED
        p.text = f"the module forward-declares {want} {name}, but the target has {_kinds(target, ids)}"
        return p
    p.text = f"no type in the target is compatible with {c}: {_kinds(target, ids)}"
    return p


def _kinds(btf: Btf, ids: list[int]) -> str:
    """``STRUCT [12] (size 224), TYPEDEF [40]`` for a few ids."""
    out = []
    for i in ids[:4]:
        t = btf.type(i)
        size = f" (size {t.size})" if t.kind in (Kind.STRUCT, Kind.UNION, Kind.INT, Kind.ENUM, Kind.ENUM64,
                                                 Kind.FLOAT) else ""
        out.append(f"{t.kind_name} [{i}]{size}")
    return ", ".join(out) + (f" and {len(ids) - 4} more" if len(ids) > 4 else "")


def analyse_mapping(split: bytes, dist: bytes, target: Target, first_copy: int | None = None) -> list[MapProblem]:
    """Every distilled base type of ``split`` (on ``dist``) that fails to map onto ``target``, with why.

    The distilled base is validated (§2.2), embedded composites are marked and the target is scanned
    with the reference's own code (:mod:`btfspec.oracle.impls.reference`: ``mark_embedded``, ``candidates``, libbpf
    mode), but without stopping at the first failure:
    each distilled type collects all its compatible target types; zero or several is a problem.
    ``affected`` lists the module's own named types (ids below ``first_copy``) that reach the type.
    """
    run = ref.Run(False)
    try:
        d = ref.parse_btf(dist, None, run, "distilled base")
        s = ref.parse_btf(split, d.btf, run, "split")
    except ref.Fail as f:
        return [MapProblem(0, "", "", INVALID, f"the module's BTF does not parse ({errno_text(f.errno)}): "
                                              + " ".join(run.log), about=MODULE)]
    dbtf, sbtf = d.btf, s.btf
    nr_dist, nr_types = dbtf.type_cnt, sbtf.type_cnt
    bad = [_invalid_distilled(dbtf, i) for i in range(1, nr_dist)]
    problems = [p for p in bad if p is not None]
    if problems:
        return problems
    id_map = [0] * nr_types
    try:
        ref.mark_embedded(sbtf, nr_dist, nr_types, id_map, run)
    except ref.Fail:
        return [MapProblem(0, "", "", INVALID, " ".join(run.log), about=MODULE)]
    embedded = {i for i in range(1, nr_dist) if id_map[i] == ref.BTF_IS_EMBEDDED}
    matched, named, void_hits = _scan(dbtf, target, embedded, run)
    rev = reverse_refs(sbtf)
    for did in range(1, nr_dist):
        hits = matched.get(did, [])
        if len(hits) == 1:
            continue
        dt = dbtf.type(did)
        name = dbtf.name(dt)
        p = _explain(did, dt, name, hits, named.get(name, []), did in embedded, target.btf)
        p.affected = affected(sbtf, did, rev, first_copy)
        problems.append(p)
    if void_hits:
        problems.append(MapProblem(0, "", "", INVALID, f"target types {void_hits[:4]} have a non-zero name offset "
                                                       "pointing at an empty string; relocation refuses any "
                                                       "target like that (libbpf quirk Q3)", target_ids=void_hits,
                                   about=TARGET))
    return problems


def _invalid_distilled(dbtf: Btf, i: int) -> MapProblem | None:
    t = dbtf.type(i)
    if t.kind not in ref.DIST_KINDS:
        return MapProblem(i, t.kind_name, dbtf.name(t), INVALID,
                          f"the distilled base holds a {t.kind_name} [{i}], which relocation refuses")
    if not t.name_off:
        return MapProblem(i, t.kind_name, "", INVALID,
                          f"the distilled base holds an anonymous {t.kind_name} [{i}], which relocation refuses")
    return None


def _scan(dbtf: Btf, target: Target, embedded: set[int], run: ref.Run) -> tuple[dict[int, list[int]],
                                                                                dict[str, list[tuple[int, int]]],
                                                                                list[int]]:
    """The base scan of ``btf_relocate_map_distilled_base`` collecting every compatible candidate.

    Returns (distilled id -> compatible target ids, name -> [(target id, kind)] of same-named keyed
    target types, target ids that hit the void entry).  Uses :func:`btfspec.oracle.impls.reference.candidates` (the
    key rule and compatibility check of the reference's ``_match_base``), which stops at the first
    conflict instead.
    """
    index = ref.DistIndex(dbtf)
    found = ref.named_base_types(target.parsed, index.groups.keys())
    named: dict[str, list[tuple[int, int]]] = {}
    for bid, _, name, bk in found:
        named.setdefault(name.decode("latin-1"), []).append((bid, bk))
    matched: dict[int, list[int]] = {}
    void_hits: list[int] = []
    for c in ref.candidates(target.parsed, dbtf, index, found, run, embedded.__contains__):
        if c.compatible is None:
            void_hits.append(c.base_id)
        elif c.compatible:
            matched.setdefault(c.entry.id, []).append(c.base_id)
    return matched, named, void_hits


def reverse_refs(btf: Btf) -> dict[int, list[int]]:
    """id -> split types referring to it (the split's own types only)."""
    rev: dict[int, list[int]] = {}
    for tid, t in btf.own_types():
        for r in id_fields(t):
            if r:
                rev.setdefault(r, []).append(tid)
    return rev


def _type_label(btf: Btf, tid: int) -> str:
    t = btf.type(tid)
    kind = {Kind.STRUCT: "struct", Kind.UNION: "union", Kind.ENUM: "enum", Kind.ENUM64: "enum",
            Kind.TYPEDEF: "typedef", Kind.FUNC: "func", Kind.VAR: "var", Kind.DATASEC: "section"}[Kind(t.kind)]
    return f"{kind} {btf.name(t)}"


def affected(btf: Btf, tid: int, rev: dict[int, list[int]], first_copy: int | None) -> list[str]:
    """Named own split types (below ``first_copy``) from which ``tid`` is reachable, nearest first."""
    seen = {tid}
    queue = [tid]
    out: list[str] = []
    while queue and len(out) < MAX_AFFECTED:
        nxt: list[int] = []
        for x in queue:
            for user in rev.get(x, ()):
                if user in seen:
                    continue
                seen.add(user)
                nxt.append(user)
                t = btf.type(user)
                own = first_copy is None or user < first_copy
                if own and t.name_off and t.kind in _ROOT_KINDS and len(out) < MAX_AFFECTED:
                    out.append(_type_label(btf, user))
        queue = nxt
    return out

"""Logical type universes: C-like type graphs independent of type ids and string offsets.

A :class:`Universe` is an ordered tuple of frozen nodes (one dataclass per kind); nodes refer to
each other by *key* (``None`` is ``void``).  A universe is split into a *kernel* part (encoded as
base BTF) and a *module* part (encoded as split BTF, :mod:`btfspec.btfgen.encoder`).  Besides the model, the
queries the encoder, the perturbations and the labels share (sizes, closures, what distillation
reaches, keeps and copies, embedded composites).  :mod:`btfspec.btfgen.generate` makes universes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from btfspec.spec.kinds import Kind

KERNEL_VALID = "kernel-valid"
LIBBPF_VALID = "libbpf-valid"
PROFILES = (KERNEL_VALID, LIBBPF_VALID)

Key = str
Ref = Key | None  # None is void
T = TypeVar("T")

PTR_SIZE = 8
MAX_MODIFIER_CHAIN = 30  # the kernel rejects modifier chains longer than 32
MAX_STRATEGY_TYPES = 600  # hypothesis's per-example choice cap (recipes go further)
MAX_COMPOSITE_SIZE = 1 << 18  # keeps bit offsets far below the 24 bits of kind_flag members


# --------------------------------------------------------------------------------------------
# nodes
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Int:
    key: Key
    name: str | None
    size: int
    encoding: int = 0
    bits: int | None = None  # None: size * 8
    offset: int = 0
    btf_kind: ClassVar[Kind] = Kind.INT

    @property
    def nr_bits(self) -> int:
        return self.size * 8 if self.bits is None else self.bits

    @property
    def regular(self) -> bool:
        return self.offset == 0 and self.nr_bits == self.size * 8


@dataclass(frozen=True, slots=True)
class Float:
    key: Key
    name: str | None
    size: int
    btf_kind: ClassVar[Kind] = Kind.FLOAT


@dataclass(frozen=True, slots=True)
class Enum:
    key: Key
    name: str | None
    size: int
    values: tuple[tuple[str, int], ...] = ()
    signed: bool = False
    wide: bool = False  # ENUM64

    @property
    def btf_kind(self) -> Kind:
        return Kind.ENUM64 if self.wide else Kind.ENUM


@dataclass(frozen=True, slots=True)
class Member:
    name: str | None
    type: Ref
    bit_offset: int
    bitfield: int = 0


@dataclass(frozen=True, slots=True)
class Composite:
    key: Key
    name: str | None
    size: int
    members: tuple[Member, ...] = ()
    union: bool = False
    kflag: bool | None = None  # None: set when a member is a bitfield (btf__add_field)

    @property
    def btf_kind(self) -> Kind:
        return Kind.UNION if self.union else Kind.STRUCT


@dataclass(frozen=True, slots=True)
class Array:
    key: Key
    elem: Ref
    index: Ref
    nelems: int
    name: ClassVar[None] = None
    btf_kind: ClassVar[Kind] = Kind.ARRAY


@dataclass(frozen=True, slots=True)
class Ptr:
    key: Key
    target: Ref
    name: ClassVar[None] = None
    btf_kind: ClassVar[Kind] = Kind.PTR


@dataclass(frozen=True, slots=True)
class Qual:
    """CONST, VOLATILE or RESTRICT."""

    key: Key
    qual: Kind
    target: Ref
    name: ClassVar[None] = None

    @property
    def btf_kind(self) -> Kind:
        return self.qual


@dataclass(frozen=True, slots=True)
class Typedef:
    key: Key
    name: str | None
    target: Ref
    btf_kind: ClassVar[Kind] = Kind.TYPEDEF


@dataclass(frozen=True, slots=True)
class TypeTag:
    key: Key
    name: str | None  # the tag value
    target: Ref
    attr: bool = False
    btf_kind: ClassVar[Kind] = Kind.TYPE_TAG


@dataclass(frozen=True, slots=True)
class Fwd:
    key: Key
    name: str | None
    union: bool = False
    btf_kind: ClassVar[Kind] = Kind.FWD


@dataclass(frozen=True, slots=True)
class FuncProto:
    key: Key
    ret: Ref
    params: tuple[tuple[str | None, Ref], ...] = ()
    variadic: bool = False  # encoded as a final (anonymous, void) parameter
    name: ClassVar[None] = None
    btf_kind: ClassVar[Kind] = Kind.FUNC_PROTO


@dataclass(frozen=True, slots=True)
class Func:
    key: Key
    name: str | None
    proto: Key
    linkage: int = 0
    btf_kind: ClassVar[Kind] = Kind.FUNC


@dataclass(frozen=True, slots=True)
class Var:
    key: Key
    name: str | None
    type: Key
    linkage: int = 0
    btf_kind: ClassVar[Kind] = Kind.VAR


@dataclass(frozen=True, slots=True)
class Datasec:
    key: Key
    name: str | None
    size: int
    entries: tuple[tuple[Key, int, int], ...] = ()  # (var, offset, size)
    btf_kind: ClassVar[Kind] = Kind.DATASEC


@dataclass(frozen=True, slots=True)
class DeclTag:
    key: Key
    name: str | None  # the tag value
    target: Key
    component_idx: int = -1
    attr: bool = False
    btf_kind: ClassVar[Kind] = Kind.DECL_TAG


Node = Int | Float | Enum | Composite | Array | Ptr | Qual | Typedef | TypeTag | Fwd | FuncProto | Func | Var \
    | Datasec | DeclTag

# Kinds matched by name (when named): the rest is matched structurally (btfspec.btfgen.matching).
NAMED_MATCH_KINDS = (Composite, Enum, Typedef)
# Kinds distillation moves into the distilled base (when reached); the others it copies.
DISTILLED_KINDS = (Int, Float, Fwd)


def _target(node: Any) -> tuple[Ref, ...]:
    return (node.target,)


# node class -> its referenced keys in libbpf's field-iterator order; classes not here reference nothing
_REFS: dict[type, Callable[[Any], tuple[Ref, ...]]] = {
    Ptr: _target, Qual: _target, Typedef: _target, TypeTag: _target, DeclTag: _target,
    Composite: lambda n: tuple(m.type for m in n.members),
    Array: lambda n: (n.elem, n.index),
    FuncProto: lambda n: (n.ret, *(t for _, t in n.params), *((None,) if n.variadic else ())),
    Func: lambda n: (n.proto,),
    Var: lambda n: (n.type,),
    Datasec: lambda n: tuple(e[0] for e in n.entries),
    Fwd: lambda n: (None,),
}


def refs(node: Node) -> tuple[Ref, ...]:
    """Referenced keys in libbpf's field-iterator order (FWD's ``type`` and void included as None)."""
    of = _REFS.get(type(node))
    return of(node) if of is not None else ()


def is_named(node: Node) -> bool:
    """libbpf's notion: a non-zero name offset (an empty name ``""`` counts as named)."""
    return node.name is not None


def has_name(node: Node) -> bool:
    """A non-empty name."""
    return bool(node.name)


# --------------------------------------------------------------------------------------------
# universe
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Universe:
    """Nodes in encoding order; ``module`` holds the keys of the module (split) part."""

    nodes: tuple[Node, ...]
    module: frozenset[Key] = frozenset()
    profile: str = KERNEL_VALID
    quirks: frozenset[str] = frozenset()  # quirk shapes the generator was allowed to use
    encoding: frozenset[str] = frozenset()  # raw-level encoding options ("nondedup_strings")
    _by_key: dict[Key, Node] = field(init=False, repr=False, compare=False, hash=False)
    derived: dict[Any, Any] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_key", {n.key: n for n in self.nodes})
        object.__setattr__(self, "derived", {})  # what functions of this immutable universe made of it, by name
        if len(self._by_key) != len(self.nodes):
            raise ValueError("duplicate node keys")

    def __getitem__(self, key: Key) -> Node:
        return self._by_key[key]

    def __contains__(self, key: object) -> bool:
        return key in self._by_key

    def __len__(self) -> int:
        return len(self.nodes)

    def get(self, key: Ref) -> Node | None:
        return None if key is None else self._by_key.get(key)

    def kernel_keys(self) -> tuple[Key, ...]:
        return tuple(n.key for n in self.nodes if n.key not in self.module)

    def module_keys(self) -> tuple[Key, ...]:
        return tuple(n.key for n in self.nodes if n.key in self.module)

    def kernel_nodes(self) -> tuple[Node, ...]:
        return tuple(n for n in self.nodes if n.key not in self.module)

    def with_kernel(self, kernel: Sequence[Node]) -> Universe:
        """The same module part over a different kernel part (kernel nodes first, in the given order)."""
        mod = tuple(n for n in self.nodes if n.key in self.module)
        return dataclasses.replace(self, nodes=tuple(kernel) + mod)


def sizeof(u: Universe, key: Ref, _seen: frozenset[Key] = frozenset()) -> int | None:
    """Byte size of a type as the kernel resolves it; None for void, FWD, FUNC_PROTO, cycles."""
    n = u.get(key)
    if n is None or key in _seen:
        return None
    if isinstance(n, Int | Float | Enum | Composite | Datasec):
        return n.size
    if isinstance(n, Ptr):
        return PTR_SIZE
    if isinstance(n, Array):
        es = sizeof(u, n.elem, _seen | {n.key})
        return None if es is None else es * n.nelems
    if isinstance(n, Qual | Typedef | TypeTag | Var):
        return sizeof(u, n.target if not isinstance(n, Var) else n.type, _seen | {n.key})
    return None


def strip_modifiers(u: Universe, key: Ref, *, arrays: bool = False) -> Ref:
    """Follow CONST/VOLATILE/RESTRICT/TYPEDEF/TYPE_TAG (and ARRAY elements if asked); cycle-safe."""
    seen: set[Key] = set()
    while key is not None and key not in seen:
        seen.add(key)
        n = u[key]
        if isinstance(n, Qual | Typedef | TypeTag):
            key = n.target
        elif arrays and isinstance(n, Array):
            key = n.elem
        else:
            return key
    return None


# --------------------------------------------------------------------------------------------
# graph analyses shared by the encoder, the perturbations and the coverage
# --------------------------------------------------------------------------------------------

def reverse_refs(u: Universe) -> dict[Key, set[Key]]:
    """key -> keys of the nodes referring to it."""
    out: dict[Key, set[Key]] = {}
    for n in u.nodes:
        for r in refs(n):
            if r is not None:
                out.setdefault(r, set()).add(n.key)
    return out


def closure(u: Universe, roots: Iterable[Ref], stop: Callable[[Node], bool] | None = None) -> set[Key]:
    """Keys reachable from ``roots`` (included); nodes for which ``stop`` holds are not descended."""
    seen: set[Key] = set()
    work = [r for r in roots if r is not None]
    while work:
        k = work.pop()
        if k in seen or k not in u:
            continue
        seen.add(k)
        n = u[k]
        if stop is None or not stop(n):
            work.extend(r for r in refs(n) if r is not None)
    return seen


def module_closure(u: Universe) -> set[Key]:
    """Kernel keys the module part reaches through any reference (members of named types included)."""
    roots = [r for k in u.module_keys() for r in refs(u[k])]
    return {k for k in closure(u, roots) if k not in u.module}


Named = Callable[[Node], bool]  # which names count as names: libbpf's is_named, or has_name (Q3 strict)


def distill_reach(u: Universe, named: Named = is_named) -> set[Key]:
    """Kernel keys distillation visits: reached from the module, not descending named composites."""
    roots = [r for k in u.module_keys() for r in refs(u[k]) if r is not None and r not in u.module]
    seen: set[Key] = set()
    work = list(roots)
    while work:
        k = work.pop()
        if k in seen or k in u.module:
            continue
        seen.add(k)
        n = u[k]
        if not (isinstance(n, Composite) and named(n)):
            work.extend(r for r in refs(n) if r is not None)
    return seen


def is_distilled(n: Node, named: Named = is_named) -> bool:
    """Does distillation put this (reached) kernel node into the distilled base?"""
    return isinstance(n, DISTILLED_KINDS) or (isinstance(n, Composite | Enum) and named(n))


def distill_sets(u: Universe, named: Named = is_named) -> tuple[frozenset[Key], frozenset[Key]]:
    """(distilled, copied): reached kernel keys kept in the distilled base / copied into the split.

    ``named`` decides what counts as a name: libbpf's :func:`is_named` (an empty name at a non-zero
    offset is a name, quirk Q3) or :func:`has_name` (what a correct distillation does).  Made once per
    universe and rule (generation, perturbation and coverage each ask for them)."""
    key = ("distill_sets", named)
    got = u.derived.get(key)
    if got is None:
        reach = frozenset(distill_reach(u, named))
        distilled = frozenset(k for k in reach if is_distilled(u[k], named))
        got = u.derived[key] = (distilled, reach - distilled)
    return got


def embedded(u: Universe, named: Named = is_named) -> set[Key]:
    """Named kernel composites embedded by value in a composite of the distilled split.

    The split's composites are the module's plus the anonymous kernel composites distillation
    copies; member types are followed through modifiers, typedefs, type tags and array elements
    (libbpf's BTF_IS_EMBEDDED marking, logically); ``named`` as in :func:`distill_sets`.
    """
    return {target for _, target in embeddings(u, named)}


def embeddings(u: Universe, named: Named = is_named) -> Iterator[tuple[Key, Key]]:
    """(member type, embedded kernel composite) for each member :func:`embedded` follows: the member
    type is the composite itself or the start of its modifier/typedef/type-tag/array chain."""
    _, copied = distill_sets(u, named)
    for k in (*u.module_keys(), *sorted(copied)):
        n = u[k]
        if not isinstance(n, Composite):
            continue
        for m in n.members:
            t = strip_modifiers(u, m.type, arrays=True)
            if t is not None and t not in u.module:
                tn = u[t]
                if isinstance(tn, Composite) and named(tn):
                    yield m.type, t


def value_users(u: Universe, key: Key, rev: dict[Key, set[Key]] | None = None) -> set[Key]:
    """Nodes whose size or layout depends on ``key``'s size (through modifiers, arrays, variables)."""
    rev = reverse_refs(u) if rev is None else rev
    users: set[Key] = set()
    work = [key]
    while work:
        for user in rev.get(work.pop(), ()):
            if user in users:
                continue
            un = u[user]
            if isinstance(un, Qual | Typedef | TypeTag | Array | Composite | Var):
                users.add(user)
                work.append(user)
            elif isinstance(un, FuncProto | Datasec):
                users.add(user)
    return users


def alignof(u: Universe, key: Ref, _depth: int = 0) -> int:
    """Natural alignment the generator lays members out with (pointers and scalars up to 8)."""
    n = u.get(key)
    if n is None or _depth > 64:
        return 1
    if isinstance(n, Int | Float | Enum):
        return min(max(n.size, 1), 8)
    if isinstance(n, Ptr):
        return PTR_SIZE
    if isinstance(n, Array):
        return alignof(u, n.elem, _depth + 1)
    if isinstance(n, Qual | Typedef | TypeTag):
        return alignof(u, n.target, _depth + 1)
    if isinstance(n, Composite):
        return max((alignof(u, m.type, _depth + 1) for m in n.members), default=1)
    return 1


def value_reached(u: Universe, named: Named = is_named) -> set[Key]:
    """Kernel keys the split side (module and copied nodes) uses by value, not only through pointers."""
    _, copied = distill_sets(u, named)
    out: set[Key] = set()
    work: list[Key] = []
    for k in (*u.module_keys(), *copied):
        n = u[k]
        if isinstance(n, Ptr):
            continue
        work.extend(r for r in refs(n) if r is not None)
    while work:
        k = work.pop()
        if k in out or k in u.module:
            continue
        out.add(k)
        n = u[k]
        if isinstance(n, Qual | Typedef | TypeTag | Array):
            work.extend(r for r in refs(n) if r is not None)
    return out


def in_modifier_cycle(u: Universe, key: Ref, arrays: bool = False) -> bool:
    """Does the modifier chain starting at ``key`` loop (libbpf quirk Q5)?  ``arrays``: follow array
    elements too (the chain relocation's embedded marking walks)."""
    seen: set[Key] = set()
    while key is not None:
        if key in seen:
            return True
        seen.add(key)
        node = u.get(key)
        if isinstance(node, Qual | Typedef | TypeTag):
            key = node.target
        elif arrays and isinstance(node, Array):
            key = node.elem
        else:
            return False
    return False

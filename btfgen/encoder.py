"""The direct encoder: a logical universe to base BTF (kernel part) and split BTF (module part).

* :func:`encode_base` writes the kernel nodes in universe order as ids 1..n.
* :func:`encode_split` writes the module part as split BTF over **any** base: module nodes come first
  (universe order); every kernel node they reference is looked up in the base with the matching rule
  (:mod:`btfspec.btfgen.matching`) and referenced by the base's id when found, otherwise copied into the
  split after the module nodes (in discovery order) -- what pahole does for a module against vmlinux.

Records are made with :class:`btfspec.spec.builder.Builder` (byte-identical to libbpf's ``btf__add_*``), so
strings are deduplicated libbpf-style unless :class:`EncodeOptions` asks otherwise.  A node named
``""`` gets a name offset pointing at an empty string at a non-zero offset (quirk Q3).
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from btfspec.btfgen.matching import universe_to_btf
from btfspec.btfgen.universe import (
    Array,
    Composite,
    Datasec,
    DeclTag,
    Enum,
    Float,
    Func,
    FuncProto,
    Fwd,
    Int,
    Key,
    Node,
    Ptr,
    Qual,
    Ref,
    Typedef,
    TypeTag,
    Universe,
    Var,
    refs,
)
from btfspec.spec.builder import Builder
from btfspec.spec.kinds import Kind
from btfspec.spec.model import Btf


class EncodeError(ValueError):
    """A universe that cannot be encoded as asked (a reference to a node that is not there)."""


@dataclass(frozen=True)
class EncodeOptions:
    """Raw-level encoding choices.

    ``dedup_strings=False`` appends every name anew (same-named types get different offsets, Q4);
    ``string_order`` (a seed) interns all names in a shuffled order before the first type.
    """

    dedup_strings: bool = True
    string_order: int | None = None

    @classmethod
    def for_universe(cls, u: Universe) -> EncodeOptions:
        return cls(dedup_strings="nondedup_strings" not in u.encoding)


@dataclass(frozen=True)
class Encoded:
    """One encoded BTF: bytes, the model, and where each logical key went."""

    data: bytes
    btf: Btf
    ids: Mapping[Key, int]  # every key the encoding references or emits -> its id
    copied: tuple[Key, ...] = ()  # kernel keys emitted into a split (no counterpart in the base)
    matched: Mapping[Key, int] = field(default_factory=dict)  # kernel keys found in the base


Rid = Callable[[Ref], int]
_QUALIFIERS = {Kind.CONST: Builder.const, Kind.VOLATILE: Builder.volatile, Kind.RESTRICT: Builder.restrict}


def _enum(b: Builder, n: Enum, rid: Rid, name: str | None, kw: dict[str, int]) -> int:
    add = b.enum64 if n.wide else b.enum
    return add(name, n.size, n.values, signed=n.signed, **kw)  # type: ignore[arg-type]


def _composite(b: Builder, n: Composite, rid: Rid, name: str | None, kw: dict[str, int]) -> int:
    members = [(m.name, rid(m.type), m.bit_offset, m.bitfield) for m in n.members]
    kflag = None if n.kflag is None else int(n.kflag)
    return b.composite(n.btf_kind, name, n.size, members, kflag=kflag, **kw)  # type: ignore[arg-type]


def _func_proto(b: Builder, n: FuncProto, rid: Rid, name: str | None, kw: dict[str, int]) -> int:
    params = [(p, rid(t)) for p, t in n.params] + ([(None, 0)] if n.variadic else [])
    return b.func_proto(rid(n.ret), params)


# node class -> how its record is added: (builder, node, reference -> id, name or None, raw-name keywords)
_EMITTERS: dict[type, Callable[[Builder, Any, Rid, str | None, dict[str, int]], int]] = {
    Int: lambda b, n, rid, name, kw: b.int(name, n.size, n.encoding, bits=n.nr_bits, offset=n.offset, **kw),
    Float: lambda b, n, rid, name, kw: b.float(name, n.size, **kw),
    Enum: _enum,
    Composite: _composite,
    Array: lambda b, n, rid, name, kw: b.array(rid(n.elem), rid(n.index), n.nelems),
    Ptr: lambda b, n, rid, name, kw: b.ptr(rid(n.target)),
    Qual: lambda b, n, rid, name, kw: _QUALIFIERS[n.qual](b, rid(n.target)),
    Typedef: lambda b, n, rid, name, kw: b.typedef(name, rid(n.target), **kw),
    TypeTag: lambda b, n, rid, name, kw: b.type_tag(name, rid(n.target), attr=n.attr, **kw),
    Fwd: lambda b, n, rid, name, kw: b.fwd(name, union=n.union, **kw),
    FuncProto: _func_proto,
    Func: lambda b, n, rid, name, kw: b.func(name, rid(n.proto), n.linkage, **kw),
    Var: lambda b, n, rid, name, kw: b.var(name, rid(n.type), n.linkage, **kw),
    Datasec: lambda b, n, rid, name, kw: b.datasec(name, n.size, [(rid(v), off, sz) for v, off, sz in n.entries],
                                                   **kw),
    DeclTag: lambda b, n, rid, name, kw: b.decl_tag(name, rid(n.target), n.component_idx, attr=n.attr, **kw),
}


def emit(b: Builder, n: Node, rid: Rid, empty: Callable[[], int]) -> int:
    """Append node ``n`` to ``b`` (references through ``rid``); the one place a node becomes a record.

    A node named ``""`` gets ``empty()`` as its raw name offset (an empty string at a non-zero offset)."""
    emitter = _EMITTERS.get(type(n))
    if emitter is None:
        raise TypeError(f"not a node: {n!r}")
    return emitter(b, n, rid, n.name or None, {"raw_name": empty()} if n.name == "" else {})


def node_strings(n: Node) -> list[str]:
    """Every non-empty string a node's record names (type, members, enumerators, parameters)."""
    out = [n.name] if n.name else []
    if isinstance(n, Composite):
        out += [m.name for m in n.members if m.name]
    elif isinstance(n, Enum):
        out += [v for v, _ in n.values]
    elif isinstance(n, FuncProto):
        out += [p for p, _ in n.params if p]
    return out


class _Writer:
    """A builder plus the lazily made empty string at a non-zero offset."""

    def __init__(self, base: Btf | None, opts: EncodeOptions, nodes: Sequence[Node]) -> None:
        self.b = Builder(base, dedup=opts.dedup_strings)
        self._empty: int | None = None
        if opts.string_order is not None:
            names = list(dict.fromkeys(s for n in nodes for s in node_strings(n)))
            random.Random(opts.string_order).shuffle(names)
            for s in names:
                self.b.str(s)

    def empty(self) -> int:
        if self._empty is None:
            self._empty = self.b.btf.append_raw_strings(b"\0")
        return self._empty

    def emit_all(self, u: Universe, keys: Iterable[Key], ids: Mapping[Key, int]) -> None:
        def rid(r: Ref) -> int:
            if r is None:
                return 0
            try:
                return ids[r]
            except KeyError:
                raise EncodeError(f"node {r!r} is referenced but not part of the encoding") from None

        for k in keys:
            got = emit(self.b, u[k], rid, self.empty)
            if got != ids[k]:
                raise AssertionError(f"{k} encoded as [{got}], expected [{ids[k]}]")


def encode_base(u: Universe, keys: Sequence[Key] | None = None, opts: EncodeOptions | None = None) -> Encoded:
    """The kernel part (or ``keys``) as a standalone base BTF, in the given order."""
    keys = u.kernel_keys() if keys is None else tuple(keys)
    opts = opts or EncodeOptions.for_universe(u)
    ids = {k: i + 1 for i, k in enumerate(keys)}
    w = _Writer(None, opts, [u[k] for k in keys])
    w.emit_all(u, keys, ids)
    return Encoded(w.b.to_bytes(), w.b.btf, ids)


def encode_split(u: Universe, base: Btf | bytes, module_keys: Sequence[Key] | None = None,
                 opts: EncodeOptions | None = None, base_ids: Mapping[Key, int] | None = None) -> Encoded:
    """The module part as split BTF over ``base`` (see the module docstring).  ``base_ids``: when ``base``
    is :func:`encode_base` of ``u``'s kernel part, its ids (the matcher then reads the kernel nodes'
    records from the base instead of encoding each again)."""
    base_btf = Btf.from_bytes(base) if isinstance(base, bytes | bytearray) else base
    mkeys = u.module_keys() if module_keys is None else tuple(module_keys)
    opts = opts or EncodeOptions.for_universe(u)
    matcher = universe_to_btf(u, base_btf, base_ids)
    nxt = base_btf.type_cnt
    ids: dict[Key, int] = {}
    for k in mkeys:
        ids[k] = nxt
        nxt += 1
    copied: list[Key] = []
    matched: dict[Key, int] = {}
    work = deque(r for k in mkeys for r in refs(u[k]))
    while work:
        r = work.popleft()
        if r is None or r in ids:
            continue
        if r not in u:
            raise EncodeError(f"module node refers to {r!r}, which the universe does not have")
        found = matcher.match(r)
        if found is not None:
            ids[r] = matched[r] = found
        else:
            ids[r] = nxt
            nxt += 1
            copied.append(r)
            work.extend(refs(u[r]))
    w = _Writer(base_btf, opts, [u[k] for k in (*mkeys, *copied)])
    w.emit_all(u, (*mkeys, *copied), ids)
    return Encoded(w.b.to_bytes(), w.b.btf, ids, tuple(copied), matched)


@dataclass(frozen=True)
class Case:
    """One generated base/split pair: the logical universe, its partition and the encoded bytes."""

    universe: Universe
    base: bytes
    split: bytes
    base_ids: Mapping[Key, int]
    split_ids: Mapping[Key, int]
    options: EncodeOptions

    @property
    def profile(self) -> str:
        return self.universe.profile

    @property
    def kernel_keys(self) -> tuple[Key, ...]:
        return self.universe.kernel_keys()

    @property
    def module_keys(self) -> tuple[Key, ...]:
        return self.universe.module_keys()

    @property
    def partition(self) -> tuple[tuple[Key, ...], tuple[Key, ...]]:
        """(kernel keys, module keys), each in encoding order."""
        return self.kernel_keys, self.module_keys

    def base_btf(self) -> Btf:
        return Btf.from_bytes(self.base)

    def split_btf(self, base: Btf | None = None) -> Btf:
        return Btf.from_bytes(self.split, base=base or self.base_btf())


def make_case(u: Universe, opts: EncodeOptions | None = None) -> Case:
    """Encode a universe's kernel part as base and its module part as split over that base."""
    opts = opts or EncodeOptions.for_universe(u)
    base = encode_base(u, opts=opts)
    split = encode_split(u, base.btf, opts=opts, base_ids=base.ids)
    return Case(u, base.data, split.data, base.ids, split.ids, opts)

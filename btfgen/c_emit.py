"""C source for a logical universe, so that gcc + pahole can serve as a second direct encoder.

:func:`c_universe` rewrites a universe into the subset C (gcc 12, x86-64) can express with the exact
BTF pahole 1.24 produces from it; :func:`emit_c` writes the kernel part as one translation unit
(``kernel.h`` declares its types, ``kernel.c`` defines its functions and keeps unused types alive) and
the module part as another (``module.c``, which includes ``kernel.h``).

What :func:`c_universe` does (each rule is what gcc/pahole would otherwise do differently):

* **dropped**: DECL_TAG and TYPE_TAG (gcc 12 emits no tags; a type tag is replaced by its target), VAR
  and DATASEC (pahole encodes only per-CPU variables), FLOATs of a size x86-64 C lacks (``__float80`` is
  16 bytes there) together with every type that needs them;
* **INT**: one node per C type, named as gcc's DWARF names it (``long unsigned int``), in the kernel
  part; bit-width INTs and renamed duplicates are replaced by it; ``char`` is a signed INT (pahole
  drops DW_ATE_signed_char's CHAR bit); every enum's underlying integer type (gcc emits it) is added;
* **ENUM**: sizes 1/2/8 via ``mode`` (size 8 is an ENUM64), values folded into the size, signedness
  from the values, enumerator names made unique in the translation unit, an empty enum gets a value;
* **composites**: laid out exactly (``packed`` plus unnamed bit-field padding, ``aligned`` for unions);
  a union whose size cannot be reached that way is dropped with its users; ``_Bool`` bit-fields are
  one bit; a C11 anonymous member whose names clash with its parent's gets a name;
* **qualifiers**: no qualifier directly on a qualifier (gcc orders a qualifier chain itself), none on
  an array or function type, ``restrict`` only on pointers;
* **FUNC_PROTO / FUNC**: a prototype used by functions has named parameters, one used otherwise
  anonymous ones (a shared one is split); parameters and return types lose top-level qualifiers,
  array/function parameters and returns are dropped; ``...`` needs a named parameter; FUNC linkage
  is static (pahole 1.24 writes every FUNC static);
* **ARRAY** index types are ``int`` (pahole uses ``int``);
* **names** unique per C namespace (tags; typedefs, functions, enumerators; parameters vs typedefs);
* **deduplication** of structurally identical anonymous types (what pahole's btf__dedup does);
* **kept alive**: an otherwise unreferenced FWD, FUNC_PROTO or qualified incomplete type gets a PTR
  (gcc emits nothing for it otherwise); other unreferenced types get a keep-alive global variable
  in the C (no BTF VAR: pahole ignores ordinary globals).

The rewriting is idempotent (``c_universe(c_universe(u)) == c_universe(u)``); :func:`expressible`
says whether a universe is already in the C subset.

Why one module of ~900 lines: the rewriting rules and the emission are one contract with gcc 12 +
pahole 1.24 (each rule exists because of how the emitter writes a construct); split apart, a reader
would have to hold both files to check either.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from btfspec.btfgen.universe import (
    KERNEL_VALID,
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
    Member,
    Node,
    Ptr,
    Qual,
    Ref,
    Typedef,
    TypeTag,
    Universe,
    Var,
    refs,
    sizeof,
)
from btfspec.spec.kinds import INT_BOOL, INT_SIGNED, Kind

KEEP = "__btfgen_keep_"
# gcc's DWARF name -> (C spelling, size, encoding as pahole 1.24 writes it)
C_INTS: dict[str, tuple[str, int, int]] = {
    "int": ("int", 4, INT_SIGNED), "unsigned int": ("unsigned int", 4, 0), "char": ("char", 1, INT_SIGNED),
    "unsigned char": ("unsigned char", 1, 0), "signed char": ("signed char", 1, INT_SIGNED),
    "_Bool": ("_Bool", 1, INT_BOOL), "short int": ("short", 2, INT_SIGNED),
    "short unsigned int": ("unsigned short", 2, 0), "long int": ("long", 8, INT_SIGNED),
    "long unsigned int": ("unsigned long", 8, 0), "long long int": ("long long", 8, INT_SIGNED),
    "long long unsigned int": ("unsigned long long", 8, 0), "__int128": ("__int128", 16, INT_SIGNED),
    "__int128 unsigned": ("unsigned __int128", 16, 0),
}
C_FLOATS: dict[str, tuple[str, int]] = {"float": ("float", 4), "double": ("double", 8),
                                        "long double": ("long double", 16), "_Float16": ("_Float16", 2)}
# the integer type gcc gives an enum of (size, signed)
ENUM_UNDERLYING = {(1, True): "signed char", (1, False): "unsigned char", (2, True): "short int",
                   (2, False): "short unsigned int", (4, True): "int", (4, False): "unsigned int",
                   (8, True): "long int", (8, False): "long unsigned int"}
ENUM_MODE = {1: "QI", 2: "HI", 4: "", 8: "DI"}
C_KEYWORDS = frozenset(
    "auto break case char const continue default do double else enum extern float for goto if inline int long "
    "register restrict return short signed sizeof static struct switch typedef union unsigned void volatile while "
    "_Bool _Complex _Imaginary _Alignas _Alignof _Atomic _Generic _Noreturn _Static_assert _Thread_local asm "
    "typeof __typeof__ __int128 __attribute__ _Float16 main".split())
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_RENAMED_INT = re.compile(r"(?::\d+)?(?:_\d+_\d+)?\Z")
QUAL_WORD = {Kind.CONST: "const", Kind.VOLATILE: "volatile", Kind.RESTRICT: "restrict"}
MAX_ROUNDS = 4


class Unexpressible(ValueError):
    """A universe (or a part of it) C cannot express the way :func:`c_universe` needs."""


# --------------------------------------------------------------------------------------------------
# the rewriting
# --------------------------------------------------------------------------------------------------

class _Rewrite:
    """Mutable node table: keys in order, module membership, aliases (dropped key -> replacement)."""

    def __init__(self, u: Universe) -> None:
        self.u = u
        self.order: list[Key] = [n.key for n in u.nodes]
        self.nodes: dict[Key, Node] = {n.key: n for n in u.nodes}
        self.module: set[Key] = set(u.module)
        self.alias: dict[Key, Ref] = {}

    # --- basics -------------------------------------------------------------------------------
    def resolve(self, r: Ref) -> Ref:
        seen = set()
        while r is not None and r in self.alias:
            if r in seen:
                raise Unexpressible(f"alias cycle at {r}")
            seen.add(r)
            r = self.alias[r]
        return r

    def get(self, r: Ref) -> Node | None:
        r = self.resolve(r)
        return None if r is None else self.nodes[r]

    def live(self) -> list[Node]:
        return [self.nodes[k] for k in self.order if k in self.nodes]

    def drop(self, key: Key, to: Ref = None) -> None:
        self.nodes.pop(key, None)
        self.alias[key] = to
        self.module.discard(key)

    def add(self, node: Node, module: bool, first: bool = False) -> None:
        self.nodes[node.key] = node
        if first:
            self.order.insert(0, node.key)
        else:
            self.order.append(node.key)
        if module:
            self.module.add(node.key)

    def new_key(self, tag: str) -> Key:
        i = 0
        while f"{tag}{i}" in self.nodes or f"{tag}{i}" in self.alias or f"{tag}{i}" in self.u:
            i += 1
        return f"{tag}{i}"

    def set(self, node: Node) -> None:
        self.nodes[node.key] = node

    def universe(self) -> Universe:
        """The rewritten universe, every reference resolved."""
        out = [_map_refs(n, self.resolve) for n in self.live()]
        return dataclasses.replace(self.u, nodes=tuple(out), module=frozenset(k for k in self.module
                                                                                 if k in self.nodes),
                                   profile=KERNEL_VALID, quirks=frozenset(), encoding=frozenset())

    def users(self) -> dict[Key, set[Key]]:
        out: dict[Key, set[Key]] = {}
        for n in self.live():
            for r in refs(n):
                r = self.resolve(r)
                if r is not None:
                    out.setdefault(r, set()).add(n.key)
        return out

    def remove_with_users(self, keys: Iterable[Key]) -> None:
        users = self.users()
        work = list(keys)
        gone: set[Key] = set()
        while work:
            k = work.pop()
            if k in gone or k not in self.nodes:
                continue
            gone.add(k)
            work.extend(users.get(k, ()))
        for k in gone:
            self.nodes.pop(k, None)
            self.module.discard(k)


def _map_refs(n: Node, f: Callable[[Ref], Ref]) -> Node:
    """``n`` with every reference passed through ``f``."""
    if isinstance(n, Ptr | Qual | Typedef | TypeTag):
        return dataclasses.replace(n, target=f(n.target))
    if isinstance(n, Composite):
        return dataclasses.replace(n, members=tuple(dataclasses.replace(m, type=f(m.type)) for m in n.members))
    if isinstance(n, Array):
        return dataclasses.replace(n, elem=f(n.elem), index=f(n.index))
    if isinstance(n, FuncProto):
        return dataclasses.replace(n, ret=f(n.ret), params=tuple((p, f(t)) for p, t in n.params))
    if isinstance(n, Func):
        return dataclasses.replace(n, proto=f(n.proto))
    if isinstance(n, Var):
        return dataclasses.replace(n, type=f(n.type))
    if isinstance(n, DeclTag):
        return dataclasses.replace(n, target=f(n.target))
    if isinstance(n, Datasec):
        return dataclasses.replace(n, entries=tuple((f(v), o, s) for v, o, s in n.entries))  # type: ignore[misc]
    return n


def c_universe(u: Universe, *, need_module: bool = True) -> Universe:
    """``u`` rewritten into the C subset (see the module docstring); raises :class:`Unexpressible` for a
    reference to a missing node or when nothing of the module part survives (unless ``need_module`` is
    False: a kernel part alone)."""
    for n in u.nodes:
        missing = [r for r in refs(n) if r is not None and r not in u]
        if missing:
            raise Unexpressible(f"{n.key} refers to {missing[0]}, which the universe does not have")
    cur = u
    for _ in range(MAX_ROUNDS):
        nxt = _round(cur, need_module)
        if nxt == cur:
            return cur
        cur = nxt
    return cur


def expressible(u: Universe, *, need_module: bool = True) -> bool:
    """Is ``u`` already in the C subset (does :func:`c_universe` leave it unchanged)?"""
    try:
        return c_universe(u, need_module=need_module) == u
    except Unexpressible:
        return False


def kernel_only(u: Universe) -> Universe:
    """The kernel part of ``u`` alone (a perturbed kernel part the module may not compile against)."""
    return dataclasses.replace(u, nodes=u.kernel_nodes(), module=frozenset())


def _round(u: Universe, need_module: bool = True) -> Universe:
    rw = _Rewrite(u)
    for step in (_drop_unsupported, _scalars, _enums, _quals, _protos, _arrays, _composites, _names, _dedup,
                 _keep_alive):
        step(rw)
    out = rw.universe()
    if need_module and not out.module_keys():
        raise Unexpressible("nothing of the module part is expressible in C")
    if not out.kernel_keys():
        raise Unexpressible("nothing of the kernel part is expressible in C")
    return out


def _drop_unsupported(rw: _Rewrite) -> None:
    for n in rw.live():
        if isinstance(n, DeclTag | Var | Datasec):
            rw.drop(n.key)
        elif isinstance(n, TypeTag):
            rw.drop(n.key, n.target)


def _kernel_int(rw: _Rewrite, cname: str) -> Key:
    """The key of the kernel INT for gcc's name ``cname`` (made when missing)."""
    for n in rw.live():
        if isinstance(n, Int) and n.name == cname and n.key not in rw.module:
            return n.key
    spelling, size, enc = C_INTS[cname]
    del spelling
    k = rw.new_key("cint")
    rw.add(Int(k, cname, size, enc), module=False, first=True)
    return k


def _scalars(rw: _Rewrite) -> None:
    """One kernel INT per C integer type; FLOATs per C float type; impossible floats removed."""
    canon: dict[str, Key] = {}
    for n in rw.live():
        if isinstance(n, Int):
            base = _RENAMED_INT.sub("", n.name or "")
            if base not in C_INTS:
                raise Unexpressible(f"INT '{n.name}' is no C integer type")
            if base not in canon:
                canon[base] = _kernel_int(rw, base)
            k = canon[base]
            if n.key != k:
                rw.drop(n.key, k)
            else:
                _, size, enc = C_INTS[base]
                rw.set(Int(k, base, size, enc))
                rw.module.discard(k)
    bad: list[Key] = []
    fcanon: dict[str, Key] = {}
    for n in rw.live():
        if isinstance(n, Float):
            if n.name not in C_FLOATS or C_FLOATS[n.name][1] != n.size:
                bad.append(n.key)
                continue
            if n.name in fcanon:
                rw.drop(n.key, fcanon[n.name])
            else:
                fcanon[n.name] = n.key
                rw.module.discard(n.key)
    rw.remove_with_users(bad)


def _enums(rw: _Rewrite) -> None:
    for n in rw.live():
        if not isinstance(n, Enum):
            continue
        if n.size not in ENUM_MODE:
            rw.remove_with_users([n.key])
            continue
        bits = n.size * 8
        values = list(n.values) or [("EMPTY", 0)]
        folded = []
        for name, v in values:
            v %= 1 << bits
            folded.append((name, v))
        signed = n.signed and any(v >= 1 << (bits - 1) for _, v in folded)
        if signed:
            folded = [(name, v - (1 << bits) if v >= 1 << (bits - 1) else v) for name, v in folded]
        rw.set(dataclasses.replace(n, values=tuple(folded), signed=signed, wide=n.size == 8))
        _kernel_int(rw, ENUM_UNDERLYING[(n.size, signed)])


def _strip_to(rw: _Rewrite, r: Ref, kinds: tuple[type, ...]) -> Node | None:
    """The node ``r`` names after typedefs and qualifiers (None for void or a cycle)."""
    seen = set()
    n = rw.get(r)
    while isinstance(n, kinds) and n.key not in seen:
        seen.add(n.key)
        n = rw.get(n.target)  # type: ignore[union-attr]
    return n


def _quals(rw: _Rewrite) -> None:
    """No qualifier on a qualifier or on a typedef that already has it, none on an array (directly,
    through a typedef or on its elements, even through typedefs: gcc writes ``const T x[n]`` as
    CONST -> ARRAY -> CONST -> T, so a qualified element becomes the unqualified type below it) or on
    a function; ``restrict`` only on pointers to object types; a typedef of (qualified) void is of
    void."""
    changed = True
    while changed:
        changed = False
        for n in rw.live():
            if isinstance(n, Typedef) and n.target is not None and _strip_to(rw, n.target, (Typedef, Qual)) is None:
                rw.set(dataclasses.replace(n, target=None))  # gcc: a typedef of (qualified, typedef'd) void
                changed = True
                continue
            if isinstance(n, Array) and _qualified(rw, n.elem):
                below = _strip_to(rw, n.elem, (Typedef, Qual))
                rw.set(dataclasses.replace(n, elem=None if below is None else below.key))
                changed = True
                continue
            if not isinstance(n, Qual):
                continue
            t = rw.get(n.target)
            below = _strip_to(rw, n.target, (Typedef, Qual))
            pointee = _strip_to(rw, below.target, (Typedef, Qual)) if isinstance(below, Ptr) else None
            if isinstance(t, Qual):
                rw.set(dataclasses.replace(n, target=t.target))
                changed = True
            elif n.qual in _chain_quals(rw, n.target):
                rw.drop(n.key, n.target)  # C: ``const T`` with T already const is T
                changed = True
            elif isinstance(below, Array | FuncProto) or (n.qual == Kind.RESTRICT and (
                    not isinstance(below, Ptr) or isinstance(pointee, FuncProto))):
                rw.drop(n.key, n.target)
                changed = True


def _chain_quals(rw: _Rewrite, r: Ref) -> set[int]:
    """The qualifiers on the typedef/qualifier chain of ``r``."""
    out: set[int] = set()
    seen = set()
    n = rw.get(r)
    while isinstance(n, Typedef | Qual) and n.key not in seen:
        seen.add(n.key)
        if isinstance(n, Qual):
            out.add(n.qual)
        n = rw.get(n.target)
    return out


def _qualified(rw: _Rewrite, r: Ref) -> bool:
    """Is there a qualifier on the typedef/qualifier chain of ``r``?"""
    seen = set()
    n = rw.get(r)
    while isinstance(n, Typedef | Qual) and n.key not in seen:
        if isinstance(n, Qual):
            return True
        seen.add(n.key)
        n = rw.get(n.target)
    return False


def _unqualified(rw: _Rewrite, r: Ref) -> Ref:
    """``r`` without qualifiers: a qualified typedef chain is replaced by the unqualified type below it
    (gcc drops the typedef with the qualifiers of a function type's parameters and return type)."""
    if not _qualified(rw, r):
        return rw.resolve(r)
    below = _strip_to(rw, r, (Typedef, Qual))
    return None if below is None else below.key


def _protos(rw: _Rewrite) -> None:
    """Named prototypes for functions, anonymous ones elsewhere; parameters C allows."""
    users = rw.users()
    funcs = {n.key: n for n in rw.live() if isinstance(n, Func)}
    for n in rw.live():
        if not isinstance(n, FuncProto):
            continue
        us = users.get(n.key, set())
        by_func = [k for k in us if k in funcs]
        others = [k for k in us if k not in funcs]
        params = []
        for p, t in n.params:
            t = _unqualified(rw, t)
            below = _strip_to(rw, t, (Typedef, Qual))
            if t is None or isinstance(below, Array | FuncProto) or below is None:
                continue
            params.append((p, t))
        ret = _unqualified(rw, n.ret)
        if isinstance(_strip_to(rw, ret, (Typedef, Qual)), Array | FuncProto):
            ret = None
        variadic = n.variadic and bool(params)
        anon = dataclasses.replace(n, ret=ret, params=tuple((None, t) for _, t in params), variadic=variadic)
        if not by_func:
            rw.set(anon)
            continue
        named = dataclasses.replace(anon, params=tuple((p or f"arg{i}", t) for i, (p, t) in enumerate(params)))
        rw.set(named)
        split = bool(others) and named != anon
        remaining = by_func + ([] if split else others)
        if n.key not in rw.module and all(k in rw.module for k in remaining):
            rw.module.add(n.key)  # only module functions use it: gcc emits it in the module
        if split:
            k = rw.new_key(f"{n.key}_a")
            rw.add(dataclasses.replace(anon, key=k), module=bool(n.key in rw.module and
                                                                 all(o in rw.module for o in others)))
            for o in others:
                rw.set(_map_refs(rw.nodes[o], lambda r, old=n.key, new=k: new if rw.resolve(r) == old else r))
    for f in funcs.values():
        if f.linkage:
            rw.set(dataclasses.replace(f, linkage=0))


def _arrays(rw: _Rewrite) -> None:
    """Index type ``int``; an array of arrays (also through typedefs) flattened (pahole 1.24 encodes
    ``T x[5][8]`` as one ARRAY of 40 ``T``); gcc's DWARF for any array also holds ``sizetype``,
    pahole's ``long unsigned int``."""
    arrays = [n for n in rw.live() if isinstance(n, Array)]
    if not arrays:
        return
    idx = _kernel_int(rw, "int")
    _kernel_int(rw, "long unsigned int")
    for n in arrays:
        elem, count = n.elem, n.nelems
        inner = _strip_to(rw, elem, (Typedef,))
        seen = {n.key}
        while isinstance(inner, Array) and inner.key not in seen:
            seen.add(inner.key)
            elem, count = inner.elem, count * inner.nelems
            inner = _strip_to(rw, elem, (Typedef,))
        if (rw.resolve(n.index), rw.resolve(n.elem), n.nelems) != (idx, rw.resolve(elem), count):
            rw.set(dataclasses.replace(n, elem=elem, index=idx, nelems=count))


def _member_names(rw: _Rewrite, c: Composite) -> list[str]:
    """Names a composite puts in its scope (C11 anonymous members hoist their members' names)."""
    out: list[str] = []
    for m in c.members:
        if m.name:
            out.append(m.name)
        else:
            t = rw.get(m.type)
            if isinstance(t, Composite) and not t.name:
                out.extend(_member_names(rw, t))
    return out


def union_layout(size: int, widest: int) -> tuple[int, int] | None:
    """(padding bytes <= 8, alignment) making a packed union of widest member ``widest`` bytes ``size``
    bytes long, or None when that cannot be done."""
    if size == widest:
        return 0, 1
    if size < widest:
        return None
    if size <= 8:
        return size, 1
    k = size & -size
    if max(widest, 8) > size - k:
        return (8 if widest < 8 else 0), k
    return None


def _size_bits(rw: _Rewrite, m: Member, u: Universe) -> int:
    return m.bitfield or 8 * (sizeof(u, rw.resolve(m.type)) or 0)


def _composites(rw: _Rewrite) -> None:
    u = rw.universe()
    bad: list[Key] = []
    for n in rw.live():
        if not isinstance(n, Composite):
            continue
        members = []
        for m in n.members:
            t = rw.get(m.type)
            if m.bitfield and isinstance(t, Int) and t.name == "_Bool" and m.bitfield > 1:
                m = dataclasses.replace(m, bitfield=1)
            members.append(m)
        if n.union:
            widest = max((-(-_size_bits(rw, m, u) // 8) for m in members), default=0)
            if any(m.bit_offset for m in members) or union_layout(n.size, widest) is None:
                bad.append(n.key)
                continue
        else:
            end = 0
            for m in members:
                if m.bit_offset < end or (not m.bitfield and m.bit_offset % 8):
                    bad.append(n.key)  # overlapping or misaligned members
                end = m.bit_offset + _size_bits(rw, m, u)
            if end > n.size * 8:
                bad.append(n.key)
        rw.set(dataclasses.replace(n, members=tuple(members)))
    rw.remove_with_users(bad)
    for n in rw.live():
        if isinstance(n, Composite):
            _name_anonymous_members(rw, n)


def _name_anonymous_members(rw: _Rewrite, n: Composite) -> None:
    """C11 anonymous members hoist their members' names: name the ones that would clash (or that C
    cannot leave anonymous: only an anonymous struct/union can be an anonymous member)."""
    named = {m.name for m in n.members if m.name}
    hoisted: set[str] = set()
    members = list(n.members)
    for i, m in enumerate(members):
        if m.name:
            continue
        t = rw.get(m.type)
        names = set(_member_names(rw, t)) if isinstance(t, Composite) and not t.name else None
        if names is None or names & (named | hoisted):
            j = 0
            while f"anon{j}" in named:
                j += 1
            members[i] = dataclasses.replace(m, name=f"anon{j}")
            named.add(f"anon{j}")
        else:
            hoisted |= names
    if members != list(n.members):
        rw.set(dataclasses.replace(n, members=tuple(members)))


def _names(rw: _Rewrite) -> None:
    """Unique names per C namespace (renamed with the node key on a clash)."""
    tags: set[str] = set()
    ordinary: set[str] = set(C_KEYWORDS) | set(C_INTS) | set(C_FLOATS)

    def fresh(name: str | None, key: Key, used: set[str]) -> str:
        if name and _IDENT.match(name) and name not in used and not name.startswith(KEEP):
            used.add(name)
            return name
        base = name if name and _IDENT.match(name) else "n"
        cand = f"{base}_{key}"
        while cand in used:
            cand += "_"
        used.add(cand)
        return cand

    for n in rw.live():
        if isinstance(n, Composite | Enum | Fwd) and n.name:
            name = fresh(n.name, n.key, tags)
            if name != n.name:
                rw.set(dataclasses.replace(n, name=name))
    typedefs: set[str] = set()
    for n in rw.live():
        if isinstance(n, Typedef | Func):
            name = fresh(n.name, n.key, ordinary)
            if isinstance(n, Typedef):
                typedefs.add(name)
            if name != n.name:
                rw.set(dataclasses.replace(n, name=name))
    for n in rw.live():
        if isinstance(n, Enum):
            vals = tuple((fresh(v, n.key, ordinary), x) for v, x in n.values)
            if vals != n.values:
                rw.set(dataclasses.replace(n, values=vals))
    for n in rw.live():
        if isinstance(n, FuncProto):
            used: set[str] = set(typedefs) | set(C_KEYWORDS)
            params = tuple((None if p is None else fresh(p, n.key, used), t) for p, t in n.params)
            if params != n.params:
                rw.set(dataclasses.replace(n, params=params))
        elif isinstance(n, Composite):
            used = set(C_KEYWORDS)
            members = tuple(dataclasses.replace(m, name=fresh(m.name, n.key, used)) if m.name else m
                            for m in n.members)
            if members != n.members:
                rw.set(dataclasses.replace(n, members=members))


def _signature(rw: _Rewrite, n: Node) -> tuple | None:  # type: ignore[type-arg]
    """What makes an anonymous type itself (references resolved); None for types never merged."""
    r = rw.resolve
    if isinstance(n, Ptr):
        return ("ptr", r(n.target))
    if isinstance(n, Qual):
        return ("qual", n.qual, r(n.target))
    if isinstance(n, Array):
        return ("array", r(n.elem), r(n.index), n.nelems)
    if isinstance(n, FuncProto):
        return ("proto", r(n.ret), tuple((p, r(t)) for p, t in n.params), n.variadic)
    if isinstance(n, Composite) and not n.name:
        return ("comp", n.union, n.size, n.kflag, tuple((m.name, r(m.type), m.bit_offset, m.bitfield)
                                                        for m in n.members))
    return None


def _dedup(rw: _Rewrite) -> None:
    """Merge structurally identical anonymous types (kernel ones first), to a fixpoint."""
    changed = True
    while changed:
        changed = False
        first: dict[tuple, Key] = {}  # type: ignore[type-arg]
        nodes = sorted(rw.live(), key=lambda n: n.key in rw.module)
        for n in nodes:
            sig = _signature(rw, n)
            if sig is None:
                continue
            if sig in first:
                rw.drop(n.key, first[sig])
                changed = True
            else:
                first[sig] = n.key


def _keep_alive(rw: _Rewrite) -> None:
    """A PTR for each FWD, FUNC_PROTO and qualified incomplete type nothing in its own part refers to."""
    referenced: set[Key] = set()
    for n in rw.live():
        for r in refs(n):
            r = rw.resolve(r)
            if r is not None and (r in rw.module) == (n.key in rw.module):
                referenced.add(r)
    for n in rw.live():
        if n.key in referenced:
            continue
        incomplete = isinstance(n, Qual) and not isinstance(_strip_to(rw, n.target, (Typedef, Qual)),
                                                            Int | Float | Enum | Composite | Ptr | Array)
        if isinstance(n, Fwd | FuncProto) or incomplete:
            rw.add(Ptr(rw.new_key(f"{n.key}_p"), n.key), module=n.key in rw.module)


# --------------------------------------------------------------------------------------------------
# emission
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CSources:
    """The C of one universe: ``kernel.h`` (kernel types), ``kernel.c`` and ``module.c``."""

    header: str
    kernel: str
    module: str


class _Emitter:
    def __init__(self, u: Universe) -> None:
        self.u = u

    def node(self, r: Ref) -> Node | None:
        return None if r is None else self.u[r]

    # --- type expressions --------------------------------------------------------------------
    def decl(self, r: Ref, inner: str = "") -> str:
        """A C declaration of ``inner`` (a declarator, possibly empty) with type ``r``."""
        n = self.node(r)
        sp = f" {inner}" if inner else ""
        if n is None:
            return f"void{sp}"
        if isinstance(n, Int):
            return C_INTS[n.name or ""][0] + sp
        if isinstance(n, Float):
            return C_FLOATS[n.name or ""][0] + sp
        if isinstance(n, Enum | Composite) and not n.name:
            return f"__typeof__({KEEP}{n.key}){sp}"
        if isinstance(n, Enum):
            return f"enum {n.name}{sp}"
        if isinstance(n, Composite | Fwd):
            return f"{'union' if n.union else 'struct'} {n.name}{sp}"
        if isinstance(n, Typedef):
            return f"{n.name}{sp}"
        if isinstance(n, Ptr):
            t = self.node(n.target)
            return self.decl(n.target, f"(*{inner})" if isinstance(t, Array | FuncProto) else f"*{inner}")
        if isinstance(n, Qual):
            return self.decl(n.target, f"{QUAL_WORD[n.qual]}{sp}")
        if isinstance(n, Array):
            return self.decl(n.elem, f"{inner}[{n.nelems}]")
        if isinstance(n, FuncProto):
            return self.decl(n.ret, f"{inner}({self.params(n)})")
        raise Unexpressible(f"{type(n).__name__} {r} has no C type expression")

    def params(self, p: FuncProto) -> str:
        if not p.params:
            return "void"
        out = ", ".join(self.decl(t, name or "") for name, t in p.params)
        return out + (", ..." if p.variadic else "")

    # --- definitions ---------------------------------------------------------------------------
    def body(self, c: Composite) -> str:
        """Members of ``c`` at their exact offsets: a packed body with unnamed bit-field padding."""
        out: list[str] = []
        cur = 0
        for m in c.members:
            if not c.union:
                out += _padding(m.bit_offset - cur)
            t = self.node(m.type)
            if m.name is None and isinstance(t, Composite):
                text = f"{self.composite_head(t)} {{ {self.body(t)} }}"
            else:
                text = self.decl(m.type, m.name or "")
            out.append(text + (f" : {m.bitfield}" if m.bitfield else "") + ";")
            bits = m.bitfield or 8 * (sizeof(self.u, m.type) or 0)
            cur = max(cur, m.bit_offset + bits) if not c.union else max(cur, bits)
        if c.union:
            layout = union_layout(c.size, -(-cur // 8))
            if layout is None:
                raise Unexpressible(f"union {c.name or c.key}: size {c.size} cannot be laid out")
            pad, _ = layout
            if pad:
                out.append(f"unsigned long long : {pad * 8};")
        else:
            out += _padding(c.size * 8 - cur)
        return " ".join(out)

    def composite_head(self, c: Composite) -> str:
        attr = "packed"
        if c.union:
            widest = max((-(-(m.bitfield or 8 * (sizeof(self.u, m.type) or 0)) // 8) for m in c.members), default=0)
            layout = union_layout(c.size, widest)
            if layout and layout[1] > 1:
                attr += f", aligned({layout[1]})"
        return f"{'union' if c.union else 'struct'} __attribute__(({attr}))"

    def define(self, n: Node) -> str:
        """The declaration that makes named type / keep-alive ``n`` exist (kernel.h or module.c)."""
        if isinstance(n, Composite) and n.name:
            return f"{self.composite_head(n)} {n.name} {{ {self.body(n)} }};"
        if isinstance(n, Composite):
            return f"extern {self.composite_head(n)} {{ {self.body(n)} }} {KEEP}{n.key};"
        if isinstance(n, Enum):
            mode = ENUM_MODE[n.size]
            attr = f" __attribute__((mode({mode})))" if mode else ""
            vals = ", ".join(f"{v} = {_literal(x, n.size)}" for v, x in n.values)
            if n.name:
                return f"enum{attr} {n.name} {{ {vals} }};"
            return f"extern enum{attr} {{ {vals} }} {KEEP}{n.key};"
        if isinstance(n, Typedef):
            return f"typedef {self.decl(n.target, n.name or '')};"
        raise Unexpressible(f"{type(n).__name__} is not a definition")

    # --- dependencies --------------------------------------------------------------------------
    def needs(self, r: Ref, complete: bool) -> set[Key]:
        """Definitions that must precede a use of type ``r`` (``complete``: by value)."""
        n = self.node(r)
        if n is None or isinstance(n, Int | Float | Fwd):
            return set()
        if isinstance(n, Enum):
            return set() if n.name else {n.key}
        if isinstance(n, Composite):
            return {n.key} if (complete or not n.name) else set()
        if isinstance(n, Typedef):
            return {n.key} | (self.needs(n.target, True) if complete else set())
        if isinstance(n, Ptr):
            return self.needs(n.target, False)
        if isinstance(n, Qual):
            return self.needs(n.target, complete)
        if isinstance(n, Array):
            return self.needs(n.elem, True)
        if isinstance(n, FuncProto):
            out = self.needs(n.ret, False)
            for _, t in n.params:
                out |= self.needs(t, False)
            return out
        return set()

    def deps(self, n: Node) -> set[Key]:
        if isinstance(n, Composite):
            out: set[Key] = set()
            for m in n.members:
                t = self.node(m.type)
                if m.name is None and isinstance(t, Composite):
                    out |= self.deps(t)  # defined inline
                else:
                    out |= self.needs(m.type, True)
            return out - {n.key}
        if isinstance(n, Typedef):
            return self.needs(n.target, False)
        return set()

    def ordered(self, keys: list[Key]) -> list[Key]:
        """``keys`` (definitions of one part) so that each follows what it needs (depth first)."""
        want = set(keys)
        out: list[Key] = []
        state: dict[Key, int] = {}
        for root in keys:
            if root in state:
                continue
            stack = [(root, iter(sorted(self.deps(self.u[root]) & want)))]
            state[root] = 1
            while stack:
                k, it = stack[-1]
                nxt = next(it, None)
                if nxt is None:
                    stack.pop()
                    state[k] = 2
                    out.append(k)
                elif state.get(nxt) == 1:
                    raise Unexpressible(f"definitions of {k} and {nxt} need each other")
                elif nxt not in state:
                    state[nxt] = 1
                    stack.append((nxt, iter(sorted(self.deps(self.u[nxt]) & want))))
        return out

    # --- one part ------------------------------------------------------------------------------
    def part(self, module: bool) -> tuple[list[str], list[str]]:
        """(declarations, definitions that need storage: keep-alive variables and functions)."""
        u = self.u
        mine = [n for n in u.nodes if (n.key in u.module) == module]
        decls: list[str] = [f"{'union' if n.union else 'struct'} {n.name};" for n in mine
                            if isinstance(n, Composite | Fwd) and n.name]
        decls += [self.define(n) for n in mine if isinstance(n, Enum)]
        items = [n.key for n in mine if isinstance(n, Typedef) or isinstance(n, Composite)]
        for k in self.ordered(items):
            decls.append(self.define(u[k]))
        referenced = {r for n in mine for r in refs(n) if r is not None}
        storage: list[str] = []
        for n in mine:
            if isinstance(n, Composite | Enum) and not n.name:
                storage.append(f"__typeof__({KEEP}{n.key}) {KEEP}{n.key};")
            elif n.key not in referenced and isinstance(n, Int | Float | Ptr | Qual | Array):
                storage.append(f"{self.decl(n.key, KEEP + n.key)};")
        for n in mine:
            if isinstance(n, Func):
                p = u[n.proto]
                assert isinstance(p, FuncProto)
                storage.append(f"{self.decl(p.ret, f'{n.name}({self.params(p)})')} {{ __builtin_unreachable(); }}")
        return decls, storage


def _padding(bits: int) -> list[str]:
    out = []
    while bits > 0:
        w = min(bits, 64)
        out.append(f"unsigned long long : {w};")
        bits -= w
    return out


def _literal(v: int, size: int) -> str:
    if size == 8:
        return f"{v}LL" if v < 0 or v < 1 << 63 else f"{v:#x}ULL"
    if v < -(1 << 31):
        return f"{v}LL"
    return f"{v}" if v < 1 << 31 else f"{v:#x}U"


HEADER_GUARD = "BTFGEN_KERNEL_H"


def emit_c(u: Universe) -> CSources:
    """C for a universe in the C subset (run :func:`c_universe` first): kernel.h, kernel.c, module.c."""
    e = _Emitter(u)
    kdecls, kstore = e.part(False)
    mdecls, mstore = e.part(True)
    header = "\n".join([f"/* kernel part, generated by btfspec.btfgen.c_emit */\n#ifndef {HEADER_GUARD}\n"
                        f"#define {HEADER_GUARD}", *kdecls, "#endif", ""])
    kernel = "\n".join(['#include "kernel.h"', *kstore, ""])
    module = "\n".join(['/* module part, generated by btfgen.c_emit */\n#include "kernel.h"', *mdecls, *mstore, ""])
    return CSources(header, kernel, module)


__all__ = ["C_FLOATS", "C_INTS", "CSources", "KEEP", "Unexpressible", "c_universe", "emit_c", "expressible",
           "kernel_only", "union_layout"]

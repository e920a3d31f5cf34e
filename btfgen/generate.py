"""Universe generation: one generator for both drivers, plus the coverage features of a universe.

The generator asks a :class:`Chooser` for every decision, so the hypothesis strategy :func:`universes`
(a :class:`HypothesisChooser` over ``draw``; shrinkable, because every reference is an index into the
elements made so far) and the seeded :func:`btfspec.btfgen.recipe.expand` (a :class:`RandomChooser`) produce the
same kind of graphs.

Profiles: ``kernel-valid`` universes are accepted by the kernel's BTF verifier (base, and base+split
merged into one blob) and keep the kernel part free of the name clashes that make a distilled base
ambiguous; ``libbpf-valid`` universes only need to parse with libbpf v1.6 and add the quirk shapes
(empty names at non-zero offsets, long and odd names, odd linkage, FWD and STRUCT of one name,
same-named composites at distinct string offsets, modifier cycles, very deep chains, splits whose
distilled base is empty).  kernel-valid has the one empty-name shape the kernel accepts: a kernel INT
or FLOAT named by a non-zero offset to ``""`` (it checks no INT/FLOAT name).  In both profiles FWDs
are struct or union FWDs and the module often points at a kernel FWD, so the distilled base holds
FWDs for the relocation's FWD rules (Q1).

Why one module of ~700 lines: the generator is one class (``_Gen``) whose draw methods share its state
(the elements made so far, the knobs, the profile's name discipline); its decision interface
(:mod:`.chooser`) and coverage features (:mod:`.features`) live apart.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from btfspec.btfgen import coverage
from btfspec.btfgen.chooser import Chooser, HypothesisChooser
from btfspec.btfgen.features import features
from btfspec.btfgen.universe import (
    KERNEL_VALID,
    LIBBPF_VALID,
    MAX_COMPOSITE_SIZE,
    MAX_MODIFIER_CHAIN,
    MAX_STRATEGY_TYPES,
    PROFILES,
    PTR_SIZE,
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
    distill_sets,
    refs,
)
from btfspec.spec.kinds import INT_BOOL, INT_CHAR, INT_SIGNED, Kind

# --------------------------------------------------------------------------------------------
# generator
# --------------------------------------------------------------------------------------------

IDENTS = (
    "foo", "bar", "baz", "list_head", "hlist_node", "task_struct", "sk_buff", "file", "inode", "page",
    "device", "ops", "data", "next", "prev", "id", "len", "flags", "state", "lock", "cb", "priv", "node",
    "entry", "value", "key", "ctx", "buf", "count", "refcnt", "work", "timer", "mutex", "rcu_head",
    "net", "sock", "u32", "size_t",
)
ENUMERATORS = ("A", "B", "C", "NONE", "ONE", "MAX", "STATE_IDLE", "STATE_RUN", "E0", "E1", "X")
# (no "kptr"/"percpu_kptr"/"uptr": the kernel gives struct fields with those tags a meaning)
TAG_VALUES = ("user", "rcu", "percpu", "iomem", "kern_ptr", "tag_a")
SECTIONS = (".data", ".bss", ".rodata", ".data..percpu", "license")
INT_TABLE = (  # (name, size, encoding)
    ("int", 4, INT_SIGNED), ("unsigned int", 4, 0), ("char", 1, INT_CHAR), ("unsigned char", 1, 0),
    ("signed char", 1, INT_SIGNED), ("_Bool", 1, INT_BOOL), ("short int", 2, INT_SIGNED),
    ("short unsigned int", 2, 0), ("long int", 8, INT_SIGNED), ("long unsigned int", 8, 0),
    ("long long int", 8, INT_SIGNED), ("__int128", 16, INT_SIGNED), ("__int128 unsigned", 16, 0),
)
FLOAT_TABLE = (("float", 4), ("double", 8), ("long double", 16), ("_Float16", 2), ("__float80", 12))
ODD_NAMES = ("a.b", "1st", "with space", "x-y", "caf\xe9", "$")

# Span labels for a shrinking chooser (Chooser.begin): a phase's run of constructs, one construct.
PHASE_LABEL, CONSTRUCT_LABEL = 0x6274_6667_7068, 0x6274_6667_636F
# Constructs (index 0 is the simplest, what shrinking goes to).
CONSTRUCTS = ("int", "float", "enum", "enum64", "struct", "union", "array", "ptr", "qual", "typedef",
              "type_tag", "fwd", "func", "proto", "var", "decl_tag", "list_head", "mod_cycle", "deep_chain")
KERNEL_WEIGHTS = (6, 2, 5, 2, 14, 4, 5, 8, 5, 6, 2, 3, 6, 2, 3, 2, 2, 0, 0)
MODULE_WEIGHTS = (1, 0, 2, 1, 14, 2, 4, 8, 3, 4, 1, 1, 8, 2, 4, 2, 0, 0, 0)
# libbpf-valid quirk shapes (Knobs.quirks); "nondedup_strings" is an encoding option (Universe.encoding).
QUIRK_SHAPES = ("empty_name", "long_name", "odd_name", "odd_linkage", "fwd_struct_same_name",
                "mod_cycle", "deep_chain", "empty_distill", "nondedup_strings", "anon_required", "base_decl_ref",
                "odd_enum_size", "twin_composites")
# fixed rates of quirks decided per universe or per rare construct (the others use Knobs.quirk_percent)
QUIRK_PERCENT = {"nondedup_strings": 30, "empty_distill": 50, "fwd_struct_same_name": 30,
                 "odd_linkage": 15, "base_decl_ref": 40, "odd_enum_size": 40, "twin_composites": 60}
# typedefs and arrays of a named struct or union (spinlock_t, struct hlist_head table[16]; vmlinux: 13% of
# its typedefs, 24% of its arrays): composites embed them by value, and relocation must follow the typedef
# or the array to size-check what they embed, so they are weighted up
TYPEDEF_STRUCT_PERCENT = 50
ARRAY_OF_STRUCTS_PERCENT = 50
UNION_FWD_PERCENT = 30  # FWDs that declare a union (kflag 1; the kernel accepts them)
MODULE_FWD_PERCENT = 40  # universes whose module points at a kernel FWD (a distilled FWD)
KERNEL_EMPTY_NAME_PERCENT = 2  # kernel-valid INT/FLOATs named "" at a non-zero offset (the kernel allows it)
NAME_QUIRKS = ("empty_name", "long_name", "odd_name", "anon_required")
_NO_QUIRK = object()


@dataclass(frozen=True)
class Knobs:
    """Shape knobs of one universe (drawn by a recipe, defaulted for the hypothesis strategy)."""

    module_percent: int = 30  # share of the nodes in the module part
    quirks: frozenset[str] = frozenset()  # libbpf-valid only: which quirk shapes may occur
    quirk_percent: int = 6  # how often an enabled quirk fires where it can
    member_max: int = 5
    deep_max: int = 200


class _Gen:
    """Builds one universe from a :class:`Chooser`; see the module docstring."""

    def __init__(self, ch: Chooser, profile: str, knobs: Knobs) -> None:
        if profile not in PROFILES:
            raise ValueError(f"unknown profile {profile!r} (expected one of {', '.join(PROFILES)})")
        self.ch = ch
        self.kv = profile == KERNEL_VALID
        self.profile = profile
        self.knobs = knobs
        self.quirks = frozenset() if self.kv else knobs.quirks
        self.nodes: list[Node] = []
        self.by_key: dict[Key, Node] = {}
        self.module: set[Key] = set()
        self.phase = "kernel"
        self.counter = 0
        self.size: dict[Key, int] = {}
        self.align: dict[Key, int] = {}
        self.regular: dict[Key, bool] = {}  # False: bit-width INTs (and modifiers of them)
        self.mdepth: dict[Key, int] = {}
        self.pools: dict[str, dict[str, list[Key]]] = {"kernel": {}, "module": {}}
        self.void_closed: set[Key] = set()  # kernel keys whose distillation reaches nothing distilled
        self.comp_sizes: dict[str, set[int]] = {}  # kernel-valid name bookkeeping (kernel_name)
        self.keyed: dict[str, set[str]] = {}
        self.sigs: set[tuple[Any, ...]] = set()
        self.empty_distill = False
        self.until = 0
        self.min_size = 0

    # --- helpers --------------------------------------------------------------------------
    def key(self) -> Key:
        self.counter += 1
        return f"t{self.counter}"

    def quirk(self, name: str) -> bool:
        """Does an enabled quirk fire here?  Name quirks (asked for every name) use the knob's rate."""
        return name in self.quirks and self.ch.chance(QUIRK_PERCENT.get(name, self.knobs.quirk_percent))

    def add(self, node: Node, *pools: str, size: int | None = None, align: int = 1, regular: bool = True,
            pooled: bool = True) -> Key:
        """Append a node; sized nodes join the "sized" and "ptrable" pools unless ``pooled`` is False."""
        self.nodes.append(node)
        self.by_key[node.key] = node
        if self.phase == "module":
            self.module.add(node.key)
        if size is not None:
            self.size[node.key] = size
            self.align[node.key] = max(1, align)
            self.regular[node.key] = regular
            if pooled:
                pools = ("sized", "ptrable", *pools)
        if isinstance(node, Qual | Typedef | TypeTag):
            self.mdepth[node.key] = 1 + self.mdepth.get(node.target or "", 0)
        vc = self.phase == "kernel" and self._is_void_closed(node)
        if vc:
            self.void_closed.add(node.key)
        for p in pools:
            self.pools[self.phase].setdefault(p, []).append(node.key)
            if vc:  # the pools an empty-distill module part may use
                self.pools[self.phase].setdefault("vc:" + p, []).append(node.key)
        return node.key

    def _is_void_closed(self, n: Node) -> bool:
        if isinstance(n, Ptr | Qual | Typedef | TypeTag | Array | FuncProto) or (
                isinstance(n, Composite | Enum) and n.name is None):
            return all(r is None or r in self.void_closed for r in refs(n))
        return False

    def pool(self, name: str) -> list[Key]:
        """Candidates of a pool: the kernel's, or in the module phase often the module's own."""
        k = self.pools["kernel"].get(name, [])
        if self.phase == "kernel":
            return k
        if self.empty_distill:
            k = self.pools["kernel"].get("vc:" + name, [])
        m = self.pools["module"].get(name, [])
        if m and (not k or self.ch.chance(35)):
            return m
        return k

    def ref(self, *names: str, void_percent: int = 0) -> Ref:
        """A key from the first non-empty pool among ``names`` (None for void when allowed)."""
        if void_percent and self.ch.chance(void_percent):
            return None
        for name in names:
            cands = self.pool(name)
            if cands:
                return self.ch.pick(cands)
        return None

    def sized_ref(self, *names: str, regular: bool = True, nonzero: bool = False) -> Key | None:
        """A sized key (regular when asked, kernel-valid needs it for elements, params, variables)."""
        t = self.ref(*names, "sized")
        if t is None or t not in self.size or (regular and not self.regular[t]) or (nonzero and not self.size[t]):
            return None
        return t

    def ident(self, pool: Sequence[str] = IDENTS) -> str:
        """A name from ``pool``, one time in five a variant (``x_t``, ``__x``, ``x_ops``, ``x2``); one choice."""
        i = self.ch.int(0, 5 * len(pool) - 1)
        base = pool[i % len(pool)]
        if i < 4 * len(pool):
            return base
        return (f"{base}_t", f"__{base}", f"{base}_ops", f"{base}2")[i % 4]

    def quirk_name(self, required: bool = False) -> Any:
        """A libbpf-valid quirk name ("" at a non-zero offset, long, odd, missing) or _NO_QUIRK.

        One decision for all enabled name quirks, so names cost a single choice in the common case.
        """
        kinds = [q for q in NAME_QUIRKS if q in self.quirks and (required or q != "anon_required")]
        if not kinds or not self.ch.chance(self.knobs.quirk_percent * len(kinds)):
            return _NO_QUIRK
        q = self.ch.pick(kinds)
        if q == "empty_name":
            return ""
        if q == "long_name":
            return "long_" + "x" * self.ch.int(200, 3000)
        if q == "odd_name":
            return self.ch.pick(ODD_NAMES)
        return None  # anon_required

    def kernel_empty_name(self) -> bool:
        """kernel-valid: should this kernel INT/FLOAT be named by a non-zero offset to ``""``?  The kernel
        checks no INT/FLOAT name, libbpf counts it as named (Q3); the libbpf-valid profile has its own rate."""
        return self.kv and self.phase == "kernel" and self.ch.chance(KERNEL_EMPTY_NAME_PERCENT)

    def name(self, pool: Sequence[str] = IDENTS, *, anon_percent: int = 0, required: bool = False) -> str | None:
        q = self.quirk_name(required)
        if q is not _NO_QUIRK:
            return q  # type: ignore[no-any-return]
        if anon_percent and self.ch.chance(anon_percent):
            return None
        return self.ident(pool)

    def kernel_name(self, family: str, name: str | None, size: int = 0, sig: tuple[Any, ...] = ()) -> str | None:
        """Keep keyed kernel names unambiguous for relocation (renames on a clash), in both profiles.

        Named composites share no name with INT/FLOAT/ENUM/FWD and same-named composites differ in
        size; INT (name, size, encoding), FLOAT and ENUM (name, size) and FWD names are unique.
        Without this a base could hold two equally good candidates and no label would be meaningful;
        the libbpf-valid quirks that clash on purpose (FWD and STRUCT of one name, empty names,
        non-deduplicated strings) bypass it.
        """
        if self.phase != "kernel" or not name:
            return name
        cand = name
        for attempt in range(4):
            cand = name if attempt == 0 else f"{name}_{self.counter}_{attempt}"
            if family == "composite":
                clash = bool(self.keyed.get(cand, set()) - {"composite"}) or size in self.comp_sizes.get(cand, ())
            else:
                clash = "composite" in self.keyed.get(cand, ()) or (family, cand, *sig) in self.sigs
            if not clash:
                break
        self.keyed.setdefault(cand, set()).add(family)
        if family == "composite":
            self.comp_sizes.setdefault(cand, set()).add(size)
        else:
            self.sigs.add((family, cand, *sig))
        return cand

    def modifier_target(self, void_percent: int = 10) -> Ref:
        """A modifier/typedef target; kernel-valid keeps chains short and TYPE_TAGs before modifiers."""
        for _ in range(3):
            t = self.ref("ptrable", void_percent=void_percent)
            if t is None or not self.kv:
                return t
            if self.mdepth.get(t, 0) < MAX_MODIFIER_CHAIN and not isinstance(self.by_key[t], TypeTag):
                return t
        return None

    def _strip(self, key: Ref) -> Ref:
        """Follow modifiers/typedefs/tags among the nodes made so far."""
        for _ in range(64):
            n = self.by_key.get(key or "")
            if not isinstance(n, Qual | Typedef | TypeTag):
                return key
            key = n.target
        return None

    def _add_modifier(self, node: Qual | Typedef | TypeTag, *pools: str) -> Key:
        t = node.target
        if t is not None and t in self.size:
            return self.add(node, *pools, size=self.size[t], align=self.align[t], regular=self.regular[t])
        return self.add(node, "ptrable", *pools)

    def _ptr(self, target: Ref, *, pooled: bool = True) -> Key:
        return self.add(Ptr(self.key(), target), *(("scalar", "ptr") if pooled else ()), size=PTR_SIZE,
                        align=PTR_SIZE, pooled=pooled)

    # --- constructs ----------------------------------------------------------------------
    def c_int(self, regular_only: bool = False) -> None:
        name, size, enc = self.ch.pick(INT_TABLE)
        bits = None
        if not regular_only and self.ch.chance(10):
            bits = self.ch.int(1, size * 8 - 1)
            name = f"{name}:{bits}"
        if not regular_only:
            q = self.quirk_name()
            if q is not _NO_QUIRK:
                name = q
                if self.quirk("odd_name"):
                    enc = self.ch.pick((3, 8, 15))
            elif self.kernel_empty_name():
                name = ""
        name = self.kernel_name("int", name, size, (size, enc))
        pools = ("scalar", "int") + (("index",) if bits is None else ())
        self.add(Int(self.key(), name, size, enc, bits), *pools, size=size, align=min(size, 8), regular=bits is None)

    def c_float(self) -> None:
        name, size = self.ch.pick(FLOAT_TABLE)
        if self.kernel_empty_name():
            name = ""
        name = self.kernel_name("float", name, size, (size,))
        self.add(Float(self.key(), name, size), "scalar", size=size, align=min(size, 8))

    def c_enum(self, wide: bool = False) -> None:
        name = self.name(anon_percent=30)
        size = 8 if wide else self.ch.pick((4, 4, 4, 1, 2, 8))
        if self.quirk("odd_name"):
            size = self.ch.pick((3, 16))
        signed = self.ch.chance(30)
        bits = 64 if wide else 32
        lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
        values: list[tuple[str, int]] = []
        for i in range(self.ch.int(0, 5)):
            if values and self.ch.chance(15):
                v = values[-1][1]  # a duplicate value
            elif signed and self.ch.chance(30):
                v = self.ch.int(lo, -1)
            else:
                v = i if self.ch.chance(60) else self.ch.int(max(lo, 0), hi)
            values.append((f"{self.ch.pick(ENUMERATORS)}_{i}", v))
        if name:
            name = self.kernel_name("enum", name, size, (size,))
        self.add(Enum(self.key(), name, size, tuple(values), signed, wide), "scalar", "enum",
                 size=size, align=min(max(size, 1), 8))

    def c_enum64(self) -> None:
        self.c_enum(wide=True)

    def _member_name(self, used: set[str], anon_ok: bool) -> str | None:
        if anon_ok and self.ch.chance(50):
            return None
        base = self.ident()
        n, i = base, 1
        while n in used:
            n, i = f"{base}{i}", i + 1
        used.add(n)
        return n

    def c_struct(self, union: bool = False) -> None:
        name = self.name(anon_percent=30)
        k = self.key()
        members: list[tuple[str | None, Key, int]] = []  # (name, type, bitfield size)
        used: set[str] = set()
        kflag = self.ch.chance(20)
        selfptr = None
        if name is not None and not union and self.ch.chance(25):  # struct s { struct s *next; } (a cycle)
            selfptr = Ptr(self.key(), k)
            self.size[selfptr.key], self.align[selfptr.key], self.regular[selfptr.key] = PTR_SIZE, PTR_SIZE, True
            members.append((self._member_name(used, False), selfptr.key, 0))
            if self.ch.chance(50):
                members.append((self._member_name(used, False), selfptr.key, 0))
        total = 0
        for _ in range(self.ch.int(0, self.knobs.member_max)):
            mt = self.sized_ref(regular=kflag)
            if mt is None or total + self.size[mt] > MAX_COMPOSITE_SIZE:
                continue
            total += self.size[mt]
            mnode = self.by_key[mt]
            bf = 0
            if kflag and isinstance(mnode, Int | Enum) and mnode.size <= 8 and self.ch.chance(60):
                bf = self.ch.int(1, mnode.size * 8 if isinstance(mnode, Int) else min(mnode.size * 8, 32))
            elif kflag and isinstance(mnode, Enum) and mnode.size < 4:
                bf = mnode.size * 8  # the kernel checks a kind_flag enum member as 32 bits unless a bitfield
            elif kflag and self.kv and isinstance(self.by_key.get(self._strip(mt) or ""), Enum):
                continue  # same, through a typedef/modifier (cannot be made a bitfield here)
            anon_ok = (isinstance(mnode, Composite) and mnode.name is None) or (not self.kv and self.ch.chance(5))
            members.append((self._member_name(used, anon_ok), mt, bf))
        flex = None
        if not union and self.ch.chance(10):  # flexible array member
            elem, idx = self.sized_ref(), self.ref("index")
            if elem is not None and idx is not None:
                flex = Array(self.key(), elem, idx, 0)
                self.size[flex.key], self.align[flex.key], self.regular[flex.key] = 0, self.align[elem], True
                members.append((self._member_name(used, False), flex.key, 0))
        laid, size, align = self._layout(members, union)
        if self.quirk("odd_name"):
            size += self.ch.int(1, 64)
        if name is not None:
            name = self.kernel_name("composite", name, size)
        if selfptr is not None:
            self.add(selfptr, "scalar", "ptr", size=PTR_SIZE, align=PTR_SIZE)
        if flex is not None:
            self.add(flex, size=0, align=self.align[flex.key], pooled=False)
        kf = True if kflag and any(m.bitfield for m in laid) else None
        self.add_composite(Composite(k, name, size, tuple(laid), union, kf), align)

    def add_composite(self, node: Composite, align: int) -> Key:
        pools = ("composite", "decl_target") + (("named_comp",) if node.name else ())
        return self.add(node, *pools, size=node.size, align=align)

    def c_union(self) -> None:
        self.c_struct(union=True)

    def _layout(self, members: list[tuple[str | None, Key, int]], union: bool) -> tuple[list[Member], int, int]:
        """Natural C layout: aligned members, bitfields packed within their storage units."""
        out: list[Member] = []
        off = end = 0
        max_align = 1
        odd = self.quirk("odd_name")  # random member offsets (libbpf-valid)
        for mname, mt, bf in members:
            msize, malign = self.size[mt], self.align[mt]
            max_align = max(max_align, malign)
            if union:
                out.append(Member(mname, mt, 0, bf))
                end = max(end, (bf + 7) // 8 if bf else msize)
                continue
            if bf:
                unit = msize * 8
                if (off % unit) + bf > unit:
                    off = -(-off // unit) * unit
            else:
                off = -(-off // (malign * 8)) * malign * 8
            bit = off
            off += bf or msize * 8
            if odd:
                bit = self.ch.int(0, 1 << 12)
            out.append(Member(mname, mt, bit, bf))
            end = max(end, -(-off // 8))
        return out, -(-end // max_align) * max_align, max_align

    def c_array(self) -> None:
        named = [k for k in self.pool("named_comp") if k in self.size and self.regular[k]]
        if named and self.ch.chance(ARRAY_OF_STRUCTS_PERCENT):  # struct hlist_head table[16]
            elem: Key | None = self.ch.pick(named)
        else:
            elem = self.sized_ref()
        idx = self.ref("index")
        if elem is None or idx is None:
            return
        n = 0 if self.ch.chance(12) else (self.ch.int(1, 16) if self.ch.chance(85) else self.ch.int(17, 4096))
        size = self.size[elem] * n
        if size <= MAX_COMPOSITE_SIZE:
            self.add(Array(self.key(), elem, idx, n), size=size, align=self.align[elem])

    def c_ptr(self) -> None:
        self._ptr(self.ref("ptrable", void_percent=10))

    def c_qual(self) -> None:
        t = self.modifier_target()
        for _ in range(self.ch.int(1, 3)):
            t = self._add_modifier(Qual(self.key(), self.ch.pick((Kind.CONST, Kind.VOLATILE, Kind.RESTRICT)), t))

    def c_typedef(self) -> None:
        named = self.pool("named_comp")
        if named and self.ch.chance(TYPEDEF_STRUCT_PERCENT):  # typedef struct spinlock spinlock_t
            t: Ref = self.ch.pick(named)
        else:
            t = self.modifier_target()
        self._add_modifier(Typedef(self.key(), self.name(required=True), t), "typedef", "decl_target")

    def c_type_tag(self) -> None:
        t = self.ref("ptrable", void_percent=10)
        if self.kv and t is not None and self.mdepth.get(t, 0) >= MAX_MODIFIER_CHAIN:
            t = None
        attr = not self.kv and self.ch.chance(20)
        value = self.ch.pick(TAG_VALUES) if self.kv else self.name(TAG_VALUES, required=True)
        k = self._add_modifier(TypeTag(self.key(), value, t, attr))
        if self.ch.chance(70):  # the kernel's usual shape: PTR -> TYPE_TAG -> T
            self._ptr(k)

    def c_fwd(self) -> None:
        union = self.ch.chance(UNION_FWD_PERCENT)
        name = self.name(required=True)
        named = self.pools[self.phase].get("named_comp", [])
        if named and self.quirk("fwd_struct_same_name"):  # a deliberate clash (E1, Q2)
            name = self.by_key[self.ch.pick(named)].name
        else:
            name = self.kernel_name("fwd", name)
        self.add(Fwd(self.key(), name, union), "ptrable", "fwd")

    def _proto(self, named_params: bool) -> Key:
        ret = self.sized_ref() if not self.ch.chance(30) else None
        params: list[tuple[str | None, Ref]] = []
        used: set[str] = set()
        for _ in range(self.ch.int(0, 4)):
            t = self.sized_ref("scalar")
            if t is None:
                continue
            pname = self._member_name(used, not named_params)
            if self.quirk("odd_name"):
                pname = self.ch.pick(ODD_NAMES)
            params.append((pname, t))
        return self.add(FuncProto(self.key(), ret, tuple(params), self.ch.chance(15)), "ptrable", "proto")

    def c_func(self) -> None:
        protos = self.pool("proto")
        proto = self.ch.pick(protos) if protos and self.ch.chance(25) else None
        if proto is None or (self.kv and any(n is None for n, _ in self.by_key[proto].params)):  # type: ignore[union-attr]
            proto = self._proto(True)
        linkage = self.ch.int(0, 1)
        if self.quirk("odd_linkage"):
            linkage = self.ch.pick((2, 3, 0xFFFF))
        name = self.name(required=True)
        if name and self.ch.chance(50):
            name = f"{name}_{self.ch.pick(('init', 'exit', 'show', 'fn'))}"
        self.add(Func(self.key(), name, proto, linkage), "func", "decl_target")

    def c_proto(self) -> None:
        self._proto(False)

    def c_var(self) -> None:
        entries: list[tuple[Key, int, int]] = []
        off = 0
        for _ in range(self.ch.int(1, 3)):
            t = self.sized_ref(nonzero=True)
            if t is None:
                continue
            linkage = self.ch.int(0, 1)
            if self.quirk("odd_linkage"):
                linkage = self.ch.pick((2, 3))
            vk = self.add(Var(self.key(), self.name(required=True), t, linkage), "var", "decl_target")
            a = self.align[t]
            off = -(-off // a) * a
            entries.append((vk, off, self.size[t]))
            off += self.size[t]
        if entries and self.ch.chance(70):
            name = self.ch.pick(SECTIONS) if self.kv else self.name(SECTIONS, required=True)
            self.add(Datasec(self.key(), name, max(off, 1), tuple(entries)))

    def c_decl_tag(self) -> None:
        t = self.ref("decl_target")
        if t is None or (self.phase == "module" and t not in self.module):
            return
        tn = self.by_key[t]
        idx = -1
        if isinstance(tn, Composite) and tn.members and self.ch.chance(50):
            idx = self.ch.int(0, len(tn.members) - 1)
        elif isinstance(tn, Func) and self.by_key[tn.proto].params and self.ch.chance(50):  # type: ignore[union-attr]
            idx = self.ch.int(0, len(self.by_key[tn.proto].params) - 1)  # type: ignore[union-attr]
        if self.quirk("odd_name"):
            idx = self.ch.int(-5, 100)
        self.add(DeclTag(self.key(), self.ch.pick(TAG_VALUES), t, idx, not self.kv and self.ch.chance(20)))

    def c_list_head(self) -> None:
        existing = [k for k in self.pools["kernel"].get("named_comp", []) if self.by_key[k].name == "list_head"]
        if existing:  # struct x { struct list_head node; ... }: embeds the pointer cycle
            ms: list[tuple[str | None, Key, int]] = [("node", self.ch.pick(existing), 0)]
            extra = self.sized_ref("scalar")
            if extra is not None:
                ms.append(("val", extra, 0))
            laid, size, align = self._layout(ms, False)
            name = self.kernel_name("composite", self.ident(), size)
            self.add_composite(Composite(self.key(), name, size, tuple(laid)), align)
            return
        k = self.key()
        name = self.kernel_name("composite", "list_head", 16)
        p = self._ptr(k)
        self.add_composite(Composite(k, name, 16, (Member("next", p, 0), Member("prev", p, 64))), 8)

    def c_mod_cycle(self) -> None:
        a, b = self.key(), self.key()
        if self.ch.chance(50):
            self.add(Qual(a, Kind.CONST, a))
        else:
            self.add(Qual(a, Kind.CONST, b))
            self.add(Qual(b, Kind.VOLATILE, a))
        if self.ch.chance(60):  # a composite member whose modifier chain never ends (Q5)
            name = self.kernel_name("composite", self.name(anon_percent=50), 4)
            self.add(Composite(self.key(), name, 4, (Member("loop", a, 0),)), "ptrable")
        else:
            self.add(Ptr(self.key(), a), "ptrable")

    def c_deep_chain(self) -> None:
        t: Ref = self.ref("index")
        depth = min(self.ch.int(32, max(33, self.knobs.deep_max)), max(32, self.until - len(self.nodes)))
        for _ in range(depth):
            t = self._ptr(t, pooled=False)
        self.pools[self.phase].setdefault("ptrable", []).append(t)  # type: ignore[arg-type]

    def _void_closed_kernel_types(self) -> None:
        """Kernel types whose distillation reaches nothing distilled (for empty distilled bases, Q6)."""
        p = self._ptr(None)
        self.add(Qual(self.key(), Kind.CONST, p), "ptrable")
        self.add(Composite(self.key(), None, 0), "ptrable", size=0)
        self.add(FuncProto(self.key(), None, ((None, p),)), "ptrable", "proto")

    def _odd_size_enum(self) -> Key:
        """libbpf-valid: a named kernel enum of a size ``btf__add_enum`` refuses (3, 5, 6 or 7 bytes), for
        the module to reach (libbpf cannot distill it: -EINVAL)."""
        size = self.ch.pick((3, 5, 6, 7))
        name = self.kernel_name("enum", self.ident(), size, (size,))
        return self.add(Enum(self.key(), name, size, (("odd_0", 0),), False, False), "scalar", "enum",
                        size=size, align=1)

    def _module_reaches_base_decl(self) -> None:
        """libbpf-valid: a module pointer to a kernel FUNC, VAR, DATASEC or DECL_TAG, which libbpf refuses
        to distill (-EINVAL, "unexpected reference to base type")."""
        decl = Func | Var | Datasec | DeclTag
        cands = [n.key for n in self.nodes if n.key not in self.module and isinstance(n, decl)]
        if cands:
            self._ptr(self.ch.pick(cands))

    def _kernel_fwd_for_module(self) -> Key | None:
        """A kernel FWD for the module to point at (made when the kernel has none), or None: the distilled
        base then keeps a FWD, which relocation matches by its own FWD rules (Q1)."""
        if not self.ch.chance(MODULE_FWD_PERCENT):
            return None
        if not self.pools["kernel"].get("fwd") or self.ch.chance(30):
            self.c_fwd()
        return self.ch.pick(self.pools["kernel"]["fwd"])

    def _twin_composite(self) -> Key | None:
        """libbpf-valid: a same-named twin of a named kernel composite (its members, a larger size), and one
        of the two for the module to point at.  The universe's strings are then not deduplicated, so the
        twins' names sit at distinct offsets: libbpf counts same-named composites by offset (Q4) and
        takes both for the distilled one."""
        named = [k for k in self.pools["kernel"].get("named_comp", []) if self.by_key[k].name]
        if not named:
            return None
        orig = self.by_key[self.ch.pick(named)]
        assert isinstance(orig, Composite) and orig.name
        size = orig.size + 8
        while size in self.comp_sizes.get(orig.name, ()):
            size += 8
        self.comp_sizes.setdefault(orig.name, set()).add(size)
        twin = self.add_composite(dataclasses.replace(orig, key=self.key(), size=size), self.align[orig.key])
        return self.ch.pick((orig.key, twin))

    # --- driver ----------------------------------------------------------------------------
    def run(self, target: int) -> Universe:
        n_mod = max(1, target * self.knobs.module_percent // 100)
        n_kernel = max(2, target - n_mod)
        kw, mw = list(KERNEL_WEIGHTS), list(MODULE_WEIGHTS)
        for q in ("mod_cycle", "deep_chain"):
            if q in self.quirks:
                kw[CONSTRUCTS.index(q)] = 1
        if "mod_cycle" in self.quirks:
            mw[CONSTRUCTS.index("mod_cycle")] = 1
        self.c_int(regular_only=True)  # every universe has an array index type
        self._phase(n_kernel, kw)
        odd_enum = self._odd_size_enum() if self.quirk("odd_enum_size") else None
        self.empty_distill = self.quirk("empty_distill")
        twin = fwd = None  # kernel types the module points at (not for an empty distilled base)
        if self.empty_distill:
            self._void_closed_kernel_types()
        else:
            twin = self._twin_composite() if self.quirk("twin_composites") else None
            fwd = self._kernel_fwd_for_module()
        self.phase = "module"
        if self.empty_distill:
            self.c_int(regular_only=True)
        for k in (twin, fwd):
            if k is not None:
                self._ptr(k)
        self._phase(n_kernel + n_mod, mw)
        if not self.module:
            self.c_ptr()
        if self.quirk("base_decl_ref"):
            self._module_reaches_base_decl()
        if odd_enum is not None and not self.empty_distill:
            self._ptr(odd_enum)
        nondedup = twin is not None or self.quirk("nondedup_strings")
        encoding = frozenset({"nondedup_strings"}) if nondedup else frozenset()
        u = Universe(tuple(self.nodes), frozenset(self.module), self.profile, self.quirks, encoding)
        if not self.empty_distill and not distill_sets(u)[0]:
            # the module reaches nothing a distilled base keeps: an empty distilled base (Q6) is a
            # libbpf-valid quirk shape, so reference the kernel's index INT from the module
            self._ptr(self.pools["kernel"]["index"][0])
            u = dataclasses.replace(u, nodes=tuple(self.nodes), module=frozenset(self.module))
        return u

    def _phase(self, until: int, weights: list[int]) -> None:
        self.until = until
        tries = 0
        ch = self.ch
        ch.begin(PHASE_LABEL)
        while len(self.nodes) < until and tries < 4 * until + 8:
            ch.begin(CONSTRUCT_LABEL)  # like a hypothesis list element: the "more" decision, then the construct
            go = len(self.nodes) < self.min_size or ch.more()
            if go:
                tries += 1
                getattr(self, "c_" + CONSTRUCTS[ch.weighted(weights)])()
            ch.end()
            if not go:
                break
        ch.end()


def generate(ch: Chooser, profile: str = KERNEL_VALID, size: int = 30, knobs: Knobs | None = None,
             min_size: int = 0) -> Universe:
    """One universe of about ``size`` nodes (constructs may overshoot a little).

    With a shrinking chooser, construction may stop early (:meth:`Chooser.more`), never below
    ``min_size`` nodes.
    """
    g = _Gen(ch, profile, knobs or Knobs())
    g.min_size = min_size
    return g.run(size)


def draw_knobs(ch: Chooser, profile: str) -> Knobs:
    """Knobs for one universe: libbpf-valid enables a random subset of the quirk shapes.

    Each quirk is enabled with ~20 % probability, so many libbpf-valid universes are quirk-free
    and a shrunk failure keeps only the quirks it needs.
    """
    if profile != LIBBPF_VALID:
        return Knobs()
    quirks = frozenset(q for q in QUIRK_SHAPES if ch.chance(20))
    return Knobs(quirks=quirks, quirk_percent=4, deep_max=80)


@st.composite
def _universes(draw: Callable[[st.SearchStrategy[Any]], Any], profile: str, min_types: int, max_types: int,
               knobs: Knobs | None) -> Universe:
    ch = HypothesisChooser(draw)
    target = ch.int(min_types, max_types)
    u = generate(ch, profile, target, knobs or draw_knobs(ch, profile), min_size=min_types)
    coverage.record_all(features(u))
    return u


def universes(profile: str = KERNEL_VALID, min_types: int = 5, max_types: int = 300,
              knobs: Knobs | None = None) -> st.SearchStrategy[Universe]:
    """Shrinkable universes with a kernel and a module part (about ``min_types``..``max_types`` nodes).

    About 6 hypothesis choices per type: beyond ~600 types an example exceeds hypothesis's choice
    cap, so larger universes come from :func:`btfspec.btfgen.recipe.recipe_cases`.
    """
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}")
    if not 1 <= min_types <= max_types <= MAX_STRATEGY_TYPES:
        raise ValueError(f"need 1 <= min_types <= max_types <= {MAX_STRATEGY_TYPES} "
                         "(use btfspec.btfgen.recipe.recipe_cases for larger universes)")
    return _universes(profile, min_types, max_types, knobs)


def base_split_pairs(profile: str = KERNEL_VALID, min_types: int = 5, max_types: int = 300,
                     knobs: Knobs | None = None) -> st.SearchStrategy[Any]:
    """:class:`btfspec.btfgen.encoder.Case` objects: universe, partition, encoded base and split bytes."""
    from btfspec.btfgen.encoder import make_case

    return universes(profile, min_types, max_types, knobs).map(make_case)

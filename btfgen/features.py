"""The coverage features of a universe: which kinds, shapes and names it holds (for campaign coverage)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from typing import Any

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
    Ptr,
    Qual,
    Ref,
    Typedef,
    TypeTag,
    Universe,
    Var,
    distill_sets,
    embeddings,
    in_modifier_cycle,
    refs,
    strip_modifiers,
)
from btfspec.spec.kinds import INT_BOOL, INT_CHAR, Kind

_CHAIN_LINK = {Typedef: "typedef", Qual: "qualifier", TypeTag: "type_tag", Array: "array"}
_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")  # a C identifier (other names are "odd")


def features(u: Universe) -> set[tuple[str, str]]:
    """(category, value) pairs describing a universe: BTF kinds and notable shapes."""
    found: set[str] = set()  # shape names
    shape = found.add
    kinds: set[Kind] = set()
    names: dict[tuple[str, str], int] = {}
    kernel_named: dict[str, set[type]] = {}
    for n in u.nodes:
        cls = type(n)
        kinds.add(n.btf_kind)
        if n.name is not None:
            names[(cls.__name__, n.name)] = names.get((cls.__name__, n.name), 0) + 1
            if n.key not in u.module:
                kernel_named.setdefault(n.name, set()).add(cls)
            if n.name == "":
                shape("empty_name_scalar" if cls is Int or cls is Float else "empty_name_nonzero")
            elif len(n.name) > 128:
                shape("long_name")
            elif not _IDENT_RE.match(n.name) and cls is not Int and cls is not Float and cls is not Datasec:
                shape("odd_name")
        node_shapes = _NODE_SHAPES.get(cls)
        if node_shapes is not None:
            node_shapes(u, n, shape)
    if any(c > 1 for c in names.values()):
        shape("dup_name_same_kind")
    by_name: dict[str, set[str]] = {}
    for kind, name in names:
        by_name.setdefault(name, set()).add(kind)
    if any(len(v) > 1 for v in by_name.values()):
        shape("dup_name_cross_kind")
    if any(Fwd in ts and Composite in ts for ts in kernel_named.values()):
        shape("fwd_struct_same_name")
    distilled, copied = distill_sets(u)
    if (distilled or copied) and not distilled:
        shape("empty_distill")
    for k in distilled:
        if isinstance(fwd := u[k], Fwd):
            shape("distilled_fwd_union" if fwd.union else "distilled_fwd_struct")
    if "nondedup_strings" in u.encoding and any(
            c > 1 for c in Counter(n.name for n in u.kernel_nodes() if isinstance(n, Composite) and n.name).values()):
        shape("composite_name_offsets")  # same-named kernel composites whose names sit at distinct offsets
    for start, target in embeddings(u):
        shape("module_embeds_kernel")
        k: Ref = start
        while k is not None and k != target:  # the chain the embedding goes through (Q5-free: it ends)
            n = u[k]
            shape(f"embedded_via_{_CHAIN_LINK[type(n)]}")
            k = n.elem if isinstance(n, Array) else n.target  # type: ignore[union-attr]
    for k in u.module_keys():
        for r in refs(u[k]):
            if r is not None and r not in u.module:
                shape(f"module_{type(u[k]).__name__.lower()}_to_kernel")
    if "nondedup_strings" in u.encoding:
        shape("nondedup_strings")
    return {("profile", u.profile)} | {("kind", k.name) for k in kinds} | {("shape", v) for v in found}


# --- the shapes of one node, a small function per node class -----------------------------------------

Shape = Callable[[str], None]


def _int_shapes(u: Universe, n: Int, shape: Shape) -> None:
    if not n.regular:
        shape("int_bitwidth")
    if n.size == 16:
        shape("int128")
    if n.encoding & INT_CHAR:
        shape("int_char")
    if n.encoding & INT_BOOL:
        shape("int_bool")


def _enum_shapes(u: Universe, n: Enum, shape: Shape) -> None:
    if n.signed:
        shape("enum_signed")
    vals = [v for _, v in n.values]
    if any(v < 0 for v in vals):
        shape("enum_negative")
    if len(set(vals)) < len(vals):
        shape("enum_dup_values")
    if not vals:
        shape("enum_empty")


def _composite_shapes(u: Universe, n: Composite, shape: Shape) -> None:
    if n.name is None:
        shape("anon_composite")
    last = len(n.members) - 1
    for i, m in enumerate(n.members):
        if m.bitfield:
            shape("bitfield")
        if m.name is None:
            shape("anon_member")
        t = u.get(m.type)
        if isinstance(t, Composite):
            shape("embedded_composite")
        elif isinstance(t, Array):
            if t.nelems == 0 and i == last and not n.union:
                shape("flexible_array")
        elif isinstance(t, Ptr):
            if strip_modifiers(u, t.target) == n.key:
                shape("list_head_cycle" if n.name == "list_head" else "ptr_cycle")
        elif isinstance(t, Typedef | Qual | TypeTag) and in_modifier_cycle(u, m.type):
            shape("mod_cycle_member")


def _array_shapes(u: Universe, n: Array, shape: Shape) -> None:
    if n.nelems == 0:
        shape("zero_len_array")
    if isinstance(u.get(n.elem), Array):
        shape("multidim_array")


def _fwd_shapes(u: Universe, n: Fwd, shape: Shape) -> None:
    shape("fwd_union" if n.union else "fwd_struct")


def _proto_shapes(u: Universe, n: FuncProto, shape: Shape) -> None:
    if n.variadic:
        shape("variadic")
    if not n.params and not n.variadic:
        shape("void_params")
    if n.ret is None:
        shape("void_return")


def _modifier_shapes(u: Universe, n: Typedef | Qual | TypeTag, shape: Shape) -> None:
    t = u.get(n.target)
    if isinstance(n, Typedef) and isinstance(t, Typedef):
        shape("typedef_chain")
    if isinstance(n, Qual) and isinstance(t, Qual):
        shape("qual_chain")
    if in_modifier_cycle(u, n.key):
        shape("mod_cycle")


def _ptr_shapes(u: Universe, n: Ptr, shape: Shape) -> None:
    if isinstance(u.get(n.target), TypeTag):
        shape("ptr_to_type_tag")
    depth, k = 0, n.key
    seen = set()
    while isinstance(u.get(k), Ptr) and k not in seen:
        seen.add(k)
        depth += 1
        k = u[k].target  # type: ignore[union-attr]
    if depth >= 32:
        shape("deep_chain")


def _linkage_shapes(u: Universe, n: Func | Var, shape: Shape) -> None:
    if n.linkage > 1:
        shape("odd_linkage")
    if n.name is None:
        shape("anon_required")


def _decl_tag_shapes(u: Universe, n: DeclTag, shape: Shape) -> None:
    t = u.get(n.target)
    if n.component_idx == -1:
        shape("decl_tag_whole")
    elif isinstance(t, Composite):
        shape("decl_tag_member")
    elif isinstance(t, Func):
        shape("decl_tag_param")


_NODE_SHAPES: dict[type, Callable[[Universe, Any, Shape], None]] = {
    Int: _int_shapes, Enum: _enum_shapes, Composite: _composite_shapes, Array: _array_shapes, Fwd: _fwd_shapes,
    FuncProto: _proto_shapes, Typedef: _modifier_shapes, Qual: _modifier_shapes, TypeTag: _modifier_shapes,
    Ptr: _ptr_shapes, Func: _linkage_shapes, Var: _linkage_shapes, DeclTag: _decl_tag_shapes,
}

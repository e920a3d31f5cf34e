"""The coverage features of a universe: which kinds, shapes and names it holds (for campaign coverage)."""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Callable

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
    Node,
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
from btfspec.spec.kinds import INT_BOOL, INT_CHAR

_CHAIN_LINK = {Typedef: "typedef", Qual: "qualifier", TypeTag: "type_tag", Array: "array"}
_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")  # a C identifier (other names are "odd")


def features(u: Universe) -> set[tuple[str, str]]:
    """(category, value) pairs describing a universe: BTF kinds and notable shapes."""
    out: set[tuple[str, str]] = {("profile", u.profile)}
    shape = functools.partial(_add_shape, out)
    names: dict[tuple[str, str], int] = {}
    kernel_named: dict[str, set[type]] = {}
    for n in u.nodes:
        out.add(("kind", n.btf_kind.name))
        if n.name is not None:
            names[(type(n).__name__, n.name)] = names.get((type(n).__name__, n.name), 0) + 1
            if n.key not in u.module:
                kernel_named.setdefault(n.name, set()).add(type(n))
            if n.name == "":
                shape("empty_name_scalar" if isinstance(n, Int | Float) else "empty_name_nonzero")
            elif len(n.name) > 128:
                shape("long_name")
            elif not _IDENT_RE.match(n.name) and not isinstance(n, Int | Float | Datasec):
                shape("odd_name")
        _node_shapes(u, n, shape)
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
    return out


def _add_shape(out: set[tuple[str, str]], value: str) -> None:
    out.add(("shape", value))


def _node_shapes(u: Universe, n: Node, shape: Callable[[str], None]) -> None:
    if isinstance(n, Int):
        if not n.regular:
            shape("int_bitwidth")
        if n.size == 16:
            shape("int128")
        if n.encoding & INT_CHAR:
            shape("int_char")
        if n.encoding & INT_BOOL:
            shape("int_bool")
    elif isinstance(n, Enum):
        if n.signed:
            shape("enum_signed")
        if any(v < 0 for _, v in n.values):
            shape("enum_negative")
        vals = [v for _, v in n.values]
        if len(set(vals)) < len(vals):
            shape("enum_dup_values")
        if not n.values:
            shape("enum_empty")
    elif isinstance(n, Composite):
        if n.name is None:
            shape("anon_composite")
        if any(m.bitfield for m in n.members):
            shape("bitfield")
        for i, m in enumerate(n.members):
            t = u.get(m.type)
            if m.name is None:
                shape("anon_member")
            if isinstance(t, Composite):
                shape("embedded_composite")
            if isinstance(t, Array) and t.nelems == 0 and i == len(n.members) - 1 and not n.union:
                shape("flexible_array")
            if isinstance(t, Ptr) and strip_modifiers(u, t.target) == n.key:
                shape("list_head_cycle" if n.name == "list_head" else "ptr_cycle")
            if in_modifier_cycle(u, m.type):
                shape("mod_cycle_member")
    elif isinstance(n, Array):
        if n.nelems == 0:
            shape("zero_len_array")
        if isinstance(u.get(n.elem), Array):
            shape("multidim_array")
    elif isinstance(n, Fwd):
        shape("fwd_union" if n.union else "fwd_struct")
    elif isinstance(n, FuncProto):
        if n.variadic:
            shape("variadic")
        if not n.params and not n.variadic:
            shape("void_params")
        if n.ret is None:
            shape("void_return")
    elif isinstance(n, Typedef | Qual | TypeTag):
        t = u.get(n.target)
        if isinstance(n, Typedef) and isinstance(t, Typedef):
            shape("typedef_chain")
        if isinstance(n, Qual) and isinstance(t, Qual):
            shape("qual_chain")
        if in_modifier_cycle(u, n.key):
            shape("mod_cycle")
    elif isinstance(n, Ptr):
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
    elif isinstance(n, Func | Var):
        if n.linkage > 1:
            shape("odd_linkage")
        if n.name is None:
            shape("anon_required")
    elif isinstance(n, DeclTag):
        t = u.get(n.target)
        if n.component_idx == -1:
            shape("decl_tag_whole")
        elif isinstance(t, Composite):
            shape("decl_tag_member")
        elif isinstance(t, Func):
            shape("decl_tag_param")

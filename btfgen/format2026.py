"""Blobs in the format the 2026 toolchain writes: layout sections, kinds only a layout describes, wide
vlen, name-sorted splits (resolve_btfids' distill-then-sort) and splits of splits.

Kept apart from the type-universe generators: these functions take finished :class:`Btf` objects (or
a :class:`Builder`) and reshape them the way libbpf master and resolve_btfids do.

* :data:`LIBBPF_LAYOUT` is libbpf's ``layouts[NR_BTF_KINDS]`` table (what ``btf__new_empty_opts``
  with ``add_layout`` writes), derived from the grammar's record sizes.
* :func:`sort_by_name` is resolve_btfids' ``sort_btf_by_name``: ``qsort_r`` with ``cmp_type_names``
  (``strcmp`` of the names, ties in original id order, so anonymous types come first) followed by
  ``btf__permute``, which moves the records and rewrites every type-id field pointing into the split.
* :func:`is_name_sorted` is the sortedness check libbpf's and the kernel's ``btf_check_sorted`` make
  (adjacent names never descend).
"""

from __future__ import annotations

from collections.abc import Sequence

from btfspec.spec.builder import Builder
from btfspec.spec.fastpath import KindLayoutEntries, layouts
from btfspec.spec.kinds import INFO_WIDE, KIND_MAX, InfoLayout, make_info
from btfspec.spec.model import Btf, BtfType, map_ids, type_class

# libbpf's layouts[]: (info_sz, elem_sz, flags) per kind 0 .. BTF_KIND_MAX, from the grammar.
LIBBPF_LAYOUT: KindLayoutEntries = tuple(
    (4 * layouts()[k].fixed_words, 4 * layouts()[k].elem_words, 0) if k in layouts() else (0, 0, 0)
    for k in range(KIND_MAX + 1))


def layout_with(extra: dict[int, tuple[int, int, int]] | None = None,
                base: KindLayoutEntries = LIBBPF_LAYOUT) -> KindLayoutEntries:
    """``base`` extended (zero entries fill any gap) and overridden by ``extra`` {kind: entry}."""
    entries = list(base)
    for kind, entry in sorted((extra or {}).items()):
        while len(entries) <= kind:
            entries.append((0, 0, 0))
        entries[kind] = entry
    return tuple(entries)


def add_unknown(b: Builder, kind: int, name: str | None, *, fixed: Sequence[int] = (),
                elems: Sequence[Sequence[int]] = (), size_type: int = 0, kflag: int = 0,
                info: InfoLayout = INFO_WIDE) -> int:
    """Append a record of a kind the grammar does not know (sized only by a layout section).

    ``fixed`` are its ``info_sz / 4`` words, ``elems`` its ``vlen`` elements of ``elem_sz / 4`` words.
    """
    word = make_info(kind, len(elems), kflag, info)
    t = type_class(info)(b.str(name), word, size_type, tuple(fixed), [tuple(e) for e in elems])
    return b.btf.add_type(t)


def wide_struct(b: Builder, name: str, member_type: int, count: int) -> int:
    """A STRUCT with ``count`` members (more than 0xffff needs the wide info layout to mean it)."""
    elems = [(0, member_type, 32 * i) for i in range(count)]
    word = make_info(4, count, 0, INFO_WIDE)
    return b.btf.add_type(type_class(INFO_WIDE)(b.str(name), word, 4 * count, (), elems))


def name_order(split: Btf) -> list[int]:
    """resolve_btfids' order of the split's own ids: by name bytes (``strcmp``), ties by original id."""
    def key(tid: int) -> tuple[bytes, int]:
        s = split.str_at(split.type(tid).name_off)
        return (s if s is not None else b"", tid)

    return sorted(range(split.start_id, split.type_cnt), key=key)


def permute(split: Btf, order: Sequence[int]) -> tuple[Btf, dict[int, int]]:
    """``btf__permute``: the own types placed in ``order`` (old ids), every id field into the split
    rewritten; returns the new object (same base, strings and layout section) and {old id: new id}."""
    start = split.start_id
    if sorted(order) != list(range(start, split.type_cnt)):
        raise ValueError("order must list every own type id exactly once")
    new_id = {old: start + i for i, old in enumerate(order)}
    out = Btf(base=split.base, order=split.order, strings=split.strings, info=split.info,
              start_str_off=split.start_str_off, kind_layout=split.kind_layout)
    out.sizing_layout = split.sizing_layout
    for old in order:
        t: BtfType = split.type(old).copy()
        map_ids(t, lambda v: new_id.get(v, v) if v >= start else v)
        out.add_type(t)
    return out, new_id


def sort_by_name(split: Btf) -> tuple[Btf, dict[int, int]]:
    """resolve_btfids ``sort_btf_by_name``: :func:`permute` in :func:`name_order`."""
    return permute(split, name_order(split))


def is_name_sorted(btf: Btf) -> bool:
    """``btf_check_sorted``'s condition on the own types: no adjacent pair whose names descend."""
    names = [btf.str_at(t.name_off) or b"" for _, t in btf.own_types()]
    return all(a <= b for a, b in zip(names, names[1:], strict=False))


__all__ = ["LIBBPF_LAYOUT", "add_unknown", "is_name_sorted", "layout_with", "name_order", "permute",
           "sort_by_name", "wide_struct"]

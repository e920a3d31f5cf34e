"""Reordering a BTF's own types: ``btf__permute`` and resolve_btfids' name sort.

* :func:`sort_by_name` is resolve_btfids' ``sort_btf_by_name``: ``qsort_r`` with ``cmp_type_names``
  (``strcmp`` of the names, ties in original id order, so anonymous types come first) followed by
  ``btf__permute``, which moves the records and rewrites every type-id field pointing into the split
  (strings and the layout section stay as they are).
* :func:`is_name_sorted` is the condition libbpf's and the kernel's ``btf_check_sorted`` test
  (adjacent names never descend, by ``strcmp``).
* :func:`sort_split_blob` is resolve_btfids' ``finalize_btf`` tail: the split (after distill) sorted.
"""

from __future__ import annotations

from collections.abc import Sequence

from btfspec.spec.model import Btf, BtfType, map_ids


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


def sort_split_bytes(split: bytes, base: bytes) -> tuple[bytes, dict[int, int]]:
    """Raw ``split`` (on raw ``base``) name-sorted, written back with the split's own header length,
    and {old id: new id} of its own types (what ``.BTF_ids`` must follow)."""
    b = Btf.from_bytes(base, use_layout=True)
    s = Btf.from_bytes(split, b, use_layout=True)
    out, new_id = sort_by_name(s)
    return out.to_bytes(hdr_len=s.header.hdr_len), new_id


def sort_split_blob(split: bytes, base: bytes) -> bytes:
    """Raw ``split`` (on raw ``base``) name-sorted: :func:`sort_split_bytes` without the id map."""
    return sort_split_bytes(split, base)[0]


__all__ = ["is_name_sorted", "name_order", "permute", "sort_by_name", "sort_split_blob", "sort_split_bytes"]

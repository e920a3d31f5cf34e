"""Blobs in the format the 2026 toolchain writes: layout sections, kinds only a layout describes, wide
vlen, name-sorted splits (resolve_btfids' distill-then-sort) and splits of splits.

Kept apart from the type-universe generators: these functions take finished :class:`Btf` objects (or
a :class:`Builder`) and reshape them the way libbpf master and resolve_btfids do.

* :data:`LIBBPF_LAYOUT` is libbpf's ``layouts[NR_BTF_KINDS]`` table (what ``btf__new_empty_opts``
  with ``add_layout`` writes), derived from the grammar's record sizes.
Name-sorting (resolve_btfids ``sort_btf_by_name`` + ``btf__permute``) lives in
:mod:`btfspec.spec.permute`; :func:`sorted_split_case` applies it after a distill, as resolve_btfids does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from btfspec.btfgen.encoder import Case
from btfspec.spec.builder import Builder
from btfspec.spec.fastpath import KindLayoutEntries, layouts
from btfspec.spec.kinds import INFO_WIDE, KIND_MAX, InfoLayout, make_info
from btfspec.spec.model import Btf, type_class
from btfspec.spec.permute import sort_split_blob

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


# --------------------------------------------------------------------------------------------------
# whole cases
# --------------------------------------------------------------------------------------------------

def with_layout_section(blob: bytes, unknown: Sequence[tuple[int, int, int]] = ()) -> bytes:
    """``blob`` (standalone, classic) rewritten as libbpf master writes it: a 32-byte header and
    :data:`LIBBPF_LAYOUT`; each ``(kind, fixed words, vlen)`` in ``unknown`` appends one record of that
    kind (1-word elements) described only by an added layout entry."""
    btf = Btf.from_bytes(blob)
    b = Builder(order=btf.order)
    b.btf = btf
    extra = {}
    for n, (kind, fixed, vlen) in enumerate(unknown):
        add_unknown(b, kind, f"unknown_kind_{kind}_{n}", fixed=tuple(range(fixed)),
                    elems=[(i,) for i in range(vlen)])
        extra[kind] = (4 * fixed, 4, 0)
    btf.set_kind_layout(layout_with(extra))
    return btf.to_bytes(hdr_len=32)


@st.composite
def layout_blobs(draw: Any, seeds: st.SearchStrategy[bytes] | None = None) -> bytes:
    """Standalone blobs with a layout section and 0-3 records of kinds 20..127 only it describes."""
    from btfspec.btfgen.mutate import valid_btfs

    seed = draw(seeds if seeds is not None else valid_btfs().map(lambda x: x[1]))
    unknown = draw(st.lists(st.tuples(st.integers(KIND_MAX + 1, INFO_WIDE.kind_mask), st.integers(0, 3),
                                      st.integers(0, 4)), max_size=3, unique_by=lambda u: u[0]))
    return with_layout_section(seed, unknown)


@dataclass(frozen=True)
class SortedCase:
    """A module as the 2026 kernel build leaves it: distilled, then its split sorted by name."""

    base: bytes  # the full base it was built against
    distilled_base: bytes
    split: bytes  # distilled split, as distill wrote it
    sorted_split: bytes  # the same, name-sorted (resolve_btfids)
    pair: Case | None = field(default=None, repr=False, compare=False)  # the generated pair, when it was one


def sorted_split_case(base: bytes, split: bytes, pair: Case | None = None) -> SortedCase | None:
    """Distill (the Python reference) then sort, as resolve_btfids ``finalize_btf``; None if distill fails.
    ``pair``: the generated base/split pair ``base`` and ``split`` are (what a reduction works on)."""
    from btfspec.oracle.impls.reference import distill

    res = distill(split, base)
    if res.rc or res.base is None or res.split is None:
        return None
    return SortedCase(base, res.base, res.split, sort_split_blob(res.split, res.base), pair)


def third_level(l0: bytes, l1: bytes, names: Sequence[str] = ("level2_t",)) -> bytes:
    """A split on the split ``l1`` (on ``l0``): one TYPEDEF per name, to l1's last type, written as libbpf's
    ``btf__new_empty_split`` writes it (strings after both bases': ``start_str_off`` cumulative)."""
    b0 = Btf.from_bytes(l0)
    b1 = Btf.from_bytes(l1, b0)
    b = Builder(b1)
    for name in names:
        b.typedef(name, b1.type_cnt - 1)
    return b.btf.to_bytes()


__all__ = ["LIBBPF_LAYOUT", "SortedCase", "add_unknown", "layout_blobs", "layout_with", "sorted_split_case",
           "third_level", "wide_struct", "with_layout_section"]

"""BTF kind numbers, names and bit layout of the ``info`` word.

Two layouts of ``info``: the classic UAPI (libbpf v1.6, kernels up to 7.1: 5-bit kind in bits 24-28,
16-bit vlen) and the wide one of libbpf 9801e029 (2026-04, ``BTF_INFO_KIND`` mask 0x7f: 7-bit kind in
bits 24-30, 24-bit vlen); :class:`InfoLayout` names them, the ``info_*`` helpers default to the classic.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Kind(enum.IntEnum):
    """The 19 BTF kinds (``BTF_KIND_*``); 0 is the invalid ``UNKN``."""

    UNKN = 0
    INT = 1
    PTR = 2
    ARRAY = 3
    STRUCT = 4
    UNION = 5
    ENUM = 6
    FWD = 7
    TYPEDEF = 8
    VOLATILE = 9
    CONST = 10
    RESTRICT = 11
    FUNC = 12
    FUNC_PROTO = 13
    VAR = 14
    DATASEC = 15
    FLOAT = 16
    DECL_TAG = 17
    TYPE_TAG = 18
    ENUM64 = 19


KIND_MAX = 19
BTF_MAGIC = 0xEB9F
HDR_LEN = 24  # classic header (libbpf v1.6 writes this)
HDR_LEN_LAYOUT = 32  # header with layout_off/layout_len (libbpf master, 2026 kernels)
LAYOUT_ENTRY_SIZE = 4  # struct btf_layout {u8 info_sz; u8 elem_sz; u16 flags}
BTF_MAX_NAME_OFFSET = 0xFFFFFF
BTF_MAX_TYPE = 0xFFFFF

# Kinds whose size_or_type field is a type id.
REF_KINDS = frozenset(
    {Kind.PTR, Kind.TYPEDEF, Kind.VOLATILE, Kind.CONST, Kind.RESTRICT, Kind.FUNC,
     Kind.VAR, Kind.DECL_TAG, Kind.TYPE_TAG, Kind.FWD}
)
MODIFIER_KINDS = frozenset({Kind.VOLATILE, Kind.CONST, Kind.RESTRICT, Kind.TYPEDEF, Kind.TYPE_TAG})
COMPOSITE_KINDS = frozenset({Kind.STRUCT, Kind.UNION})

INT_SIGNED = 1
INT_CHAR = 2
INT_BOOL = 4

LINKAGE_NAMES = {0: "static", 1: "global", 2: "extern"}


@dataclass(frozen=True)
class InfoLayout:
    """How ``info`` splits into kind and vlen: ``kind = (info >> 24) & kind_mask``, ``vlen = info & vlen_mask``."""

    name: str
    kind_mask: int
    vlen_mask: int

    @property
    def kinds(self) -> int:
        """Number of representable kind values (the size of per-kind tables)."""
        return self.kind_mask + 1


INFO_CLASSIC = InfoLayout("classic", 0x1F, 0xFFFF)  # libbpf v1.6, kernel <= 7.1 (BTF_INFO_MASK 0x9f00ffff)
INFO_WIDE = InfoLayout("wide", 0x7F, 0xFFFFFF)  # libbpf 9801e029: BTF_INFO_KIND 0x7f, BTF_INFO_VLEN 0xffffff


def info_kind(info: int, layout: InfoLayout = INFO_CLASSIC) -> int:
    """Kind bits of ``info`` (24-28 classic, as libbpf v1.6 reads them; 24-30 wide)."""
    return (info >> 24) & layout.kind_mask


def info_vlen(info: int, layout: InfoLayout = INFO_CLASSIC) -> int:
    """vlen bits of ``info`` (0-15 classic, 0-23 wide)."""
    return info & layout.vlen_mask


def info_kflag(info: int) -> int:
    """kind_flag bit 31 of ``info``."""
    return info >> 31


def make_info(kind: int, vlen: int = 0, kflag: int = 0, layout: InfoLayout = INFO_CLASSIC) -> int:
    """Compose an ``info`` word (fields cut to the layout's widths)."""
    return ((kflag & 1) << 31) | ((kind & layout.kind_mask) << 24) | (vlen & layout.vlen_mask)


def kind_name(kind: int) -> str:
    """Upper-case kind name as bpftool prints it, ``UNKN`` for unknown values."""
    try:
        return Kind(kind).name
    except ValueError:
        return "UNKN"

"""BTF kind numbers, names and bit layout of the ``info`` word (classic UAPI, libbpf v1.6)."""

from __future__ import annotations

import enum


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


def info_kind(info: int) -> int:
    """Kind bits 24-28 of ``info`` (libbpf v1.6 reads 5 bits)."""
    return (info >> 24) & 0x1F


def info_vlen(info: int) -> int:
    """vlen bits 0-15 of ``info``."""
    return info & 0xFFFF


def info_kflag(info: int) -> int:
    """kind_flag bit 31 of ``info``."""
    return info >> 31


def make_info(kind: int, vlen: int = 0, kflag: int = 0) -> int:
    """Compose an ``info`` word."""
    return ((kflag & 1) << 31) | ((kind & 0x1F) << 24) | (vlen & 0xFFFF)


def kind_name(kind: int) -> str:
    """Upper-case kind name as bpftool prints it, ``UNKN`` for unknown values."""
    try:
        return Kind(kind).name
    except ValueError:
        return "UNKN"

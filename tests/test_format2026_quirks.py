"""Q19-Q22: what libbpf v1.6 (the pylibbpf shared object) does with the 2026 format, measured, and the
``libbpf1.6`` rule set agreeing with it (the ``libbpf-2026`` rules are where the two differ)."""

from __future__ import annotations

import ctypes

import pytest

from btfspec.btfgen.format2026 import LIBBPF_LAYOUT, wide_struct
from btfspec.oracle.impls.quirks import QUIRKS
from btfspec.oracle.impls.reference import distill
from btfspec.spec.builder import Builder
from btfspec.spec.fastpath import NATIVE
from btfspec.spec.kinds import INFO_WIDE, INT_SIGNED, Kind, make_info
from btfspec.spec.model import Btf
from btfspec.spec.validate import validate
from tests.helpers import need_libbpf
from tests.test_format2026 import native_small, small, three_levels
from tests.test_format2026_gen import sample_pair

EINVAL, ENOTSUP = -22, -95


@pytest.fixture(scope="module")
def lib():  # type: ignore[no-untyped-def]
    return need_libbpf()


def test_catalogue_has_the_2026_entries() -> None:
    assert {"Q19", "Q20", "Q21", "Q22"} <= set(QUIRKS)


def test_q19_layout_section(lib) -> None:  # type: ignore[no-untyped-def]
    blob = native_small()
    ok, err, type_cnt, _ = lib.parse(blob)
    assert (ok, err, type_cnt) == (True, 0, 3) and validate(blob, None, "libbpf1.6") == []
    foreign = small("big" if NATIVE == "little" else "little").to_bytes()
    ok, err, _, log = lib.parse(foreign)
    assert (ok, err) == (False, ENOTSUP) and "unsupported header length 32" in log
    assert validate(foreign, None, "libbpf1.6")[0].errno == ENOTSUP
    base, split = sample_pair()
    b32, s32 = Btf.from_bytes(base), Btf.from_bytes(split, Btf.from_bytes(base))
    b32.set_kind_layout(LIBBPF_LAYOUT)
    s32.set_kind_layout(LIBBPF_LAYOUT)
    rc, new_base, new_split, _ = lib.distill(s32.to_bytes(), b32.to_bytes())
    assert rc == 0 and new_base[4] == 24 == new_split[4]  # 24-byte headers, no layout section
    assert (new_base, new_split) == lib.distill(split, base)[1:3]
    py = distill(s32.to_bytes(), b32.to_bytes())
    assert (py.base, py.split) == (new_base, new_split)


def test_q20_kinds_only_the_layout_describes(lib) -> None:  # type: ignore[no-untyped-def]
    blob = native_small(unknown=True)
    ok, err, _, log = lib.parse(blob)
    assert (ok, err) == (False, EINVAL) and "Unsupported BTF_KIND:20" in log
    assert [v.rule for v in validate(blob, None, "libbpf1.6")] == ["type.kind"]
    assert validate(blob, None, "libbpf-2026") == []


def test_q21_wide_kind_and_vlen(lib) -> None:  # type: ignore[no-untyped-def]
    c = Builder(order=NATIVE)
    c.int("int", 4, INT_SIGNED)
    c.add(Kind.INT, c.str("odd"), 4, fixed=(32,), info=make_info(33, 0, 0, INFO_WIDE))
    odd = c.btf.to_bytes()
    assert lib.parse(odd)[:3] == (True, 0, 3)  # kind 33 read as 33 & 0x1f = INT
    assert validate(odd, None, "libbpf1.6") == []
    b = Builder(order=NATIVE)
    b.int("int", 4, INT_SIGNED)
    wide_struct(b, "big", 1, 0x10001)
    wide = b.btf.to_bytes()
    ok, err, _, log = lib.parse(wide)
    assert (ok, err) == (False, EINVAL) and "Unsupported BTF_KIND:0" in log  # vlen read as 1
    assert validate(wide, None, "libbpf1.6")[0].rule == "type.kind"
    assert validate(wide, None, "libbpf-2026") == []


def _chain(lib, *blobs: bytes) -> tuple[list[int], str]:  # type: ignore[no-untyped-def]
    """btf__new the first blob, btf__new_split each next one on the previous (caller frees)."""
    L = lib._lib
    ptrs: list[int] = []
    lib._take_log()
    for i, blob in enumerate(blobs):
        ctypes.set_errno(0)
        p = L.btf__new(blob, len(blob)) if i == 0 else L.btf__new_split(blob, len(blob), ptrs[-1])
        if not p:
            break
        ptrs.append(p)
    return ptrs, lib._take_log()


def _free(lib, ptrs: list[int]) -> None:  # type: ignore[no-untyped-def]
    for p in reversed(ptrs):
        lib._lib.btf__free(p)


def test_q22_split_of_split_strings(lib) -> None:  # type: ignore[no-untyped-def]
    L = lib._lib
    L.btf__str_by_offset.restype = ctypes.c_char_p
    L.btf__str_by_offset.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
    l0, l1, blob = three_levels()
    off = Btf.from_bytes(blob, l1).type(3).name_off
    ptrs, _ = _chain(lib, l0.to_bytes(), l1.to_bytes(), blob)
    try:
        assert len(ptrs) == 3
        assert L.btf__str_by_offset(ptrs[2], off) == b"2_name"  # written as 'level2_name'
        new_base, new_split = ctypes.c_void_p(), ctypes.c_void_p()
        assert L.btf__distill_base(ptrs[2], ctypes.byref(new_base), ctypes.byref(new_split)) == 0
        try:
            db = Btf.from_bytes(lib._raw(new_base.value))
            ds = Btf.from_bytes(lib._raw(new_split.value), db)
            assert [ds.name(t) for _, t in ds.own_types()] == ["2_name", "level1_t"]  # the misread name
        finally:
            L.btf__free(new_split.value)
            L.btf__free(new_base.value)
    finally:
        _free(lib, ptrs)
    # the libbpf1.6 rules read it the same way; libbpf-2026 (v1.7's rule) reads the written name
    assert validate(blob, l1, "libbpf1.6") == [] == validate(blob, l1, "libbpf-2026")
    _, l1_long, long_blob = three_levels("a_long_name_for_int_on_level_0")
    l0_long = l1_long.base
    assert l0_long is not None
    ptrs, log = _chain(lib, l0_long.to_bytes(), l1_long.to_bytes(), long_blob)
    _free(lib, ptrs)
    assert len(ptrs) == 2 and "invalid type name (string offset 41)" in log
    assert [v.rule for v in validate(long_blob, l1_long, "libbpf1.6")] == ["name.offset"]


def test_python_strict_takes_a_kernel_valid_layout_section_as_format_not_q18() -> None:
    """python-strict's Q18 (lenient header, gaps) is about what the kernel rejects: a 32-byte header whose
    layout section sits between types and strings is valid under kernel-7.1, so it is not flagged; a
    misplaced section (a real gap) still is."""
    base, split = sample_pair()
    b32, s32 = Btf.from_bytes(base), Btf.from_bytes(split, Btf.from_bytes(base))
    b32.set_kind_layout(LIBBPF_LAYOUT)
    s32.set_kind_layout(LIBBPF_LAYOUT)
    base32, split32 = b32.to_bytes(), s32.to_bytes()
    rules = [v.rule for v in validate(base32, None, "kernel-7.1")]
    assert rules == [v.rule for v in validate(base, None, "kernel-7.1")]  # the section adds no violation
    strict = distill(split32, base32, strict=True)
    assert strict.ok and "Q18" not in strict.quirks, strict.log
    gap = bytearray(base32)
    gap[28:32] = (int.from_bytes(gap[28:32], "little" if NATIVE == "little" else "big") - 4).to_bytes(
        4, "little" if NATIVE == "little" else "big")  # layout_len 4 short: 4 bytes of gap before the strings
    flagged = distill(split32, bytes(gap), strict=True)
    assert "Q18" in flagged.quirks or not flagged.ok

"""Kernel acceptance backend (btfspec.oracle.impls.kernel): bpf(BPF_BTF_LOAD) on standalone BTF."""

from __future__ import annotations

import struct

import pytest

from btfspec.oracle.impls import kernel
from tests.helpers import appendix_hex, host_vmlinux, need_kernel_load

# Appendix A: distilled_base_multi.base_in = [1] INT 'int' size 4, [2] INT 'int' size 8
MULTI_BASE = appendix_hex("distilled_base_multi", "base_in")
# Appendix A: distilled_base_multi.split_in (a split: its strings do not start with NUL)
MULTI_SPLIT = appendix_hex("distilled_base_multi", "split_in")
# Appendix A: distilled_base.dist_base (a non-empty distilled base: sized 0-member structs/enums)
DIST_BASE = appendix_hex("distilled_base", "dist_base")
EMPTY = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, 0, 0, 1) + b"\0"


@pytest.fixture(autouse=True)
def _needs_kernel() -> None:
    need_kernel_load()


def test_small_valid_btf_is_accepted() -> None:
    out = kernel.kernel_load(MULTI_BASE)
    assert (out.status, out.errno, out.impl) == ("ok", 0, "kernel")
    assert kernel.kernel_load(DIST_BASE).ok


def test_empty_btf_is_rejected() -> None:
    out = kernel.kernel_load(EMPTY)
    assert (out.status, out.errno) == ("error", -22)
    assert out.log.strip().splitlines()[-1] == "No type found"
    assert out.describe() == "error -EINVAL (22): No type found"


def test_split_alone_is_rejected() -> None:
    out = kernel.kernel_load(MULTI_SPLIT)
    assert (out.status, out.errno) == ("error", -22)
    assert "Invalid string section" in out.log


@pytest.mark.parametrize("blob", [b"", b"garbage", b"\x9f\xeb\x01\x00" + b"\xff" * 20])
def test_garbage_is_an_error_outcome(blob: bytes) -> None:
    out = kernel.kernel_load(blob)
    assert out.status == "error" and out.errno < 0
    assert out.log.strip()


def test_trailing_bytes_are_rejected() -> None:  # libbpf accepts them (Q18), the kernel does not
    out = kernel.kernel_load(MULTI_BASE + b"\0\0\0\0")
    assert (out.status, out.errno) == ("error", -22)
    assert "Unsupported section found" in out.log


def test_vmlinux_btf_is_accepted() -> None:
    assert kernel.kernel_load(host_vmlinux()).ok

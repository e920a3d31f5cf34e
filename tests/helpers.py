"""Helpers shared by the test modules: the optional oracles, the reference notes' data (Appendix A, §5's
VALIDATE_RAW_BTF strings), a legacy-LZ4 encoder."""

from __future__ import annotations

import json
import struct
import sys
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from btfspec.spec.sources import HOST_VMLINUX, LZ4_LEGACY_BLOCK, LZ4_LEGACY_MAGIC

DATA = Path(__file__).resolve().parent / "data"


def reference_server() -> str:
    """The ``--serve-cmd`` of the persistent protocol's reference server (skips where there is none)."""
    import importlib.util

    if importlib.util.find_spec("btfspec.oracle.impls.serve_reference") is None:
        pytest.skip("this tree has no serve implementation (btfspec.oracle.impls.serve_reference)")
    return f"{sys.executable} -m btfspec.oracle.impls.serve_reference"


# A seeded bug for --impl cmd: a "distill" that hands back its inputs unchanged.
WRONG_DISTILL_CMD = (f"{sys.executable} -c \"import shutil, sys; shutil.copy(sys.argv[1], sys.argv[4]); "
                     f"shutil.copy(sys.argv[2], sys.argv[3])\" {{split}} {{base}} {{out_base}} {{out_split}}")


# --------------------------------------------------------------------------------------------------
# oracles (a test that needs one is skipped, saying why, where it cannot run)
# --------------------------------------------------------------------------------------------------

def optional_libbpf() -> Any:
    """The in-process libbpf v1.6 (:class:`btfspec.oracle.impls.libbpf.LibBpf`), or None when it cannot be loaded."""
    from btfspec.oracle.impls import libbpf

    return None if libbpf.unavailable_reason() else libbpf.get_libbpf()


def need_libbpf() -> Any:
    """The in-process libbpf v1.6; skips the test when it cannot be loaded."""
    from btfspec.oracle.impls import libbpf

    reason = libbpf.unavailable_reason()
    if reason:
        pytest.skip(f"libbpf v1.6 unavailable: {reason}")
    return libbpf.get_libbpf()


def need_kernel_load() -> Callable[[bytes], Any]:
    """``btfspec.oracle.impls.kernel.kernel_load`` (``BPF_BTF_LOAD``); skips the test when it cannot be used."""
    from btfspec.oracle.impls import kernel

    reason = kernel.unavailable_reason()
    if reason:
        pytest.skip(f"BPF_BTF_LOAD unavailable: {reason}")
    return kernel.kernel_load


def open_impls(*names: str) -> Iterator[dict[str, Any]]:
    """For a module-scoped fixture: the implementations among ``names`` usable here (name -> adapter),
    closed afterwards; :func:`need_impls` skips a test that needs one that is missing."""
    from btfspec.oracle.impls.adapter import ImplUnavailable, close_impls, make_impl

    got: dict[str, Any] = {}
    for name in names:
        try:
            got[name] = make_impl(name, timeout=5.0)
        except ImplUnavailable:
            pass
    yield got
    close_impls(got.values())


def need_impls(impls: dict[str, Any], *names: str) -> None:
    """Skip the test unless every implementation of ``names`` is in ``impls`` (from :func:`open_impls`)."""
    from btfspec.oracle.impls.adapter import available

    for n in names:
        if n not in impls:
            pytest.skip(f"{n} unavailable here: {available().get(n, 'not opened')}")


def host_vmlinux() -> bytes:
    """The running kernel's vmlinux BTF; skips the test when it cannot be read."""
    try:
        with open(HOST_VMLINUX, "rb") as f:
            return f.read()
    except OSError as exc:
        pytest.skip(f"no host vmlinux BTF: {exc}")


# --------------------------------------------------------------------------------------------------
# test data
# --------------------------------------------------------------------------------------------------

@cache
def appendix_a() -> dict[str, dict[str, str | int]]:
    """distill-relocate-behaviour.md Appendix A: case -> key -> hex (or return code); A.1 with the two
    relocation outputs of A.2 substituted (see ``tests/data/appendix_a.json``)."""
    return json.loads((DATA / "appendix_a.json").read_text())["cases"]


def appendix_hex(case: str, key: str) -> bytes:
    """The bytes of one Appendix A value."""
    value = appendix_a()[case][key]
    assert isinstance(value, str), (case, key)
    return bytes.fromhex(value)


def raw_btf_text(case: str) -> dict[str, list[str]]:
    """distill-relocate-behaviour.md §5's ``VALIDATE_RAW_BTF`` strings of one case (key -> lines)."""
    return json.loads((DATA / "raw_btf_text.json").read_text())["cases"][case]


def lz4_legacy(data: bytes, block: int = LZ4_LEGACY_BLOCK) -> bytes:
    """Encode ``data`` in the legacy LZ4 format (as ``lz4 -l`` does)."""
    import lz4.block

    out = [LZ4_LEGACY_MAGIC]
    for pos in range(0, len(data), block):
        comp = lz4.block.compress(data[pos:pos + block], store_size=False)
        out.append(struct.pack("<I", len(comp)) + comp)
    return b"".join(out)

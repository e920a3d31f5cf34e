"""The reference keeps its parses of standalone blobs between calls: the same answers as parsing every call."""

from __future__ import annotations

import pytest

from btfspec.oracle.impls import reference
from btfspec.spec.builder import Builder
from btfspec.spec.kinds import INT_SIGNED


def pair_with(n_structs: int) -> tuple[bytes, bytes]:
    """A base of ``n_structs`` structs and a split embedding one and pointing at another."""
    b = Builder()
    int_id = b.int("int", 4, INT_SIGNED)
    ids = [b.struct(f"kernel_struct_{i}", 4, [("field", int_id, 0, 0)]) for i in range(n_structs)]
    s = Builder(b.btf)
    s.struct("module_obj", 16, [("a", s.ptr(ids[-1]), 0, 0), ("b", ids[0], 64, 0)])
    return b.to_bytes(), s.to_bytes()


@pytest.fixture(scope="module", params=[4000, 3], ids=["kernel-sized", "fuzz-sized"])
def pair(request: pytest.FixtureRequest) -> tuple[bytes, bytes]:
    base, split = pair_with(request.param)
    assert (len(base) >= reference.LARGE_BLOB) == (request.param > 3)
    return base, split


def kept(blob: bytes):  # type: ignore[no-untyped-def]
    return reference._kept_large if len(blob) >= reference.LARGE_BLOB else reference._kept_small


def test_a_kept_parse_gives_the_answers_of_a_fresh_one(pair: tuple[bytes, bytes]) -> None:
    base, split = pair
    reference.forget_kept_parses()
    cold = reference.distill(split, base)
    assert cold.ok
    hits = kept(base).cache_info().hits
    for _ in range(2):  # the kept parses serve both operations, in both modes, and stay intact
        warm = reference.distill(split, base)
        assert (warm.rc, warm.base, warm.split, warm.log) == (cold.rc, cold.base, cold.split, cold.log)
        rel = reference.relocate(warm.split, warm.base, base)
        strict = reference.relocate(warm.split, warm.base, base, strict=True)
        assert rel.ok and (strict.rc, strict.split) == (rel.rc, rel.split)
    assert kept(base).cache_info().hits >= hits + 6
    reference.forget_kept_parses()
    again = reference.relocate(warm.split, warm.base, base)
    assert (again.rc, again.split, again.log) == (rel.rc, rel.split, rel.log)


def test_an_equal_copy_of_the_base_finds_the_kept_parse(pair: tuple[bytes, bytes]) -> None:
    base, split = pair
    reference.forget_kept_parses()
    reference.distill(split, base)
    misses = kept(base).cache_info().misses
    reference.distill(split, bytes(bytearray(base)))
    assert kept(base).cache_info().misses == misses


def test_a_rejected_blob_is_rejected_again_with_its_log() -> None:
    base, split = pair_with(3)
    broken = base[:-1]  # the string section loses its final NUL
    first, second = reference.distill(split, broken), reference.distill(split, broken)
    assert first.rc < 0 and (second.rc, second.log) == (first.rc, first.log)

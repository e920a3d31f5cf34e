"""The reference keeps its parse of a large base between calls: same answers as parsing it every call."""

from __future__ import annotations

import pytest

from btfspec.oracle.impls import reference
from btfspec.spec.builder import Builder
from btfspec.spec.kinds import INT_SIGNED


def kernel_sized_pair() -> tuple[bytes, bytes]:
    """A base past SHARED_PARSE_MIN (thousands of structs) and a small split using a few of them."""
    b = Builder()
    int_id = b.int("int", 4, INT_SIGNED)
    ids = [b.struct(f"kernel_struct_{i}", 4, [("field", int_id, 0, 0)]) for i in range(4000)]
    base = b.to_bytes()
    s = Builder(b.btf)
    s.struct("module_obj", 16, [("a", s.ptr(ids[7]), 0, 0), ("b", ids[11], 64, 0)])
    return base, s.to_bytes()


@pytest.fixture(scope="module")
def pair() -> tuple[bytes, bytes]:
    base, split = kernel_sized_pair()
    assert len(base) >= reference.SHARED_PARSE_MIN
    return base, split


def test_base_is_parsed_once_and_answers_do_not_change(pair: tuple[bytes, bytes]) -> None:
    base, split = pair
    reference.forget_shared_parses()
    cold = reference.distill(split, base)
    assert cold.ok
    assert reference._parse_shared.cache_info().currsize == 1
    hits = reference._parse_shared.cache_info().hits
    for _ in range(2):  # the kept parse serves both operations, in both modes, and stays intact
        warm = reference.distill(split, base)
        assert (warm.rc, warm.base, warm.split, warm.log) == (cold.rc, cold.base, cold.split, cold.log)
        rel = reference.relocate(warm.split, warm.base, base)
        strict = reference.relocate(warm.split, warm.base, base, strict=True)
        assert rel.ok and (strict.rc, strict.split) == (rel.rc, rel.split)
    assert reference._parse_shared.cache_info().hits >= hits + 6
    reference.forget_shared_parses()
    again = reference.relocate(warm.split, warm.base, base)
    assert (again.rc, again.split) == (rel.rc, rel.split)


def test_an_equal_copy_of_the_base_finds_the_kept_parse(pair: tuple[bytes, bytes]) -> None:
    base, split = pair
    reference.forget_shared_parses()
    reference.distill(split, base)
    misses = reference._parse_shared.cache_info().misses
    reference.distill(split, bytes(bytearray(base)))
    assert reference._parse_shared.cache_info().misses == misses


def test_small_blobs_are_not_kept() -> None:
    b = Builder()
    b.int("int", 4, INT_SIGNED)
    reference.forget_shared_parses()
    reference.distill(Builder(b.btf).to_bytes(), b.to_bytes())
    assert reference._parse_shared.cache_info().currsize == 0

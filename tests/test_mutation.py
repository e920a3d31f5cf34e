"""btfspec.btfgen.mutate: hundreds of mutated blobs; the validator never raises and agrees with libbpf v1.6 and
the running kernel on every one of them."""

from __future__ import annotations

import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from btfspec.btfgen.mutate import FIELD_MUTATIONS, mutated_blobs, valid_btfs
from btfspec.oracle.fuzz.robustness import split_seeds
from btfspec.spec.errors import BtfError
from btfspec.spec.model import Btf
from btfspec.spec.validate import validate
from tests.helpers import need_kernel_load, need_libbpf

# Fixed, derandomized runs: the same examples in CI every time, independent of the settings profile.
MANY = settings(max_examples=300, derandomize=True, database=None, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SOME = settings(MANY, max_examples=150)
PER_BLOB_SECONDS = 2.0


@MANY
@given(mutated_blobs())
def test_validate_never_raises_and_stays_fast(example: tuple[str, bytes]) -> None:
    desc, blob = example
    for rules in ("libbpf", "kernel"):
        start = time.monotonic()
        found = validate(blob, rules=rules)  # type: ignore[arg-type]
        assert time.monotonic() - start < PER_BLOB_SECONDS, desc
        assert all(v.rule != "internal" for v in found), (desc, found)
        assert all(v.errno < 0 for v in found)
    try:
        Btf.from_bytes(blob)
    except BtfError:
        pass  # the only exception the model may raise on hostile input


@MANY
@given(mutated_blobs())
def test_libbpf_rules_agree_with_libbpf(example: tuple[str, bytes]) -> None:
    """validate(rules="libbpf") matches btf__new exactly, libbpf quirks included (Q9 reserved info bits,
    Q12 FWD/FUNC_PROTO ids, Q18 lenient header are mirrored by the libbpf rule set): nothing is excused."""
    desc, blob = example
    lib = need_libbpf()
    found = validate(blob)
    ok, err, _, log = lib.parse(blob)
    assert (found == []) == ok, f"{desc}\nlibbpf: ok={ok} {err} {log.strip()[-300:]}\nvalidate: " \
        f"{[str(v) for v in found[:3]]}"
    if not ok:
        assert found[0].errno == err, f"{desc}: libbpf {err}, validate {found[0]}"


@MANY
@given(mutated_blobs())
def test_kernel_rules_agree_with_the_kernel(example: tuple[str, bytes]) -> None:
    desc, blob = example
    load = need_kernel_load()
    found = validate(blob, rules="kernel")
    out = load(blob)
    assert out.ok == (found == []), f"{desc}\nkernel: {out}\nvalidate: {[str(v) for v in found[:3]]}"
    if not out.ok:
        assert found[0].errno == out.errno, f"{desc}: kernel {out}, validate {found[0]}"


SPLIT_BASE, SPLIT_SEEDS = split_seeds()  # a fixed base and a few valid splits on it (P5's seeds)


@SOME
@given(mutated_blobs(st.sampled_from(SPLIT_SEEDS)))
def test_split_blobs_agree_with_libbpf(example: tuple[str, bytes]) -> None:
    """``btf__new_split`` on a fixed base versus validate(blob, base)."""
    desc, blob = example
    lib = need_libbpf()
    found = validate(blob, SPLIT_BASE)
    ok, err, _, log = lib.parse(blob, SPLIT_BASE)
    assert (found == []) == ok, f"{desc}\nlibbpf: ok={ok} {err} {log.strip()[-300:]}\nvalidate: " \
        f"{[str(v) for v in found[:3]]}"
    assert ok or found[0].errno == err
    assert all(v.rule != "internal" for v in validate(blob, SPLIT_BASE, rules="kernel"))


_SUBTLE = ["type_id", "member_off", "size", "int_data", "kflag", "name_off", "string", "vlen", "reserved"]


@SOME
@given(mutated_blobs(max_mutations=1, mutations=_SUBTLE, layout=False))
def test_single_field_mutations_agree_with_the_kernel(example: tuple[str, bytes]) -> None:
    """One type-level mutation of a kernel-valid seed: exercises the meta checks and the resolve pass."""
    desc, blob = example
    load = need_kernel_load()
    found = validate(blob, rules="kernel")
    out = load(blob)
    assert out.ok == (found == []), f"{desc}\nkernel: {out}\nvalidate: {[str(v) for v in found[:3]]}"


@SOME
@given(valid_btfs())
def test_seeds_are_valid_for_libbpf(seed: tuple[str, bytes]) -> None:
    desc, blob = seed
    assert validate(blob) == [], desc
    assert need_libbpf().parse(blob)[0], desc


def test_every_mutation_is_exercised() -> None:
    seen: set[str] = set()

    @settings(SOME, max_examples=200)
    @given(mutated_blobs())
    def collect(example: tuple[str, bytes]) -> None:
        for part in example[0].split("; ")[1:]:
            seen.add(part.split(":", 1)[0])

    collect()
    assert set(FIELD_MUTATIONS) | {"layout"} <= seen, sorted(set(FIELD_MUTATIONS) - seen)


def _first_examples(n: int) -> list[tuple[str, bytes]]:
    got: list[tuple[str, bytes]] = []

    @settings(SOME, max_examples=n)
    @given(mutated_blobs())
    def collect(example: tuple[str, bytes]) -> None:
        got.append(example)

    collect()
    return got


def test_mutations_are_deterministic() -> None:
    first, second = _first_examples(25), _first_examples(25)
    assert first == second and len(first) == 25


def test_custom_seeds_are_accepted() -> None:
    got: list[str] = []

    @settings(SOME, max_examples=10)
    @given(mutated_blobs(st.just(b"\x9f\xeb\x01\x00\x18\x00\x00\x00" + b"\0" * 16 + b"\0")))
    def collect(example: tuple[str, bytes]) -> None:
        got.append(example[0])

    collect()
    assert got and all(d.startswith("seed; ") for d in got)

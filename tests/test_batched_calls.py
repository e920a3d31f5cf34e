"""One request per case to a worker-hosted implementation (Calls.distill_relocate), with Calls' caching kept,
and the work of one check done once (the judge's memo, known findings not built)."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from btfspec.oracle.fuzz.campaign.hypothesis_glue import seeded_example
from btfspec.oracle.fuzz.helpers import Calls, relocation_pipeline
from btfspec.oracle.fuzz.property import Context
from btfspec.oracle.fuzz.registry import get_property
from btfspec.oracle.impls.adapter import ACCEPT, DISTILL, RELOCATE, close_impls, make_impl
from btfspec.oracle.impls.outcome import TIMEOUT
from btfspec.oracle.impls.quirks import Q5_SUSPECT_MIN
from tests.helpers import need_libbpf

CASES = Path(__file__).resolve().parent.parent / "corpus" / "cases"


class _CountingBatches:
    """libbpf whose batches (and single calls) are counted."""

    def __init__(self, impl: Any) -> None:
        self._impl, self.name, self.capabilities = impl, impl.name, impl.capabilities
        self.batches: list[list[str]] = []
        self.singles = 0

    def run_batch(self, steps: Any) -> Any:
        self.batches.append([s.op for s in steps])
        return self._impl.run_batch(steps)

    def begin_batch(self, steps: Any) -> Any:
        self.batches.append([s.op for s in steps])
        return self._impl.begin_batch(steps)

    def distill(self, *a: Any, **kw: Any) -> Any:
        self.singles += 1
        return self._impl.distill(*a, **kw)

    def relocate(self, *a: Any, **kw: Any) -> Any:
        self.singles += 1
        return self._impl.relocate(*a, **kw)

    def accept(self, *a: Any, **kw: Any) -> Any:
        self.singles += 1
        return self._impl.accept(*a, **kw)


@pytest.fixture
def libbpf() -> Any:
    need_libbpf()
    impl = make_impl("libbpf", timeout=5.0)
    yield _CountingBatches(impl)
    close_impls([impl])


@pytest.fixture
def alone() -> Any:
    """A second libbpf, called one operation at a time: what the batched answers must equal."""
    need_libbpf()
    impl = make_impl("libbpf", timeout=5.0)
    yield impl
    close_impls([impl])


def _ctx(libbpf: Any) -> Context:
    return Context(impls={"python": make_impl("python"), "libbpf": libbpf}, profile="kernel-valid", timeout=5.0)


def _seeded_cases(ctx: Context, prop: str, seed: int, n: int) -> Iterator[Any]:
    """``n`` cases of ``prop`` drawn on the seeded fast path."""
    strategy = get_property(prop).strategy(ctx)
    rng = random.Random(seed)
    for _ in range(n):
        yield seeded_example(strategy, rng.getrandbits(64))[0]


def test_libbpf_distill_and_relocate_are_one_request_and_cached_as_two_calls(libbpf: Any) -> None:
    ctx = _ctx(libbpf)
    strategy = get_property("P1").strategy(ctx)
    rng = random.Random(3)
    checked = 0
    for _ in range(20):
        c, _ = seeded_example(strategy, rng.getrandbits(64))
        calls = Calls(ctx)
        py_d, _ = relocation_pipeline(calls, "python", c.case.split, c.case.base, c.base2)
        if not py_d.ok:
            continue
        before = len(libbpf.batches)
        d, r = relocation_pipeline(calls, "libbpf", c.case.split, c.case.base, c.base2)
        assert libbpf.batches[before:] == [[DISTILL, RELOCATE]] and libbpf.singles == 0
        # the same outcomes as the calls one by one, from the cache: no further request
        assert calls.run("libbpf", DISTILL, c.case.split, c.case.base) is d
        if d.ok:
            assert calls.relocate("libbpf", d.outputs["split"], d.outputs["base"], c.base2) is r
            alone = make_impl("libbpf", timeout=5.0)
            try:
                again = alone.relocate(d.outputs["split"], d.outputs["base"], c.base2)
            finally:
                close_impls([alone])
            assert (again.status, again.errno, again.outputs) == (r.status, r.errno, r.outputs)
        assert len(libbpf.batches) == before + 1 and libbpf.singles == 0
        checked += 1
    assert checked >= 10


def test_a_predicted_q5_hang_gets_the_short_limit_inside_the_batch(libbpf: Any) -> None:
    case = CASES / "Q5-base-cycle"
    split, base = (case / "split.btf").read_bytes(), (case / "base.btf").read_bytes()
    calls = Calls(_ctx(libbpf))
    start = time.monotonic()
    d, r = relocation_pipeline(calls, "libbpf", split, base, base)
    assert d.ok and r is not None and r.status == TIMEOUT, r
    assert r.detail == f"killed after {Q5_SUSPECT_MIN:g} s" and time.monotonic() - start < 3.0
    assert libbpf.batches == [[DISTILL, RELOCATE]]


def test_relocations_begun_together_are_one_request_with_the_single_calls_outcomes(libbpf: Any, alone: Any) -> None:
    ctx = _ctx(libbpf)
    checked = 0
    for c in _seeded_cases(ctx, "P1", 11, 30):
        d = alone.distill(c.case.split, c.case.base)
        if not d.ok:
            continue
        split, dist = d.outputs["split"], d.outputs["base"]
        cases = [(split, dist, c.case.base), (split, dist, c.base2)]
        calls = Calls(ctx)
        before = len(libbpf.batches)
        calls.begin_relocations("libbpf", cases + cases[:1])  # a repeated case is sent once
        calls.begin_relocations("libbpf", cases)  # already sent: nothing more
        assert libbpf.batches[before:] == [[RELOCATE] * len(set(cases))]
        for args in cases:
            got, want = calls.relocate("libbpf", *args), alone.relocate(*args)
            assert (got.status, got.errno, got.outputs) == (want.status, want.errno, want.outputs)
            assert calls.relocate("libbpf", *args) is got  # cached
        assert len(libbpf.batches) == before + 1 and libbpf.singles == 0
        checked += 1
    assert checked >= 10


def test_p6_sends_libbpf_both_relocations_in_one_request(libbpf: Any) -> None:
    from btfspec.oracle.fuzz import format2026

    ctx = _ctx(libbpf)
    checked = 0
    for case in _seeded_cases(ctx, format2026.PROPERTY.name, 7, 20):
        if case is None:
            continue
        before = len(libbpf.batches)
        format2026.check_p6(case, ctx)
        distinct = 1 if case.sorted_split == case.split else 2  # a split already sorted is relocated once
        assert libbpf.batches[before:] == [[RELOCATE] * distinct] and libbpf.singles == 0
        checked += distinct - 1
    assert checked >= 5


@pytest.mark.parametrize(("prop", "seed", "request_steps"), [
    ("P3", 9, [DISTILL, RELOCATE]),
    ("P4", 13, [DISTILL, RELOCATE, ACCEPT, ACCEPT, ACCEPT]),  # with the parses of what libbpf produced
])
def test_p3_and_p4_send_libbpf_one_request_per_case(libbpf: Any, prop: str, seed: int,
                                                    request_steps: list[str]) -> None:
    from btfspec.oracle.fuzz.property import PropertyFailure

    ctx = _ctx(libbpf)
    checked = 0
    for case in _seeded_cases(ctx, prop, seed, 20):
        if not ctx.reference("python").distill(case.split, case.base).ok:
            continue  # no prediction of libbpf's relocation limit: the calls go one by one
        before = len(libbpf.batches)
        try:
            get_property(prop).check(case, ctx)
        except PropertyFailure:
            pass
        assert libbpf.batches[before:] == [request_steps] and libbpf.singles == 0
        checked += 1
    assert checked >= 10


def test_a_batchs_accepts_are_the_single_calls_outcomes(libbpf: Any, alone: Any) -> None:
    ctx = _ctx(libbpf)
    checked = 0
    for case in _seeded_cases(ctx, "P4", 17, 30):
        calls = Calls(ctx)
        before, singles = len(libbpf.batches), libbpf.singles
        calls.begin_distill_relocate("libbpf", case.split, case.base, case.base, accepts=True)
        d = calls.run("libbpf", DISTILL, case.split, case.base)
        if not d.ok:
            continue
        dsplit, dbase = d.outputs["split"], d.outputs["base"]
        r = calls.relocate("libbpf", dsplit, dbase, case.base)
        asks = [(dbase, None), (dsplit, dbase)] + ([(r.outputs["split"], case.base)] if r.ok else [])
        for blob, on in asks:
            got, want = calls.run("libbpf", ACCEPT, blob, on), alone.accept(blob, on)
            assert (got.status, got.errno) == (want.status, want.errno)
        # all answered by the one request
        assert len(libbpf.batches) == before + 1 and libbpf.singles == singles, libbpf.batches[before:]
        checked += 1
    assert checked >= 10


def test_known_findings_are_not_built_and_new_ones_still_raise(monkeypatch: pytest.MonkeyPatch) -> None:
    from btfspec.oracle.fuzz import relocation
    from btfspec.oracle.fuzz.property import PropertyFailure

    built: list[str] = []
    real = relocation.relocation_finding

    def counting(*a: Any, **kw: Any) -> Any:
        built.append(a[2])
        return real(*a, **kw)

    monkeypatch.setattr(relocation, "relocation_finding", counting)
    ctx = Context(impls={"python": make_impl("python")}, profile="libbpf-valid", timeout=5.0)
    strategy = get_property("P1").strategy(ctx)
    rng = random.Random(5)
    failing = None
    for _ in range(400):
        c, _ = seeded_example(strategy, rng.getrandbits(64))
        try:
            relocation.check_p1(c, ctx)
        except PropertyFailure as exc:
            failing = (c, exc.finding)
            break
    assert failing is not None, "no P1 finding of python (libbpf's quirks) in 400 libbpf-valid cases"
    c, finding = failing
    ctx.known.add(finding.signature)
    built.clear()
    relocation.check_p1(c, ctx)  # known now: passes, and the finding is not built again
    assert built == []


def test_both_modes_distilling_one_case_parse_its_split_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from btfspec.oracle.impls import reference

    case = CASES / "E12-embedded-through-wrappers"
    split, base = (case / "split-ptr.btf").read_bytes(), (case / "base.btf").read_bytes()
    reference.forget_kept_parses()
    fresh = [reference.distill(split, base, strict=s) for s in (False, True)]
    reference.forget_kept_parses()
    parses: list[str] = []
    real = reference.parse

    def counting(blob: bytes, base_btf: Any = None, *a: Any) -> Any:
        parses.append("split" if base_btf is not None else "base")
        return real(blob, base_btf, *a)

    monkeypatch.setattr(reference, "parse", counting)
    kept = [reference.distill(split, base, strict=s) for s in (False, True)]
    assert parses == ["base", "split"]  # once each, for both modes
    for a, b in zip(fresh, kept, strict=True):
        assert a == b and a.rc == 0
    reference.relocate(kept[0].split, kept[0].base, base)  # relocation parses its split afresh: it rewrites it
    assert parses[2:].count("split") == 1

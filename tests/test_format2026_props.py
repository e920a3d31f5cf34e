"""The multi-level distill property (oracle/fuzz/multilevel.py): python equals libbpf v1.6 on chains of
two and three levels, python-strict's intended string rule differs on three (the Q22 finding), and a
seeded bug (python parsing with v1.7's rule) is caught."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from btfspec.btfgen.format2026 import third_level
from btfspec.oracle.fuzz import format2026 as multilevel
from tests.helpers import need_libbpf
from tests.test_format2026 import three_levels
from tests.test_format2026_gen import sample_pair


@pytest.fixture(scope="module")
def lib():  # type: ignore[no-untyped-def]
    return need_libbpf()


def test_two_levels_are_not_flagged(lib) -> None:  # type: ignore[no-untyped-def]
    base, split = sample_pair()
    assert multilevel.check_chain([base, split], lib) == []


def test_three_levels_give_the_q22_finding(lib) -> None:  # type: ignore[no-untyped-def]
    l0, l1, blob = three_levels()
    found = multilevel.check_chain([l0.to_bytes(), l1.to_bytes(), blob], lib)
    assert len(found) == 1 and found[0].startswith("Q22")


def test_seeded_bug_is_caught(lib, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(multilevel, "V16", multilevel.V16_INTENDED)  # python parses with v1.7's rule
    l0, l1, blob = three_levels()
    found = multilevel.check_chain([l0.to_bytes(), l1.to_bytes(), blob], lib)
    assert any(f.startswith("python differs") for f in found)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.text("abcdefgh_", min_size=1, max_size=12), min_size=1, max_size=4))
def test_python_equals_libbpf_on_generated_third_levels(lib, names: list[str]) -> None:  # type: ignore[no-untyped-def]
    base, split = sample_pair()
    chain = [base, split, third_level(base, split, names)]
    found = multilevel.check_chain(chain, lib)
    assert not any(f.startswith("python differs") for f in found), found


# --------------------------------------------------------------------------------------------------
# sorted splits relocate like unsorted ones
# --------------------------------------------------------------------------------------------------

def test_sorted_relocation_sample_is_not_flagged() -> None:
    base, split = sample_pair()
    assert multilevel.check_sorted_relocation(base, split) == []


def test_sorted_relocation_seeded_bug_is_caught(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A sort that moves records without rewriting the ids pointing at them must be flagged."""
    from btfspec.btfgen import format2026 as gen
    from btfspec.spec import permute

    def broken_sort(split: bytes, base: bytes) -> bytes:
        from btfspec.spec.model import Btf

        b = Btf.from_bytes(base)
        s = Btf.from_bytes(split, b)
        out = Btf(base=b, strings=s.strings)
        for old in permute.name_order(s):
            out.add_type(s.type(old).copy())  # ids not remapped
        return out.to_bytes()

    monkeypatch.setattr(gen, "sort_split_blob", broken_sort)
    base, split = sample_pair()
    assert multilevel.check_sorted_relocation(base, split) != []


@settings(max_examples=15, deadline=None)
@given(st.data())
def test_sorted_relocation_on_generated_pairs(data: st.DataObject) -> None:
    from btfspec.btfgen.generate import base_split_pairs

    case = data.draw(base_split_pairs(min_types=5, max_types=40))
    assert multilevel.check_sorted_relocation(case.base, case.split) == []


@pytest.fixture(scope="module")
def impls():  # type: ignore[no-untyped-def]
    from tests.helpers import open_impls

    yield from open_impls("python", "libbpf")


@settings(max_examples=10, deadline=None)
@given(st.data())
def test_p6_property_with_python_and_libbpf(impls, data: st.DataObject) -> None:  # type: ignore[no-untyped-def]
    from btfspec.oracle.fuzz.property import Context
    from tests.helpers import need_impls

    need_impls(impls, "python", "libbpf")
    ctx = Context(impls)
    prop = multilevel.PROPERTY
    assert prop.applies(ctx)
    prop.check(data.draw(prop.strategy(ctx)), ctx)


def _sorted_breaker(py, case):  # type: ignore[no-untyped-def]
    """An implementation that relocates ``case``'s sorted split wrongly (drops its last type)."""
    class Broken:
        name = "broken"
        capabilities = py.capabilities

        def relocate(self, split: bytes, dist: bytes, base: bytes, **kw: object):  # type: ignore[no-untyped-def]
            out = py.relocate(split, dist, base, **kw)
            if split == case.sorted_split and out.ok:  # drop the last type of the sorted one
                from btfspec.spec.model import Btf

                b = Btf.from_bytes(base)
                s = Btf.from_bytes(out.outputs["split"], b)
                cut = Btf(base=b, strings=s.strings)
                for _, t in list(s.own_types())[:-1]:
                    cut.add_type(t.copy())
                out.outputs["split"] = cut.to_bytes()
            return out

    return Broken()


def test_p6_flags_an_implementation_that_breaks_sorted_splits(impls) -> None:  # type: ignore[no-untyped-def]
    """Test the tester: an implementation that relocates sorted splits wrongly is reported."""
    from btfspec.btfgen.format2026 import sorted_split_case
    from btfspec.oracle.fuzz.property import Context, PropertyFailure
    from tests.helpers import need_impls

    need_impls(impls, "python")
    py = impls["python"]
    base, split = sample_pair()
    case = sorted_split_case(base, split)
    assert case is not None
    with pytest.raises(PropertyFailure, match="P6 \\[broken\\]"):
        multilevel.check_p6(case, Context({"broken": _sorted_breaker(py, case)}))
    multilevel.check_p6(case, Context({"python": py}))  # the real one is not flagged


def test_a_p6_finding_is_a_corpus_entry_that_replays(impls, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A P6 finding carries the two relocations as corpus steps expecting libbpf's outcomes: its entry
    replays as failing for the implementation at fault and passing for libbpf (a campaign could not
    write one: "an entry needs at least one step")."""
    from btfspec.btfgen.format2026 import sorted_split_case
    from btfspec.oracle.fuzz.corpus import FAIL, PASS, load_entry, write_entry
    from btfspec.oracle.fuzz.corpus import run_entry as replay
    from btfspec.oracle.fuzz.property import Context, PropertyFailure
    from tests.helpers import need_impls

    need_impls(impls, "python", "libbpf")
    case = sorted_split_case(*sample_pair())
    assert case is not None
    broken = _sorted_breaker(impls["python"], case)
    with pytest.raises(PropertyFailure) as info:
        multilevel.check_p6(case, Context({"broken": broken, "libbpf": impls["libbpf"]}))
    f = info.value.finding
    assert [s["name"] for s in f.steps] == ["relocate-unsorted", "relocate-sorted"]
    manifest = {"format": 1, "name": "p6", "category": "finding", "operation": "relocate", "summary": f.outcome,
                "steps": list(f.steps), "provenance": {"source": "fuzz"}}
    entry = load_entry(write_entry(tmp_path / "p6", manifest, dict(f.files)).path)
    assert [r.status for r in replay(entry, [broken, impls["libbpf"], impls["python"]])] == [FAIL, PASS, PASS]


def test_a_p6_finding_names_the_quirk_python_strict_sees() -> None:
    """libbpf relocates this sorted split through an id it never validated (Q12: a FUNC_PROTO return id,
    read out of bounds, so junk that changes between runs), which a campaign reported as "P6 [libbpf]
    sorted differs" beyond the catalogue. The finding carries python-strict's attribution, Q12; the
    sample pair's finding carries none."""
    from btfspec.btfgen.format2026 import SortedCase, sorted_split_case
    from btfspec.oracle.fuzz.property import Context, PropertyFailure
    from btfspec.oracle.impls.adapter import make_impl
    from tests.helpers import DATA

    py = make_impl("python")
    data = DATA / "p6-q12-sorted"
    q12 = SortedCase(*((data / f"{n}.btf").read_bytes() for n in ("base", "distilled_base", "split", "sorted_split")))
    plain = sorted_split_case(*sample_pair())
    assert plain is not None
    for case, quirk in ((q12, "Q12"), (plain, None)):
        with pytest.raises(PropertyFailure) as info:
            multilevel.check_p6(case, Context({"broken": _sorted_breaker(py, case)}))
        assert info.value.finding.quirk == quirk
        assert not any(c.isdigit() for c in info.value.finding.first_difference)  # a signature stable across runs


def test_p6_waits_briefly_for_a_predicted_libbpf_hang() -> None:
    """A sorted split in the Q5 shape hangs libbpf: P6 gives libbpf's two relocations the short limit of a
    predicted hang, as P1 does, rather than the campaign's 5 s each (and a new libbpf worker after each)."""
    import time
    from pathlib import Path

    from btfspec.btfgen.format2026 import sorted_split_case
    from btfspec.oracle.fuzz.property import Context
    from btfspec.oracle.impls.adapter import close_impls, make_impl

    need_libbpf()
    cases = Path(__file__).resolve().parent.parent / "corpus" / "cases" / "Q5-base-cycle"
    case = sorted_split_case((cases / "base.btf").read_bytes(), (cases / "split.btf").read_bytes())
    assert case is not None
    lib = make_impl("libbpf", timeout=5.0)
    try:
        start = time.monotonic()
        multilevel.check_p6(case, Context({"python": make_impl("python"), "libbpf": lib}, timeout=5.0))
        assert time.monotonic() - start < 2.0
        assert lib.worker.starts == 1  # type: ignore[attr-defined]
    finally:
        close_impls([lib])

"""The universe-level reducer (btfgen.reduce) and its use for P1 cases (perturbations replayed by key).

It kills: a libbpf P1 finding from the seeded path reduces to a handful of nodes with its signature
unchanged.  It must not flag: the correct implementation (python-strict) passes P1 on every case the
reducer builds, because the label is derived again from each smaller case -- and carrying the label
over instead would flag it.
"""

from __future__ import annotations

import dataclasses
import random
import time

from btfspec.btfgen.encoder import EncodeError, encode_base
from btfspec.btfgen.perturb import replay
from btfspec.btfgen.reduce import Edit, apply, candidates, edits, reduce
from btfspec.btfgen.universe import (
    Composite,
    Datasec,
    DeclTag,
    Func,
    FuncProto,
    Int,
    Member,
    Ptr,
    Typedef,
    Universe,
    Var,
)
from btfspec.oracle.fuzz.campaign.hypothesis_glue import seeded_example
from btfspec.oracle.fuzz.campaign.reduction import reduce_failure
from btfspec.oracle.fuzz.property import RELOCATION, Context, PropertyFailure
from btfspec.oracle.fuzz.registry import get_property
from btfspec.oracle.fuzz.relocation import REDUCTION, RelocationCase
from btfspec.oracle.impls.adapter import make_impl
from tests.helpers import need_libbpf

P1 = get_property(RELOCATION)


def _universe() -> Universe:
    nodes = (
        Int("i", "int", 4),
        Ptr("p", "i"),
        Composite("s", "s", 16, (Member("a", "i", 0), Member("b", "p", 64))),
        Typedef("t", "ptr_t", "p"),
        FuncProto("fp", "i", (("x", "i"), ("y", "p"))),
        Func("f", "f", "fp"),
        DeclTag("tag1", "t1", "f", 1),  # on parameter y
        DeclTag("tag0", "t0", "f", 0),  # on parameter x
        Var("v1", "v1", "i"),
        Var("v2", "v2", "p"),
        Datasec("d", ".data", 16, (("v1", 0, 4), ("v2", 8, 8))),
    )
    return Universe(nodes, frozenset({"s", "f", "fp", "tag1", "tag0"}))


def test_deleting_a_node_repairs_or_deletes_its_users() -> None:
    u = apply(_universe(), ("node", "p"))
    assert u is not None
    assert "t" not in u and "v2" not in u and "p" not in u  # the typedef and the VAR went with the pointer
    assert u["s"].members == (Member("a", "i", 0),)  # the struct lost only that member
    assert u["fp"].params == (("x", "i"),)
    assert "tag1" not in u and u["tag0"].component_idx == 0  # the tag on y went; the one on x stays
    assert u["d"].entries == (("v1", 0, 4),)
    assert u.module == frozenset({"s", "f", "fp", "tag0"})
    gone = apply(u, ("node", "i"))
    assert gone is not None and [n.key for n in gone.nodes] == ["s", "fp", "f"]  # the tag on x went with x
    assert gone["fp"].ret is None and gone["fp"].params == ()


def test_deleting_a_parameter_renumbers_the_tags_after_it() -> None:
    u = apply(_universe(), ("item", "fp", 0))
    assert u is not None and u["fp"].params == (("y", "p"),)
    assert "tag0" not in u and u["tag1"].component_idx == 0


def test_edits_try_halves_before_single_nodes() -> None:
    u = _universe()
    es: list[Edit] = edits(u)
    assert es[0] == ("node", *[n.key for n in u.nodes[5:10]])  # the newest whole half first (11 nodes)
    assert ("node", *[n.key for n in u.nodes[:5]]) in es
    singles = [e for e in es if e[0] == "node" and len(e) == 2]
    assert [e[1] for e in singles] == [n.key for n in reversed(u.nodes)]


def _seeded(profile: str, count: int, seed: int) -> list[RelocationCase]:
    strategy = P1.strategy(Context({}, profile=profile))
    rng = random.Random(seed)
    return [seeded_example(strategy, rng.getrandbits(64))[0] for _ in range(count)]


def test_a_replayed_perturbation_of_the_same_case_is_the_same_base2() -> None:
    for c in _seeded("kernel-valid", 20, 3):
        got = replay(c.case, c.perturbation.kind, c.perturbation.decisions)
        assert got is not None and got[0] == c.base2, c.perturbation.kind
        assert got[1].label == c.perturbation.label and got[1].description == c.perturbation.description


def _strict_findings(rc: RelocationCase, ctx: Context) -> str | None:
    try:
        P1.check(rc, ctx)
    except PropertyFailure as exc:
        return str(exc)
    return None


def _carried_over(c: RelocationCase, rebuilt: RelocationCase, edit: Edit) -> RelocationCase | None:
    """What a reducer that carried the label over would check: the same edit made to base2's kernel part,
    the perturbation (label, errno, stale nodes) kept as it was."""
    p = c.perturbation
    assert p.universe is not None
    u2 = apply(p.universe, edit)
    if u2 is None:
        return None
    u2 = rebuilt.case.universe.with_kernel(u2.kernel_nodes())
    try:
        enc = encode_base(u2, opts=p.options)
    except EncodeError:
        return None
    return RelocationCase(rebuilt.case, enc.data, dataclasses.replace(p, universe=u2, base_ids=rebuilt.case.base_ids,
                                                                       base2_ids=enc.ids))


def test_the_correct_implementation_passes_every_reduced_case_a_carried_over_label_would_flag_it() -> None:
    strict = make_impl("python-strict")
    replayed = carried = flagged_replayed = flagged_carried = 0
    for profile in ("kernel-valid", "libbpf-valid"):
        ctx = Context({"python-strict": strict}, profile=profile)
        for c in _seeded(profile, 15, 11):
            if _strict_findings(c, ctx):
                continue  # outside the question (there are none on these seeds)
            es = edits(c.case.universe)
            for pos, smaller in candidates(c.case.universe):
                rebuilt = REDUCTION.rebuild(c, smaller)
                if rebuilt is None:
                    continue
                replayed += 1
                if why := _strict_findings(rebuilt, ctx):
                    flagged_replayed += 1
                    print(c.perturbation.kind, why)
                other = _carried_over(c, rebuilt, es[pos]) if c.perturbation.label != "equivalent" else None
                if other is not None:
                    try:
                        flagged_carried += _strict_findings(other, ctx) is not None
                    except (EncodeError, KeyError):  # the module cannot even be encoded against it
                        continue
                    carried += 1
    assert replayed > 1000 and flagged_replayed == 0
    # (seed 11, 15 cases a profile: 2,004 rebuilt cases, none flagged; 787 carried over, 18 of them flagged)
    assert carried > 300 and flagged_carried > 5, (carried, flagged_carried)


def test_a_libbpf_finding_reduces_to_a_handful_of_nodes_with_its_signature() -> None:
    need_libbpf()
    lib = make_impl("libbpf")
    try:
        ctx = Context({"libbpf": lib}, profile="kernel-valid")
        reduced_sizes = []
        for c in _seeded("kernel-valid", 400, 5):
            try:
                P1.check(c, ctx)
            except PropertyFailure as exc:
                finding = exc.finding
            else:
                continue
            start = time.monotonic()
            got, how = reduce_failure(P1, c, finding, ctx, 30.0)
            assert got.signature == finding.signature and not how.stopped
            assert time.monotonic() - start < 10.0
            with_nodes = len(how.case.case.universe.nodes)
            assert with_nodes < len(c.case.universe.nodes)
            reduced_sizes.append(with_nodes)
            # the reduced case fails again, by itself, with the same finding
            try:
                P1.check(how.case, ctx)
            except PropertyFailure as again:
                assert again.finding.signature == finding.signature
            else:
                raise AssertionError("the reduced case no longer fails")
            if len(reduced_sizes) == 3:
                break
        assert reduced_sizes and max(reduced_sizes) <= 8, reduced_sizes
    finally:
        lib.close()  # type: ignore[attr-defined]


def test_limits_end_a_reduction_with_the_smallest_case_so_far() -> None:
    u = _universe()
    calls = []

    def fails(x: Universe) -> bool:
        calls.append(x)
        return "s" in x

    from btfspec.btfgen.reduce import CaseReduction

    how: CaseReduction[Universe] = CaseReduction(lambda x: x, lambda _x, smaller: smaller)
    done = reduce(u, how, fails, time.monotonic() + 30)
    assert [n.key for n in done.case.nodes] == ["s"] and not done.stopped
    assert done.case["s"].members == ()  # its members went too
    capped = reduce(u, how, fails, time.monotonic() + 30, max_checks=2)
    assert capped.stopped and capped.checks == 2 and "s" in capped.case
    stopped = reduce(u, how, fails, time.monotonic() + 30, stop=lambda: True)
    assert stopped.stopped and stopped.case is u


def test_a_long_name_is_made_short_everywhere_at_once() -> None:
    long = "long_" + "x" * 40
    u = Universe((Int("i", "int", 4), Composite("s", long, 4, (Member(long, "i", 0),)), Typedef("t", long, "s"),
                  Typedef("n0", "n0", "i")), frozenset({"t"}))
    (edit,) = [e for e in edits(u) if e[0] == "name"]  # "int" and "n0" are short already
    short = apply(u, edit)
    assert short is not None
    assert short["s"].name == short["s"].members[0].name == short["t"].name == "n1"  # n0 was taken


def test_a_reduction_hands_on_the_other_failures_it_meets() -> None:
    """Like hypothesis's shrinking, a reduction meets other bugs on its way; they are passed on, not dropped."""
    from btfspec.btfgen.reduce import CaseReduction
    from btfspec.oracle.fuzz.property import Finding, Property

    def check(u: Universe, _ctx: Context) -> None:
        if "s" in u:  # the failure being reduced
            raise PropertyFailure(Finding("P9", "x", "s kept", "s"))
        if "i" in u:  # another one, met when s is deleted
            raise PropertyFailure(Finding("P9", "x", "i kept", "i"))

    prop = Property("P9", "test", lambda _ctx: None, check,  # type: ignore[arg-type,return-value]
                    reduction=CaseReduction(lambda x: x, lambda _x, smaller: smaller))
    met: list[tuple[str, ...]] = []
    first = Finding("P9", "x", "s kept", "s")
    got, how = reduce_failure(prop, _universe(), first, Context({}), 30.0,
                              other=lambda f, _case: met.append(f.signature))
    assert got.signature == first.signature and [n.key for n in how.case.nodes] == ["s"]
    assert ("P9", "x", "i kept", "i") in met

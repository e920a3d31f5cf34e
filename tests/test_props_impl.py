"""Properties P3 (differential), P4 (acceptance), P5 (robustness): examples through pytest, the judging
rules, the finding classes and the corpus entries findings become."""

from __future__ import annotations

import errno
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from btfspec.oracle.fuzz import acceptance, differential, robustness
from btfspec.oracle.fuzz.corpus import FAIL, PASS, load_entry, run_entry, write_entry
from btfspec.oracle.fuzz.differential import judge
from btfspec.oracle.fuzz.helpers import outcome_class, quirk_ids
from btfspec.oracle.fuzz.property import (
    ACCEPTANCE,
    ALIASES,
    DIFFERENTIAL,
    ROBUSTNESS,
    Context,
    Finding,
    PropertyFailure,
)
from btfspec.oracle.fuzz.registry import REGISTRY, get_property
from btfspec.oracle.impls.outcome import Outcome
from btfspec.spec.builder import Builder
from btfspec.spec.kinds import INT_SIGNED
from btfspec.spec.model import Btf
from tests.helpers import need_impls, open_impls

# Fixed examples, whatever the settings profile: the same cases on every run.
FIXED = settings(derandomize=True, database=None, deadline=None, max_examples=60,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(scope="module")
def impls():
    yield from open_impls("python", "python-strict", "libbpf", "kernel")


def _q6_split_signatures(impls) -> set[tuple[str, ...]]:
    """P4 findings already documented (reference §3 Q6, corpus/findings/Q6-empty-distilled-base-*):
    libbpf's Q6 split with dangling ids that its own parser rejects.  They are real findings (the
    campaign reports them); this test looks for *other* ones."""
    return {("P4", name, "distilled split rejected by libbpf: error -EINVAL (22)", "libbpf rule ref.range")
            for name in ("python", "python-strict", "libbpf")}


def test_registry_names_the_three_properties() -> None:
    modules = {DIFFERENTIAL: differential, ACCEPTANCE: acceptance, ROBUSTNESS: robustness}
    assert [DIFFERENTIAL, ACCEPTANCE, ROBUSTNESS] == ["P3", "P4", "P5"]
    for name, module in modules.items():
        assert get_property(name) is module.PROPERTY is REGISTRY[name]
    assert get_property("differential") is differential.PROPERTY and get_property("robustness").name == "P5"
    with pytest.raises(KeyError):
        get_property("P9")
    assert sorted(REGISTRY) == sorted(ALIASES.values())  # every property has its alias (the CLI lists them)


# --------------------------------------------------------------------------------------------------
# examples through pytest
# --------------------------------------------------------------------------------------------------

def test_p3_python_and_strict_agree_with_libbpf(impls) -> None:
    need_impls(impls, "libbpf", "python", "python-strict")
    ctx = Context({n: impls[n] for n in ("python", "python-strict", "libbpf")})
    prop = REGISTRY[DIFFERENTIAL]
    seen = []

    @FIXED
    @given(prop.strategy(ctx))
    def run(case) -> None:
        seen.append(case)
        prop.check(case, ctx)

    run()
    assert len(seen) >= 60


def test_p4_outputs_are_accepted(impls) -> None:
    need_impls(impls, "libbpf", "python")
    ctx = Context(dict(impls), known=_q6_split_signatures(impls))
    prop = REGISTRY[ACCEPTANCE]

    @settings(FIXED, max_examples=40)
    @given(prop.strategy(ctx))
    def run(case) -> None:
        prop.check(case, ctx)

    run()


def test_p5_mutated_blobs_never_crash_and_verdicts_agree(impls) -> None:
    ctx = Context(dict(impls))
    prop = REGISTRY[ROBUSTNESS]

    @settings(FIXED, max_examples=150)
    @given(prop.strategy(ctx))
    def run(case) -> None:
        prop.check(case, ctx)

    run()


# --------------------------------------------------------------------------------------------------
# the rules
# --------------------------------------------------------------------------------------------------

OK_A = Outcome("ok", outputs={"split": b"a"}, impl="libbpf")
OK_B = Outcome("ok", outputs={"split": b"b"}, impl="x")
EINVAL = Outcome("error", -errno.EINVAL, impl="libbpf")


def test_judge_applies_each_implementations_rule() -> None:
    assert judge("cmd", OK_A, Outcome("ok", outputs={"split": b"a"})) is None
    assert judge("cmd", OK_A, OK_B) == "differs from libbpf"
    assert judge("python", OK_A, OK_B) == "differs from libbpf"
    # python: the Q5/Q17 pairings of btfspec.oracle.impls.adapter.agree are excused ...
    hang = Outcome("timeout", impl="libbpf")
    assert judge("python", hang, Outcome("error", -errno.ELOOP, detail="Q5")) is None
    assert judge("python", hang, Outcome("error", -errno.ELOOP, detail="")) == "differs from libbpf"
    # ... and where libbpf read its id map out of bounds (Q12), there is no answer to be identical to
    assert judge("python", OK_A, Outcome("ok", outputs={"split": b"b"}, detail="Q12")) is None
    assert judge("python", OK_A, Outcome("ok", outputs={"split": b"b"}, detail="Q6")) == "differs from libbpf"
    assert judge("cmd", hang, Outcome("error", -errno.ELOOP, detail="Q5")) == "differs from libbpf"
    # python-strict: a difference must name a quirk; without one it must agree
    assert judge("python-strict", EINVAL, Outcome("ok", outputs={"split": b"a"}, detail="Q1")) is None
    assert judge("python-strict", EINVAL, OK_B) == "differs from libbpf without naming a quirk"
    assert judge("python-strict", EINVAL, Outcome("crash", detail="RecursionError")) is not None
    assert judge("python-strict", EINVAL, Outcome("error", -errno.EINVAL, detail="Q3")) is None


def test_an_answer_libbpf_read_out_of_bounds_is_not_held_against_others() -> None:
    """Q12: libbpf remaps an unchecked id past its id map (undefined: garbage bytes); an implementation
    that answers as the reference does (it reads 0 there and names Q12) is not at fault -- one that
    answers a third way still is, and without Q12 a difference from libbpf stays a finding."""
    q12 = Outcome("ok", outputs={"split": b"b"}, detail="Q12")
    assert judge("serve", OK_A, OK_B, lambda: q12) is None
    assert judge("serve", OK_A, Outcome("ok", outputs={"split": b"c"}), lambda: q12) == "differs from libbpf"
    assert judge("serve", OK_A, OK_B, lambda: Outcome("ok", outputs={"split": b"b"}, detail="Q6")) \
        == "differs from libbpf"
    assert judge("serve", OK_A, OK_B) == "differs from libbpf"  # no reference to ask


def test_quirk_constants_are_the_catalogue_ids() -> None:
    from btfspec.oracle.impls import quirks

    assert [getattr(quirks, qid) for qid in quirks.QUIRKS] == list(quirks.QUIRKS)


def test_quirk_ids_ignore_other_details() -> None:
    assert quirk_ids(Outcome("ok", detail="Q3,Q6")) == ["Q3", "Q6"]
    assert quirk_ids(Outcome("crash", detail="SIGSEGV")) == []


def test_difference_class_is_stable_across_examples() -> None:
    def blob(name: str, size: int) -> bytes:
        b = Builder()
        b.struct(name, size, [])
        return b.to_bytes()

    lib = Outcome("ok", outputs={"split": blob("a", 4)})
    one = outcome_class("distill", lib, Outcome("ok", outputs={"split": blob("a", 8)}))
    two = outcome_class("distill", Outcome("ok", outputs={"split": blob("zz", 16)}),
                           Outcome("ok", outputs={"split": blob("zz", 32)}))
    assert one == two == "distill: output split differs (STRUCT record size_type)"
    assert outcome_class("relocate", EINVAL, OK_B) == "relocate: ok where libbpf gives error -EINVAL (22)"


# --------------------------------------------------------------------------------------------------
# findings
# --------------------------------------------------------------------------------------------------

def _no_base_refs() -> tuple[bytes, bytes]:
    """A split that references nothing in its base: every distill gives an empty distilled base."""
    b = Builder()
    b.int("int", 4, INT_SIGNED)
    base = b.to_bytes()
    s = Builder(b.btf)
    s.struct("lonely", 0, [])
    return base, s.to_bytes()


class _Case:
    def __init__(self, base: bytes, split: bytes, profile: str = "kernel-valid") -> None:
        self.base, self.split, self.profile = base, split, profile


def _p4_findings(case: _Case, ctx: Context, most: int = 6) -> list[Finding]:
    """Every P4 finding of one case: each found is made known and the case checked again."""
    found: list[Finding] = []
    for _ in range(most):
        try:
            acceptance.check_p4(case, ctx)
            break
        except PropertyFailure as exc:
            found.append(exc.finding)
            ctx.known.add(exc.finding.signature)
    return found


def _p4_signatures(case: _Case, ctx: Context, most: int = 6) -> list[tuple[str, ...]]:
    """The signatures of :func:`_p4_findings`."""
    return [f.signature for f in _p4_findings(case, ctx, most)]


Change = Callable[[dict[str, bytes]], dict[str, bytes]]


def _seeded(py: Any, name: str, *, distill: Change | None = None, relocate: Change | None = None) -> Any:
    """A seeded bug: the Python reference whose distill (or relocate) outputs pass through a change."""
    import dataclasses

    def changed(out: Outcome, change: Change | None) -> Outcome:
        return dataclasses.replace(out, outputs=change(out.outputs)) if out.ok and change else out

    class Seeded:
        capabilities = py.capabilities

        def distill(self, split: bytes, base: bytes, **kw: object) -> Outcome:
            return changed(py.distill(split, base, **kw), distill)

        def relocate(self, *a: bytes, **kw: object) -> Outcome:
            return changed(py.relocate(*a, **kw), relocate)

    impl = Seeded()
    impl.name = name  # type: ignore[attr-defined]
    return impl


def test_p4_takes_an_empty_distilled_base_as_the_module_loader_does(impls) -> None:
    """BPF_BTF_LOAD rejects the empty distilled base of a split that refers to nothing in its base ("No
    type found"); the module loader takes it (tests/test_kernel_vm.py), so P4 finds nothing."""
    need_impls(impls, "libbpf", "kernel")
    base, split = _no_base_refs()
    d = impls["libbpf"].distill(split, base)
    assert d.ok and not list(Btf.from_bytes(d.outputs["base"]).own_types())
    assert impls["kernel"].accept(d.outputs["base"]).describe() == "error -EINVAL (22): No type found"
    acceptance.check_p4(_Case(base, split), Context({"libbpf": impls["libbpf"], "kernel": impls["kernel"]}))


def test_p4_flags_an_empty_distilled_base_the_kernel_rejects_for_another_reason(impls) -> None:
    """Test the tester: an empty distilled base with a header the kernel refuses (flags set) is still this
    implementation's finding, judged by the kernel."""
    need_impls(impls, "python", "libbpf", "kernel")

    def flagged(out: dict[str, bytes]) -> dict[str, bytes]:
        dbase = bytearray(out["base"])
        dbase[3] = 1  # btf_header.flags
        return {**out, "base": bytes(dbase)}

    base, split = _no_base_refs()
    ctx = Context({"flagging": _seeded(impls["python"], "flagging", distill=flagged), "libbpf": impls["libbpf"],
                   "kernel": impls["kernel"]})
    with pytest.raises(PropertyFailure) as info:
        acceptance.check_p4(_Case(base, split), ctx)
    rejected = "distilled base rejected by kernel: error -ENOTSUPP (524)"
    assert info.value.finding.signature == ("P4", "flagging", rejected, "kernel rule hdr.flags")


def test_p4_finding_is_a_corpus_entry_that_replays(impls, tmp_path: Path) -> None:
    """libbpf's Q6 split (dangling ids, its own parser rejects it): the finding's steps make a valid corpus
    entry recording what libbpf and the kernel did; a known signature then counts as passing."""
    from btfspec.locations import CORPUS_DIR

    need_impls(impls, "libbpf", "kernel")
    ctx = Context({"libbpf": impls["libbpf"], "kernel": impls["kernel"]})
    data = CORPUS_DIR / "findings" / "Q6-empty-distilled-base-unparsable-split"
    case = _Case((data / "base1.btf").read_bytes(), (data / "split.btf").read_bytes(), "libbpf-valid")
    with pytest.raises(PropertyFailure) as info:
        acceptance.check_p4(case, ctx)
    f = info.value.finding
    assert f.signature == ("P4", "libbpf", "distilled split rejected by libbpf: error -EINVAL (22)",
                           "libbpf rule ref.range")
    manifest = {"format": 1, "name": "p4", "category": "finding", "operation": "mixed", "summary": "x",
                "steps": list(f.steps), "provenance": {"source": "fuzz"}}
    entry = load_entry(write_entry(tmp_path / "p4", manifest, dict(f.files)).path)
    assert [r.status for r in run_entry(entry, [impls["libbpf"], impls["kernel"]])] == [PASS, PASS]
    ctx.known.add(f.signature)
    acceptance.check_p4(case, ctx)


def test_p4_leaves_a_distilled_split_as_libbpfs_to_libbpf(impls) -> None:
    """python-strict distills this case byte for byte as libbpf does, and the kernel rejects the distilled
    split (a modifier chain copied behind its user: resolving depth > 32).  That rejection is libbpf's
    finding, reported once under libbpf, not a second time as python-strict's (a campaign once did).
    python-strict's relocation differs (libbpf fails with Q4), so its relocated split is its own output,
    judged as such: the kernel rejects it for the same rule, which it inherits from the distilled split,
    so it is no second finding (campaigns reported it as a python-strict group "quirk Q4")."""
    from tests.helpers import DATA

    need_impls(impls, "python-strict", "libbpf", "kernel")
    data = DATA / "p4-shared-deep-chain"
    case = _Case((data / "base.btf").read_bytes(), (data / "split.btf").read_bytes(), "libbpf-valid")
    strict, lib = impls["python-strict"], impls["libbpf"]
    d, lib_d = strict.distill(case.split, case.base), lib.distill(case.split, case.base)
    assert d.ok and d.outputs == lib_d.outputs  # the same distilled blobs ...
    args = (d.outputs["split"], d.outputs["base"], case.base)
    assert strict.relocate(*args).ok and not lib.relocate(*args).ok  # ... relocated otherwise
    ctx = Context({"python-strict": strict, "libbpf": lib, "kernel": impls["kernel"]})
    found = _p4_signatures(case, ctx)
    rejected = "rejected by kernel: error -E2BIG (7)"
    assert sorted(found) == [("P4", "libbpf", f"distilled split {rejected}", "kernel rule resolve.depth")]
    assert not impls["kernel"].accept(strict.relocate(*args).outputs["split"], case.base).ok  # rejected: inherited


def test_p4_a_relocation_quirk_is_its_own_finding_where_the_distilled_split_breaks_the_same_rule(impls) -> None:
    """A campaign's case (tests/data/p4-q6-then-q12): libbpf's distilled split breaks the kernel's id-range
    rule (Q6: wrong ids over an empty distilled base), and its relocated split breaks it again, through
    ids its relocation never validated (Q12).  The second rejection is not inherited: python-strict names
    a quirk of the relocation, so both are libbpf's findings, each under its quirk."""
    from tests.helpers import DATA

    need_impls(impls, "python-strict", "libbpf", "kernel")
    data = DATA / "p4-q6-then-q12"
    case = _Case((data / "base.btf").read_bytes(), (data / "split.btf").read_bytes(), "libbpf-valid")
    ctx = Context({"python-strict": impls["python-strict"], "libbpf": impls["libbpf"], "kernel": impls["kernel"]})
    rejected = "rejected by kernel: error -EINVAL (22)"
    assert sorted((*f.signature, f.quirk) for f in _p4_findings(case, ctx)) == [
        ("P4", "libbpf", f"distilled split {rejected}", "kernel rule ref.range", "Q6"),
        ("P4", "libbpf", f"relocated split {rejected}", "kernel rule ref.range", "Q12")]


def test_p4_leaves_the_references_answer_where_libbpfs_is_undefined_to_libbpf(impls) -> None:
    """libbpf relocates this case's distilled split through a FUNC_PROTO return id it never validated
    (Q12): its answer is read out of bounds of its id map.  The reference reads 0 there, and the kernel
    rejects its relocated split; that is libbpf's root cause (a campaign reported it as python's own
    group, Q12), so P4 judges only libbpf's outputs of this case."""
    from tests.helpers import DATA

    need_impls(impls, "python", "libbpf", "kernel")
    data = DATA / "p4-q12-python"
    case = _Case((data / "base.btf").read_bytes(), (data / "split.btf").read_bytes(), "libbpf-valid")
    py, lib = impls["python"], impls["libbpf"]
    d = py.distill(case.split, case.base)
    r = py.relocate(d.outputs["split"], d.outputs["base"], case.base)
    assert r.ok and "Q12" in r.detail.split(",")
    merged = acceptance.merged(r.outputs["split"], case.base)
    assert impls["kernel"].accept(merged).status == "error"  # what the campaign reported as python's
    ctx = Context({"python": py, "libbpf": lib, "kernel": impls["kernel"]})
    assert [s for s in _p4_signatures(case, ctx) if s[1] != "libbpf"] == []


@pytest.mark.parametrize("stage", ["distill", "relocate"])
def test_p4_flags_an_implementation_whose_output_libbpf_rejects(impls, stage: str) -> None:
    """Test the tester: a distill (or relocation) that truncates its split (libbpf's parser rejects it) is
    this implementation's finding -- the relocated split's own, not one inherited from its distilled split
    -- and the real python on the same case is not flagged."""
    need_impls(impls, "python", "libbpf")
    py = impls["python"]

    b = Builder()
    i = b.int("int", 4, INT_SIGNED)
    s = Builder(b.btf)
    s.struct("user", 4, [("x", i, 0, 0)])
    case = _Case(b.to_bytes(), s.to_bytes())
    truncating = _seeded(py, "truncating", **{stage: lambda out: {**out, "split": out["split"][:-4]}})
    with pytest.raises(PropertyFailure) as info:
        acceptance.check_p4(case, Context({"truncating": truncating, "libbpf": impls["libbpf"]}))
    assert info.value.finding.signature[:2] == ("P4", "truncating")
    what = "distilled split" if stage == "distill" else "relocated split"
    assert info.value.finding.outcome.startswith(f"{what} rejected by libbpf")
    acceptance.check_p4(case, Context({"python": py, "libbpf": impls["libbpf"]}))


def test_p5_reports_a_parser_that_raises(impls, monkeypatch, tmp_path: Path) -> None:
    ctx = Context({n: impls[n] for n in ("python", "libbpf") if n in impls})
    real = robustness.Btf.from_bytes

    def broken(blob: bytes, base=None):
        if len(blob) % 2:
            raise IndexError("boom")
        return real(blob, base=base)

    monkeypatch.setattr(robustness.Btf, "from_bytes", broken)
    blob = Builder().to_bytes() + b"\0\0"  # odd length: the broken parser raises
    with pytest.raises(PropertyFailure) as info:
        robustness.check_p5(("standalone", "seed; layout: trailing byte", blob), ctx)
    f = info.value.finding
    assert (f.property, f.impl, f.outcome) == ("P5", "model", "Btf.from_bytes raises IndexError")
    assert f.first_difference.startswith("IndexError at test_props_impl.py:broken")
    monkeypatch.setattr(robustness.Btf, "from_bytes", real)
    manifest = {"format": 1, "name": "p5", "category": "finding", "operation": "accept", "summary": "x",
                "steps": list(f.steps), "provenance": {"source": "fuzz"}}
    write_entry(tmp_path / "p5", manifest, dict(f.files))


def test_p5_reports_a_validator_disagreeing_with_libbpf(impls, monkeypatch) -> None:
    need_impls(impls, "libbpf")
    import btfspec.spec.validate

    monkeypatch.setattr(btfspec.spec.validate, "validate", lambda blob, base=None, rules="libbpf", **kw: [])
    ctx = Context({"libbpf": impls["libbpf"]})
    with pytest.raises(PropertyFailure) as info:
        robustness.check_p5(("standalone", "seed; header: magic", b"\x00" * 24), ctx)
    f = info.value.finding
    assert (f.impl, f.outcome, f.first_difference) == (
        "validator", "libbpf rules accept what libbpf rejects", "libbpf -EINVAL (22)")


def test_p3_finding_replays_as_failing_for_the_implementation(impls, tmp_path: Path) -> None:
    need_impls(impls, "libbpf", "python-strict")

    class Wrong:
        """python-strict's answers with the split output's last byte changed and no quirk named."""

        name = "python-strict"
        capabilities = frozenset({"distill", "relocate"})

        def distill(self, split: bytes, base: bytes, *, timeout: float | None = None) -> Outcome:
            out = impls["python-strict"].distill(split, base)
            if not out.ok:
                return out
            s = out.outputs["split"]
            return Outcome("ok", outputs={"base": out.outputs["base"], "split": s[:-1] + b"x"}, impl=self.name)

        def relocate(self, split: bytes, dbase: bytes, base: bytes, *, timeout: float | None = None) -> Outcome:
            return impls["python-strict"].relocate(split, dbase, base)

    b = Builder()
    i = b.int("int", 4, INT_SIGNED)
    base = b.to_bytes()
    s = Builder(b.btf)
    s.ptr(i)
    ctx = Context({"libbpf": impls["libbpf"], "python-strict": Wrong()})  # type: ignore[dict-item]
    with pytest.raises(PropertyFailure) as info:
        differential.check_p3(_Case(base, s.to_bytes()), ctx)
    f = info.value.finding
    assert f.signature[:3] == ("P3", "python-strict", "distill differs from libbpf without naming a quirk")
    manifest = {"format": 1, "name": "p3", "category": "finding", "operation": "distill", "summary": "x",
                "steps": list(f.steps), "provenance": {"source": "fuzz"}}
    entry = load_entry(write_entry(tmp_path / "p3", manifest, dict(f.files)).path)
    assert run_entry(entry, [Wrong()])[0].status == FAIL  # type: ignore[list-item]
    assert run_entry(entry, [impls["libbpf"]])[0].status == PASS

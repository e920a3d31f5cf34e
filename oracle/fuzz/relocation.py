"""Property P1 (:data:`~btfspec.oracle.fuzz.property.RELOCATION`): relocation onto a perturbed base, judged by
semantic equivalence.

A generated base/split pair plus a labelled perturbation ``base2`` of its kernel part
(:mod:`btfspec.btfgen.perturb`): every selected implementation with ``distill`` and ``relocate`` (libbpf
included: its deviations are findings like any other) distills the split on ``base1`` and relocates
its distilled outputs onto ``base2``; then, by the expected outcome
(:func:`~btfspec.oracle.fuzz.helpers.expected`):

- ``equivalent``: success, and the result is equivalent (:func:`btfspec.oracle.equiv.compare.equivalent`)
  to the module encoded directly against ``base2`` (:func:`btfspec.btfgen.perturb.direct_split`);
- ``error``: the labelled errno;
- ``stale-copy``: success, and the only differences from the direct encoding are at or below the stale
  copies (:func:`btfspec.oracle.equiv.compare.only_at`).

The expected outcome is the label (:mod:`btfspec.btfgen.perturb` already makes it -ELOOP for a modifier
cycle below a member of a split composite, the Q5 shape (:func:`relocation_loops`), and -EINVAL for a
distilled FWD without exactly one candidate in ``base2``).

A case whose split ``python-strict`` cannot distill is outside this property (an odd enum size, an
anonymous INT reached (Q8), ...: whether an implementation distills it anyway is P3's question); any
other distill failure is a finding.

A finding's ``quirk`` is attributed by ``python-strict``: its own distill and relocation of the same
case are judged the same way, and when they pass, the quirk ids it reports name the deviation.
Nothing is excused: a deviation strict does not explain is reported without a quirk id.  Its
``steps`` replay the case as a corpus entry (``category: finding``): ``distill`` of ``split.btf`` on
``base1.btf``, ``relocate`` of the implementation's distilled outputs onto ``base2.btf``, and for a
success label an ``accept`` step of the reference (``direct.split.btf`` on ``base2.btf``), with
expectations by :func:`~btfspec.oracle.fuzz.helpers.op_expect` (corpus/README.md: ``default`` is what
libbpf v1.6 did, ``python-strict`` has its own key naming quirks where it differs); what the
implementation at fault did and the intended outcome are in the relocate step's ``note`` and the
finding's description.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from btfspec.btfgen.encoder import Case
from btfspec.btfgen.generate import Knobs, base_split_pairs
from btfspec.btfgen.perturb import (
    IDENTITY,
    STALE,
    Perturbation,
    direct_split,
    perturbed_bases,
    relocation_loops,
    replay,
)
from btfspec.btfgen.reduce import CaseReduction
from btfspec.btfgen.universe import Universe
from btfspec.oracle.fuzz.helpers import (
    MAX_TYPES,
    MIN_TYPES,
    RELOCATION_CAPS,
    Calls,
    Verdict,
    attribute_quirk,
    expected,
    judge_relocation,
    known,
    raise_new,
    relocating_impls,
    relocation_finding,
    relocation_pipeline,
    relocation_unusable,
    shared_with_libbpf,
    sharing_libbpf,
    smaller_pair,
    strict_cannot_distill,
)
from btfspec.oracle.fuzz.property import RELOCATION, Context, Property
from btfspec.oracle.impls.outcome import OK, Outcome
from btfspec.spec.model import Btf


@dataclass(frozen=True)
class RelocationCase:
    """A P1 case: a base/split pair and the perturbed base ``base2`` with its label."""

    case: Case
    base2: bytes
    perturbation: Perturbation
    _direct: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def base2_btf(self) -> Btf:
        """``base2`` parsed, once per case: the direct encoding and the equivalence check both sit on it."""
        if "base2" not in self._direct:
            self._direct["base2"] = Btf.from_bytes(self.base2)
        return self._direct["base2"]

    def direct(self) -> bytes:
        """The module encoded directly against ``base2`` (raises :class:`EncodeError` if it cannot be)."""
        if "data" not in self._direct:
            enc = direct_split(self.case, self.base2_btf(), self.perturbation)
            self._direct["data"] = enc.data
            self._direct["ids"] = dict(enc.ids)
        return self._direct["data"]

    def stale_ids(self) -> set[int]:
        """Ids of the stale nodes in ``base2`` (and in the direct encoding, when it refers to them)."""
        self.direct()
        p = self.perturbation
        ids = self._direct["ids"]
        return {i for k in p.stale_nodes for i in (ids.get(k), p.base2_ids.get(k)) if i}


def relocation_cases(ctx: Context, kinds: tuple[str, ...] | None = None,
                     knobs: Knobs | None = None) -> st.SearchStrategy[RelocationCase]:
    """P1's strategy: a base/split pair, then a perturbation of it (both shrink); ``kinds`` and ``knobs``
    narrow it (the perturbations tried, the universe's shape knobs)."""

    @st.composite
    def draw(draw: Callable[[st.SearchStrategy[Any]], Any]) -> RelocationCase:
        case = draw(base_split_pairs(ctx.profile, MIN_TYPES, MAX_TYPES, knobs))
        base2, p = draw(perturbed_bases(case, kinds))
        return RelocationCase(case, base2, p)

    return draw()


def smaller_relocation_case(c: RelocationCase, u: Universe) -> RelocationCase | None:
    """``c`` rebuilt on a smaller universe: encoded again, and its perturbation made again from the recorded
    decisions (:func:`~btfspec.btfgen.perturb.replay`: the label follows from the smaller case); None when it
    does not encode or the perturbation no longer applies."""
    case = smaller_pair(c.case, u)
    got = None if case is None else replay(case, c.perturbation.kind, c.perturbation.decisions)
    return None if case is None or got is None else RelocationCase(case, *got)


def unperturbed(c: RelocationCase) -> list[RelocationCase]:
    """``c`` without its perturbation (``base2`` is the kernel part unchanged), unless it already is."""
    if c.perturbation.kind == IDENTITY:
        return []
    got = replay(c.case, IDENTITY, ())
    return [] if got is None else [RelocationCase(c.case, *got)]


REDUCTION: CaseReduction[RelocationCase] = CaseReduction(lambda c: c.case.universe, smaller_relocation_case,
                                                         unperturbed)


def check_p1(c: RelocationCase, ctx: Context) -> None:
    """P1 on one case (see the module docstring)."""
    calls = Calls(ctx)
    case, base2, p = c.case, c.base2, c.perturbation
    exp = expected(case.universe, p)
    def reference() -> tuple[bytes, Btf]:
        return c.direct(), c.base2_btf()

    stale = c.stale_ids if p.label == STALE else None

    def judge(d: Outcome, r: Outcome | None) -> Verdict | None:
        return judge_relocation(p.kind, exp, d, r, reference, stale, calls.memo)

    names = relocating_impls(ctx)
    for name in names:  # worker-hosted implementations work while the in-process ones run
        calls.begin_distill_relocate(name, case.split, case.base, base2)
    for name in names:
        d, r = relocation_pipeline(calls, name, case.split, case.base, base2)
        v = judge(d, r)
        if v is None:
            continue
        if strict_cannot_distill(calls, case.split, case.base):  # outside the property: asked only now (costly)
            return
        if shared_with_libbpf(calls, name, judge, v, case.split, case.base, base2):
            continue
        if known(ctx, RELOCATION, name, v):  # raise_new would not raise: the finding need not be built
            continue
        quirk = attribute_quirk(calls, name, judge, case.split, case.base, base2)
        story = f"Perturbation {p.kind} ({p.description}), label {p.label}" + (
            f", stale nodes at base2 ids {sorted(c.stale_ids())}." if p.label == STALE else ".")
        direct = c.direct() if exp.status == OK else None
        shared = sharing_libbpf(calls, name, judge, case.split, case.base, base2)
        raise_new(ctx, relocation_finding(RELOCATION, calls, name, case, "base2.btf", base2, d, r, exp, v, quirk, story,
                                          direct, operator=p.kind, shared_with=shared))


PROPERTY = Property(RELOCATION, "relocation: the relocated split matches the direct encoding against the new base, "
                                "as the perturbation's label says", relocation_cases, check_p1, RELOCATION_CAPS,
                    relocation_unusable, REDUCTION)

__all__ = ["PROPERTY", "RelocationCase", "check_p1", "relocation_cases", "relocation_loops"]

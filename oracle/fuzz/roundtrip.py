"""Property P2 (:data:`~btfspec.oracle.fuzz.property.ROUNDTRIP`): relocating the distilled outputs onto
``base1`` itself gives a split equivalent to the original one (equivalence, not bytes).

Every selected implementation with ``distill`` and ``relocate`` takes part.  The round trip expects
success unless :func:`btfspec.btfgen.perturb.inherent_error` says relocation onto the original base
must fail (:func:`~btfspec.oracle.fuzz.helpers.expected` with no perturbation).  Cases python-strict
cannot distill are skipped, quirks are attributed and findings replay exactly as for P1
(:mod:`btfspec.oracle.fuzz.relocation`), the relocate step targeting ``base1.btf``.
"""

from __future__ import annotations

from btfspec.btfgen.encoder import Case
from btfspec.oracle.fuzz.helpers import (
    PAIR_REDUCTION,
    RELOCATION_CAPS,
    Calls,
    Verdict,
    attribute_quirk,
    expected,
    judge_relocation,
    known,
    pairs,
    raise_new,
    relocating_impls,
    relocation_finding,
    relocation_pipeline,
    relocation_unusable,
    shared_with_libbpf,
    sharing_libbpf,
    strict_cannot_distill,
)
from btfspec.oracle.fuzz.property import ROUNDTRIP, Context, Property
from btfspec.oracle.impls.outcome import Outcome
from btfspec.spec.model import Btf


def check_p2(case: Case, ctx: Context) -> None:
    """P2 on one base/split pair (see the module docstring)."""
    calls = Calls(ctx)
    exp = expected(case.universe, None)
    base1: list[Btf] = []

    def reference() -> tuple[bytes, Btf]:
        if not base1:
            base1.append(Btf.from_bytes(case.base))
        return case.split, base1[0]

    def judge(d: Outcome, r: Outcome | None) -> Verdict | None:
        return judge_relocation("round trip", exp, d, r, reference, None, calls.memo)

    names = relocating_impls(ctx)
    for name in names:  # worker-hosted implementations work while the in-process ones run
        calls.begin_distill_relocate(name, case.split, case.base, case.base)
    for name in names:
        d, r = relocation_pipeline(calls, name, case.split, case.base, case.base)
        v = judge(d, r)
        if v is None:
            continue
        if strict_cannot_distill(calls, case.split, case.base):  # outside the property: asked only now (costly)
            return
        if shared_with_libbpf(calls, name, judge, v, case.split, case.base, case.base):
            continue
        if known(ctx, ROUNDTRIP, name, v):  # raise_new would not raise: the finding need not be built
            continue
        quirk = attribute_quirk(calls, name, judge, case.split, case.base, case.base)
        shared = sharing_libbpf(calls, name, judge, case.split, case.base, case.base)
        raise_new(ctx, relocation_finding(ROUNDTRIP, calls, name, case, "base1.btf", case.base, d, r, exp, v, quirk,
                                          "Round trip: relocation onto the original base.", shared_with=shared))


PROPERTY = Property(ROUNDTRIP, "round trip: relocating the distilled split onto its own base is equivalent to the "
                               "original", pairs, check_p2, RELOCATION_CAPS, relocation_unusable, PAIR_REDUCTION)

__all__ = ["PROPERTY", "check_p2"]

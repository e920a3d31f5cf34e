"""Property P3 (:data:`~btfspec.oracle.fuzz.property.DIFFERENTIAL`): every implementation agrees with libbpf.

On a generated base/split pair (:func:`btfspec.btfgen.generate.base_split_pairs`), every selected
implementation agrees with ``libbpf`` (status, errno, output bytes) on distill and on relocating
libbpf's distilled outputs onto the original base.  ``python`` may differ only as
:func:`btfspec.oracle.impls.adapter.agree` excuses (Q5, Q17) and where libbpf's answer is undefined (Q12:
an id read out of bounds of its id map; the reference reads 0 there); ``python-strict`` may differ only where its
result names a quirk (it flags exactly the inputs where a quirk fired); every other implementation
(``cmd``) must be identical (:func:`judge`).

A violation raises :class:`~btfspec.oracle.fuzz.property.PropertyFailure` carrying a
:class:`~btfspec.oracle.fuzz.property.Finding` whose ``steps`` replay it as a corpus entry (``expect``
records what libbpf did; what the implementation at fault did is in the step's ``note`` and the
description) and whose ``quirk`` lists the ids python-strict reports on the same operation
(comma-joined).  The signature's first difference is :func:`~btfspec.oracle.fuzz.helpers.outcome_class`
(statuses, errnos, the differing header field or record kind), so one bug gives one finding.  A
finding whose signature is in ``ctx.known`` counts as passing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from btfspec.oracle.fuzz.helpers import (
    PAIR_REDUCTION,
    Calls,
    case_description,
    corpus_step,
    op_expect,
    outcome_class,
    pairs,
    quirk_ids,
    raise_new,
    relocation_pipeline,
    store,
)
from btfspec.oracle.fuzz.property import DIFFERENTIAL, Context, Finding, Property
from btfspec.oracle.impls.adapter import DISTILL, RELOCATE, agree, libbpf_undefined, outcome_difference
from btfspec.oracle.impls.outcome import Outcome


def judge(name: str, lib: Outcome, got: Outcome, reference: Callable[[], Outcome] | None = None) -> str | None:
    """Why ``got`` (implementation ``name``) is not an acceptable answer where libbpf gave ``lib``.

    Where libbpf itself does not answer (a timeout or crash: its own finding, Q5/Q17), or answers from
    an id map it read out of bounds (undefined behaviour, Q12: the reference reads 0 there and names the
    quirk), another implementation may give the Python reference's answer instead (``reference()``, when
    given), and the reference's own answer is not held against it."""
    if outcome_difference(lib, got) is None:
        return None
    if name == "python":
        ok, _ = agree(lib, got)
        return None if ok or libbpf_undefined(lib, got) else "differs from libbpf"
    if name == "python-strict":
        return None if quirk_ids(got) else "differs from libbpf without naming a quirk"
    if reference is not None:
        ref = reference()
        if libbpf_undefined(lib, ref) and outcome_difference(ref, got) is None:
            return None
    return "differs from libbpf"


def _p3_finding(case: Any, calls: Calls, name: str, op: str, why: str, lib: Outcome, got: Outcome,
                lib_distill: Outcome, distill_ok: bool) -> Finding:
    files: dict[str, bytes] = {"base.btf": case.base}
    steps: list[dict[str, Any]] = []
    if op == DISTILL or distill_ok:
        files["split.btf"] = case.split
        note = f"{name}: {got.describe()}" if op == DISTILL else ""
        steps.append(corpus_step("distill", DISTILL, {"split": "split.btf", "base": "base.btf"},
                                 op_expect(calls, DISTILL, (case.split, case.base), files, "distill", name), note))
    if op == DISTILL:
        args: tuple[bytes, ...] = (case.split, case.base)
    else:
        dsplit = store(files, "distill.split.btf", lib_distill.outputs["split"])
        dbase = store(files, "distill.base.btf", lib_distill.outputs["base"])
        args = (lib_distill.outputs["split"], lib_distill.outputs["base"], case.base)
        inputs = {"split": dsplit, "distilled_base": dbase, "target": "base.btf"}
        expect = op_expect(calls, RELOCATE, args, files, "relocate", name)
        steps.append(corpus_step("relocate", RELOCATE, inputs, expect, f"{name}: {got.describe()}"))
    quirks = calls.strict_quirks(op, *args)
    detail = outcome_difference(lib, got) or ""
    desc = (f"{case_description(case)}. {op}: libbpf {lib.describe()}; {name} {got.describe()}. "
            f"First difference: {detail}")
    return Finding(DIFFERENTIAL, name, f"{op} {why}", outcome_class(op, lib, got), files, steps,
                   ",".join(quirks) or None, desc)


def check_p3(case: Any, ctx: Context) -> None:
    """P3 on one base/split pair (see the module docstring)."""
    if ctx.get("libbpf") is None:
        return
    calls = Calls(ctx)
    base, split = case.base, case.split
    others = [n for n, i in ctx.impls.items() if n not in ("libbpf", "kernel") and i.capabilities & {DISTILL, RELOCATE}]
    calls.begin_distill_relocate("libbpf", split, base, base)  # one request, run while the others distill
    for name in others:
        if DISTILL in ctx.impls[name].capabilities:
            calls.run(name, DISTILL, split, base)
    lib_d, lib_r = relocation_pipeline(calls, "libbpf", split, base, base)
    distill_ok: dict[str, bool] = {}
    for name in others:
        if DISTILL not in ctx.impls[name].capabilities:
            distill_ok[name] = True
            continue
        got = calls.run(name, DISTILL, split, base)
        why = judge(name, lib_d, got, lambda: calls.run("python", DISTILL, split, base))
        distill_ok[name] = why is None
        if why:
            raise_new(ctx, _p3_finding(case, calls, name, DISTILL, why, lib_d, got, lib_d, False))
    if not lib_d.ok:
        return
    args = (lib_d.outputs["split"], lib_d.outputs["base"], base)
    assert lib_r is not None
    for name in others:
        if RELOCATE not in ctx.impls[name].capabilities:
            continue
        got = calls.run(name, RELOCATE, *args)
        why = judge(name, lib_r, got, lambda: calls.run("python", RELOCATE, *args))
        if why:
            raise_new(ctx, _p3_finding(case, calls, name, RELOCATE, why, lib_r, got, lib_d, distill_ok[name]))


def unusable_reason(ctx: Context) -> str | None:
    """Why P3 cannot run with the selected implementations (None when it can)."""
    impls = ctx.impls
    if "libbpf" not in impls:
        return "needs libbpf (the reference every implementation is compared with)"
    if not any(n not in ("libbpf", "kernel") and i.capabilities & {DISTILL, RELOCATE} for n, i in impls.items()):
        return "needs an implementation besides libbpf that distills or relocates"
    return None


PROPERTY = Property(DIFFERENTIAL, "differential: every implementation agrees with libbpf on distill and relocate",
                    pairs, check_p3, frozenset({DISTILL}), unusable_reason, PAIR_REDUCTION)

__all__ = ["PROPERTY", "check_p3", "judge", "unusable_reason"]

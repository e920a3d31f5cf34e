"""Properties of the 2026 format (issue 14).

**Sorted splits** (:func:`check_sorted_relocation`): a module distilled and then name-sorted, as
resolve_btfids does, relocates to the same types as the unsorted one (P1 equivalence, up to
placement) and the result still passes ``btf_check_sorted``'s condition.

**Multi-level distill** (:func:`check_chain`): distill of a split whose base is itself a split --
libbpf v1.6, the Python reference and python-strict's intended rule, on one chain
``levels = [l0, l1, ..., split]``.

libbpf v1.6 parses every ``btf__new_split`` level with ``start_str_off = base str_len`` (Q22), while
its writer (``btf__new_empty_split``) and libbpf v1.7 use ``base str_len + base start_str_off``; so a
third level written by libbpf itself is misread by v1.6 and distill copies the misread names. The
reference (python) follows v1.6 and must equal libbpf byte for byte; python-strict parses with the
v1.7 rule, and a difference between it and libbpf on a chain of three or more levels is the finding.

(``btf__distill_base``'s ``dist.split_start_str = old_base->hdr.str_len`` is assigned but never read,
in v1.6 and in master alike: the wrong offsets come from the parser alone.)

:data:`PROPERTY` is ``P6`` (``sorted``: sorted-split relocation, for every selected implementation
that relocates), registered in :mod:`btfspec.oracle.fuzz.registry`. The multi-level check needs
a chain of ``btf__new_split`` calls, which the crash-proof libbpf worker does not offer, so it runs
in-process from pytest only (``tests/test_format2026_props.py``).
"""

from __future__ import annotations

import ctypes
import dataclasses
from collections.abc import Sequence
from typing import Any

from hypothesis import strategies as st

from btfspec.btfgen.format2026 import SortedCase, sorted_split_case
from btfspec.btfgen.generate import base_split_pairs
from btfspec.btfgen.reduce import CaseReduction
from btfspec.btfgen.universe import Universe
from btfspec.oracle.equiv.compare import equivalent_bytes
from btfspec.oracle.equiv.explain import normalize
from btfspec.oracle.fuzz.helpers import Calls, corpus_step, op_expect, smaller_pair
from btfspec.oracle.fuzz.property import SORTED_SPLITS, Context, Finding, Property, PropertyFailure
from btfspec.oracle.impls import reference
from btfspec.oracle.impls.adapter import RELOCATE
from btfspec.spec.formats import rule_set
from btfspec.spec.model import Btf
from btfspec.spec.permute import is_name_sorted
from btfspec.spec.validate_libbpf import LibbpfReject, parse

V16 = rule_set("libbpf1.6")
V16_INTENDED = dataclasses.replace(V16, name="libbpf1.6+v1.7-strings", cumulative_split_strings=True)


def reference_distill_chain(levels: Sequence[bytes], *, strict: bool = False) -> reference.DistillResult:
    """``btf__distill_base`` of the last level, parsed on the chain before it (python or python-strict)."""
    run = reference.Run(strict)
    rules = V16_INTENDED if strict else V16
    btf: Btf | None = None
    try:
        for blob in levels:
            try:
                btf = parse(bytes(blob), btf, rules).btf
            except LibbpfReject as bad:
                run.warn(bad.line)
                raise reference.Fail(bad.errno) from None
        assert btf is not None
        new_base, new_split, id_map = reference._distill(btf, run)
    except reference.Fail as f:
        return reference.DistillResult(f.errno, log=run.log, quirks=run.quirks, strict=strict)
    return reference.DistillResult(0, run.log, id_map, run.quirks, strict, base=new_base.to_bytes(hdr_len=24),
                                   split=new_split.to_bytes(hdr_len=24))


def libbpf_distill_chain(lib: Any, levels: Sequence[bytes]) -> tuple[int, bytes | None, bytes | None]:
    """The same with the real libbpf (``btfspec.oracle.impls.libbpf.LibBpf``): (rc, base, split)."""
    L = lib._lib
    ptrs: list[int] = []
    try:
        for i, blob in enumerate(levels):
            ctypes.set_errno(0)
            p = L.btf__new(blob, len(blob)) if i == 0 else L.btf__new_split(blob, len(blob), ptrs[-1])
            if not p:
                return -(ctypes.get_errno() or 22), None, None
            ptrs.append(p)
        nb, ns = ctypes.c_void_p(), ctypes.c_void_p()
        rc = L.btf__distill_base(ptrs[-1], ctypes.byref(nb), ctypes.byref(ns))
        if rc:
            return rc, None, None
        try:
            return 0, lib._raw(nb.value), lib._raw(ns.value)
        finally:
            L.btf__free(ns.value)
            L.btf__free(nb.value)
    finally:
        for p in reversed(ptrs):
            L.btf__free(p)
        lib._take_log()


def check_chain(levels: Sequence[bytes], lib: Any) -> list[str]:
    """Findings for one chain: ``python`` must equal libbpf (a difference is a reference bug);
    ``python-strict`` differing from libbpf on three or more levels is the Q22 finding."""
    rc, base, split = libbpf_distill_chain(lib, levels)
    out = []
    py = reference_distill_chain(levels)
    if (py.rc, py.base, py.split) != (rc, base, split):
        out.append(f"python differs from libbpf v1.6 (rc {py.rc} vs {rc})")
    strict = reference_distill_chain(levels, strict=True)
    if (strict.rc, strict.base, strict.split) != (rc, base, split):
        out.append(f"Q22: libbpf v1.6 distills a {len(levels)}-level chain with misread string offsets "
                   f"(rc {rc}; intended rule gives rc {strict.rc})")
    return out


def _python_relocate(split: bytes, dist: bytes, base: bytes) -> tuple[int, bytes | None]:
    r = reference.relocate(split, dist, base)
    return r.rc, r.split


def sorted_relocation_findings(case: SortedCase, relocate: Any = _python_relocate,
                               target: bytes | None = None) -> list[str]:
    """Relocate ``case``'s sorted and unsorted splits onto ``target`` (default its base) with
    ``relocate(split, distilled_base, base) -> (rc, split bytes)``: they must agree, be equivalent, and
    the sorted result must still be name-sorted."""
    onto = case.base if target is None else target
    rc_plain, plain = relocate(case.split, case.distilled_base, onto)
    rc_sorted, srt = relocate(case.sorted_split, case.distilled_base, onto)
    if rc_plain != rc_sorted:
        return [f"sorted split relocates with rc {rc_sorted}, unsorted with rc {rc_plain}"]
    if rc_plain or plain is None or srt is None:
        return []
    out = []
    eq = equivalent_bytes(srt, onto, plain, onto)
    if not eq.equal:
        out.append("sorted and unsorted relocations differ: " + "; ".join(eq.differences[:1]))
    if not is_name_sorted(Btf.from_bytes(srt, Btf.from_bytes(onto))):
        out.append("the relocated sorted split is not name-sorted (btf_check_sorted would not mark it)")
    return out


def check_sorted_relocation(base: bytes, split: bytes, target: bytes | None = None) -> list[str]:
    """Findings for one module with the Python reference: distill, sort, relocate both ways."""
    case = sorted_split_case(base, split)
    return [] if case is None else sorted_relocation_findings(case, target=target)


def _p6_cases(ctx: Context) -> st.SearchStrategy[Any]:
    return base_split_pairs(ctx.profile, 5, 60).map(lambda c: sorted_split_case(c.base, c.split, c))


def _p6_universe(case: SortedCase | None) -> Universe:
    """The universe of the pair a P6 case was made from (none, nothing to reduce, for a case made otherwise)."""
    return case.pair.universe if case is not None and case.pair is not None else Universe(())


def _smaller_p6_case(case: SortedCase | None, u: Universe) -> SortedCase | None:
    pair = smaller_pair(case.pair, u) if case is not None and case.pair is not None else None
    return None if pair is None else sorted_split_case(pair.base, pair.split, pair)


def check_p6(case: SortedCase | None, ctx: Context) -> None:
    """P6 on one case, for every selected implementation that relocates."""
    if case is None:
        return
    calls = Calls(ctx)
    both = [(case.split, case.distilled_base, case.base), (case.sorted_split, case.distilled_base, case.base)]
    for name in ctx.impls:  # a worker-hosted implementation gets both in one request, run meanwhile
        calls.begin_relocations(name, both)
    for name, impl in ctx.impls.items():
        if RELOCATE not in impl.capabilities:
            continue

        def run(split: bytes, dist: bytes, base: bytes, name: str = name) -> tuple[int, bytes | None]:
            out = calls.relocate(name, split, dist, base)  # libbpf's predicted Q5 hang: 30 ms, not 5 s
            return (0, out.outputs.get("split")) if out.ok else (out.errno or -1, None)

        found = sorted_relocation_findings(case, run)
        if found:
            # python-strict's attribution of either relocation (Q12: libbpf follows an id it never validated)
            quirks = [q for split in (case.split, case.sorted_split)
                      for q in calls.strict_quirks(RELOCATE, split, case.distilled_base, case.base)]
            # the first difference without its ids and names (a stable signature: Q12's junk id changes from
            # run to run); the description keeps it whole
            finding = Finding(SORTED_SPLITS, name, "sorted differs", normalize(found[0]),
                              *_p6_replay(case, calls, name), quirk=",".join(dict.fromkeys(quirks)) or None,
                              description=f"distilled with python, then name-sorted as resolve_btfids does: {found[0]}")
            if finding.signature not in ctx.known:
                raise PropertyFailure(finding)


def _p6_replay(case: SortedCase, calls: Calls, name: str) -> tuple[dict[str, bytes], list[dict[str, Any]]]:
    """A P6 finding's files and corpus steps: the unsorted and the sorted split relocated onto the base,
    each expecting what libbpf does (and noting what ``name`` did)."""
    files = {"base.btf": case.base, "distilled_base.btf": case.distilled_base, "split.btf": case.split,
             "sorted_split.btf": case.sorted_split}
    steps = []
    for which, fname in (("unsorted", "split.btf"), ("sorted", "sorted_split.btf")):
        split = files[fname]
        args = (split, case.distilled_base, case.base)
        got = calls.relocate(name, *args)
        steps.append(corpus_step(f"relocate-{which}", RELOCATE,
                                 {"split": fname, "distilled_base": "distilled_base.btf", "target": "base.btf"},
                                 op_expect(calls, RELOCATE, args, files, f"relocate.{which}", name, got),
                                 f"{name}: {got.describe()}"))
    return files, steps


PROPERTY = Property(SORTED_SPLITS, "sorted splits: a distilled split name-sorted as resolve_btfids does "
                    "relocates like the unsorted one and stays name-sorted", _p6_cases, check_p6,
                    frozenset({RELOCATE}), reduction=CaseReduction(_p6_universe, _smaller_p6_case))


__all__ = ["PROPERTY", "V16_INTENDED", "check_chain", "check_p6", "check_sorted_relocation",
           "libbpf_distill_chain", "reference_distill_chain", "sorted_relocation_findings"]

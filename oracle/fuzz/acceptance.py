"""Property P4 (:data:`~btfspec.oracle.fuzz.property.ACCEPTANCE`): what an implementation returns as success
is accepted.

Whatever an implementation returns as success is accepted by libbpf's parser (base; split on base)
and, for kernel-valid cases (whose base and split the kernel accepts, whatever the generator profile),
by the kernel (a split merged with its base, :func:`btfspec.oracle.impls.adapter.merge_split`).
Without libbpf the validator's libbpf rules (``python``'s ``accept``) judge the parse.

A distilled base without types (a split that refers to nothing in its base, reference E10) passes the
kernel: ``BPF_BTF_LOAD`` rejects any BTF without types ("No type found", a rule of user BTF only), while
the module loader parses ``.BTF.base`` without that rule and relocates over an empty one
(``tests/test_kernel_vm.py`` shows it on Debian's 6.12).  Any other rejection of it still counts.

A finding's first difference is the validator rule the rejected blob breaks (a stable class); its
``steps`` replay the distill (and relocate) and an ``accept`` step per produced blob.  A relocated split
rejected by an acceptor for the rule its distilled split already breaks (a modifier chain that distill
copied deeper than the kernel resolves, say) inherits that rejection, unless python-strict names a libbpf
quirk of the relocation (Q12's unvalidated ids break the same id-range rule as Q6's wrong ones): the
distilled split's is the finding, whoever relocated it -- libbpf's own, or python-strict's where libbpf's
distill was the same.
"""

from __future__ import annotations

import errno
import functools
from typing import Any

from btfspec.btfgen import coverage
from btfspec.oracle.fuzz.helpers import (
    PAIR_REDUCTION,
    Calls,
    accept_expect,
    case_description,
    corpus_step,
    op_expect,
    pairs,
    raise_new,
    same_as_libbpf,
    short,
    store,
)
from btfspec.oracle.fuzz.property import ACCEPTANCE, Context, Finding, Property
from btfspec.oracle.impls.adapter import ACCEPT, DISTILL, RELOCATE
from btfspec.oracle.impls.outcome import Outcome
from btfspec.spec.errors import BtfError
from btfspec.spec.model import Btf

DISTILLED_BASE = "distilled base"  # what P4 calls the distilled base among the blobs it judges
DISTILLED_SPLIT = "distilled split"
NO_TYPES = "No type found"  # BPF_BTF_LOAD's last log line for BTF without types


def _rule(blob: bytes, base: bytes | None, rules: str) -> str:
    """The validator's first rule id for a rejected blob (the stable class of a rejection)."""
    from btfspec.spec.validate import validate

    found = validate(blob, base, rules=rules)  # type: ignore[arg-type]
    return found[0].rule if found else "no validator rule"


class _Acceptance:
    """The P4 acceptors of one case: libbpf's parser (or the validator) and, if it applies, the kernel."""

    def __init__(self, case: Any, calls: Calls) -> None:
        self.calls = calls
        ctx = calls.ctx
        self.parser = "libbpf" if ctx.get("libbpf") is not None else (
            "python" if ctx.get("python") is not None and ACCEPT in ctx.impls["python"].capabilities else None)
        self.kernel: str | None = None
        if ctx.get("kernel") is not None:  # a kernel-valid case: the kernel accepts its base and split
            base_ok = calls.run("kernel", ACCEPT, case.base, None).ok
            if base_ok and calls.run("kernel", ACCEPT, case.split, case.base).ok:
                self.kernel = "kernel"
            else:
                coverage.record("note", f"P4: kernel rejects a {getattr(case, 'profile', ctx.profile)} input")

    def rejections(self, blob: bytes, base: bytes | None, what: str) -> list[tuple[str, Outcome]]:
        """The acceptors that reject the produced ``what``, with their verdicts.  The kernel's "No type
        found" on a distilled base is no rejection: the module loader takes an empty ``.BTF.base``."""
        out = []
        for who in (self.parser, self.kernel):
            if who is None:
                continue
            verdict = self.calls.run(who, ACCEPT, blob, base)
            if not verdict.ok and not (who == self.kernel and what == DISTILLED_BASE and _only_no_types(verdict)):
                out.append((who, verdict))
        return out


def _only_no_types(verdict: Outcome) -> bool:
    """Is the kernel's rejection the user-BTF rule that a BTF has at least one type, and nothing else?"""
    lines = verdict.log.strip().splitlines()
    return verdict.errno == -errno.EINVAL and bool(lines) and lines[-1] == NO_TYPES


def check_p4(case: Any, ctx: Context) -> None:
    """P4 on one base/split pair (see the module docstring)."""
    calls = Calls(ctx)
    # libbpf's distill, relocation and parses of its outputs: one request, run meanwhile (nothing without libbpf)
    calls.begin_distill_relocate("libbpf", case.split, case.base, case.base, accepts=True)
    acc = _Acceptance(case, calls)
    if acc.parser is None and acc.kernel is None:
        return
    base, split = case.base, case.split
    for name, impl in ctx.impls.items():
        if name == "kernel" or DISTILL not in impl.capabilities:
            continue
        d = calls.run(name, DISTILL, split, base)
        if not d.ok:
            continue
        dbase, dsplit = d.outputs.get("base", b""), d.outputs.get("split", b"")
        produced = [(DISTILLED_BASE, DISTILL, dbase, None), (DISTILLED_SPLIT, DISTILL, dsplit, dbase)]
        r: Outcome | None = None
        if RELOCATE in impl.capabilities:
            r = calls.relocate(name, dsplit, dbase, base)
            if r.ok:
                produced.append(("relocated split", RELOCATE, r.outputs.get("split", b""), base))
        # libbpf's own outputs are judged on libbpf: the distilled blobs when the distill is libbpf's, the
        # relocated split when the relocation is too (a rejection of them is libbpf's finding, not a second one)
        same_d = same_as_libbpf(calls, name, DISTILL, (split, base), d)
        same_r = same_d and (r is None or same_as_libbpf(calls, name, RELOCATE, (dsplit, dbase, base), r))
        broken: set[tuple[str, str]] = set()  # (acceptor, rule) the distilled split breaks
        for what, op, blob, on in produced:
            own = not (same_r or (same_d and op == DISTILL))
            if not own and what != DISTILLED_SPLIT:
                continue
            for who, verdict in acc.rejections(blob, on, what):
                rule = _rejection_rule(who, blob, on)
                if what == DISTILLED_SPLIT:
                    broken.add((who, rule))
                elif (op == RELOCATE and (who, rule) in broken
                      and not _relocation_quirks(calls, name, dsplit, dbase, base)):
                    continue  # inherited from the distilled split it was made from: that rejection is the finding
                if own:
                    raise_new(ctx, _p4_finding(case, calls, name, d, r, what, op, blob, who, verdict, rule))


def _relocation_quirks(calls: Calls, name: str, dsplit: bytes, dbase: bytes, base: bytes) -> list[str]:
    """The libbpf quirks that may have made ``name``'s relocated split what it is: those python-strict names
    on the relocation, unless ``name`` is python-strict (it names the quirks it corrects, not ones it has)."""
    return [] if name == "python-strict" else calls.strict_quirks(RELOCATE, dsplit, dbase, base)


@functools.lru_cache(maxsize=64)  # each implementation's loop asks it of the same shared distilled split
def _rejection_rule(who: str, blob: bytes, on: bytes | None) -> str:
    """The validator rule behind ``who``'s rejection of ``blob`` (on ``on``): kernel rules on the split merged
    with its base, as BPF_BTF_LOAD sees it, or libbpf's on the split parsed on its base."""
    if who == "kernel":
        return _rule(merged(blob, on) if on is not None else blob, None, "kernel")
    return _rule(blob, on, "libbpf")


def _p4_finding(case: Any, calls: Calls, name: str, d: Outcome, r: Outcome | None, what: str, op: str,
                blob: bytes, who: str, verdict: Outcome, rule: str) -> Finding:
    files: dict[str, bytes] = {"base.btf": case.base, "split.btf": case.split}
    steps: list[dict[str, Any]] = []
    exp = op_expect(calls, DISTILL, (case.split, case.base), files, "distill", name, d)
    dbase = store(files, f"{name}.distill.base.btf", d.outputs["base"])
    dsplit = store(files, f"{name}.distill.split.btf", d.outputs["split"])
    steps.append(corpus_step("distill", DISTILL, {"split": "split.btf", "base": "base.btf"}, exp,
                             f"{name}: {d.describe()}" if name != "libbpf" else ""))
    accepts = [("accept-distill-base", dbase, None, d.outputs["base"], None),
               ("accept-distill-split", dsplit, dbase, d.outputs["split"], d.outputs["base"])]
    if op == RELOCATE and r is not None:
        args = (d.outputs["split"], d.outputs["base"], case.base)
        exp = op_expect(calls, RELOCATE, args, files, "relocate", name, r)
        steps.append(corpus_step("relocate", RELOCATE, {"split": dsplit, "distilled_base": dbase, "target": "base.btf"},
                                 exp, f"{name}: {r.describe()}" if name != "libbpf" else ""))
        rsplit = store(files, f"{name}.relocate.split.btf", r.outputs["split"])
        accepts.append(("accept-relocate", rsplit, "base.btf", r.outputs["split"], case.base))
    for step_name, fname, base_name, data, base_data in accepts:
        inputs = {"btf": fname, **({"base": base_name} if base_name else {})}
        steps.append(corpus_step(step_name, ACCEPT, inputs, accept_expect(calls, data, base_data, files)))
        if data == blob:
            break
    rules = "kernel" if who == "kernel" else "libbpf"
    quirks = calls.strict_quirks(op, *((case.split, case.base) if op == DISTILL else
                                       (d.outputs["split"], d.outputs["base"], case.base)))
    if not quirks and op == RELOCATE:
        quirks = calls.strict_quirks(DISTILL, case.split, case.base)
    desc = (f"{case_description(case)}. {name} {op} succeeded but {who} rejects its {what}: "
            f"{verdict.describe()}")
    return Finding(ACCEPTANCE, name, f"{what} rejected by {who}: {short(verdict)}", f"{rules} rule {rule}", files,
                   steps, ",".join(quirks) or None, desc)


def merged(split: bytes, base: bytes) -> bytes:
    """``split`` merged onto ``base`` as BPF_BTF_LOAD sees it (``split`` itself if it cannot be merged)."""
    from btfspec.oracle.impls.adapter import merge_split

    try:
        return merge_split(Btf.from_bytes(split, base=Btf.from_bytes(base)))
    except BtfError:
        return split


def unusable_reason(ctx: Context) -> str | None:
    """Why P4 cannot run with the selected implementations (None when it can)."""
    impls = ctx.impls
    if not any(n != "kernel" and DISTILL in i.capabilities for n, i in impls.items()):
        return "needs an implementation that distills"
    if "libbpf" not in impls and "kernel" not in impls and not (
            "python" in impls and ACCEPT in impls["python"].capabilities):
        return "needs libbpf, the kernel or the validator (python) to judge acceptance"
    return None


PROPERTY = Property(ACCEPTANCE, "acceptance: successful outputs are accepted by libbpf's parser and the kernel",
                    pairs, check_p4, frozenset({DISTILL}), unusable_reason, PAIR_REDUCTION)

__all__ = ["PROPERTY", "check_p4", "merged", "unusable_reason"]

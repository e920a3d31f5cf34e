"""Properties P3 (differential), P4 (acceptance) and P5 (robustness) over the implementations.

Each is a :class:`~btfspec.oracle.fuzz.property.Property` usable from pytest (``@given(prop.strategy(ctx))`` then
``prop.check(case, ctx)``) and from the campaign runner (:mod:`btfspec.oracle.fuzz.campaign`):

* **P3 differential** -- on a generated base/split pair (:func:`btfspec.btfgen.generate.base_split_pairs`),
  every selected implementation agrees with ``libbpf`` (status, errno, output bytes) on distill and
  on relocating libbpf's distilled outputs onto the original base.  ``python`` may differ only as
  :func:`btfspec.oracle.impls.adapter.agree` excuses (Q5, Q17); ``python-strict`` may differ only where its result
  names a quirk (it flags exactly the inputs where a quirk fired); every other implementation
  (``cmd``) must be identical.
* **P4 acceptance** -- whatever an implementation returns as success is accepted by libbpf's parser
  (base; split on base) and, for kernel-valid cases (whose base and split the kernel accepts, whatever
  the generator profile), by the kernel (a split merged with its base, :func:`oracle.impls.adapter.merge_split`).
  An empty distilled base (quirk Q6) that the kernel rejects ("No type found") is a finding like any
  other.
* **P5 robustness** -- on mutated blobs (:mod:`btfspec.btfgen.mutate`), standalone or split on a fixed base:
  the model parser raises only :class:`~btfspec.spec.errors.BtfError`, the validator never raises nor reports
  an ``internal`` failure, the Python reference's distill/relocate return (never raise), each within
  :data:`OP_TIME_LIMIT`; libbpf's parse never crashes or hangs; the validator's ``libbpf`` rules agree
  with libbpf (accept/reject and errno) and its ``kernel`` rules with ``BPF_BTF_LOAD`` (standalone
  blobs).  Only the validator author's documented libbpf disagreements are excused
  (:func:`known_disagreement`; none today).

A violation raises :class:`~btfspec.oracle.fuzz.property.PropertyFailure` carrying a
:class:`~btfspec.oracle.fuzz.property.Finding` whose ``steps`` replay it as a corpus entry (``expect`` records
what libbpf -- and, for accept steps, the kernel -- did; what the implementation at fault did is in
the step's ``note`` and the description) and whose ``quirk`` lists the ids python-strict reports on
the same operation (comma-joined).  The signature (property, implementation, outcome, first
difference) uses stable classes -- statuses, errnos, the differing header field or record kind, a
validator rule id, an exception's raising location -- so one bug gives one finding.  A finding whose
signature is in ``ctx.known`` counts as passing.
"""

from __future__ import annotations

import contextlib
import errno as _errno
import functools
import os
import re
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from hypothesis import strategies as st

from btfspec.btfgen import coverage
from btfspec.oracle.fuzz.corpus import this_host
from btfspec.oracle.fuzz.property import Context, Finding, Property, PropertyFailure
from btfspec.oracle.impls.adapter import (
    ACCEPT,
    DISTILL,
    RELOCATE,
    Implementation,
    agree,
    known_finding,
    outcome_difference,
)
from btfspec.oracle.impls.outcome import CRASH, ERROR, OK, TIMEOUT, Outcome
from btfspec.spec.errors import BtfError, errno_text
from btfspec.spec.model import Btf

MIN_TYPES, MAX_TYPES = 3, 60  # universe size for P3/P4 cases
OP_TIME_LIMIT = 3.0  # P5: seconds any in-process operation on a small mutated blob may take
HANG_LIMIT = 20.0  # P5: an in-process operation still running after this is interrupted (main thread only)
Q5_SUSPECT_TIMEOUT = 2.0  # libbpf relocate limit when the reference predicts the Q5 hang
_QUIRK_ID = re.compile(r"Q\d+\Z")
_DIGITS = re.compile(r"\d+")


# --------------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------------

def short(out: Outcome) -> str:
    """``ok``, ``error -EINVAL (22)``, ``timeout``, ``crash (SIGSEGV)``: status without the log."""
    if out.status == ERROR:
        return f"error {errno_text(out.errno)}"
    if out.status == CRASH and out.detail:
        return f"crash ({out.detail})"
    return out.status


def quirk_ids(out: Outcome) -> list[str]:
    """The catalogue ids a reference outcome names in ``detail`` (nothing for other details)."""
    return [p.strip() for p in out.detail.split(",") if _QUIRK_ID.match(p.strip())]


def _bytes_class(want: bytes, got: bytes) -> str:
    """A stable class of the first difference between two blobs (no ids, offsets or names)."""
    try:
        a, b = Btf.from_bytes(want), Btf.from_bytes(got)
    except BtfError:
        return "unparseable bytes"
    for fld in ("order", "hdr_len", "type_len", "str_len"):
        if getattr(a.header, fld, None) != getattr(b.header, fld, None):
            if fld in ("type_len", "str_len") and a.nr_types != b.nr_types:
                return "type count"
            if fld != "str_len":
                return f"header {fld}"
    for (_, ta), (_, tb) in zip(a.own_types(), b.own_types(), strict=False):
        if ta == tb:
            continue
        kind = ta.kind_name if ta.kind == tb.kind else f"{ta.kind_name}/{tb.kind_name}"
        for fld in ("info", "name_off", "size_type", "fixed", "elems"):
            if getattr(ta, fld) != getattr(tb, fld):
                return f"{kind} record {fld}"
    if a.nr_types != b.nr_types:
        return "type count"
    if a.strings != b.strings:
        return "strings"
    return "bytes"


def difference_class(op: str, want: Outcome, got: Outcome) -> str:
    """One stable line for how ``got`` differs from ``want`` (``want`` normally libbpf's outcome)."""
    if want.status != got.status or (want.status == ERROR and want.errno != got.errno):
        return f"{op}: {short(got)} where libbpf gives {short(want)}"
    if sorted(want.outputs) != sorted(got.outputs):
        return f"{op}: outputs {sorted(got.outputs)} where libbpf gives {sorted(want.outputs)}"
    for role in sorted(want.outputs):
        if want.outputs[role] != got.outputs[role]:
            return f"{op}: output {role} differs ({_bytes_class(want.outputs[role], got.outputs[role])})"
    return f"{op}: no difference"


def _normalize(text: str, limit: int = 100) -> str:
    return _DIGITS.sub("N", text.strip())[:limit]


def raise_new(ctx: Context, finding: Finding) -> None:
    """Raise the finding unless its signature is already known (then the check goes on)."""
    if finding.signature not in ctx.known:
        raise PropertyFailure(finding)


@functools.cache
def _strict_impl() -> Implementation | None:
    from btfspec.oracle.impls.adapter import ImplUnavailable, PythonImpl

    try:
        return PythonImpl(strict=True)
    except ImplUnavailable:
        return None


@functools.cache
def _python_impl() -> Implementation | None:
    from btfspec.oracle.impls.adapter import ImplUnavailable, PythonImpl

    try:
        return PythonImpl(strict=False)
    except ImplUnavailable:
        return None


class Calls:
    """One check's implementation calls, cached by (implementation, operation, inputs)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._cache: dict[tuple[Any, ...], Outcome] = {}

    def impl(self, name: str) -> Implementation | None:
        """A selected implementation, or the in-tree reference for ``python``/``python-strict``."""
        got = self.ctx.get(name)
        if got is None and name == "python-strict":
            return _strict_impl()
        if got is None and name == "python":
            return _python_impl()
        return got

    def run(self, name: str, op: str, *args: bytes | None, timeout: float | None = None) -> Outcome:
        """``op`` on implementation ``name`` (cached); records the errno reached in the coverage."""
        key = (name, op, *args)
        if key in self._cache:
            return self._cache[key]
        impl = self.impl(name)
        if impl is None:
            raise KeyError(name)
        worker = getattr(impl, "worker", None)
        if timeout is not None and op == RELOCATE and worker is not None:
            out = worker.relocate(*args, timeout=timeout)
        elif op == DISTILL:
            out = impl.distill(args[0], args[1])  # type: ignore[arg-type]
        elif op == RELOCATE:
            out = impl.relocate(args[0], args[1], args[2])  # type: ignore[arg-type]
        else:
            out = impl.accept(args[0], args[1] if len(args) > 1 else None)  # type: ignore[arg-type]
        coverage.record("errno", f"{name} {op} {short(out)}")
        self._cache[key] = out
        return out

    def strict_quirks(self, op: str, *args: bytes | None) -> list[str]:
        """The quirk ids python-strict names on the same operation (its attribution of a finding)."""
        if self.impl("python-strict") is None or op == ACCEPT:
            return []
        return quirk_ids(self.run("python-strict", op, *args))

    def libbpf_relocate(self, split: bytes, dist_base: bytes, base: bytes) -> Outcome:
        """libbpf relocation, with a short limit where the reference predicts the Q5 hang."""
        timeout = None
        ref = self.impl("python")
        if ref is not None:
            pred = self.run("python", RELOCATE, split, dist_base, base)
            if pred.status == ERROR and pred.errno == -_errno.ELOOP and "Q5" in quirk_ids(pred):
                timeout = Q5_SUSPECT_TIMEOUT
        return self.run("libbpf", RELOCATE, split, dist_base, base, timeout=timeout)


def expectation(out: Outcome, files: dict[str, bytes], prefix: str, source: str = "") -> dict[str, Any]:
    """A corpus ``expect`` object for ``out``; ok outputs are stored in ``files`` as ``prefix.role.btf``
    (an identical blob already in ``files`` is reused)."""
    exp: dict[str, Any] = {"status": out.status}
    if out.status == ERROR:
        exp["errno"] = out.errno
    if out.ok and out.outputs:
        exp["outputs"] = {role: store(files, f"{prefix}.{role}.btf", data)
                          for role, data in sorted(out.outputs.items())}
    if source:
        exp["source"] = source
    if out.status in (TIMEOUT, CRASH) and out.detail:
        exp["note"] = out.detail
    return exp


def _role(name: str) -> str:
    """``python.distill.base.btf`` -> ``distill.base``; ``split.btf`` -> ``split``."""
    return ".".join(name.split(".")[-3:-1])


def store(files: dict[str, bytes], name: str, data: bytes) -> str:
    """Put ``data`` in ``files`` as ``name`` unless an identical file of the same role (``distill.base``,
    ``relocate.split``, ...; any implementation prefix) is already there; returns the name used.

    Only same-role files are shared, so one file is never the split of two different bases."""
    for have, blob in files.items():
        if blob == data and _role(have) == _role(name):
            return have
    files[name] = data
    return name


def corpus_step(name: str, op: str, inputs: Mapping[str, str], expect: Mapping[str, Any],
                note: str = "") -> dict[str, Any]:
    """One step of a corpus manifest: operation, named inputs and the expected outcome per implementation."""
    step: dict[str, Any] = {"name": name, "op": op, "inputs": dict(inputs), "expect": dict(expect)}
    if note:
        step["note"] = note[:300]
    return step


def _source(impl: str) -> str:
    return {"libbpf": "libbpf v1.6", "kernel": f"BPF_BTF_LOAD on {os.uname().release}"}.get(impl, impl)


def op_expect(calls: Calls, op: str, args: tuple[bytes, ...], files: dict[str, bytes], prefix: str, at_fault: str,
              fallback: Outcome | None = None) -> dict[str, Any]:
    """The ``expect`` of a distill/relocate step, in the corpus conventions (corpus/README.md).

    ``default`` is libbpf's outcome; where libbpf hangs or crashes on a documented finding (Q5, Q17) and
    the implementation at fault is not ``cmd`` (held to libbpf's exact behaviour by P3), ``libbpf`` gets
    its own key with the finding and ``default`` holds python's answer; ``python-strict`` gets its own
    key where it deliberately differs naming a quirk (unless it is the implementation at fault).
    Without libbpf, ``at_fault``'s own outcome (``fallback``) is recorded under its own name.
    """
    if calls.impl("libbpf") is None:
        if fallback is None:
            return {"default": {"skip": "no libbpf in the campaign that found this"}}
        return {at_fault: expectation(fallback, files, f"{at_fault}.{prefix}", at_fault)}
    lib = calls.libbpf_relocate(*args) if op == RELOCATE else calls.run("libbpf", op, *args)
    exp = {"default": expectation(lib, files, prefix, _source("libbpf"))}
    if at_fault not in ("cmd", "python") and lib.status in (TIMEOUT, CRASH) and calls.impl("python") is not None:
        py = calls.run("python", op, *args)
        fid = known_finding(lib, py)
        if fid:
            exp = {"libbpf": {**expectation(lib, files, prefix, _source("libbpf")), "finding": fid},
                   "default": expectation(py, files, prefix, "python")}
    if at_fault != "python-strict" and calls.impl("python-strict") is not None:
        strict = calls.run("python-strict", op, *args)
        quirks = quirk_ids(strict)
        if quirks and outcome_difference(lib, strict) is not None:
            exp["python-strict"] = {**expectation(strict, files, f"python-strict.{prefix}", "python-strict"),
                                    "quirks": quirks}
    return exp


# --------------------------------------------------------------------------------------------------
# P3: differential
# --------------------------------------------------------------------------------------------------

def judge(name: str, lib: Outcome, got: Outcome) -> str | None:
    """Why ``got`` (implementation ``name``) is not an acceptable answer where libbpf gave ``lib``."""
    if outcome_difference(lib, got) is None:
        return None
    if name == "python":
        ok, _ = agree(lib, got)
        return None if ok else "differs from libbpf"
    if name == "python-strict":
        return None if quirk_ids(got) else "differs from libbpf without naming a quirk"
    return "differs from libbpf"


def case_description(case: Any) -> str:
    """A generated case in one phrase (profile, size, quirk shapes) for a finding's description."""
    u = getattr(case, "universe", None)
    if u is None:
        return ""
    return (f"generated {getattr(u, 'profile', '?')} universe: {len(u.nodes)} nodes "
            f"({len(u.kernel_keys())} kernel, {len(u.module_keys())} module)")


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
    return Finding("P3", name, f"{op} {why}", difference_class(op, lib, got), files, steps,
                   ",".join(quirks) or None, desc)


def check_p3(case: Any, ctx: Context) -> None:
    """P3 on one base/split pair (see the module docstring)."""
    if ctx.get("libbpf") is None:
        return
    calls = Calls(ctx)
    base, split = case.base, case.split
    others = [n for n, i in ctx.impls.items() if n not in ("libbpf", "kernel") and i.capabilities & {DISTILL, RELOCATE}]
    lib_d = calls.run("libbpf", DISTILL, split, base)
    distill_ok: dict[str, bool] = {}
    for name in others:
        if DISTILL not in ctx.impls[name].capabilities:
            distill_ok[name] = True
            continue
        got = calls.run(name, DISTILL, split, base)
        why = judge(name, lib_d, got)
        distill_ok[name] = why is None
        if why:
            raise_new(ctx, _p3_finding(case, calls, name, DISTILL, why, lib_d, got, lib_d, False))
    if not lib_d.ok:
        return
    args = (lib_d.outputs["split"], lib_d.outputs["base"], base)
    lib_r = calls.libbpf_relocate(*args)
    for name in others:
        if RELOCATE not in ctx.impls[name].capabilities:
            continue
        got = calls.run(name, RELOCATE, *args)
        why = judge(name, lib_r, got)
        if why:
            raise_new(ctx, _p3_finding(case, calls, name, RELOCATE, why, lib_r, got, lib_d, distill_ok[name]))


def _pairs(ctx: Context) -> st.SearchStrategy[Any]:
    from btfspec.btfgen.generate import base_split_pairs

    return base_split_pairs(ctx.profile, MIN_TYPES, MAX_TYPES)


# --------------------------------------------------------------------------------------------------
# P4: acceptance
# --------------------------------------------------------------------------------------------------

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

    def verdicts(self, blob: bytes, base: bytes | None) -> list[tuple[str, Outcome]]:
        return [(a, self.calls.run(a, ACCEPT, blob, base)) for a in (self.parser, self.kernel) if a]


def accept_expect(calls: Calls, blob: bytes, base: bytes | None, files: dict[str, bytes]) -> dict[str, Any]:
    """The ``expect`` of an accept step: libbpf's parser as ``default`` (the validator's libbpf rules without
    libbpf) and the kernel's verdict recorded for this host (a skip where BPF_BTF_LOAD was unavailable)."""
    exp: dict[str, Any] = {}
    if calls.impl("libbpf") is not None:
        exp["default"] = expectation(calls.run("libbpf", ACCEPT, blob, base), files, "accept", _source("libbpf"))
    else:
        from btfspec.spec.validate import validate

        found = validate(blob, base, rules="libbpf")
        exp["default"] = ({"status": OK, "source": "validator (libbpf rules)"} if not found else
                          {"status": ERROR, "errno": found[0].errno, "source": "validator (libbpf rules)"})
    if calls.impl("kernel") is not None:
        out = calls.run("kernel", ACCEPT, blob, base)
        exp["kernel"] = {**expectation(out, files, "kernel", _source("kernel")), "recorded_on": this_host()}
    else:
        exp["kernel"] = {"skip": "no kernel verdict recorded (BPF_BTF_LOAD was unavailable)"}
    return exp


def check_p4(case: Any, ctx: Context) -> None:
    """P4 on one base/split pair (see the module docstring)."""
    calls = Calls(ctx)
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
        produced = [("distilled base", DISTILL, dbase, None), ("distilled split", DISTILL, dsplit, dbase)]
        r: Outcome | None = None
        if RELOCATE in impl.capabilities:
            r = (calls.libbpf_relocate(dsplit, dbase, base) if name == "libbpf"
                 else calls.run(name, RELOCATE, dsplit, dbase, base))
            if r.ok:
                produced.append(("relocated split", RELOCATE, r.outputs.get("split", b""), base))
        for what, op, blob, on in produced:
            for who, verdict in acc.verdicts(blob, on):
                if verdict.ok:
                    continue
                raise_new(ctx, _p4_finding(case, calls, acc, name, d, r, what, op, blob, on, who, verdict))


def _p4_finding(case: Any, calls: Calls, acc: _Acceptance, name: str, d: Outcome, r: Outcome | None, what: str,
                op: str, blob: bytes, on: bytes | None, who: str, verdict: Outcome) -> Finding:
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
    rule = _rule(merged(blob, on) if who == "kernel" and on is not None else blob, None if who == "kernel" else on,
                 rules)
    quirks = calls.strict_quirks(op, *((case.split, case.base) if op == DISTILL else
                                       (d.outputs["split"], d.outputs["base"], case.base)))
    if not quirks and op == RELOCATE:
        quirks = calls.strict_quirks(DISTILL, case.split, case.base)
    desc = (f"{case_description(case)}. {name} {op} succeeded but {who} rejects its {what}: "
            f"{verdict.describe()}")
    return Finding("P4", name, f"{what} rejected by {who}: {short(verdict)}", f"{rules} rule {rule}", files, steps,
                   ",".join(quirks) or None, desc)


def merged(split: bytes, base: bytes) -> bytes:
    """``split`` merged onto ``base`` as BPF_BTF_LOAD sees it (``split`` itself if it cannot be merged)."""
    from btfspec.oracle.impls.adapter import merge_split

    try:
        return merge_split(Btf.from_bytes(split, base=Btf.from_bytes(base)))
    except BtfError:
        return split


# --------------------------------------------------------------------------------------------------
# P5: robustness
# --------------------------------------------------------------------------------------------------

@functools.cache
def split_seeds() -> tuple[bytes, tuple[bytes, ...]]:
    """A fixed base (every kind) and a few valid splits on it: the seeds of P5's split blobs."""
    from btfspec.btfgen.samples import every_kind, small_split
    from btfspec.spec.builder import Builder

    base_blob = every_kind().to_bytes()
    base = Btf.from_bytes(base_blob)
    splits = [small_split(base).to_bytes()]
    b = Builder(base)
    p = b.ptr(1)
    b.typedef("t", 1)
    b.struct("s2", 16, [("a", 1, 0, 0), ("p", p, 64, 0)])
    splits.append(b.to_bytes())
    b = Builder(base)
    b.ptr(2)
    splits.append(b.to_bytes())
    return base_blob, tuple(splits)


@functools.cache
def _seed_distilled() -> tuple[bytes, bytes]:
    """The reference's distill of the first seed split: (distilled split, distilled base)."""
    from btfspec.oracle.impls.reference import distill

    base, splits = split_seeds()
    res = distill(splits[0], base)
    assert res.ok and res.split is not None and res.base is not None
    return res.split, res.base


def _mutations() -> st.SearchStrategy[tuple[str, str, bytes]]:
    from btfspec.btfgen.mutate import mutated_blobs

    _, splits = split_seeds()
    alone = mutated_blobs().map(lambda e: ("standalone", e[0], e[1]))
    split = mutated_blobs(st.sampled_from(splits)).map(lambda e: ("split", e[0], e[1]))
    return st.one_of(alone, split)


class _Hang(BaseException):
    """An in-process operation exceeded :data:`HANG_LIMIT` (raised by SIGALRM in the main thread)."""


@contextlib.contextmanager
def _hang_guard(limit: float) -> Iterator[None]:
    """Interrupt the block with :class:`_Hang` after ``limit`` s (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def fire(signum: int, frame: object) -> None:
        raise _Hang()

    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _where(exc: BaseException) -> str:
    """``ExcType at file.py:function`` from the innermost frame (a stable crash class)."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return type(exc).__name__
    f = frames[-1]
    return f"{type(exc).__name__} at {os.path.basename(f.filename)}:{f.name}"


def timed(fn: Callable[[], Any]) -> tuple[Any, BaseException | None, float]:
    """Run ``fn`` under the hang guard: (result, exception or None, seconds)."""
    start = time.monotonic()
    try:
        with _hang_guard(HANG_LIMIT):
            return fn(), None, time.monotonic() - start
    except (Exception, _Hang) as exc:
        return None, exc, time.monotonic() - start


def _p5_files(mode: str, blob: bytes) -> tuple[dict[str, bytes], dict[str, str]]:
    base, _ = split_seeds()
    if mode == "split":
        return {"blob.btf": blob, "base.btf": base}, {"btf": "blob.btf", "base": "base.btf"}
    return {"blob.btf": blob}, {"btf": "blob.btf"}


class _P5:
    """One mutated blob under P5."""

    def __init__(self, case: tuple[str, str, bytes], ctx: Context) -> None:
        self.mode, self.desc, self.blob = case
        self.ctx = ctx
        self.calls = Calls(ctx)
        self.base = split_seeds()[0] if self.mode == "split" else None

    def finding(self, impl: str, outcome: str, first: str, detail: str,
                more: Callable[[dict[str, bytes]], list[dict[str, Any]]] | None = None) -> Finding:
        files, inputs = _p5_files(self.mode, self.blob)
        steps = [corpus_step("accept", ACCEPT, inputs, accept_expect(self.calls, self.blob, self.base, files))]
        if more is not None:
            steps += more(files)
        return Finding("P5", impl, outcome, first, files, steps, None,
                       f"{self.mode} mutated blob ({self.desc}). {detail}")

    def bounded(self, who: str, what: str, fn: Callable[[], Any], allowed: tuple[type[BaseException], ...] = (),
                more: Callable[[dict[str, bytes]], list[dict[str, Any]]] | None = None) -> tuple[bool, Any]:
        """Run ``fn``: ``(True, result)``, or ``(False, exception)``; an exception outside ``allowed``, a
        hang or a run slower than :data:`OP_TIME_LIMIT` is a finding."""
        result, exc, secs = timed(fn)
        if exc is not None and not isinstance(exc, allowed):
            hang = isinstance(exc, _Hang)
            outcome = f"{what} hangs (> {HANG_LIMIT:g} s)" if hang else f"{what} raises {type(exc).__name__}"
            tb = "".join(traceback.format_exception(exc)[-3:]).strip()
            raise_new(self.ctx, self.finding(who, outcome, "hang" if hang else _where(exc), f"{what}: {tb}", more))
        if secs > OP_TIME_LIMIT:
            raise_new(self.ctx, self.finding(who, f"{what} slower than {OP_TIME_LIMIT:g} s", "time bound",
                                              f"{what} took {secs:.2f} s", more))
        return (True, result) if exc is None else (False, exc)

    def run(self) -> None:
        from btfspec.spec.validate import validate

        for part in self.desc.split("; ")[1:]:
            coverage.record("label", part.split(":", 1)[0])
        base_btf = Btf.from_bytes(self.base) if self.base is not None else None
        self.bounded("model", "Btf.from_bytes", lambda: Btf.from_bytes(self.blob, base=base_btf), (BtfError,))
        verdicts = {}
        for rules in ("libbpf", "kernel"):
            ok, found = self.bounded("validator", f"validate(rules={rules})",
                                     lambda r=rules: validate(self.blob, self.base, rules=r))
            if not ok:
                continue
            internal = [v for v in found if v.rule == "internal"]
            if internal:
                raise_new(self.ctx, self.finding("validator", f"validate(rules={rules}) fails internally",
                                                  _normalize(internal[0].message), str(internal[0])))
            verdicts[rules] = found
            coverage.record("rule", f"{rules} {found[0].rule}" if found else f"{rules} ok")
        self.agreement(verdicts)
        self.reference()

    def agreement(self, verdicts: Mapping[str, list[Any]]) -> None:
        """The validator's verdicts against libbpf's parser and the kernel."""
        pairs: list[tuple[str, str, bytes | None]] = []
        if self.ctx.get("libbpf") is not None:
            pairs.append(("libbpf", "libbpf", self.base))
        if self.ctx.get("kernel") is not None and self.mode == "standalone":
            pairs.append(("kernel", "kernel", None))
        for who, rules, base in pairs:
            out = self.calls.run(who, ACCEPT, self.blob, base)
            if out.status in (TIMEOUT, CRASH):
                raise_new(self.ctx, self.finding(who, f"parse {short(out)}", f"{who} parse {out.status}",
                                                  out.describe()))
                continue
            excuse = known_disagreement(self.blob) if who == "libbpf" else None
            if excuse:
                coverage.record("note", f"P5: known libbpf disagreement {excuse}")
                continue
            if rules not in verdicts:
                continue
            found = verdicts[rules]
            text = "; ".join(str(v) for v in found[:5]) or "no violation"
            detail = f"{who}: {out.describe()}; validator ({rules} rules): {text}"
            if out.ok and found:
                raise_new(self.ctx, self.finding("validator", f"{rules} rules reject what {who} accepts",
                                                  f"rule {found[0].rule}", detail))
            elif not out.ok and not found:
                raise_new(self.ctx, self.finding("validator", f"{rules} rules accept what {who} rejects",
                                                  f"{who} {errno_text(out.errno)}", detail))
            elif not out.ok and found[0].errno != out.errno:
                raise_new(self.ctx, self.finding(
                    "validator", f"{rules} rules give another errno than {who}",
                    f"rule {found[0].rule} {errno_text(found[0].errno)} vs {who} {errno_text(out.errno)}", detail))

    def reference(self) -> None:
        """The reference's distill and relocate on the blob return (never raise) in bounded time."""
        from btfspec.oracle.impls import reference

        seed_base, seeds = split_seeds()
        if self.mode == "split":
            ops = [(DISTILL, (self.blob, seed_base)), (RELOCATE, (self.blob, seed_base, seed_base))]
        else:
            dsplit, dbase = _seed_distilled()
            ops = [(DISTILL, (seeds[0], self.blob)), (RELOCATE, (dsplit, dbase, self.blob))]
        for name in ("python", "python-strict"):
            if self.ctx.get(name) is None:
                continue
            strict = name == "python-strict"
            for op, args in ops:
                fn = reference.distill if op == DISTILL else reference.relocate

                def call(fn: Callable[..., Any] = fn, args: tuple[bytes, ...] = args, strict: bool = strict) -> Any:
                    return fn(*args, strict=strict)

                def more(files: dict[str, bytes], op: str = op, args: tuple[bytes, ...] = args,
                         name: str = name) -> list[dict[str, Any]]:
                    return self.op_steps(files, op, args, name)

                self.bounded(name, f"reference {op}", call, more=more)

    def op_steps(self, files: dict[str, bytes], op: str, args: tuple[bytes, ...],
                 at_fault: str) -> list[dict[str, Any]]:
        """A step replaying ``op`` on ``args`` (stored in ``files``), expecting libbpf's status and errno."""
        roles = ("split", "base") if op == DISTILL else ("split", "distilled_base", "target")
        inputs = {role: store(files, f"{op}.{role}.btf", data) for role, data in zip(roles, args, strict=True)}
        exp = op_expect(self.calls, op, args, {}, op, at_fault)
        for e in exp.values():
            e.pop("outputs", None)  # outputs on hostile inputs are not stored: status and errno suffice
        return [corpus_step(f"reference-{op}", op, inputs, exp)]


def known_disagreement(blob: bytes) -> str | None:
    """The name of the validator author's documented libbpf disagreement ``blob`` matches, if any.

    The table (name -> (predicate on the blob, reason)) is ``btfspec.spec.validate.KNOWN_LIBBPF_DISAGREEMENTS``
    when the validator's author publishes it there; today it lives, empty, in ``tests/test_mutation.py``,
    so nothing is excused.
    """
    import btfspec.spec.validate

    table = getattr(btfspec.spec.validate, "KNOWN_LIBBPF_DISAGREEMENTS", {})
    for name, (matches, _reason) in dict(table).items():
        if matches(blob):
            return str(name)
    return None


def check_p5(case: tuple[str, str, bytes], ctx: Context) -> None:
    """P5 on one mutated blob (see the module docstring)."""
    _P5(case, ctx).run()


# --------------------------------------------------------------------------------------------------
# registry
# --------------------------------------------------------------------------------------------------

def unusable_reason(name: str, ctx: Context) -> str | None:
    """Why property ``name`` cannot run with the selected implementations (None when it can)."""
    impls = ctx.impls
    if name == "P3":
        if "libbpf" not in impls:
            return "needs libbpf (the reference every implementation is compared with)"
        if not any(n not in ("libbpf", "kernel") and i.capabilities & {DISTILL, RELOCATE} for n, i in impls.items()):
            return "needs an implementation besides libbpf that distills or relocates"
        return None
    if name == "P4":
        if not any(n != "kernel" and DISTILL in i.capabilities for n, i in impls.items()):
            return "needs an implementation that distills"
        if "libbpf" not in impls and "kernel" not in impls and not (
                "python" in impls and ACCEPT in impls["python"].capabilities):
            return "needs libbpf, the kernel or the validator (python) to judge acceptance"
        return None
    if name == "P5":
        if not any(n in impls for n in ("python", "python-strict", "libbpf", "kernel")):
            return "needs python, python-strict, libbpf or kernel"
        return None
    return None


PROPERTIES: dict[str, Property] = {
    "P3": Property("P3", "differential: every implementation agrees with libbpf on distill and relocate",
                   _pairs, check_p3, frozenset({DISTILL})),
    "P4": Property("P4", "acceptance: successful outputs are accepted by libbpf's parser and the kernel",
                   _pairs, check_p4, frozenset({DISTILL})),
    "P5": Property("P5", "robustness: mutated blobs never crash or hang; validator, libbpf and kernel agree",
                   lambda ctx: _mutations(), check_p5, frozenset({ACCEPT})),
}

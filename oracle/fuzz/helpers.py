"""What the property modules share: implementation calls, corpus steps and expectations, stable classes.

* :class:`Calls` -- one check's implementation calls (cached; the context's timeout; the in-tree
  references through :meth:`~btfspec.oracle.fuzz.property.Context.reference`);
* corpus conventions: :func:`expectation`, :func:`store`, :func:`corpus_step`, :func:`op_expect`,
  :func:`accept_expect`;
* stable classes for finding signatures: :func:`short`, :func:`quirk_ids`, :func:`normalize` (the one
  normaliser of log lines), :func:`bytes_class`, :func:`outcome_class`;
* relocation judging shared by P1 and P2: :class:`Expected`, :func:`expected`, :class:`Verdict`,
  :func:`judge_relocation`, :func:`relocation_pipeline`, :func:`attribute_quirk`,
  :func:`relocation_finding`;
* :func:`pairs` (the generated base/split pairs) and :data:`PAIR_REDUCTION` (how one is reduced),
  :func:`case_description`, :func:`raise_new`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from btfspec.btfgen import coverage
from btfspec.btfgen.encoder import Case, EncodeError, make_case
from btfspec.btfgen.generate import base_split_pairs
from btfspec.btfgen.perturb import ERROR as LABEL_ERROR
from btfspec.btfgen.perturb import Perturbation, inherent_error
from btfspec.btfgen.reduce import CaseReduction
from btfspec.btfgen.universe import Universe
from btfspec.oracle.equiv.compare import EquivResult, difference_class, equivalent, identical, only_at
from btfspec.oracle.equiv.explain import normalize
from btfspec.oracle.fuzz.corpus import this_host
from btfspec.oracle.fuzz.property import REFERENCES, Context, Finding, PropertyFailure
from btfspec.oracle.impls.adapter import (
    ACCEPT,
    DISTILL,
    RELOCATE,
    Implementation,
    begin_steps,
    blob_difference,
    known_finding,
    libbpf_undefined,
    outcome_difference,
    run_steps,
)
from btfspec.oracle.impls.batch import Output, Step
from btfspec.oracle.impls.outcome import CRASH, ERROR, OK, TIMEOUT, Outcome
from btfspec.oracle.impls.quirks import Q5, Q12, q5_limit, quirk_ids
from btfspec.spec.errors import BtfError, errno_text
from btfspec.spec.model import Btf

MIN_TYPES, MAX_TYPES = 3, 60  # universe size of generated base/split pairs
RELOCATION_CAPS = frozenset({DISTILL, RELOCATE})  # what an implementation needs to take part in P1/P2


# --------------------------------------------------------------------------------------------------
# stable classes
# --------------------------------------------------------------------------------------------------

def short(out: Outcome) -> str:
    """``ok``, ``error -EINVAL (22)``, ``timeout``, ``crash (SIGSEGV)``: status without the log."""
    if out.status == ERROR:
        return f"error {errno_text(out.errno)}"
    if out.status == CRASH and out.detail:
        return f"crash ({out.detail})"
    return out.status


def bytes_class(want: bytes, got: bytes) -> str:
    """A stable class of the first difference between two blobs (record kind and field, no ids, offsets
    or names), for finding signatures: :func:`~btfspec.oracle.impls.adapter.blob_difference`'s ``what``."""
    diff = blob_difference(want, got)
    return diff.what if diff else "bytes"


def outcome_class(op: str, want: Outcome, got: Outcome) -> str:
    """One stable line for how ``got`` differs from ``want`` (``want`` normally libbpf's outcome)."""
    if want.status != got.status or (want.status == ERROR and want.errno != got.errno):
        return f"{op}: {short(got)} where libbpf gives {short(want)}"
    if sorted(want.outputs) != sorted(got.outputs):
        return f"{op}: outputs {sorted(got.outputs)} where libbpf gives {sorted(want.outputs)}"
    for role in sorted(want.outputs):
        if want.outputs[role] != got.outputs[role]:
            return f"{op}: output {role} differs ({bytes_class(want.outputs[role], got.outputs[role])})"
    return f"{op}: no difference"


def raise_new(ctx: Context, finding: Finding) -> None:
    """Raise the finding unless its signature is already known (then the check goes on)."""
    if finding.signature not in ctx.known:
        raise PropertyFailure(finding)


def known(ctx: Context, prop: str, impl: str, v: Verdict) -> bool:
    """Is the finding of ``impl`` violating ``prop`` as ``v`` says already known?  Then :func:`raise_new`
    would let it pass, and a check may skip building it (its files, corpus steps and quirk)."""
    return (prop, impl, v.outcome, v.klass) in ctx.known


def case_description(case: Any) -> str:
    """A generated case in one phrase (profile, size, quirk shapes) for a finding's description."""
    u = getattr(case, "universe", None)
    if u is None:
        return ""
    return (f"generated {getattr(u, 'profile', '?')} universe: {len(u.nodes)} nodes "
            f"({len(u.kernel_keys())} kernel, {len(u.module_keys())} module)")


def pairs(ctx: Context) -> st.SearchStrategy[Case]:
    """Generated base/split pairs of the context's profile (P2, P3, P4)."""
    return base_split_pairs(ctx.profile, MIN_TYPES, MAX_TYPES)


def smaller_pair(case: Case, u: Universe) -> Case | None:
    """A base/split pair encoded from a smaller universe with ``case``'s options (None if it does not encode)."""
    try:
        return make_case(u, case.options)
    except EncodeError:
        return None


PAIR_REDUCTION: CaseReduction[Case] = CaseReduction(lambda case: case.universe, smaller_pair)


# --------------------------------------------------------------------------------------------------
# implementation calls and corpus steps
# --------------------------------------------------------------------------------------------------

class Calls:
    """One check's implementation calls, cached by (implementation, operation, inputs)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._cache: dict[tuple[Any, ...], Outcome] = {}
        self.memo: dict[Any, Any] = {}  # other work of this check done once (see judge_relocation)
        self._awaited: dict[tuple[Any, ...], Callable[[], None]] = {}  # calls a begun request will answer

    def impl(self, name: str) -> Implementation | None:
        """A selected implementation, or (:meth:`Context.reference`) the in-tree ``python``/``python-strict``."""
        got = self.ctx.get(name)
        if got is None and name in REFERENCES:
            return self.ctx.reference(name)
        return got

    def run(self, name: str, op: str, *args: bytes | None, timeout: float | None = None) -> Outcome:
        """``op`` on implementation ``name`` (cached), within ``timeout`` seconds (default the context's);
        records the errno reached in the coverage."""
        key = (name, op, *args)
        if key in self._awaited:
            self._awaited[key]()
        if key in self._cache:
            return self._cache[key]
        impl = self.impl(name)
        if impl is None:
            raise KeyError(name)
        limit = self.ctx.timeout if timeout is None else timeout
        if op == DISTILL:
            out = impl.distill(args[0], args[1], timeout=limit)  # type: ignore[arg-type]
        elif op == RELOCATE:
            out = impl.relocate(args[0], args[1], args[2], timeout=limit)  # type: ignore[arg-type]
        else:
            out = impl.accept(args[0], args[1] if len(args) > 1 else None, timeout=limit)  # type: ignore[arg-type]
        self._keep(key, out)
        return out

    def _keep(self, key: tuple[Any, ...], out: Outcome) -> None:
        coverage.record("errno", f"{key[0]} {key[1]} {short(out)}")
        self._cache[key] = out

    def strict_quirks(self, op: str, *args: bytes | None) -> list[str]:
        """The quirk ids python-strict names on the same operation (its attribution of a finding)."""
        if self.impl("python-strict") is None or op == ACCEPT:
            return []
        return quirk_ids(self.run("python-strict", op, *args))

    def _q5_limit(self, split: bytes, dist_base: bytes, base: bytes) -> float | None:
        """The short limit of a libbpf relocation the reference predicts to hang (Q5), else None."""
        pred = self.run("python", RELOCATE, split, dist_base, base)
        return q5_limit(pred, len(split) + len(dist_base) + len(base), self.ctx.timeout)

    def _relocate_limit(self, name: str, split: bytes, dist_base: bytes, base: bytes) -> float:
        """The time limit of ``name``'s relocation: the context's, or libbpf's short one of a predicted Q5 hang."""
        limit = None
        if name == "libbpf" and self.impl("python") is not None:
            limit = self._q5_limit(split, dist_base, base)
        return self.ctx.timeout if limit is None else limit

    def relocate(self, name: str, split: bytes, dist_base: bytes, base: bytes) -> Outcome:
        """``name``'s relocation (cached; answered by :meth:`begin_relocations`' request when it sent one);
        libbpf's with the short limit of a predicted Q5 hang."""
        key = (name, RELOCATE, split, dist_base, base)
        if key in self._awaited or key in self._cache:
            return self.run(name, RELOCATE, split, dist_base, base)
        return self.run(name, RELOCATE, split, dist_base, base,
                        timeout=self._relocate_limit(name, split, dist_base, base))

    def begin_relocations(self, name: str, cases: Sequence[tuple[bytes, bytes, bytes]]) -> None:
        """Send ``name``'s relocations of ``cases`` (split, distilled base, base) now, as one request, when
        ``name`` takes batches asynchronously (a worker process): one round trip for all of them, run while
        this process goes on; :meth:`relocate` then takes each answer.  Nothing is sent otherwise, or for
        relocations already made or sent."""
        impl = self.impl(name)
        if impl is None or RELOCATE not in impl.capabilities or getattr(impl, "begin_batch", None) is None:
            return
        keys = list(dict.fromkeys((name, RELOCATE, *c) for c in cases))
        keys = [k for k in keys if k not in self._cache and k not in self._awaited]
        if not keys:
            return
        finish = begin_steps(impl, [Step(RELOCATE, k[2:], self._relocate_limit(name, *k[2:])) for k in keys])
        if finish is None:
            return

        def settle() -> None:
            outcomes = finish()
            for k, out in zip(keys, outcomes, strict=True):
                self._awaited.pop(k, None)
                if out is not None:
                    self._keep(k, out)

        for k in keys:
            self._awaited[k] = settle

    def begin_distill_relocate(self, name: str, split: bytes, base1: bytes, target: bytes,
                               accepts: bool = False) -> None:
        """Send :meth:`distill_relocate`'s request now when ``name`` takes batches asynchronously (a worker
        process), so that it runs while this process goes on; the calls it makes are then answered from it
        (:meth:`run`, :meth:`distill_relocate`). With ``accepts`` the request also asks ``name`` to accept
        what it produced (the distilled base, the distilled split on it, the relocated split on ``target``:
        P4's parses). Nothing is sent for other implementations or calls already made or sent."""
        impl = self._batching(name, "begin_batch", split, base1)
        key = (name, DISTILL, split, base1)
        if impl is None or key in self._awaited:
            return
        planned = self._batch_plan(name, split, base1, target, accepts)
        if planned is None:
            return
        steps, py = planned
        finish = begin_steps(impl, steps)
        if finish is None:
            return

        def settle() -> None:
            self._awaited.pop(key, None)
            self._keep_batch(name, split, base1, target, py, finish())

        self._awaited[key] = settle

    def distill_relocate(self, name: str, split: bytes, base1: bytes,
                         target: bytes) -> tuple[Outcome, Outcome | None] | None:
        """``name``'s distill of ``split`` on ``base1`` and relocation of its outputs onto ``target`` as one
        request (:func:`~btfspec.oracle.impls.adapter.run_steps`) when ``name`` takes batches (a worker-hosted
        implementation: one round trip instead of two), cached as the two calls; None when the calls are
        better made one by one (no batches, or libbpf's Q5 limit cannot be known before).  A request
        :meth:`begin_distill_relocate` sent is answered here.

        libbpf's relocation limit depends on the reference's prediction on libbpf's distilled outputs
        (:meth:`relocate`): the batch uses the prediction on python's own outputs and keeps its
        relocation only when libbpf distilled the same bytes; otherwise it relocates again, one by one."""
        key = (name, DISTILL, split, base1)
        if key in self._awaited:
            self._awaited[key]()
        elif key not in self._cache:
            impl = self._batching(name, "run_batch", split, base1)
            planned = None if impl is None else self._batch_plan(name, split, base1, target)
            if impl is None or planned is None:
                return None
            steps, py = planned
            self._keep_batch(name, split, base1, target, py, run_steps(impl, steps))
        d = self._cache[key]
        if not d.ok:
            return d, None
        return d, self.relocate(name, d.outputs["split"], d.outputs["base"], target)

    def _keep_batch(self, name: str, split: bytes, base1: bytes, target: bytes, py: Outcome | None,
                    outcomes: list[Outcome | None]) -> None:
        """Keep the outcomes of :meth:`_batch_plan`'s steps as the calls they answer."""
        d, r, *accepted = outcomes
        assert d is not None
        self._keep((name, DISTILL, split, base1), d)
        if not d.ok:
            return
        dsplit, dbase = d.outputs["split"], d.outputs["base"]
        answered: list[tuple[tuple[Any, ...], Outcome | None]] = []
        if accepted:
            answered += [((name, ACCEPT, dbase, None), accepted[0]), ((name, ACCEPT, dsplit, dbase), accepted[1])]
        # the relocation's limit came from python's prediction on its own outputs: kept only for the same bytes
        if py is None or (dsplit, dbase) == (py.outputs["split"], py.outputs["base"]):
            answered.append(((name, RELOCATE, dsplit, dbase, target), r))
            if accepted and r is not None and r.ok:
                answered.append(((name, ACCEPT, r.outputs["split"], target), accepted[2]))
        for k, out in answered:
            if out is not None and k not in self._cache:
                self._keep(k, out)

    def _batching(self, name: str, method: str, split: bytes, base1: bytes) -> Implementation | None:
        """``name`` when it has ``method`` (takes batches) and this distill was not made yet, else None."""
        impl = self.impl(name)
        if impl is None or getattr(impl, method, None) is None or (name, DISTILL, split, base1) in self._cache:
            return None
        return impl

    def _batch_plan(self, name: str, split: bytes, base1: bytes, target: bytes,
                    accepts: bool = False) -> tuple[list[Step], Outcome | None] | None:
        """The distill + relocate (+ accept) steps of one request and python's distill they assume (libbpf's
        Q5 limit comes from python's prediction on it); None when python cannot distill (no limit known)."""
        limit: float | None = None
        py: Outcome | None = None
        if name == "libbpf" and self.impl("python") is not None:
            py = self.run("python", DISTILL, split, base1)
            if not py.ok:
                return None
            limit = self._q5_limit(py.outputs["split"], py.outputs["base"], target)
        timeout = self.ctx.timeout
        steps = [Step(DISTILL, (split, base1), timeout),
                 Step(RELOCATE, (Output(0, "split"), Output(0, "base"), target), timeout if limit is None else limit)]
        if accepts:
            steps += [Step(ACCEPT, (Output(0, "base"), None), timeout),
                      Step(ACCEPT, (Output(0, "split"), Output(0, "base")), timeout),
                      Step(ACCEPT, (Output(1, "split"), target), timeout)]
        return steps, py


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


def source_of(impl: str) -> str:
    """Who an ``expect`` records (``libbpf v1.6``, ``BPF_BTF_LOAD on <release>``, else the name)."""
    return {"libbpf": "libbpf v1.6", "kernel": f"BPF_BTF_LOAD on {os.uname().release}"}.get(impl, impl)


def op_expect(calls: Calls, op: str, args: tuple[bytes, ...], files: dict[str, bytes], prefix: str, at_fault: str,
              fallback: Outcome | None = None) -> dict[str, Any]:
    """The ``expect`` of a distill/relocate step, in the corpus conventions (corpus/README.md).

    ``default`` is libbpf's outcome; where libbpf hangs or crashes on a documented finding (Q5, Q17) and
    the implementation at fault is not ``cmd``/``serve`` (held to libbpf's exact behaviour by P3), ``libbpf`` gets
    its own key with the finding and ``default`` holds python's answer; ``python-strict`` gets its own
    key where it deliberately differs naming a quirk (unless it is the implementation at fault).
    Without libbpf, ``at_fault``'s own outcome (``fallback``) is recorded under its own name.
    """
    if calls.impl("libbpf") is None:
        if fallback is None:
            return {"default": {"skip": "no libbpf in the campaign that found this"}}
        return {at_fault: expectation(fallback, files, f"{at_fault}.{prefix}", at_fault)}
    lib = calls.relocate("libbpf", *args) if op == RELOCATE else calls.run("libbpf", op, *args)
    exp = {"default": expectation(lib, files, prefix, source_of("libbpf"))}
    python_may_be_default = at_fault not in ("cmd", "serve", "python")
    if python_may_be_default and lib.status in (TIMEOUT, CRASH) and calls.impl("python") is not None:
        py = calls.run("python", op, *args)
        fid = known_finding(lib, py)
        if fid:
            exp = {"libbpf": {**expectation(lib, files, prefix, source_of("libbpf")), "finding": fid},
                   "default": expectation(py, files, prefix, "python")}
    if at_fault != "python-strict" and calls.impl("python-strict") is not None:
        strict = calls.run("python-strict", op, *args)
        quirks = quirk_ids(strict)
        if quirks and outcome_difference(lib, strict) is not None:
            exp["python-strict"] = {**expectation(strict, files, f"python-strict.{prefix}", "python-strict"),
                                    "quirks": quirks}
    return exp


def accept_expect(calls: Calls, blob: bytes, base: bytes | None, files: dict[str, bytes]) -> dict[str, Any]:
    """The ``expect`` of an accept step: libbpf's parser as ``default`` (the validator's libbpf rules without
    libbpf) and the kernel's verdict recorded for this host (a skip where BPF_BTF_LOAD was unavailable)."""
    exp: dict[str, Any] = {}
    if calls.impl("libbpf") is not None:
        exp["default"] = expectation(calls.run("libbpf", ACCEPT, blob, base), files, "accept", source_of("libbpf"))
    else:
        from btfspec.spec.validate import validate

        found = validate(blob, base, rules="libbpf")
        exp["default"] = ({"status": OK, "source": "validator (libbpf rules)"} if not found else
                          {"status": ERROR, "errno": found[0].errno, "source": "validator (libbpf rules)"})
    if calls.impl("kernel") is not None:
        out = calls.run("kernel", ACCEPT, blob, base)
        exp["kernel"] = {**expectation(out, files, "kernel", source_of("kernel")), "recorded_on": this_host()}
    else:
        exp["kernel"] = {"skip": "no kernel verdict recorded (BPF_BTF_LOAD was unavailable)"}
    return exp

# --------------------------------------------------------------------------------------------------
# relocation judging (P1, P2)
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Expected:
    """What a correct relocation must do: ``status`` ok/error, ``errno``, and where that comes from."""

    status: str
    errno: int
    label: str  # equivalent / error / stale-copy / round-trip
    why: str

    def text(self) -> str:
        return f"error {errno_text(self.errno)}" if self.status == ERROR else f"success ({self.label})"

    def met_by(self, out: Outcome) -> bool:
        """Does ``out`` have the expected status (and errno)?"""
        return out.status == self.status and (self.status != ERROR or out.errno == self.errno)


def expected(u: Universe, p: Perturbation | None) -> Expected:
    """The expected relocation outcome: the perturbation's label (``p`` None: the round trip of P2, which
    fails only where any relocation of ``u``'s distillation onto its own base must, see
    :func:`btfspec.btfgen.perturb.inherent_error`: the Q5 loop, an ambiguous FWD)."""
    if p is None:
        forced = inherent_error(u, u)
        if forced is not None:
            return Expected(ERROR, forced[0], LABEL_ERROR, forced[1])
        return Expected(OK, 0, "round trip", "relocation onto the base the split was distilled from")
    why = f"perturbation {p.kind}: {p.description}"
    if p.label == LABEL_ERROR:
        return Expected(ERROR, p.errno, p.label, why)
    return Expected(OK, 0, p.label, why)


@dataclass
class Verdict:
    """Why one implementation's run violates the property."""

    outcome: str  # Finding.outcome
    klass: str  # Finding.first_difference (stable)
    detail: str  # the full first difference (route) or outcome
    result: EquivResult | None = None


def _parse_split(blob: bytes, base: Btf) -> Btf | None:
    try:
        btf = Btf.from_bytes(blob, base=base)
        btf.decode_all()
        return btf
    except BtfError:
        return None


def _equivalence(blob: bytes, reference: Callable[[], tuple[bytes, Btf]], memo: dict[Any, Any]) -> EquivResult | None:
    """``blob`` (a relocated split) compared with the reference split, None when it does not parse;
    ``memo`` keeps the reference's parse and each blob's result (per ``reference``: one check may judge
    against several).  A blob of the reference's own bytes is equivalent without comparing."""
    key = ("equivalence", reference, blob)
    if key not in memo:
        want, base = reference()
        ref_key = ("reference split", reference)
        if ref_key not in memo:
            memo[ref_key] = Btf.from_bytes(want, base=base)
        got = _parse_split(blob, base)
        memo[key] = None if got is None else identical(got) if blob == want else equivalent(got, memo[ref_key])
    return memo[key]


def judge_relocation(kind: str, exp: Expected, d: Outcome, r: Outcome | None,
                     reference: Callable[[], tuple[bytes, Btf]],
                     stale: Callable[[], set[int]] | None, memo: dict[Any, Any] | None = None) -> Verdict | None:
    """None when (d, r) is what ``exp`` asks for, else why not.  ``reference()`` gives the split the
    result must be equivalent to (and its base); ``stale()`` the B ids differences may sit at.  With
    ``memo`` (:attr:`Calls.memo` of one check), the reference split is parsed once and a relocated split
    another implementation already produced byte for byte is not compared again.

    The stable class (the finding's ``first_difference``) names the perturbation ``kind`` only for a
    success where an error was due (nothing else tells those apart); otherwise the expected label and
    the normalised error line or equivalence difference, so one bug met through several perturbations
    gives one finding."""
    if not d.ok:
        return Verdict(f"distill {short(d)}", f"distill {normalize(d.describe())}", d.describe())
    assert r is not None
    if not exp.met_by(r):
        klass = f"{kind}: relocate ok" if r.ok else f"{exp.label}: relocate {normalize(r.describe())}"
        return Verdict(f"relocate {short(r)} where {exp.text()} is expected", klass, r.describe())
    if exp.status == ERROR:
        return None
    res = _equivalence(r.outputs.get("split", b""), reference, memo if memo is not None else {})
    if res is None:
        return Verdict("relocated split does not parse", f"{kind}: unparseable output", r.describe())
    if res.equal or (stale is not None and only_at(res, stale())):
        return None
    what = ("differs beyond the stale copies from" if stale is not None else "is not equivalent to")
    target = "the direct encoding against base2" if kind != "round trip" else "the original split"
    return Verdict(f"relocated split {what} {target}", f"{exp.label}: {difference_class(res)}",
                   res.first_difference or "", res)


def relocation_pipeline(calls: Calls, name: str, split: bytes, base1: bytes,
                        target: bytes) -> tuple[Outcome, Outcome | None]:
    """``name``'s distill of ``split`` on ``base1``, then (when it succeeds) relocation onto ``target``
    (one request to a worker-hosted implementation, :meth:`Calls.distill_relocate`)."""
    batched = calls.distill_relocate(name, split, base1, target)
    if batched is not None:
        return batched
    d = calls.run(name, DISTILL, split, base1)
    if not d.ok:
        return d, None
    return d, calls.relocate(name, d.outputs["split"], d.outputs["base"], target)


def strict_cannot_distill(calls: Calls, split: bytes, base1: bytes) -> bool:
    """Does python-strict fail to distill this split (the case is then outside P1/P2)?"""
    if calls.impl("python-strict") is None:
        return False
    return not calls.run("python-strict", DISTILL, split, base1).ok


def attribute_quirk(calls: Calls, name: str, judge: Callable[[Outcome, Outcome | None], Verdict | None],
                    split: bytes, base1: bytes, target: bytes) -> str | None:
    """The quirk ids python-strict names when its own run of the case passes (comma-joined), else None."""
    if name == "python-strict" or calls.impl("python-strict") is None:
        return None
    d, r = relocation_pipeline(calls, "python-strict", split, base1, target)
    if not d.ok or judge(d, r) is not None:
        return None
    ids = list(dict.fromkeys(quirk_ids(d) + (quirk_ids(r) if r is not None else [])))
    return ",".join(ids) or None


def relocation_finding(prop: str, calls: Calls, name: str, case: Case, target_name: str, target: bytes, d: Outcome,
             r: Outcome | None, exp: Expected, v: Verdict, quirk: str | None, story: str,
             direct: bytes | None = None, operator: str = "", shared_with: Sequence[str] = ()) -> Finding:
    """A P1/P2 finding, with its files and corpus steps (:mod:`~btfspec.oracle.fuzz.relocation`); ``direct``
    is the reference split (the module encoded against the target), stored with an ``accept`` step that
    checks it loads; ``operator`` the perturbation, ``shared_with`` (:func:`sharing_libbpf`) the
    implementations that violate the property exactly as libbpf does."""
    files: dict[str, bytes] = {"base1.btf": case.base, "split.btf": case.split}
    if target_name not in files:
        files[target_name] = target
    note = f"intended: {exp.text()} ({exp.why})"
    steps = [corpus_step("distill", DISTILL, {"split": "split.btf", "base": "base1.btf"},
                         op_expect(calls, DISTILL, (case.split, case.base), files, "distill", name, d),
                         f"{name}: {d.describe()}" if not d.ok else "")]
    if d.ok and r is not None:
        dsplit = store(files, f"{name}.distill.split.btf", d.outputs["split"])
        dbase = store(files, f"{name}.distill.base.btf", d.outputs["base"])
        args = (d.outputs["split"], d.outputs["base"], target)
        inputs = {"split": dsplit, "distilled_base": dbase, "target": target_name}
        steps.append(corpus_step("relocate", RELOCATE, inputs,
                                 op_expect(calls, RELOCATE, args, files, "relocate", name, r),
                                 f"{note}; {name}: {r.describe()}"))
        if r.ok and name != "libbpf":
            store(files, f"{name}.relocate.split.btf", r.outputs["split"])
    if direct is not None:
        files["direct.split.btf"] = direct
        steps.append(corpus_step("accept-direct-encoding", ACCEPT, {"btf": "direct.split.btf", "base": target_name},
                                 accept_expect(calls, direct, target, files),
                                 "the reference: the module encoded directly against the target base"))
    desc = (f"{case_description(case)}. {story} Expected {exp.text()} ({exp.why}). {name}: distill {d.describe()}"
            + (f"; relocate {r.describe()}" if r is not None else "") + f". First difference: {v.detail}")
    return Finding(prop, name, v.outcome, v.klass, files, steps, quirk, desc, operator, tuple(shared_with))


def same_as_libbpf(calls: Calls, name: str, op: str, args: tuple[bytes, ...], got: Outcome) -> bool:
    """Does ``name`` answer as libbpf does on the same operation (libbpf selected, ``name`` another): the
    same outcome, or the Python reference's where libbpf's is undefined (Q12: it remapped an id read out
    of bounds of its id map, :func:`~btfspec.oracle.impls.adapter.libbpf_undefined`)?

    What an implementation does exactly as libbpf does is libbpf's finding (judged on libbpf itself),
    never a second one of its own: the mode "testing an implementation against libbpf"."""
    if name == "libbpf" or calls.ctx.get("libbpf") is None:
        return False
    lib = calls.relocate("libbpf", *args) if op == RELOCATE else calls.run("libbpf", op, *args)
    if outcome_difference(lib, got) is None:
        return True
    ref = got if name == "python" else calls.run("python", op, *args)
    return libbpf_undefined(lib, ref) == Q12 and outcome_difference(ref, got) is None


def shared_with_libbpf(calls: Calls, name: str, judge: Callable[[Outcome, Outcome | None], Verdict | None],
                       v: Verdict, split: bytes, base1: bytes, target: bytes) -> bool:
    """Does libbpf violate P1/P2 the same way (the same outcome against the same label) on this case?
    Then ``name``'s violation is libbpf's finding, a shared quirk, judged on libbpf alone (testing
    against libbpf).  Where libbpf hangs or crashes, or relocates from ids it read out of bounds (Q12,
    an answer that changes from run to run), giving the Python reference's exact answer counts as
    shared too; so does the reference's own answer there: its -ELOOP where libbpf's relocation of the
    same distill loops forever (Q5, the pairing :func:`~btfspec.oracle.impls.adapter.agree` excuses),
    or its 0 where libbpf read out of bounds (:func:`~btfspec.oracle.impls.adapter.libbpf_undefined`)."""
    if name == "libbpf" or calls.ctx.get("libbpf") is None:
        return False
    lib_d, lib_r = relocation_pipeline(calls, "libbpf", split, base1, target)
    lib = judge(lib_d, lib_r)
    if lib is not None and lib.outcome == v.outcome:  # the same status and errno against the same label
        return True
    no_answer = any(o is not None and o.status in (TIMEOUT, CRASH) for o in (lib_d, lib_r))
    if not no_answer and (lib_r is None or not lib_r.ok):  # Q12 is an answer remapped from unread ids
        return False
    # libbpf gives no answer it can be held to (its Q5/Q17/Q12 finding): the reference's is as good as libbpf's
    ref_d, ref_r = relocation_pipeline(calls, "python", split, base1, target)
    undefined = lib_r is not None and ref_r is not None and libbpf_undefined(lib_r, ref_r) == Q12
    if not (no_answer or undefined):
        return False
    if name == "python":
        return (lib_r is not None and ref_r is not None and outcome_difference(lib_d, ref_d) is None
                and (undefined or known_finding(lib_r, ref_r) == Q5))
    d, r = relocation_pipeline(calls, name, split, base1, target)
    return outcome_difference(ref_d, d) is None and (r is None or ref_r is None or outcome_difference(ref_r, r) is None)


def sharing_libbpf(calls: Calls, name: str, judge: Callable[[Outcome, Outcome | None], Verdict | None],
                   split: bytes, base1: bytes, target: bytes) -> list[str]:
    """On ``name``'s (libbpf's) violation: the other relocating implementations whose own violation of the
    case :func:`shared_with_libbpf` says is libbpf's (so never reported as theirs)."""
    if name != "libbpf":
        return []
    shared = []
    for other in relocating_impls(calls.ctx):
        if other == "libbpf":
            continue
        v = judge(*relocation_pipeline(calls, other, split, base1, target))
        if v is not None and shared_with_libbpf(calls, other, judge, v, split, base1, target):
            shared.append(other)
    return shared


def relocating_impls(ctx: Context) -> list[str]:
    """The selected implementations taking part in P1/P2 (they distill and relocate)."""
    return [n for n, i in ctx.impls.items() if RELOCATION_CAPS <= i.capabilities]


def relocation_unusable(ctx: Context) -> str | None:
    """Why P1/P2 cannot run with the selected implementations (None when they can)."""
    if not relocating_impls(ctx):
        return "needs an implementation that distills and relocates"
    return None

"""One adapter protocol for every BTF implementation, the registry, and the known-divergence rule.

Every implementation (the Python reference in two modes, libbpf v1.6, the kernel, external
programs) is an :class:`Implementation`: it names itself, says which operations it supports
(``capabilities``) and returns an :class:`~btfspec.oracle.impls.outcome.Outcome` for each:

* ``distill(split, base)`` -- outputs ``{"base", "split"}``;
* ``relocate(split, distilled_base, base)`` -- outputs ``{"split"}``;
* ``accept(blob, base=None)`` -- would this BTF be accepted (parsed / loaded)?  No outputs.

Every operation takes a keyword ``timeout`` (seconds, ``None`` = the implementation's own limit, set
when it was made, default :data:`DEFAULT_TIMEOUT`); in-process implementations cannot be interrupted
and ignore it. Extra results (the id map of the Python reference) travel in the Outcome.

Calling an operation outside ``capabilities`` raises :class:`NotImplementedError`.

:func:`run_steps` runs a batch (:mod:`btfspec.oracle.impls.batch`: the operations of one case, later
ones taking earlier outputs) in one round trip on an implementation with an optional
``run_batch(steps)`` method (libbpf's worker), and one call per step on any other.

:func:`agree` holds the project's only excused libbpf-vs-Python divergences (quirks Q5 and Q17);
every comparison of libbpf with the reference goes through it.
"""

from __future__ import annotations

import errno as _errno
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from btfspec.oracle.impls import reference
from btfspec.oracle.impls.batch import Step, resolve
from btfspec.oracle.impls.outcome import (
    CRASH,
    DEFAULT_TIMEOUT,
    ERROR,
    OK,
    TIMEOUT,
    Outcome,
    call_outcome,
    error_outcome,
)
from btfspec.oracle.impls.quirks import Q5, Q12, Q17
from btfspec.spec.errors import BtfError, errno_text
from btfspec.spec.model import Btf
from btfspec.spec.validate import validate

DISTILL, RELOCATE, ACCEPT = "distill", "relocate", "accept"
OPERATIONS: tuple[str, ...] = (DISTILL, RELOCATE, ACCEPT)
KNOWN: tuple[str, ...] = ("python", "python-strict", "libbpf", "kernel", "cmd", "serve")
# Named explicitly only (not in ``all`` nor in any default): kernel-vm boots a QEMU guest.
OPT_IN: tuple[str, ...] = ("kernel-vm",)
NAMES_HELP = f"{', '.join(KNOWN)}, all; {', '.join(OPT_IN)} only by name"  # what --impl takes, for --help


@runtime_checkable
class Implementation(Protocol):
    """A BTF implementation behind the common interface (see the module docstring)."""

    name: str
    capabilities: frozenset[str]

    def distill(self, split: bytes, base: bytes, *, timeout: float | None = None) -> Outcome: ...

    def relocate(self, split: bytes, distilled_base: bytes, base: bytes, *,
                 timeout: float | None = None) -> Outcome: ...

    def accept(self, blob: bytes, base: bytes | None = None, *, timeout: float | None = None) -> Outcome: ...


class ImplUnavailable(ValueError):
    """An implementation that cannot be used here (the message says why)."""


def _unsupported(impl: Implementation, op: str) -> NotImplementedError:
    return NotImplementedError(f"implementation {impl.name!r} does not support {op!r} "
                               f"(it supports: {', '.join(sorted(impl.capabilities)) or 'nothing'})")


def run_steps(impl: Implementation, steps: list[Step]) -> list[Outcome | None]:
    """The outcome of each step (None: not run, an input from an earlier step is missing), through
    ``impl.run_batch`` when it has one, else by calling the operations one by one."""
    batch = getattr(impl, "run_batch", None)
    if batch is not None:
        return batch(steps)
    outcomes: list[Outcome | None] = []
    for step in steps:
        if step.op not in impl.capabilities:
            raise _unsupported(impl, step.op)
        args = resolve(step.args, outcomes)
        outcomes.append(None if args is None else getattr(impl, step.op)(*args, timeout=step.timeout))
    return outcomes


def begin_steps(impl: Implementation, steps: list[Step]) -> Callable[[], list[Outcome | None]] | None:
    """:func:`run_steps` in two halves where ``impl`` takes its batches asynchronously (a worker process):
    the request is sent now and the returned function gives the outcomes; None for other implementations."""
    begin = getattr(impl, "begin_batch", None)
    return begin(steps) if begin is not None else None


# --------------------------------------------------------------------------------------------------
# the Python reference
# --------------------------------------------------------------------------------------------------

class PythonImpl:
    """The Python reference (:mod:`btfspec.oracle.impls.reference`): libbpf-compatible, or ``strict``
    (reports quirks). Its outcomes carry the id map. ``accept`` applies the validator's libbpf rules.

    It runs in-process, so a per-call ``timeout`` cannot interrupt it and is ignored.
    """

    capabilities: frozenset[str] = frozenset({DISTILL, RELOCATE, ACCEPT})

    def __init__(self, strict: bool = False) -> None:
        self.strict = strict
        self.name = "python-strict" if strict else "python"

    def __repr__(self) -> str:
        return f"PythonImpl(strict={self.strict})"

    def distill(self, split: bytes, base: bytes, *, timeout: float | None = None) -> Outcome:
        """Reference distill."""
        return call_outcome(self.name, lambda: reference.distill_outcome(split, base, strict=self.strict))

    def relocate(self, split: bytes, distilled_base: bytes, base: bytes, *, timeout: float | None = None) -> Outcome:
        """Reference relocation."""
        return call_outcome(self.name, lambda: reference.relocate_outcome(split, distilled_base, base,
                                                                          strict=self.strict))

    def accept(self, blob: bytes, base: bytes | None = None, *, timeout: float | None = None) -> Outcome:
        """The validator's libbpf rules: ok, or an error with the first violation's errno."""

        def run() -> Outcome:
            violations = list(validate(blob, base, rules="libbpf"))
            if not violations:
                return Outcome(OK, impl=self.name)
            err = violations[0].errno
            log = "".join(f"{v}\n" for v in violations)
            return Outcome(ERROR, err if err < 0 else -_errno.EINVAL, log=log, impl=self.name,
                           detail=violations[0].rule or "")

        return call_outcome(self.name, run)


# --------------------------------------------------------------------------------------------------
# libbpf and the kernel
# --------------------------------------------------------------------------------------------------

class LibbpfImpl:
    """libbpf v1.6 in a crash- and hang-proof worker process (per-call ``timeout`` seconds).

    A call given a shorter limit than ``timeout`` (the reference predicts a hang) runs in a fork of the
    worker (:class:`~btfspec.oracle.impls.libbpf_process.LibbpfWorker`'s ``fork_below``), so the hang costs a
    fork instead of a new worker process."""

    name = "libbpf"
    capabilities: frozenset[str] = frozenset({DISTILL, RELOCATE, ACCEPT})

    def __init__(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        from btfspec.oracle.impls import libbpf
        from btfspec.oracle.impls.libbpf_process import LibbpfWorker

        reason = libbpf.unavailable_reason()
        if reason:
            raise ImplUnavailable(f"libbpf: {reason}")
        self.timeout = timeout
        self.worker = LibbpfWorker(timeout=timeout, fork_below=timeout)

    def __repr__(self) -> str:
        return f"LibbpfImpl(timeout={self.timeout})"

    def distill(self, split: bytes, base: bytes, *, timeout: float | None = None) -> Outcome:
        """``btf__distill_base``."""
        return self.worker.distill(split, base, timeout=timeout)

    def relocate(self, split: bytes, distilled_base: bytes, base: bytes, *, timeout: float | None = None) -> Outcome:
        """``btf__relocate`` (split parsed on the distilled base, relocated onto ``base``)."""
        return self.worker.relocate(split, distilled_base, base, timeout=timeout)

    def accept(self, blob: bytes, base: bytes | None = None, *, timeout: float | None = None) -> Outcome:
        """Does libbpf parse it (``btf__new`` / ``btf__new_split``)?"""
        return self.worker.parse(blob, base, timeout=timeout).without_outputs()

    def run_batch(self, steps: list[Step]) -> list[Outcome | None]:
        """The steps in one request to the worker (see :func:`run_steps`)."""
        return self.begin_batch(steps)()

    def begin_batch(self, steps: list[Step]) -> Callable[[], list[Outcome | None]]:
        """:meth:`run_batch` in two halves (:func:`begin_steps`): sent now, answered by the returned function."""
        worker_op = {DISTILL: "distill", RELOCATE: "relocate", ACCEPT: "parse"}
        for step in steps:
            if step.op not in worker_op:
                raise _unsupported(self, step.op)
        finish = self.worker.begin_batch([Step(worker_op[s.op], s.args, s.timeout) for s in steps])

        def answer() -> list[Outcome | None]:
            return [o.without_outputs() if o is not None and s.op == ACCEPT else o
                    for s, o in zip(steps, finish(), strict=True)]
        return answer

    def close(self) -> None:
        """Stop the worker process."""
        self.worker.close()


def merge_split(split: Btf) -> bytes:
    """One standalone BTF holding ``split``'s whole base chain and then its own types.

    Type ids stay valid because the split's ids continue its base's; string offsets stay valid because
    the string sections are concatenated in order (base strings, then split strings), which is exactly
    how split offsets are counted.  The byte order is the split's.
    """
    chain: list[Btf] = []
    b: Btf | None = split
    while b is not None:
        chain.append(b)
        b = b.base
    chain.reverse()
    merged = Btf(order=split.order, strings=b"".join(x.strings for x in chain))
    for x in chain:
        for _, t in x.own_types():
            merged.add_type(t.copy())
    return merged.to_bytes()


class KernelImpl:
    """Kernel acceptance through ``bpf(BPF_BTF_LOAD)``; a split is merged with its base first."""

    name = "kernel"
    capabilities: frozenset[str] = frozenset({ACCEPT})

    def __init__(self) -> None:
        from btfspec.oracle.impls import kernel

        reason = kernel.unavailable_reason()
        if reason:
            raise ImplUnavailable(f"kernel: {reason}")
        self._load = kernel.kernel_load

    def __repr__(self) -> str:
        return "KernelImpl()"

    def distill(self, split: bytes, base: bytes, *, timeout: float | None = None) -> Outcome:
        raise _unsupported(self, DISTILL)

    def relocate(self, split: bytes, distilled_base: bytes, base: bytes, *, timeout: float | None = None) -> Outcome:
        raise _unsupported(self, RELOCATE)

    def accept(self, blob: bytes, base: bytes | None = None, *, timeout: float | None = None) -> Outcome:
        """Load ``blob`` (merged onto ``base`` when given) and report the kernel's verdict (the syscall
        returns at once; ``timeout`` is ignored)."""
        if base is None:
            return self._load(blob)
        try:
            merged = merge_split(Btf.from_bytes(blob, base=Btf.from_bytes(base)))
        except BtfError as exc:
            return error_outcome(exc, self.name, detail="merge failed",
                                 log=f"btfspec: cannot merge the split onto its base for BPF_BTF_LOAD: {exc}\n")
        out = self._load(merged)
        return out if out.ok else out.without_outputs("merged split")


# --------------------------------------------------------------------------------------------------
# registry
# --------------------------------------------------------------------------------------------------

def parse_impl_list(value: str | Iterable[str]) -> list[str]:
    """``"python,libbpf"`` -> ``["python", "libbpf"]`` (order kept, duplicates dropped; ``all`` = every
    name in KNOWN; the OPT_IN ones only by name).  Raises :class:`ValueError` naming the unknown entries
    and the known ones."""
    items = [v.strip() for v in (value.split(",") if isinstance(value, str) else value) if v.strip()]
    if not items:
        raise ValueError(f"no implementation given (known: {', '.join(KNOWN)})")
    out: list[str] = []
    unknown: list[str] = []
    for item in items:
        names = list(KNOWN) if item == "all" else [item]
        for n in names:
            if n not in KNOWN and n not in OPT_IN:
                unknown.append(n)
            elif n not in out:
                out.append(n)
    if unknown:
        raise ValueError(f"unknown implementation{'s' if len(unknown) > 1 else ''} "
                         f"{', '.join(repr(u) for u in unknown)} (known: {', '.join(KNOWN + OPT_IN)}, all)")
    return out


def available(*, distill_cmd: str | None = None, relocate_cmd: str | None = None,
              serve_cmd: str | None = None) -> dict[str, str | None]:
    """Every known implementation -> None when usable here, else the reason why not."""
    from btfspec.oracle.impls import kernel, kernel_vm, libbpf

    out: dict[str, str | None] = {"python": None, "python-strict": None}

    out["libbpf"] = libbpf.unavailable_reason()
    out["kernel"] = kernel.unavailable_reason()
    out["cmd"] = None if (distill_cmd or relocate_cmd) else "needs --distill-cmd and/or --relocate-cmd"
    out["serve"] = None if serve_cmd else "needs --serve-cmd"
    out["kernel-vm"] = kernel_vm.unavailable_reason()
    return out


def make_impl(name: str, *, timeout: float = DEFAULT_TIMEOUT, distill_cmd: str | None = None,
              relocate_cmd: str | None = None, serve_cmd: str | None = None) -> Implementation:
    """One implementation by name; raises :class:`ImplUnavailable` (a ValueError) with the reason."""
    if name == "python":
        return PythonImpl(strict=False)
    if name == "python-strict":
        return PythonImpl(strict=True)
    if name == "libbpf":
        return LibbpfImpl(timeout=timeout)
    if name == "kernel":
        return KernelImpl()
    if name == "cmd":
        from btfspec.oracle.impls.external import CmdImpl, TemplateError

        try:
            return CmdImpl(distill_cmd, relocate_cmd, timeout=timeout)
        except TemplateError as exc:
            raise ImplUnavailable(f"cmd: {exc}") from None
    if name == "kernel-vm":  # the module loader of a Debian kernel in QEMU (oracle/impls/kernel_vm.py)
        from btfspec.oracle.impls.kernel_vm import KernelVmImpl

        return KernelVmImpl(timeout=timeout)
    if name == "serve":
        from btfspec.oracle.impls.serve import ServeError, ServeImpl

        try:
            return ServeImpl(serve_cmd or "", timeout=timeout)
        except ServeError as exc:
            raise ImplUnavailable(f"serve: {exc}") from None
    parse_impl_list([name])  # raises the unknown-name error
    raise AssertionError(name)


EXTERNAL: tuple[str, ...] = ("cmd", "serve")  # implementations that are a user's program


def open_usable(names: Iterable[str] | None = None, *, explicit_external: bool = False,
                timeout: float = DEFAULT_TIMEOUT, distill_cmd: str | None = None, relocate_cmd: str | None = None,
                serve_cmd: str | None = None) -> tuple[list[Implementation], dict[str, str]]:
    """Open ``names`` (default: every one usable here): the usable implementations, and for the others
    why not.  An external program (:data:`EXTERNAL`) whose options are wrong raises
    :class:`ImplUnavailable` (a usage error); with ``explicit_external`` so does one given no program."""
    commands = {"distill_cmd": distill_cmd, "relocate_cmd": relocate_cmd, "serve_cmd": serve_cmd}
    reasons = available(**commands)
    wanted = list(names) if names is not None else [n for n in KNOWN if not reasons.get(n)]
    impls: list[Implementation] = []
    unusable: dict[str, str] = {}
    for name in wanted:
        if reasons.get(name) and not (explicit_external and name in EXTERNAL):
            unusable[name] = str(reasons[name])
            continue
        try:
            impls.append(make_impl(name, timeout=timeout, **commands))
        except ImplUnavailable as exc:
            if name in EXTERNAL:
                close_impls(impls)
                raise
            unusable[name] = str(exc)
    return impls, unusable


def make_impls(names: list[str], *, timeout: float = DEFAULT_TIMEOUT, distill_cmd: str | None = None,
               relocate_cmd: str | None = None, serve_cmd: str | None = None) -> list[Implementation]:
    """Implementations for ``names`` (see :func:`parse_impl_list`); raises :class:`ImplUnavailable`."""
    return [make_impl(n, timeout=timeout, distill_cmd=distill_cmd, relocate_cmd=relocate_cmd, serve_cmd=serve_cmd)
            for n in parse_impl_list(names)]


def close_impls(impls: Iterable[Implementation]) -> None:
    """Release what the implementations hold (worker processes)."""
    for impl in impls:
        close = getattr(impl, "close", None)
        if callable(close):
            close()


# --------------------------------------------------------------------------------------------------
# comparison and the known-divergence rule
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BlobDifference:
    """The first difference between two blobs: ``where`` with the values (for a person), ``what`` a stable
    class without ids, offsets or names (for finding signatures), e.g. ``PTR record size_type``."""

    where: str
    what: str


def blob_difference(want: bytes, got: bytes) -> BlobDifference | None:
    """Where two blobs first differ, in BTF terms when both parse: header, type records, count, strings.

    A string-section size difference is explained by the first record or string that differs.
    """
    if want == got:
        return None
    pos = next((i for i, (x, y) in enumerate(zip(want, got, strict=False)) if x != y), min(len(want), len(got)))
    raw = f"bytes differ at offset {pos:#x} ({len(want)} B expected, {len(got)} B got)"
    try:
        a, b = Btf.from_bytes(want), Btf.from_bytes(got)
    except BtfError:
        return BlobDifference(raw, "unparseable bytes")
    for fld in ("order", "hdr_len", "type_len"):
        va, vb = getattr(a.header, fld, None), getattr(b.header, fld, None)
        if va != vb:
            what = "type count" if fld == "type_len" and a.nr_types != b.nr_types else f"header {fld}"
            return BlobDifference(f"header {fld}: expected {va}, got {vb}", what)
    for i, ((_, ta), (_, tb)) in enumerate(zip(a.own_types(), b.own_types(), strict=False)):
        if ta == tb:
            continue
        kind = ta.kind_name if ta.kind == tb.kind else f"{ta.kind_name}/{tb.kind_name}"
        fld = next((f for f in ("info", "name_off", "size_type", "fixed", "elems") if getattr(ta, f) != getattr(tb, f)),
                   "words")
        return BlobDifference(f"type record #{i + 1}: expected {ta.words()}, got {tb.words()}", f"{kind} record {fld}")
    if a.nr_types != b.nr_types:
        return BlobDifference(f"{a.nr_types} type records expected, got {b.nr_types}", "type count")
    if a.strings != b.strings:
        at = next((i for i, (x, y) in enumerate(zip(a.strings, b.strings, strict=False)) if x != y),
                  min(len(a.strings), len(b.strings)))
        return BlobDifference(f"strings differ at string offset {at} "
                              f"({a.strings[at:at + 16]!r} vs {b.strings[at:at + 16]!r})", "strings")
    return BlobDifference(raw, "bytes")


def bytes_difference(want: bytes, got: bytes) -> str | None:
    """Where two blobs first differ, with the values (see :func:`blob_difference`)."""
    diff = blob_difference(want, got)
    return diff.where if diff else None


def outcome_difference(a: Outcome, b: Outcome) -> str | None:
    """The first difference between two outcomes (status, errno, then each output), or None."""
    if a.status != b.status:
        return f"status {a.describe()} vs {b.describe()}"
    if a.status == ERROR and a.errno != b.errno:
        return f"errno {errno_text(a.errno)} vs {errno_text(b.errno)}"
    if a.status == OK:
        if sorted(a.outputs) != sorted(b.outputs):
            return f"outputs {sorted(a.outputs)} vs {sorted(b.outputs)}"
        for role in sorted(a.outputs):
            diff = bytes_difference(a.outputs[role], b.outputs[role])
            if diff:
                return f"output {role}: {diff}"
    return None


def _names_quirk(outcome: Outcome, qid: str) -> bool:
    """Does the outcome's ``detail`` (the reference's comma-joined quirk ids) name ``qid``?"""
    return qid in (part.strip() for part in outcome.detail.split(","))


def known_finding(libbpf: Outcome, python: Outcome) -> str | None:
    """The libbpf finding id when the pair is an excused divergence, else None.

    Only two pairings are excused anywhere in the project, and only when the Python reference's
    outcome names the quirk in its ``detail`` (it lists every quirk whose trigger it met):

    * ``Q5``  -- libbpf does not finish (``timeout``) where Python reports ``-ELOOP``: relocation of
      a cyclic modifier chain loops forever in libbpf;
    * ``Q17`` -- libbpf dies (``crash``) where Python succeeds: distill of a very deep reference chain
      overflows libbpf's C stack.

    Any other libbpf timeout or crash (say an out-of-bounds read, Q12) stays a disagreement.
    """
    if (libbpf.status == TIMEOUT and python.status == ERROR and python.errno == -_errno.ELOOP
            and _names_quirk(python, Q5)):
        return Q5
    if libbpf.status == CRASH and python.status == OK and _names_quirk(python, Q17):
        return Q17
    return None


def libbpf_undefined(libbpf: Outcome, python: Outcome) -> str | None:
    """The libbpf finding id when libbpf's answer is not one another implementation can be held to, else
    None: the :func:`known_finding` pairings (it does not finish, or dies), and an answer remapped from
    an id map it read out of bounds (Q12: the reference names it, reading 0 there).  An implementation
    answering as the reference does is then not at fault (:mod:`btfspec.oracle.fuzz.differential`)."""
    if libbpf.status in (TIMEOUT, CRASH):
        return known_finding(libbpf, python)
    return Q12 if _names_quirk(python, Q12) else None


def agree(libbpf: Outcome, python: Outcome) -> tuple[bool, str | None]:
    """Do libbpf and the Python reference agree?  ``(ok, known finding id or None)``.

    Identical outcomes (status, errno, output bytes) agree with no finding; the two excused pairings of
    :func:`known_finding` agree with their quirk id; anything else disagrees.
    """
    if outcome_difference(libbpf, python) is None:
        return True, None
    finding = known_finding(libbpf, python)
    return (True, finding) if finding else (False, None)

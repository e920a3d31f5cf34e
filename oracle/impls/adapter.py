"""One adapter protocol for every BTF implementation, the registry, and the known-divergence rule.

Every implementation (the Python reference in two modes, libbpf v1.6, the kernel, external
programs) is an :class:`Implementation`: it names itself, says which operations it supports
(``capabilities``) and returns an :class:`~btfspec.oracle.impls.outcome.Outcome` for each:

* ``distill(split, base)`` -- outputs ``{"base", "split"}``;
* ``relocate(split, distilled_base, base)`` -- outputs ``{"split"}``;
* ``accept(blob, base=None)`` -- would this BTF be accepted (parsed / loaded)?  No outputs.

Calling an operation outside ``capabilities`` raises :class:`NotImplementedError`.

:func:`agree` holds the project's only excused libbpf-vs-Python divergences (quirks Q5 and Q17);
every comparison of libbpf with the reference goes through it.
"""

from __future__ import annotations

import errno as _errno
import importlib
from collections.abc import Callable, Iterable
from typing import Any, Protocol, runtime_checkable

from btfspec.oracle.impls.outcome import CRASH, ERROR, OK, TIMEOUT, Outcome
from btfspec.spec.errors import BtfError, errno_text
from btfspec.spec.model import Btf

DISTILL, RELOCATE, ACCEPT = "distill", "relocate", "accept"
OPERATIONS: tuple[str, ...] = (DISTILL, RELOCATE, ACCEPT)
KNOWN: tuple[str, ...] = ("python", "python-strict", "libbpf", "kernel", "cmd")
DEFAULT_TIMEOUT = 10.0


@runtime_checkable
class Implementation(Protocol):
    """A BTF implementation behind the common interface (see the module docstring)."""

    name: str
    capabilities: frozenset[str]

    def distill(self, split: bytes, base: bytes) -> Outcome: ...

    def relocate(self, split: bytes, distilled_base: bytes, base: bytes) -> Outcome: ...

    def accept(self, blob: bytes, base: bytes | None = None) -> Outcome: ...


class ImplUnavailable(ValueError):
    """An implementation that cannot be used here (the message says why)."""


def _unsupported(impl: Implementation, op: str) -> NotImplementedError:
    return NotImplementedError(f"implementation {impl.name!r} does not support {op!r} "
                               f"(it supports: {', '.join(sorted(impl.capabilities)) or 'nothing'})")


# --------------------------------------------------------------------------------------------------
# the Python reference
# --------------------------------------------------------------------------------------------------

def _optional_module(name: str) -> tuple[Any, str | None]:
    try:
        return importlib.import_module(name), None
    except ImportError as exc:
        return None, f"module {name} unavailable: {exc}"


def _find(module: Any, names: Iterable[str]) -> Callable[..., Any] | None:
    for n in names:
        fn = getattr(module, n, None)
        if callable(fn):
            return fn
    return None


def _python_call(impl: str, fn: Callable[[], Any]) -> Outcome:
    """Run a reference call; an :class:`Outcome` passes through, a BtfError becomes an error Outcome.

    Any other exception is a bug in the reference and is reported as a ``crash`` so that it can never
    pass for a clean answer.
    """
    try:
        out = fn()
    except BtfError as exc:
        return Outcome(ERROR, exc.errno if exc.errno < 0 else -_errno.EINVAL, log=f"{exc}\n", impl=impl,
                       detail=exc.rule or "")
    except RecursionError as exc:
        return Outcome(CRASH, log=f"{type(exc).__name__}: {exc}\n", impl=impl, detail="RecursionError")
    except Exception as exc:  # a reference bug: visible, never equal to a clean result
        return Outcome(CRASH, log=f"{type(exc).__name__}: {exc}\n", impl=impl, detail=type(exc).__name__)
    if not isinstance(out, Outcome):
        raise TypeError(f"the Python reference returned {type(out).__name__}, not an Outcome")
    if out.impl != impl:
        out = Outcome(out.status, out.errno, out.outputs, out.log, impl, out.detail)
    return out


class PythonImpl:
    """The Python reference (``btfspec.oracle.impls.reference``): libbpf-compatible, or ``strict`` (reports quirks).

    ``accept`` applies the validator's libbpf rules (``btfspec.spec.validate``) when that module exists.
    """

    def __init__(self, strict: bool = False) -> None:
        self.strict = strict
        self.name = "python-strict" if strict else "python"
        ref, why = _optional_module("btfspec.oracle.impls.reference")
        if ref is None:
            raise ImplUnavailable(f"{self.name}: {why}")
        self._distill = _find(ref, ("distill_outcome",))
        self._relocate = _find(ref, ("relocate_outcome",))
        if self._distill is None or self._relocate is None:
            raise ImplUnavailable(f"{self.name}: the reference has no distill_outcome/relocate_outcome")
        val, _ = _optional_module("btfspec.spec.validate")
        self._validate = _find(val, ("validate",)) if val is not None else None
        caps = {DISTILL, RELOCATE} | ({ACCEPT} if self._validate is not None else set())
        self.capabilities: frozenset[str] = frozenset(caps)

    def __repr__(self) -> str:
        return f"PythonImpl(strict={self.strict})"

    def distill(self, split: bytes, base: bytes) -> Outcome:
        """Reference distill."""
        fn = self._distill
        assert fn is not None
        return _python_call(self.name, lambda: fn(split, base, strict=self.strict))

    def relocate(self, split: bytes, distilled_base: bytes, base: bytes) -> Outcome:
        """Reference relocation."""
        fn = self._relocate
        assert fn is not None
        return _python_call(self.name, lambda: fn(split, distilled_base, base, strict=self.strict))

    def accept(self, blob: bytes, base: bytes | None = None) -> Outcome:
        """The validator's libbpf rules: ok, or an error with the first violation's errno."""
        if self._validate is None:
            raise _unsupported(self, ACCEPT)
        validate = self._validate

        def run() -> Outcome:
            violations = list(validate(blob, base, rules="libbpf"))
            if not violations:
                return Outcome(OK, impl=self.name)
            err = getattr(violations[0], "errno", -_errno.EINVAL)
            log = "".join(f"{v}\n" for v in violations)
            return Outcome(ERROR, err if isinstance(err, int) and err < 0 else -_errno.EINVAL, log=log,
                           impl=self.name, detail=str(getattr(violations[0], "rule", "") or ""))

        return _python_call(self.name, run)


# --------------------------------------------------------------------------------------------------
# libbpf and the kernel
# --------------------------------------------------------------------------------------------------

class LibbpfImpl:
    """libbpf v1.6 in a crash- and hang-proof worker process (per-call ``timeout`` seconds)."""

    name = "libbpf"
    capabilities: frozenset[str] = frozenset({DISTILL, RELOCATE, ACCEPT})

    def __init__(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        from btfspec.oracle.impls import libbpf

        reason = libbpf.unavailable_reason()
        if reason:
            raise ImplUnavailable(f"libbpf: {reason}")
        self.timeout = timeout
        self.worker = libbpf.LibbpfWorker(timeout=timeout)

    def __repr__(self) -> str:
        return f"LibbpfImpl(timeout={self.timeout})"

    def distill(self, split: bytes, base: bytes) -> Outcome:
        """``btf__distill_base``."""
        return self.worker.distill(split, base)

    def relocate(self, split: bytes, distilled_base: bytes, base: bytes) -> Outcome:
        """``btf__relocate`` (split parsed on the distilled base, relocated onto ``base``)."""
        return self.worker.relocate(split, distilled_base, base)

    def accept(self, blob: bytes, base: bytes | None = None) -> Outcome:
        """Does libbpf parse it (``btf__new`` / ``btf__new_split``)?"""
        out = self.worker.parse(blob, base)
        return Outcome(out.status, out.errno, {}, out.log, out.impl, out.detail)

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

    def distill(self, split: bytes, base: bytes) -> Outcome:
        raise _unsupported(self, DISTILL)

    def relocate(self, split: bytes, distilled_base: bytes, base: bytes) -> Outcome:
        raise _unsupported(self, RELOCATE)

    def accept(self, blob: bytes, base: bytes | None = None) -> Outcome:
        """Load ``blob`` (merged onto ``base`` when given) and report the kernel's verdict."""
        if base is None:
            return self._load(blob)
        try:
            merged = merge_split(Btf.from_bytes(blob, base=Btf.from_bytes(base)))
        except BtfError as exc:
            return Outcome(ERROR, exc.errno if exc.errno < 0 else -_errno.EINVAL,
                           log=f"btfspec: cannot merge the split onto its base for BPF_BTF_LOAD: {exc}\n",
                           impl=self.name, detail="merge failed")
        out = self._load(merged)
        return out if out.ok else Outcome(out.status, out.errno, {}, out.log, out.impl, "merged split")


# --------------------------------------------------------------------------------------------------
# registry
# --------------------------------------------------------------------------------------------------

def parse_impl_list(value: str | Iterable[str]) -> list[str]:
    """``"python,libbpf"`` -> ``["python", "libbpf"]`` (order kept, duplicates dropped; ``all`` = every
    known name).  Raises :class:`ValueError` naming the unknown entries and the known ones."""
    items = [v.strip() for v in (value.split(",") if isinstance(value, str) else value) if v.strip()]
    if not items:
        raise ValueError(f"no implementation given (known: {', '.join(KNOWN)})")
    out: list[str] = []
    unknown: list[str] = []
    for item in items:
        names = list(KNOWN) if item == "all" else [item]
        for n in names:
            if n not in KNOWN:
                unknown.append(n)
            elif n not in out:
                out.append(n)
    if unknown:
        raise ValueError(f"unknown implementation{'s' if len(unknown) > 1 else ''} "
                         f"{', '.join(repr(u) for u in unknown)} (known: {', '.join(KNOWN)}, all)")
    return out


def available(*, distill_cmd: str | None = None, relocate_cmd: str | None = None) -> dict[str, str | None]:
    """Every known implementation -> None when usable here, else the reason why not."""
    out: dict[str, str | None] = {}
    ref, why = _optional_module("btfspec.oracle.impls.reference")
    if ref is not None and _find(ref, ("distill_outcome",)) is None:
        why = "btfspec.oracle.impls.reference has no distill_outcome/relocate_outcome"
    out["python"] = why
    out["python-strict"] = why
    from btfspec.oracle.impls import kernel, libbpf

    out["libbpf"] = libbpf.unavailable_reason()
    out["kernel"] = kernel.unavailable_reason()
    out["cmd"] = None if (distill_cmd or relocate_cmd) else "needs --distill-cmd and/or --relocate-cmd"
    return out


def make_impl(name: str, *, timeout: float = DEFAULT_TIMEOUT, distill_cmd: str | None = None,
              relocate_cmd: str | None = None) -> Implementation:
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
    parse_impl_list([name])  # raises the unknown-name error
    raise AssertionError(name)


def make_impls(names: list[str], *, timeout: float = DEFAULT_TIMEOUT, distill_cmd: str | None = None,
               relocate_cmd: str | None = None) -> list[Implementation]:
    """Implementations for ``names`` (see :func:`parse_impl_list`); raises :class:`ImplUnavailable`."""
    return [make_impl(n, timeout=timeout, distill_cmd=distill_cmd, relocate_cmd=relocate_cmd)
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

def bytes_difference(want: bytes, got: bytes) -> str | None:
    """Where two blobs first differ, in BTF terms when both parse (header field, type record, strings)."""
    if want == got:
        return None
    try:
        a, b = Btf.from_bytes(want), Btf.from_bytes(got)
    except BtfError:
        a = b = None
    if a is not None and b is not None:
        for field in ("order", "hdr_len", "type_len", "str_len"):
            va, vb = getattr(a.header, field, None), getattr(b.header, field, None)
            if va != vb:
                return f"header {field}: expected {va}, got {vb}"
        for i, ((_, ta), (_, tb)) in enumerate(zip(a.own_types(), b.own_types(), strict=False)):
            if ta != tb:
                return f"type record #{i + 1}: expected {ta.words()}, got {tb.words()}"
        if a.nr_types != b.nr_types:
            return f"{a.nr_types} type records expected, got {b.nr_types}"
        if a.strings != b.strings:
            pos = next((i for i, (x, y) in enumerate(zip(a.strings, b.strings, strict=False)) if x != y),
                       min(len(a.strings), len(b.strings)))
            return f"strings differ at string offset {pos} ({a.strings[pos:pos + 16]!r} vs {b.strings[pos:pos + 16]!r})"
    pos = next((i for i, (x, y) in enumerate(zip(want, got, strict=False)) if x != y), min(len(want), len(got)))
    return f"bytes differ at offset {pos:#x} ({len(want)} B expected, {len(got)} B got)"


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
            and _names_quirk(python, "Q5")):
        return "Q5"
    if libbpf.status == CRASH and python.status == OK and _names_quirk(python, "Q17"):
        return "Q17"
    return None


def agree(libbpf: Outcome, python: Outcome) -> tuple[bool, str | None]:
    """Do libbpf and the Python reference agree?  ``(ok, known finding id or None)``.

    Identical outcomes (status, errno, output bytes) agree with no finding; the two excused pairings of
    :func:`known_finding` agree with their quirk id; anything else disagrees.
    """
    if outcome_difference(libbpf, python) is None:
        return True, None
    finding = known_finding(libbpf, python)
    return (True, finding) if finding else (False, None)

"""Property P5 (:data:`~btfspec.oracle.fuzz.property.ROBUSTNESS`): mutated blobs never crash or hang, and the
validator, libbpf and the kernel agree on them.

On mutated blobs (:mod:`btfspec.btfgen.mutate`), standalone or split on a fixed base: the model parser
raises only :class:`~btfspec.spec.errors.BtfError`, the validator never raises nor reports an
``internal`` failure, the Python reference's distill/relocate return (never raise), each within
:data:`OP_TIME_LIMIT`; libbpf's parse never crashes or hangs; the validator's ``libbpf`` rules agree
with libbpf (accept/reject and errno) and its ``kernel`` rules with ``BPF_BTF_LOAD`` (standalone
blobs).

A finding's first difference is a stable class -- a validator rule id, an exception's raising
location (``IndexError at model.py:parse``), ``hang`` or ``time bound`` -- and its ``steps`` replay the
blob as an ``accept`` step (plus the reference operation that misbehaved).
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from hypothesis import strategies as st

from btfspec.btfgen import coverage
from btfspec.oracle.fuzz.helpers import (
    Calls,
    accept_expect,
    corpus_step,
    normalize,
    op_expect,
    raise_new,
    short,
    store,
)
from btfspec.oracle.fuzz.property import ROBUSTNESS, Context, Finding, Property
from btfspec.oracle.impls.adapter import ACCEPT, DISTILL, RELOCATE
from btfspec.oracle.impls.outcome import CRASH, TIMEOUT
from btfspec.spec.errors import BtfError, errno_text
from btfspec.spec.model import Btf

OP_TIME_LIMIT = 3.0  # seconds any in-process operation on a small mutated blob may take
HANG_LIMIT = 20.0  # an in-process operation still running after this is interrupted (main thread only)


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
    from btfspec.btfgen.mutate import layout_mutated_blobs, mutated_blobs

    _, splits = split_seeds()
    alone = mutated_blobs().map(lambda e: ("standalone", e[0], e[1]))
    split = mutated_blobs(st.sampled_from(splits)).map(lambda e: ("split", e[0], e[1]))
    layout = layout_mutated_blobs().map(lambda e: ("standalone", e[0], e[1]))  # the 2026 kind layout section
    return st.one_of(alone, split, layout)


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
        return Finding(ROBUSTNESS, impl, outcome, first, files, steps, None,
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
                                                  normalize(internal[0].message, limit=100), str(internal[0])))
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


def check_p5(case: tuple[str, str, bytes], ctx: Context) -> None:
    """P5 on one mutated blob (see the module docstring)."""
    _P5(case, ctx).run()


def unusable_reason(ctx: Context) -> str | None:
    """Why P5 cannot run with the selected implementations (None when it can)."""
    if not any(n in ctx.impls for n in ("python", "python-strict", "libbpf", "kernel")):
        return "needs python, python-strict, libbpf or kernel"
    return None


PROPERTY = Property(ROBUSTNESS, "robustness: mutated blobs never crash or hang; validator, libbpf and kernel agree",
                    lambda ctx: _mutations(), check_p5, frozenset({ACCEPT}), unusable_reason)

__all__ = ["HANG_LIMIT", "OP_TIME_LIMIT", "PROPERTY", "check_p5", "split_seeds", "timed", "unusable_reason"]

"""Properties P1 (relocation by label) and P2 (round trip), judged by semantic equivalence.

Both are :class:`~btfspec.oracle.fuzz.property.Property` objects usable from pytest (``@given(prop.strategy(ctx))``
then ``prop.check(case, ctx)``) and from the campaign runner; every selected implementation with
``distill`` and ``relocate`` takes part (libbpf included: its deviations are findings like any other).

* **P1 relocation** -- a generated base/split pair plus a labelled perturbation ``base2`` of its kernel
  part (:mod:`btfspec.btfgen.perturb`): the implementation distills the split on ``base1`` and relocates its
  distilled outputs onto ``base2``; then, by the expected outcome (:func:`expected`):

  - ``equivalent``: success, and the result is equivalent (:func:`btfspec.oracle.equiv.compare.equivalent`) to the
    module encoded directly against ``base2`` (:func:`btfspec.btfgen.perturb.direct_split`);
  - ``error``: the labelled errno;
  - ``stale-copy``: success, and the only differences from the direct encoding are at or below the
    stale copies (:func:`btfspec.oracle.equiv.compare.only_at`).

* **P2 round trip** -- relocating the distilled outputs onto ``base1`` itself gives a split
  equivalent to the original one (equivalence, not bytes).

The expected outcome is the label (:mod:`btfspec.btfgen.perturb` already makes it -ELOOP for a modifier cycle
below a member of a split composite, the Q5 shape (:func:`relocation_loops`), and -EINVAL for a
distilled FWD without exactly one candidate in ``base2``); the P2 round trip expects success unless
:func:`btfspec.btfgen.perturb.inherent_error` says relocation onto the original base must fail.

A case whose split ``python-strict`` cannot distill is outside these properties (an odd enum size, an
anonymous INT reached (Q8), ...: whether an implementation distills it anyway is P3's question); any
other distill failure is a finding.

A finding's ``quirk`` is attributed by ``python-strict``: its own distill and relocation of the same
case are judged the same way, and when they pass, the quirk ids it reports name the deviation.
Nothing is excused: a deviation strict does not explain is reported without a quirk id.  Its
``steps`` replay the case as a corpus entry (``category: finding``): ``distill`` of ``split.btf`` on
``base1.btf``, then ``relocate`` of the implementation's distilled outputs onto ``base2.btf`` (P1) or
``base1.btf`` (P2), and for a P1 success label an ``accept`` step of the reference
(``direct.split.btf`` on ``base2.btf``), with expectations by
:func:`oracle.fuzz.differential.op_expect` (corpus/README.md:
``default`` is what libbpf v1.6 did, ``python-strict`` has its own key naming quirks where it
differs); what the implementation at fault did and the intended outcome are in the relocate step's
``note`` and the finding's description.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from btfspec.btfgen.encoder import Case
from btfspec.btfgen.generate import Knobs, base_split_pairs
from btfspec.btfgen.perturb import ERROR as LABEL_ERROR
from btfspec.btfgen.perturb import STALE, Perturbation, direct_split, inherent_error, perturbed_bases, relocation_loops
from btfspec.btfgen.universe import Universe
from btfspec.oracle.equiv.compare import EquivResult, difference_class, equivalent, only_at
from btfspec.oracle.fuzz.differential import (
    Calls,
    accept_expect,
    case_description,
    corpus_step,
    op_expect,
    quirk_ids,
    raise_new,
    short,
    store,
)
from btfspec.oracle.fuzz.property import Context, Finding, Property
from btfspec.oracle.impls.adapter import ACCEPT, DISTILL, RELOCATE
from btfspec.oracle.impls.outcome import ERROR, OK, Outcome
from btfspec.spec.errors import BtfError, errno_text
from btfspec.spec.model import Btf

MIN_TYPES, MAX_TYPES = 3, 60  # universe size of P1/P2 cases
CAPS = frozenset({DISTILL, RELOCATE})


# --------------------------------------------------------------------------------------------------
# cases and their expected outcomes
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RelocationCase:
    """A P1 case: a base/split pair and the perturbed base ``base2`` with its label."""

    case: Case
    base2: bytes
    perturbation: Perturbation
    _direct: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def direct(self) -> bytes:
        """The module encoded directly against ``base2`` (raises :class:`EncodeError` if it cannot be)."""
        if "data" not in self._direct:
            enc = direct_split(self.case, self.base2, self.perturbation)
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


# --------------------------------------------------------------------------------------------------
# judging one implementation
# --------------------------------------------------------------------------------------------------

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


def _judge(kind: str, exp: Expected, d: Outcome, r: Outcome | None, reference: Callable[[], tuple[bytes, Btf]],
           stale: Callable[[], set[int]] | None) -> Verdict | None:
    """None when (d, r) is what ``exp`` asks for, else why not.  ``reference()`` gives the split the
    result must be equivalent to (and its base); ``stale()`` the B ids differences may sit at.

    The stable class (the finding's ``first_difference``) names the perturbation ``kind`` only for a
    success where an error was due (nothing else tells those apart); otherwise the expected label and
    the normalised error line or equivalence difference, so one bug met through several perturbations
    gives one finding."""
    if not d.ok:
        return Verdict(f"distill {short(d)}", f"distill {_normalize(d.describe())}", d.describe())
    assert r is not None
    if not exp.met_by(r):
        klass = f"{kind}: relocate ok" if r.ok else f"{exp.label}: relocate {_normalize(r.describe())}"
        return Verdict(f"relocate {short(r)} where {exp.text()} is expected", klass, r.describe())
    if exp.status == ERROR:
        return None
    want, base = reference()
    got = _parse_split(r.outputs.get("split", b""), base)
    if got is None:
        return Verdict("relocated split does not parse", f"{kind}: unparseable output", r.describe())
    res = equivalent(got, Btf.from_bytes(want, base=base))
    if res.equal or (stale is not None and only_at(res, stale())):
        return None
    what = ("differs beyond the stale copies from" if stale is not None else "is not equivalent to")
    target = "the direct encoding against base2" if kind != "round trip" else "the original split"
    return Verdict(f"relocated split {what} {target}", f"{exp.label}: {difference_class(res)}",
                   res.first_difference or "", res)


_NUMBER = re.compile(r"\d+")
_QUOTED = re.compile(r"'[^']*'")


def _normalize(text: str, limit: int = 120) -> str:
    """A log line without the numbers and names that vary between examples of one bug."""
    return _NUMBER.sub("N", _QUOTED.sub("'…'", text.strip()))[:limit]


def _pipeline(calls: Calls, name: str, split: bytes, base1: bytes, target: bytes) -> tuple[Outcome, Outcome | None]:
    d = calls.run(name, DISTILL, split, base1)
    if not d.ok:
        return d, None
    args = (d.outputs["split"], d.outputs["base"], target)
    r = calls.libbpf_relocate(*args) if name == "libbpf" else calls.run(name, RELOCATE, *args)
    return d, r


def _strict_distill_fails(calls: Calls, split: bytes, base1: bytes) -> bool:
    """Does python-strict fail to distill this split (the case is then outside P1/P2)?"""
    if calls.impl("python-strict") is None:
        return False
    return not calls.run("python-strict", DISTILL, split, base1).ok


# --------------------------------------------------------------------------------------------------
# findings
# --------------------------------------------------------------------------------------------------

def _attribute(calls: Calls, name: str, judge: Callable[[Outcome, Outcome | None], Verdict | None],
               split: bytes, base1: bytes, target: bytes) -> str | None:
    """The quirk ids python-strict names when its own run of the case passes (comma-joined), else None."""
    if name == "python-strict" or calls.impl("python-strict") is None:
        return None
    d, r = _pipeline(calls, "python-strict", split, base1, target)
    if not d.ok or judge(d, r) is not None:
        return None
    ids = list(dict.fromkeys(quirk_ids(d) + (quirk_ids(r) if r is not None else [])))
    return ",".join(ids) or None


def _finding(prop: str, calls: Calls, name: str, case: Case, target_name: str, target: bytes, d: Outcome,
             r: Outcome | None, exp: Expected, v: Verdict, quirk: str | None, story: str,
             direct: bytes | None = None) -> Finding:
    """The finding, with its files and corpus steps (module docstring); ``direct`` is the reference split
    (the module encoded against the target), stored with an ``accept`` step that checks it loads."""
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
    return Finding(prop, name, v.outcome, v.klass, files, steps, quirk, desc)


def _takes_part(ctx: Context) -> list[str]:
    return [n for n, i in ctx.impls.items() if CAPS <= i.capabilities]


# --------------------------------------------------------------------------------------------------
# P1 and P2
# --------------------------------------------------------------------------------------------------

def check_p1(c: RelocationCase, ctx: Context) -> None:
    """P1 on one case (see the module docstring)."""
    calls = Calls(ctx)
    case, base2, p = c.case, c.base2, c.perturbation
    exp = expected(case.universe, p)
    base2_btf: list[Btf] = []

    def reference() -> tuple[bytes, Btf]:
        if not base2_btf:
            base2_btf.append(Btf.from_bytes(base2))
        return c.direct(), base2_btf[0]

    stale = c.stale_ids if p.label == STALE else None

    def judge(d: Outcome, r: Outcome | None) -> Verdict | None:
        return _judge(p.kind, exp, d, r, reference, stale)

    if _strict_distill_fails(calls, case.split, case.base):
        return
    for name in _takes_part(ctx):
        d, r = _pipeline(calls, name, case.split, case.base, base2)
        v = judge(d, r)
        if v is None:
            continue
        quirk = _attribute(calls, name, judge, case.split, case.base, base2)
        story = f"Perturbation {p.kind} ({p.description}), label {p.label}" + (
            f", stale nodes at base2 ids {sorted(c.stale_ids())}." if p.label == STALE else ".")
        direct = c.direct() if exp.status == OK else None
        raise_new(ctx, _finding("P1", calls, name, case, "base2.btf", base2, d, r, exp, v, quirk, story, direct))


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
        return _judge("round trip", exp, d, r, reference, None)

    if _strict_distill_fails(calls, case.split, case.base):
        return
    for name in _takes_part(ctx):
        d, r = _pipeline(calls, name, case.split, case.base, case.base)
        v = judge(d, r)
        if v is None:
            continue
        quirk = _attribute(calls, name, judge, case.split, case.base, case.base)
        raise_new(ctx, _finding("P2", calls, name, case, "base1.btf", case.base, d, r, exp, v, quirk,
                                "Round trip: relocation onto the original base."))


def _pairs(ctx: Context) -> st.SearchStrategy[Case]:
    return base_split_pairs(ctx.profile, MIN_TYPES, MAX_TYPES)


def unusable_reason(name: str, ctx: Context) -> str | None:
    """Why P1/P2 cannot run with the selected implementations (None when they can)."""
    if not _takes_part(ctx):
        return "needs an implementation that distills and relocates"
    return None


PROPERTIES: dict[str, Property] = {
    "P1": Property("P1", "relocation: the relocated split matches the direct encoding against the new base, "
                         "as the perturbation's label says", relocation_cases, check_p1, CAPS),
    "P2": Property("P2", "round trip: relocating the distilled split onto its own base is equivalent to the original",
                   _pairs, check_p2, CAPS),
}

__all__ = ["PROPERTIES", "Expected", "RelocationCase", "check_p1", "check_p2", "expected", "relocation_cases",
           "relocation_loops", "unusable_reason"]

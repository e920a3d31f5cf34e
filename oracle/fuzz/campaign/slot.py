"""One worker slot: chunks of checks over the properties until its quota, budget or a stop.

:func:`run_slot` makes the slot's own implementations, then loops over the properties, one chunk
at a time (sized to take about :data:`~.config.CHUNK_SECONDS`), reporting progress and every
distinct finding through its :class:`~.channels.Channel` as soon as it is found.

A chunk draws its cases on the seeded fast path (:func:`~.hypothesis_glue.seeded_example`: the
property's own strategy code, without hypothesis's bookkeeping) when the property's strategy allows
it, except every :data:`~.config.HYPOTHESIS_EVERY`-th chunk, which hypothesis draws. The first
failure on the fast path of a property with a reduction (P1-P4 and P6) is reduced at the universe level
(:mod:`~.reduction`) and reported; of another property it is handed to hypothesis: its choices are
saved in the example database and a one-example hypothesis run replays and shrinks it, and reports
the shrunk finding as any other (a hypothesis run meeting a failure of a property with a reduction
ends there, and the reducer takes the failure).
Properties whose strategies the fast path cannot draw run on hypothesis alone.
"""

from __future__ import annotations

import json
import os
import random
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from hypothesis.database import InMemoryExampleDatabase

from btfspec.btfgen import coverage
from btfspec.oracle.fuzz.campaign.channels import Channel, DaskChannel, FileChannel, SlotFiles, init_local_slot
from btfspec.oracle.fuzz.campaign.config import (
    CHUNK_SECONDS,
    FIRST_CHUNK,
    FIRST_ROUND_SHARE,
    HYPOTHESIS_EVERY,
    MAX_CHUNK,
    MAX_PROPERTY_ERRORS,
    PROGRESS_EVERY,
    SHRINK_GRACE_MAX,
    SHRINK_SECONDS_UNTIMED,
    STOP_POLL,
    SlotSpec,
    chunk_profile,
    database_key,
    derive_seed,
    entry_name,
    open_database,
    signature_key,
)
from btfspec.oracle.fuzz.campaign.dask_worker import profiler_paused
from btfspec.oracle.fuzz.campaign.findings import (
    AS_FOUND_FLAKY,
    AS_FOUND_GROUP_SHRUNK,
    AS_FOUND_NO_SHRINKING,
    AS_FOUND_NO_TURN,
    PARTLY_STOPPED,
    PARTLY_TIME_UP,
    finding_to_dict,
)
from btfspec.oracle.fuzz.campaign.hypothesis_glue import (
    NotSeedable,
    campaign_test,
    keep_for_replay,
    keeping_database,
    quiet_hypothesis_warnings,
    requeue_for_shrinking,
    save_for_shrinking,
    seeded_example,
    shrinking_database,
)
from btfspec.oracle.fuzz.campaign.reduction import reduce_failure
from btfspec.oracle.fuzz.groups import group_key
from btfspec.oracle.fuzz.property import Context, Finding, Property, PropertyFailure
from btfspec.oracle.fuzz.registry import get_property
from btfspec.oracle.impls.adapter import Implementation, close_impls, make_impl


def _flatten(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [x for e in exc.exceptions for x in _flatten(e)]
    return [exc]


class _KnownSet(set):  # type: ignore[type-arg]
    """Known signatures that remember whether a membership test hit (a check passed on a known finding)."""

    hit = False

    def __contains__(self, item: object) -> bool:
        found = super().__contains__(item)
        if found:
            self.hit = True
        return found


_FAILURE_TYPES: dict[tuple[str, ...], type[PropertyFailure]] = {}


def _failure_type(sig: tuple[str, ...]) -> type[PropertyFailure]:
    """A PropertyFailure subclass for one signature (hypothesis tells bugs apart by exception type)."""
    if sig not in _FAILURE_TYPES:
        _FAILURE_TYPES[sig] = type(f"PropertyFailure_{signature_key(sig)}", (PropertyFailure,), {})
    return _FAILURE_TYPES[sig]


class _Stop(KeyboardInterrupt):
    """Raised inside a check to end the current hypothesis run (hypothesis lets it through unshrunk)."""


class _ShrinkLimit(_Stop):
    """Ends one hypothesis run whose shrinking used its share (or the example quota), or a slow chunk;
    the slot goes on."""


class _Defer(_ShrinkLimit):
    """Ends a first-round hypothesis run at its first failure: shrinking waits until every property ran."""


class _Reduce(_ShrinkLimit):
    """Ends a hypothesis run at its first failure of a property with a reduction: the reducer takes it."""


@dataclass
class _Deferred:
    """A failure found in the first round, to be shrunk after it: a hypothesis run replays it from ``db``
    (``requeue``: a stopped hypothesis run left it among the entries hypothesis takes as shrunk)."""

    prop: Property
    profile: str
    seed: int
    db: Any
    key: bytes
    finding: Finding
    requeue: bool = False
    case: Any = None  # the failing case, for a property with a reduction (reduced instead of replayed)


SCHEDULE_KEPT = 64  # entries of a slot's schedule kept for its result
MET_WHILE_REDUCING = 8  # new failures of other signatures a reduction may hand on (each reduced in turn)
SEEDED, HYPOTHESIS = "chunk", "hypothesis chunk"  # a property's chunk size per drawing mode (slot state keys)


class _Timed:
    """An implementation that counts its calls and their seconds per operation."""

    def __init__(self, impl: Implementation, stats: dict[str, list[float]]) -> None:
        self._impl = impl
        self.name = impl.name
        self.capabilities = impl.capabilities
        self._stats = stats

    def _timed(self, op: str, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        start = time.perf_counter()
        try:
            return fn(*args, **kw)
        finally:
            self._count(op, start)

    def _count(self, op: str, start: float) -> None:
        s = self._stats.setdefault(f"{self.name} {op}", [0, 0.0])
        s[0] += 1
        s[1] += time.perf_counter() - start

    def _begun(self, op: str, begin: Callable[..., Callable[[], Any]], *args: Any, **kw: Any) -> Callable[[], Any]:
        """A call in two halves (kernel-vm's relocation in P7, a worker's batch): one ``op`` call, timed
        from sending to the answer."""
        start = time.perf_counter()
        finish = begin(*args, **kw)

        def answer() -> Any:
            try:
                return finish()
            finally:
                self._count(op, start)
        return answer

    def distill(self, split: bytes, base: bytes, *, timeout: float | None = None) -> Any:
        return self._timed("distill", self._impl.distill, split, base, timeout=timeout)

    def relocate(self, split: bytes, distilled_base: bytes, base: bytes, *, timeout: float | None = None) -> Any:
        return self._timed("relocate", self._impl.relocate, split, distilled_base, base, timeout=timeout)

    def accept(self, blob: bytes, base: bytes | None = None, *, timeout: float | None = None) -> Any:
        return self._timed("accept", self._impl.accept, blob, base, timeout=timeout)

    def __getattr__(self, name: str) -> Any:
        inner = getattr(self._impl, name)
        if name == "run_batch":  # only where the implementation takes batches (adapter.run_steps)
            return lambda steps: self._timed("batch", inner, steps)
        if name == "begin_relocate":
            return partial(self._begun, "relocate", inner)
        if name == "begin_batch":
            return partial(self._begun, "batch", inner)
        return inner


Coverage = dict[str, dict[str, int]]


def _cov_delta(now: Mapping[str, Mapping[str, int]], then: Mapping[str, Mapping[str, int]]) -> Coverage:
    out: dict[str, dict[str, int]] = {}
    for cat, values in now.items():
        old = then.get(cat, {})
        d = {v: n - old.get(v, 0) for v, n in values.items() if n - old.get(v, 0) > 0}
        if d:
            out[cat] = d
    return out


class _Slot:
    """State of one running slot."""

    def __init__(self, spec: SlotSpec, channel: Channel) -> None:
        self.spec = spec
        self.channel = channel
        self.start = time.monotonic()
        self.deadline: float | None = None
        if spec.time_budget:
            left = spec.time_budget
            if spec.deadline_epoch is not None:
                left = min(left, max(0.0, spec.deadline_epoch - time.time()))
            self.deadline = self.start + left
        self.grace = min(SHRINK_GRACE_MAX, 0.1 * spec.time_budget) if spec.time_budget else 0.0
        self.shrink_limit = spec.shrink_share * spec.time_budget if spec.time_budget else SHRINK_SECONDS_UNTIMED
        if not spec.shrink_share:  # findings are reported as found
            self.shrink_limit = 0.0
        # a chunk's generation time, so that every property runs early and often
        self.chunk_limit = 2 * CHUNK_SECONDS
        if spec.time_budget:
            self.chunk_limit = min(self.chunk_limit, max(0.5, spec.time_budget / (4 * len(spec.properties))))
        # the first round (every property once, no shrinking) fits in FIRST_ROUND_SHARE of the budget
        self.first_round_limit = self.chunk_limit
        if spec.time_budget:
            self.first_round_limit = min(self.chunk_limit,
                                         max(0.2, FIRST_ROUND_SHARE * spec.time_budget / len(spec.properties)))
        self.deferring = False  # in the first round: failures wait in ``deferred`` for their shrinking
        self.deferred: list[_Deferred] = []
        # root causes (groups) this slot already shrank a finding of: a later finding of one is reported as
        # found -- its group already has a small example, and its shrinking would cost the others' time
        self.shrunk_groups: set[tuple[str, ...]] = set()
        # when each signature was first found (epoch seconds): a finding's time, though reported after its
        # shrinking; a replay's first failure is the one it replays (``_origin``)
        self.found_at: dict[tuple[str, ...], float] = {}
        self._origin: float | None = None
        self.schedule: list[list[Any]] = []  # [what, property, started at (s), examples]: the first chunks
        self.examples: dict[str, int] = {}
        self.seeded: dict[str, int] = {}  # of those, drawn on the seeded fast path
        self.unseedable: set[str] = set()  # properties whose strategy the fast path cannot draw
        self.busy: dict[str, float] = {}
        self.impl_stats: dict[str, list[float]] = {}
        self.errors: list[str] = []
        self.reported: list[str] = []
        self.cov0 = coverage.snapshot()
        self.stopped = False
        self.shrinking = False
        self._last_progress = 0.0
        self._last_cov = 0.0
        self._last_poll = 0.0
        self._stop_seen = False

    # --- events ------------------------------------------------------------------------------------

    def progress(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_progress < PROGRESS_EVERY:
            return
        self._last_progress = now
        event: dict[str, Any] = {"type": "progress", "slot": self.spec.index, "examples": self.examples,
                                 "busy": self.busy, "elapsed": now - self.start}
        if force or now - self._last_cov > 5 * PROGRESS_EVERY:
            self._last_cov = now
            event["coverage"] = _cov_delta(coverage.snapshot(), self.cov0)
        self.channel.send(event)

    def report(self, finding: Finding, ctx: Context, unshrunk: str = "") -> None:
        """Send a new finding to the parent; ``unshrunk`` says why its example is not shrunk to the end
        (:data:`~btfspec.oracle.fuzz.campaign.findings.AS_FOUND_GROUP_SHRUNK` and the others)."""
        if finding.signature in ctx.known:
            return
        ctx.known.add(finding.signature)
        if not unshrunk:
            self.shrunk_groups.add(group_key(finding))
        self.reported.append(entry_name(finding.signature))
        self.channel.send({"type": "finding", "slot": self.spec.index, "partial": bool(unshrunk),
                           "unshrunk": unshrunk,
                           "profile": ctx.profile, "found_at": self.found_at.get(finding.signature, time.time()),
                           "finding": finding_to_dict(finding)})

    # --- stop --------------------------------------------------------------------------------------

    def poll(self) -> None:
        """Called before every check: progress, and :class:`_Stop` when the slot must end."""
        self.progress()
        now = time.monotonic()
        if now - self._last_poll >= STOP_POLL:
            self._last_poll = now
            if not self._stop_seen and self.channel.stop_requested():
                self._stop_seen = True
        if self._stop_seen:
            self.stopped = True
            raise _Stop()
        if self.deadline is not None and now > self.deadline:
            if not self.shrinking or now > self.deadline + self.grace:
                self.stopped = True
                raise _Stop()

    def over(self) -> bool:
        if self._stop_seen or self.stopped:
            return True
        if self.deadline is not None and time.monotonic() > self.deadline:
            return True
        if self.channel.stop_requested():
            self._stop_seen = True
            return True
        return False

    # --- one chunk ---------------------------------------------------------------------------------

    def seeded_chunk(self, prop: Property, ctx: Context, n: int, seed: int, db: Any,
                     key: bytes) -> tuple[Finding, Any] | None:
        """Up to ``n`` checks of seeded cases (in the first round: for at most :attr:`first_round_limit`
        seconds); the first failure's finding and case, else None.  The failure's choices are saved in
        ``db`` under ``key``: for hypothesis to shrink, or for a property with a reduction (which reduces
        the case instead) where every later run replays them.  A strategy the fast path cannot draw is
        noted in :attr:`unseedable` (no check run)."""
        strategy = prop.strategy(ctx)
        rng = random.Random(seed)
        start = time.monotonic()
        try:
            for i in range(n):
                if self.deferring and i and time.monotonic() - start > self.first_round_limit:
                    break
                try:
                    case, choices = seeded_example(strategy, rng.getrandbits(64))
                except NotSeedable:
                    self.unseedable.add(prop.name)
                    return None
                self.examples[prop.name] = self.examples.get(prop.name, 0) + 1
                self.seeded[prop.name] = self.seeded.get(prop.name, 0) + 1
                self.poll()
                try:
                    prop.check(case, ctx)
                except PropertyFailure as exc:
                    (save_for_shrinking if prop.reduction is None else keep_for_replay)(db, key, choices)
                    self.found_at.setdefault(exc.finding.signature, time.time())
                    return exc.finding, case
            return None
        finally:
            self.busy[prop.name] = self.busy.get(prop.name, 0.0) + time.monotonic() - start

    def chunk(self, prop: Property, ctx: Context, n: int, seed: int, db: Any, seeded: bool = True,
              cap: int | None = None) -> None:
        """``n`` examples of ``prop``: on the seeded fast path when ``seeded`` and the strategy allows it;
        with ``cap`` every call (shrinking included) counts against it.

        After the first round a failure found on the fast path does not end the property's turn: once it
        is reported, the rest of the ``n`` runs on from another seed.  Otherwise a property that fails
        often (on libbpf's known quirks, say) would get only a few of its examples per turn while the
        others get whole chunks (P1 got a seventh of the time in a five-property campaign)."""
        key = database_key(prop.name, ctx.profile, ctx.impls)
        if cap is not None:
            n = max(1, min(n, cap))
        self.note("chunk", prop.name)
        if not seeded or prop.name in self.unseedable:
            if self.deferring:  # somewhere to keep a failure until it is shrunk, replayed on its own
                db = shrinking_database(db)
            elif db is None and seeded:
                db = InMemoryExampleDatabase()
            self.hypothesis_chunk(prop, ctx, n, seed, db, key, cap)
            return
        part = 0
        while n > 0:
            before = self.examples.get(prop.name, 0)
            found = self._seeded_part(prop, ctx, n, derive_seed(seed, part) if part else seed, db, key, cap)
            if not found or self.deferring:
                return
            n -= max(1, self.examples.get(prop.name, 0) - before)
            part += 1

    def _seeded_part(self, prop: Property, ctx: Context, n: int, seed: int, db: Any, key: bytes,
                     cap: int | None) -> bool:
        """Up to ``n`` seeded examples up to the first failure, which is then reported, deferred or shrunk
        and reported; whether one was found."""
        if prop.reduction is None:
            db = shrinking_database(db)  # somewhere to keep a failure until it is shrunk, replayed on its own
        elif db is None:
            db = InMemoryExampleDatabase()
        got = self.seeded_chunk(prop, ctx, n, seed, db, key)
        found, case = got if got is not None else (None, None)
        if found is not None and not self.shrink_limit:
            self.report(found, ctx, AS_FOUND_NO_SHRINKING)
        elif found is not None and group_key(found) in self.shrunk_groups:
            self.report(found, ctx, AS_FOUND_GROUP_SHRUNK)
        elif found is not None and self.deferring:
            self.deferred.append(_Deferred(prop, ctx.profile, seed, db, key, found, case=case))
        elif found is not None and prop.reduction is not None:  # reduced at the universe level, not replayed
            self.report_reduced(prop, case, found, ctx, cap)
        elif found is not None:  # hypothesis replays the saved failure first and shrinks it
            self._replay(found, lambda: self.hypothesis_chunk(prop, ctx, 1, seed, db, key, cap))
            self.report(found, ctx, AS_FOUND_FLAKY)  # only if the replay did not give it
        elif prop.name in self.unseedable:
            self.hypothesis_chunk(prop, ctx, n, seed, db, key, cap)
        return found is not None

    def note(self, what: str, prop: str) -> None:
        """Record the start of a chunk or a shrink in :attr:`schedule` (the first ones only)."""
        if len(self.schedule) < SCHEDULE_KEPT:
            self.schedule.append([what, prop, round(time.monotonic() - self.start, 3), self.examples.get(prop, 0)])

    def shrink_deferred(self, ctx: Context, cap: int | None) -> bool:
        """Replay and shrink the oldest failure the first round found (False when none is left)."""
        if not self.deferred:
            return False
        d = self.deferred.pop(0)
        if d.finding.signature in ctx.known:
            return True
        if group_key(d.finding) in self.shrunk_groups:
            self.report(d.finding, ctx, AS_FOUND_GROUP_SHRUNK)
            return True
        profile, ctx.profile = ctx.profile, d.profile
        self.note("shrink", d.prop.name)
        try:
            if d.case is not None and d.prop.reduction is not None:
                self.report_reduced(d.prop, d.case, d.finding, ctx, cap)
                return True
            if d.requeue:
                requeue_for_shrinking(d.db, d.key)
            self._replay(d.finding, lambda: self.hypothesis_chunk(d.prop, ctx, 1, d.seed, d.db, d.key, cap))
            self.report(d.finding, ctx, AS_FOUND_FLAKY)  # only if the replay did not give it
        finally:
            ctx.profile = profile
        return True

    def report_reduced(self, prop: Property, case: Any, found: Finding, ctx: Context, cap: int | None,
                       unshrunk: str = "") -> None:
        """Reduce ``case`` (:meth:`_reduce_one`) and report the finding of the smallest case reached; then
        the new failures its reduction met (up to :data:`MET_WHILE_REDUCING`), each reduced in turn, or
        reported as found when its group already has a shrunk example or the slot must end."""
        met: dict[tuple[str, ...], tuple[Finding, Any]] = {}

        def other(f: Finding, c: Any) -> None:
            if f.signature not in ctx.known and len(met) < MET_WHILE_REDUCING:
                self.found_at.setdefault(f.signature, time.time())
                met.setdefault(f.signature, (f, c))

        self._reduce_one(prop, case, found, ctx, cap, unshrunk, other)
        done: set[tuple[str, ...]] = set()
        while pending := [sig for sig in met if sig not in done]:
            done.add(pending[0])
            f, c = met[pending[0]]
            if f.signature in ctx.known:
                continue
            if group_key(f) in self.shrunk_groups or self.stopped:
                self.report(f, ctx, AS_FOUND_GROUP_SHRUNK if not self.stopped else PARTLY_STOPPED)
            else:
                self._reduce_one(prop, c, f, ctx, cap, "", other)

    def _reduce_one(self, prop: Property, case: Any, found: Finding, ctx: Context, cap: int | None,
                    unshrunk: str, other: Callable[[Finding, Any], None]) -> None:
        """Reduce ``case`` (:func:`~.reduction.reduce_failure`, for :attr:`shrink_limit` seconds, within the
        budget's grace) and report the finding of the smallest case reached; ``unshrunk`` (a partial
        hypothesis shrink) stays, and a reduction stopped by its time limit or the slot's end makes the
        finding partial.  Should the reduction itself fail, the finding is reported as it came, and the
        error noted."""
        start = time.monotonic()
        seconds = self.shrink_limit
        if self.deadline is not None:
            seconds = min(seconds, max(0.0, self.deadline + self.grace - start))
        self.note("reduce", prop.name)
        self.shrinking = True
        try:
            finding, reduced = reduce_failure(prop, case, found, ctx, seconds, cap, self._stop_due, other)
        except Exception as exc:  # noqa: BLE001 - a reducer bug must not lose the finding
            self.errors.append(f"{prop.name} reduction: {type(exc).__name__}: {exc}")
            finding, stopped = found, False
        else:
            stopped = reduced.stopped
            # its checks count as examples, as hypothesis's shrinking calls do (and against an example quota)
            self.examples[prop.name] = self.examples.get(prop.name, 0) + reduced.checks
        finally:
            self.shrinking = False
            self.busy[prop.name] = self.busy.get(prop.name, 0.0) + time.monotonic() - start
        if stopped:
            unshrunk = unshrunk or (PARTLY_STOPPED if self.stopped else PARTLY_TIME_UP)
        self.report(finding, ctx, unshrunk)

    def _stop_due(self) -> bool:
        """Whether the slot must end now (:meth:`poll` would stop it; :attr:`stopped` is then set)."""
        try:
            self.poll()
        except _Stop:
            return True
        return False

    def _replay(self, found: Finding, run: Callable[[], None]) -> None:
        """``run`` (a hypothesis run replaying ``found`` to shrink it), its first failure dated as ``found``."""
        self._origin = self.found_at.get(found.signature)
        try:
            run()
        finally:
            self._origin = None

    def _to_shrink(self, pending: Mapping[tuple[str, ...], Finding]) -> int:
        """How many shrinking shares a run's failures earn: one per group not yet shrunk among them (at least
        one); many failures of one group (its outcomes in several operations, say) earn one share."""
        return max(1, len({group_key(f) for f in pending.values()} - self.shrunk_groups))

    def hypothesis_chunk(self, prop: Property, ctx: Context, n: int, seed: int, db: Any, key: bytes,
                         cap: int | None = None) -> None:
        """One hypothesis run of at most ``n`` generated examples; its shrinking gets :attr:`shrink_limit`
        seconds per finding, and with ``cap`` every call (shrinking included) counts against it.  In the
        first round the run ends at its first failure (hypothesis saved it in ``db``), which waits in
        :attr:`deferred`."""
        pending: dict[tuple[str, ...], Finding] = {}
        cases: dict[tuple[str, ...], Any] = {}  # the smallest failing case of each (for a reduction)
        limit = self.first_round_limit if self.deferring else self.chunk_limit
        self.shrinking = False
        known = ctx.known
        state = {"known_hit": False}
        calls = [0]
        first_failure: list[float] = []
        begun = time.monotonic()

        def body(case: Any) -> None:
            now = time.monotonic()
            if pending and self.deferring:
                raise _Defer()
            if pending and prop.reduction is not None:
                raise _Reduce()
            if pending and (now - first_failure[0] > self.shrink_limit * self._to_shrink(pending)
                            or (cap is not None and calls[0] >= cap)):
                raise _ShrinkLimit()  # keeps the smallest failing example reached (reported as partial)
            if not pending and calls[0] and now - begun > limit:
                raise _ShrinkLimit()  # a slow chunk: the other properties get their turn
            calls[0] += 1
            self.examples[prop.name] = self.examples.get(prop.name, 0) + 1
            self.poll()
            state["known_hit"] = False
            if isinstance(known, _KnownSet):
                known.hit = False
            try:
                prop.check(case, ctx)
            except PropertyFailure as exc:
                self.found_at.setdefault(exc.finding.signature, self._origin if self._origin is not None
                                         and not pending else time.time())
                pending[exc.finding.signature] = exc.finding
                cases[exc.finding.signature] = case
                if not first_failure:
                    first_failure.append(time.monotonic())
                self.shrinking = True
                # one exception type per signature: hypothesis shrinks each distinct finding on its own
                raise _failure_type(exc.finding.signature)(exc.finding) from exc
            state["known_hit"] = bool(getattr(known, "hit", False))

        db_given = db
        if db is not None:
            db = keeping_database(db, lambda: state["known_hit"])
        test = campaign_test(body, prop.strategy(ctx), max_examples=n, seed=seed, database=db, database_key=key)
        start = time.monotonic()
        try:
            test()
        except BaseException as exc:
            def report(f: Finding, unshrunk: str = "") -> None:
                if prop.reduction is None or f.signature not in cases or unshrunk == PARTLY_STOPPED:
                    self.report(f, ctx, unshrunk)
                else:  # the failure hypothesis met is reduced
                    self.report_reduced(prop, cases[f.signature], f, ctx, cap, unshrunk)

            self._run_ended(exc, pending, lambda f: _Deferred(prop, ctx.profile, seed, db_given, key, f, True,
                                                              cases.get(f.signature)), ctx, report)
        finally:
            self.busy[prop.name] = self.busy.get(prop.name, 0.0) + time.monotonic() - start

    def _run_ended(self, exc: BaseException, pending: Mapping[tuple[str, ...], Finding],
                   deferred: Callable[[Finding], _Deferred], ctx: Context,
                   report: Callable[[Finding, str], None] | None = None) -> None:
        """Act on how a hypothesis run ended: its shrunk failures are reported; a stop (:class:`_Stop`: the
        time limit, the campaign's end) reports the smallest failing examples reached as partly shrunk, or in
        the first round (:class:`_Defer`) keeps them in :attr:`deferred`; anything else goes through unless
        failures came with it.  ``report`` reports one (default :meth:`report`).  A group (hypothesis replays
        every distinct failure at the end, and each replay may meet the limit) counts as its parts."""
        parts = _flatten(exc)
        failures = [e for e in parts if isinstance(e, PropertyFailure)]
        stops = [e for e in parts if isinstance(e, _Stop)]
        others = [e for e in parts if not isinstance(e, PropertyFailure | _Stop)]
        if others and (not failures or any(isinstance(e, KeyboardInterrupt) for e in others)):
            raise exc
        if report is None:
            def report(f: Finding, unshrunk: str = "") -> None:
                self.report(f, ctx, unshrunk)
        for f in failures:
            report(f.finding, "")
        if any(isinstance(e, _Defer) for e in stops):
            self.deferred += [deferred(f) for f in pending.values() if f.signature not in ctx.known]
        elif stops and all(isinstance(e, _Reduce) for e in stops):
            for finding in pending.values():  # not shrunk by hypothesis: ``report`` reduces it
                report(finding, "")
        elif stops:
            why = PARTLY_TIME_UP if all(isinstance(e, _ShrinkLimit) for e in stops) else PARTLY_STOPPED
            for finding in pending.values():  # the smallest failing example seen so far
                report(finding, why)


def _cap(st: Mapping[str, Any]) -> int | None:
    """What is left of a property's quota in a slot (None: no quota)."""
    return None if st["left"] is None else int(st["left"])


def _guarded(slot: _Slot, prop: Property, st: dict[str, Any], active: list[Property], run: Callable[[], Any],
             adapt: str | None = SEEDED) -> bool:
    """Run one chunk (or shrink) of ``prop`` for the slot loop: an error (a bug in a property or an unusable
    implementation, not a finding) is noted and, the :data:`MAX_PROPERTY_ERRORS`-th time, drops the
    property from ``active``; the quota counts every call, and the chunk size of mode ``adapt`` (seeded or
    hypothesis: their rates differ threefold) follows the rate.  False after an error; a stop
    (:class:`_Stop`) goes through."""
    before = slot.examples.get(prop.name, 0)
    t0 = time.monotonic()
    try:
        run()
    except _Stop:
        raise
    except Exception as exc:
        slot.errors.append(f"{prop.name}: {''.join(traceback.format_exception_only(exc)).strip()}")
        st["errors"] += 1
        if st["errors"] >= MAX_PROPERTY_ERRORS and prop in active:
            slot.errors.append(f"{prop.name}: stopped after {st['errors']} errors")
            active.remove(prop)
        return False
    done = slot.examples.get(prop.name, 0) - before
    if adapt == SEEDED and prop.name in slot.unseedable:  # it turned out the fast path cannot draw it
        adapt = HYPOTHESIS
    if adapt:
        spent = max(time.monotonic() - t0, 1e-3)
        st[adapt] = max(5, min(MAX_CHUNK, int(done / spent * CHUNK_SECONDS) or 5))
    if st["left"] is not None:  # every call counts, shrinking included
        st["left"] = max(0, int(st["left"]) - max(1, done))
        if st["left"] == 0 and prop in active:
            active.remove(prop)
    return True


def run_slot(spec: SlotSpec, channel: Channel) -> dict[str, Any]:
    """Run one worker slot until its quota, the time budget or a stop request; its final statistics."""
    quiet_hypothesis_warnings()
    slot = _Slot(spec, channel)
    channel.send({"type": "start", "slot": spec.index, "pid": os.getpid(), "host": os.uname().nodename})
    impls: list[Implementation] = []
    ctx: Context | None = None
    try:
        for name in spec.impls:
            impls.append(make_impl(name, timeout=spec.timeout, distill_cmd=spec.distill_cmd,
                                   relocate_cmd=spec.relocate_cmd, serve_cmd=spec.serve_cmd))
        timed = {i.name: _Timed(i, slot.impl_stats) for i in impls}
        ctx = Context(impls=timed, profile=spec.profile,  # type: ignore[arg-type]
                      known=_KnownSet(tuple(s) for s in spec.known), timeout=spec.timeout)
        props = [get_property(n) for n in spec.properties]
        db = open_database(spec.db)
        state = {p.name: {SEEDED: FIRST_CHUNK, HYPOTHESIS: FIRST_CHUNK, "left": spec.quota, "runs": 0, "errors": 0}
                 for p in props}
        # every slot starts at another property, and the first round runs each once before any shrinking
        active = props[spec.index % len(props):] + props[:spec.index % len(props)]
        slot.deferring = True
        while active and not slot.over():
            for prop in list(active):
                if slot.over():
                    break
                st = state[prop.name]
                ctx.known.update(tuple(s) for s in channel.known())
                seeded = st["runs"] % HYPOTHESIS_EVERY != HYPOTHESIS_EVERY - 1
                mode = SEEDED if seeded and prop.name not in slot.unseedable else HYPOTHESIS
                n = int(st[mode])
                if st["left"] is not None:
                    n = min(n, int(st["left"]))
                if slot.deadline is not None:
                    rate = slot.examples.get(prop.name, 0) / max(slot.busy.get(prop.name, 0.0), 1e-3)
                    if st["runs"]:
                        n = max(1, min(n, int(rate * max(slot.deadline - time.monotonic(), 0.0)) + 1))
                ctx.profile = chunk_profile(spec.profile, spec.index + int(st["runs"]))
                seed = derive_seed(spec.seed, spec.index, prop.name, st["runs"])
                if _guarded(slot, prop, st, active, partial(slot.chunk, prop, ctx, n, seed, db, seeded=seeded,
                                                            cap=_cap(st)), adapt=mode):
                    st["runs"] += 1
            slot.deferring = False
            if slot.deferred and not slot.over():  # one first-round failure shrunk per round
                d = slot.deferred[0]
                _guarded(slot, d.prop, state[d.prop.name], active,
                         partial(slot.shrink_deferred, ctx, _cap(state[d.prop.name])), adapt=None)
    except _Stop:
        pass
    except Exception as exc:
        slot.errors.append(f"slot {spec.index}: {''.join(traceback.format_exception_only(exc)).strip()}")
    finally:
        if ctx is not None:
            for d in slot.deferred:  # found but never shrunk: the example as found
                slot.report(d.finding, ctx, AS_FOUND_NO_TURN)
        close_impls(impls)
    slot.progress(force=True)
    result = {"slot": spec.index, "seed": spec.seed, "examples": slot.examples, "seeded": slot.seeded,
              "busy": slot.busy,
              "impl_stats": slot.impl_stats, "coverage": _cov_delta(coverage.snapshot(), slot.cov0),
              "errors": slot.errors, "reported": slot.reported, "elapsed": time.monotonic() - slot.start,
              "schedule": slot.schedule,
              "stopped": slot.stopped, "pid": os.getpid(), "host": os.uname().nodename}
    channel.send({"type": "done", "slot": spec.index})
    return result


# --------------------------------------------------------------------------------------------------
# results


def local_slot_main(spec_json: str, directory: str) -> None:
    """Main function of a local worker process: run the slot, talking through the
    :class:`~.channels.SlotFiles` in ``directory``, and leave its result there (atomically)."""
    terminated = init_local_slot()
    spec = SlotSpec.from_json(spec_json)
    files = SlotFiles(directory)
    channel = FileChannel(files, spec.index, terminated)
    try:
        result = json.dumps(run_slot(spec, channel))
    finally:
        channel.close()
    part = files.result(spec.index) + ".tmp"
    with open(part, "w", encoding="utf-8") as f:
        f.write(result)
    os.replace(part, files.result(spec.index))


def dask_slot_task(spec_json: str, names: dict[str, str]) -> str:
    """Task of a dask worker (whose stack sampling is paused meanwhile: :mod:`.dask_worker`)."""
    with profiler_paused():
        return json.dumps(run_slot(SlotSpec.from_json(spec_json), DaskChannel(names)))

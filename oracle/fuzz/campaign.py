"""Fuzz campaigns: properties x implementations on parallel workers, on this machine or a dask cluster.

:func:`run_campaign` runs every selected property (:mod:`btfspec.oracle.fuzz.property`) on N *worker slots*, each
with its own seed.  A slot is a worker process (``concurrent.futures.ProcessPoolExecutor``, "spawn"
context), a task on a ``dask.distributed`` cluster (``scheduler="tcp://HOST:PORT"``), or, with
``workers=0``, a thread of the calling process.  Each slot makes its own implementations (the libbpf
worker is a subprocess, never a multiprocessing child, so it also runs inside daemonic dask workers)
and loops over the properties in chunks: one hypothesis run per chunk (``@given(prop.strategy(ctx))``,
explicit settings, a seed derived from the campaign seed, the slot, the property and the chunk),
catching the shrunk :class:`~btfspec.oracle.fuzz.property.PropertyFailure`\\ s.

All slots share one hypothesis example database -- a directory (default ``.hypothesis/campaign``
beside the corpus directory) or ``redis://HOST:PORT`` -- so they replay and extend one set of
failures.  Every distinct finding (by :attr:`~btfspec.oracle.fuzz.property.Finding.signature`) travels to the
parent as soon as it is found and is written there atomically as a corpus entry
(:func:`btfspec.oracle.fuzz.corpus.write_entry`, ``category: "finding"``) named ``<property>-<impl>-<hash>``; its
signature then becomes *known* to every slot, whose checks treat it as passing, so the search moves
on to other failures.  Findings already in the corpus directory are known from the start and are
never *new*.

Slots report progress (examples per property, busy seconds, coverage of :mod:`btfspec.btfgen.coverage`)
about once a second as JSON events through a queue (multiprocessing, thread or dask ``Queue``); the
parent shows them live (rich on a TTY, plain lines otherwise).  A stop request (Ctrl-C in the parent,
or the time budget) reaches the slots through an event; a slot that is shrinking a failure when the
budget ends may finish within a short grace period, and one stopped earlier reports the smallest
failing example it has, so an interrupt loses nothing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import multiprocessing
import os
import queue as _queue
import random
import re
import shlex
import signal
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from btfspec.btfgen import coverage
from btfspec.oracle.fuzz.property import REGISTRY, Context, Finding, Property, PropertyFailure, all_names, get_property
from btfspec.oracle.impls.adapter import (
    KNOWN,
    Implementation,
    ImplUnavailable,
    available,
    close_impls,
    make_impl,
    parse_impl_list,
)

DEFAULT_TIME = 120.0
DEFAULT_CORPUS = Path("corpus") / "found"
DEFAULT_TIMEOUT = 5.0
DEFAULT_PROFILE = "kernel-valid"
CHUNK_SECONDS = 3.0  # aim of one hypothesis run
FIRST_CHUNK = 10
MAX_CHUNK = 2000
PROGRESS_EVERY = 1.0
STOP_POLL = 0.25
SHRINK_GRACE_MAX = 10.0  # seconds a slot may keep shrinking after the time budget
WAIT_AFTER_STOP = 30.0  # seconds the parent waits for stopped slots before ending them
SIGNATURE_NOTE = "signature: "
MAX_PROPERTY_ERRORS = 3  # a slot drops a property whose runs keep failing with errors (not findings)


class CampaignError(ValueError):
    """A campaign that cannot start (bad option, unreachable scheduler, nothing to run)."""


# --------------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------------

_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*\Z")
_UNIT = {None: 1.0, "ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str | float | int) -> float:
    """``"90s"``, ``"2m"``, ``"1.5h"``, ``"45"`` (seconds) -> seconds; ValueError otherwise."""
    if isinstance(text, int | float):
        value = float(text)
    else:
        m = _DURATION.match(text)
        if not m:
            raise ValueError(f"not a duration: {text!r} (examples: 90s, 2m, 1h)")
        value = float(m.group(1)) * _UNIT[m.group(2)]
    if value <= 0:
        raise ValueError(f"a duration must be positive, got {text!r}")
    return value


def signature_key(sig: Sequence[str]) -> str:
    """Short stable hash of a finding signature."""
    return hashlib.sha256(json.dumps(list(sig)).encode()).hexdigest()[:10]


def entry_name(sig: Sequence[str]) -> str:
    """The corpus entry name of a finding: ``P3-cmd-1a2b3c4d5e``."""
    prop, impl = sig[0], re.sub(r"[^A-Za-z0-9_.+-]", "_", sig[1])
    return f"{prop}-{impl}-{signature_key(sig)}"


def derive_seed(*parts: object) -> int:
    """A 64-bit seed from the campaign seed and the slot/property/chunk it is for."""
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:8], "little")


def finding_to_dict(f: Finding) -> dict[str, Any]:
    """A JSON-friendly form of a finding (files as hex)."""
    return {"property": f.property, "impl": f.impl, "outcome": f.outcome, "first_difference": f.first_difference,
            "files": {k: bytes(v).hex() for k, v in f.files.items()}, "steps": [dict(s) for s in f.steps],
            "quirk": f.quirk, "description": f.description}


def finding_from_dict(d: Mapping[str, Any]) -> Finding:
    """Inverse of :func:`finding_to_dict`."""
    return Finding(d["property"], d["impl"], d["outcome"], d["first_difference"],
                   {k: bytes.fromhex(v) for k, v in d["files"].items()}, list(d["steps"]), d.get("quirk"),
                   d.get("description", ""))


def _flatten(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [x for e in exc.exceptions for x in _flatten(e)]
    return [exc]


def known_findings(corpus_dir: str | os.PathLike[str]) -> tuple[set[tuple[str, ...]], set[str]]:
    """Signatures (from ``provenance.notes``) and entry names of the findings already in ``corpus_dir``."""
    sigs: set[tuple[str, ...]] = set()
    names: set[str] = set()
    root = Path(corpus_dir)
    if not root.is_dir():
        return sigs, names
    for mpath in sorted(root.glob("*/manifest.json")):
        names.add(mpath.parent.name)
        try:
            notes = json.loads(mpath.read_text(encoding="utf-8")).get("provenance", {}).get("notes", "")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(notes, str) and notes.startswith(SIGNATURE_NOTE):
            with contextlib.suppress(ValueError):
                sigs.add(tuple(json.loads(notes[len(SIGNATURE_NOTE):].splitlines()[0])))
    return sigs, names


def database_key(prop: str, profile: str, impls: Iterable[str]) -> bytes:
    """The example-database key of a property run: a failure depends on the implementations compared."""
    return f"btfspec-campaign:{prop}:{profile}:{'+'.join(sorted(impls))}".encode()


def open_database(spec: str | None) -> Any:
    """A hypothesis example database: ``None`` -> none, ``redis://HOST:PORT[/N]`` -> Redis, else a directory."""
    if not spec:
        return None
    if spec.startswith(("redis://", "rediss://", "unix://")):
        import redis
        from hypothesis.extra.redis import RedisExampleDatabase

        return RedisExampleDatabase(redis.Redis.from_url(spec))
    from hypothesis.database import DirectoryBasedExampleDatabase

    return DirectoryBasedExampleDatabase(spec)


def check_database(spec: str | None) -> None:
    """Raise :class:`CampaignError` when a Redis database does not answer."""
    if spec and spec.startswith(("redis://", "rediss://", "unix://")):
        try:
            import redis
        except ImportError:
            raise CampaignError("--db redis://... needs the redis package (pip install -e '.[campaign]')") from None
        try:
            redis.Redis.from_url(spec, socket_connect_timeout=5).ping()
        except (redis.RedisError, OSError, ValueError) as exc:
            raise CampaignError(f"example database {spec}: {exc}") from None


# --------------------------------------------------------------------------------------------------
# configuration shipped to the slots
# --------------------------------------------------------------------------------------------------

@dataclass
class SlotSpec:
    """What one worker slot needs (JSON-serializable)."""

    index: int
    seed: int
    campaign: str
    properties: list[str]
    impls: list[str]
    profile: str = DEFAULT_PROFILE
    timeout: float = DEFAULT_TIMEOUT
    distill_cmd: str | None = None
    relocate_cmd: str | None = None
    db: str | None = None
    time_budget: float | None = None
    deadline_epoch: float | None = None  # wall-clock end of the campaign (bounds the slot's own budget)
    quota: int | None = None  # examples per property for this slot (None: until the time budget)
    known: list[list[str]] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> SlotSpec:
        return cls(**json.loads(text))


class _KnownSet(set):  # type: ignore[type-arg]
    """Known signatures that remember whether a membership test hit (a check passed on a known finding)."""

    hit = False

    def __contains__(self, item: object) -> bool:
        found = super().__contains__(item)
        if found:
            self.hit = True
        return found


def _keeping_database(inner: Any, keep: Callable[[], bool]) -> Any:
    """``inner`` whose ``delete`` is skipped while ``keep()`` says the example just replayed is a known finding.

    Hypothesis deletes a saved failure that no longer fails; a known finding passes only because the
    campaign excuses it, so its shrunk example stays in the shared database for every worker, machine
    and later campaign to replay.
    """
    from hypothesis.database import ExampleDatabase

    class _Keeping(ExampleDatabase):
        def save(self, key: bytes, value: bytes) -> None:
            inner.save(key, value)

        def fetch(self, key: bytes) -> Any:
            return inner.fetch(key)

        def delete(self, key: bytes, value: bytes) -> None:
            if not keep():
                inner.delete(key, value)

        def move(self, src: bytes, dest: bytes, value: bytes) -> None:
            inner.move(src, dest, value)

        def __repr__(self) -> str:
            return f"keeping({inner!r})"

    return _Keeping()


_FAILURE_TYPES: dict[tuple[str, ...], type[PropertyFailure]] = {}


def _failure_type(sig: tuple[str, ...]) -> type[PropertyFailure]:
    """A PropertyFailure subclass for one signature (hypothesis tells bugs apart by exception type)."""
    if sig not in _FAILURE_TYPES:
        _FAILURE_TYPES[sig] = type(f"PropertyFailure_{signature_key(sig)}", (PropertyFailure,), {})
    return _FAILURE_TYPES[sig]


class _Stop(KeyboardInterrupt):
    """Raised inside a check to end the current hypothesis run (hypothesis lets it through unshrunk)."""


# --------------------------------------------------------------------------------------------------
# channels: events out, stop requests and known signatures in
# --------------------------------------------------------------------------------------------------

class Channel:
    """How a slot talks to the parent; events are JSON strings."""

    def send(self, event: Mapping[str, Any]) -> None:
        raise NotImplementedError

    def stop_requested(self) -> bool:
        raise NotImplementedError

    def known(self) -> list[list[str]]:
        return []


class _ThreadChannel(Channel):
    def __init__(self, q: _queue.Queue[str], stop: threading.Event, known: Callable[[], list[list[str]]]) -> None:
        self.q, self.stop, self._known = q, stop, known

    def send(self, event: Mapping[str, Any]) -> None:
        self.q.put(json.dumps(event))

    def stop_requested(self) -> bool:
        return self.stop.is_set()

    def known(self) -> list[list[str]]:
        return self._known()


class _FileKnown:
    """Known signatures published by the parent in a JSON file (re-read when it changes)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._stamp: float | None = None
        self._value: list[list[str]] = []

    def __call__(self) -> list[list[str]]:
        try:
            stamp = os.stat(self.path).st_mtime_ns
        except OSError:
            return self._value
        if stamp != self._stamp:
            try:
                with open(self.path, encoding="utf-8") as f:
                    self._value = json.load(f)
                self._stamp = stamp
            except (OSError, ValueError):
                pass
        return self._value


_LOCAL: dict[str, Any] = {}


def _init_local_slot(q: Any, stop: Any, known_path: str) -> None:
    """ProcessPoolExecutor initializer: Ctrl-C belongs to the parent; keep the channel objects."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _LOCAL.update(q=q, stop=stop, known=_FileKnown(known_path))


class _ProcessChannel(Channel):
    def __init__(self) -> None:
        self.q, self.stop, self._known = _LOCAL["q"], _LOCAL["stop"], _LOCAL["known"]

    def send(self, event: Mapping[str, Any]) -> None:
        self.q.put(json.dumps(event))

    def stop_requested(self) -> bool:
        return bool(self.stop.is_set())

    def known(self) -> list[list[str]]:
        return self._known()


class _DaskChannel(Channel):
    def __init__(self, names: Mapping[str, str]) -> None:
        from distributed import Event, Queue, Variable

        self.q = Queue(names["queue"])
        self.stop = Event(names["stop"])
        self.var = Variable(names["known"])

    def send(self, event: Mapping[str, Any]) -> None:
        self.q.put(json.dumps(event))

    def stop_requested(self) -> bool:
        return bool(self.stop.is_set())

    def known(self) -> list[list[str]]:
        try:
            return json.loads(self.var.get(timeout=5))
        except Exception:  # a slow scheduler: keep what the slot knows
            return []


def _local_slot(spec_json: str) -> str:
    """Task of a local worker process."""
    return json.dumps(run_slot(SlotSpec.from_json(spec_json), _ProcessChannel()))


def _dask_slot(spec_json: str, names: dict[str, str]) -> str:
    """Task of a dask worker."""
    return json.dumps(run_slot(SlotSpec.from_json(spec_json), _DaskChannel(names)))


# --------------------------------------------------------------------------------------------------
# the slot: chunks of hypothesis runs
# --------------------------------------------------------------------------------------------------

class _Timed:
    """An implementation that counts its calls and their seconds per operation."""

    def __init__(self, impl: Implementation, stats: dict[str, list[float]]) -> None:
        self._impl = impl
        self.name = impl.name
        self.capabilities = impl.capabilities
        self._stats = stats

    def _timed(self, op: str, fn: Callable[..., Any], *args: Any) -> Any:
        start = time.perf_counter()
        try:
            return fn(*args)
        finally:
            s = self._stats.setdefault(f"{self.name} {op}", [0, 0.0])
            s[0] += 1
            s[1] += time.perf_counter() - start

    def distill(self, split: bytes, base: bytes) -> Any:
        return self._timed("distill", self._impl.distill, split, base)

    def relocate(self, split: bytes, distilled_base: bytes, base: bytes) -> Any:
        return self._timed("relocate", self._impl.relocate, split, distilled_base, base)

    def accept(self, blob: bytes, base: bytes | None = None) -> Any:
        return self._timed("accept", self._impl.accept, blob, base)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._impl, name)


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
        self.examples: dict[str, int] = {}
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

    def report(self, finding: Finding, ctx: Context, partial: bool = False) -> None:
        if finding.signature in ctx.known:
            return
        ctx.known.add(finding.signature)
        self.reported.append(entry_name(finding.signature))
        self.channel.send({"type": "finding", "slot": self.spec.index, "partial": partial,
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

    def chunk(self, prop: Property, ctx: Context, n: int, seed: int, db: Any) -> None:
        from hypothesis import HealthCheck, Phase, Verbosity, given, settings

        pending: dict[tuple[str, ...], Finding] = {}
        self.shrinking = False
        known = ctx.known
        state = {"known_hit": False}

        def body(case: Any) -> None:
            self.examples[prop.name] = self.examples.get(prop.name, 0) + 1
            self.poll()
            state["known_hit"] = False
            if isinstance(known, _KnownSet):
                known.hit = False
            try:
                prop.check(case, ctx)
            except PropertyFailure as exc:
                pending[exc.finding.signature] = exc.finding
                self.shrinking = True
                # one exception type per signature: hypothesis shrinks each distinct finding on its own
                raise _failure_type(exc.finding.signature)(exc.finding) from exc
            state["known_hit"] = bool(getattr(known, "hit", False))

        test = given(prop.strategy(ctx))(body)
        if db is not None:
            db = _keeping_database(db, lambda: state["known_hit"])
        test = settings(database=db, max_examples=n, derandomize=False, deadline=None,
                        phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
                        suppress_health_check=list(HealthCheck), verbosity=Verbosity.quiet, print_blob=False,
                        report_multiple_bugs=True)(test)
        # hypothesis.seed() would also switch the example database off: set the seed alone
        test._hypothesis_internal_use_seed = seed  # type: ignore[attr-defined]
        # one database key per property, profile and implementation set, shared by every slot and machine
        test._hypothesis_internal_database_key = database_key(prop.name, ctx.profile, ctx.impls)  # type: ignore[attr-defined]
        start = time.monotonic()
        try:
            test()
        except _Stop:
            for finding in pending.values():  # the smallest failing example seen so far
                self.report(finding, ctx, partial=True)
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt):
                raise
            parts = _flatten(exc)
            failures = [e for e in parts if isinstance(e, PropertyFailure)]
            for f in failures:
                self.report(f.finding, ctx)
            others = [e for e in parts if not isinstance(e, PropertyFailure)]
            if others and not failures:
                raise
        finally:
            self.busy[prop.name] = self.busy.get(prop.name, 0.0) + time.monotonic() - start


def run_slot(spec: SlotSpec, channel: Channel) -> dict[str, Any]:
    """Run one worker slot until its quota, the time budget or a stop request; its final statistics."""
    import warnings

    from hypothesis.errors import HypothesisDeprecationWarning

    # other threads of a dask worker use the global random module while a case is drawn: not the strategy's
    warnings.filterwarnings("ignore", message="Do not use the `random` module inside strategies",
                            category=HypothesisDeprecationWarning)
    slot = _Slot(spec, channel)
    channel.send({"type": "start", "slot": spec.index, "pid": os.getpid(), "host": os.uname().nodename})
    impls: list[Implementation] = []
    try:
        for name in spec.impls:
            impls.append(make_impl(name, timeout=spec.timeout, distill_cmd=spec.distill_cmd,
                                   relocate_cmd=spec.relocate_cmd))
        timed = {i.name: _Timed(i, slot.impl_stats) for i in impls}
        ctx = Context(impls=timed, profile=spec.profile,  # type: ignore[arg-type]
                      known=_KnownSet(tuple(s) for s in spec.known))
        props = [get_property(n) for n in spec.properties]
        db = open_database(spec.db)
        state = {p.name: {"chunk": FIRST_CHUNK, "left": spec.quota, "runs": 0, "errors": 0} for p in props}
        active = [p for p in props]
        while active and not slot.over():
            for prop in list(active):
                if slot.over():
                    break
                st = state[prop.name]
                ctx.known.update(tuple(s) for s in channel.known())
                n = int(st["chunk"])
                if st["left"] is not None:
                    n = min(n, int(st["left"]))
                if slot.deadline is not None:
                    rate = slot.examples.get(prop.name, 0) / max(slot.busy.get(prop.name, 0.0), 1e-3)
                    if st["runs"]:
                        n = max(1, min(n, int(rate * max(slot.deadline - time.monotonic(), 0.0)) + 1))
                before = slot.examples.get(prop.name, 0)
                t0 = time.monotonic()
                try:
                    slot.chunk(prop, ctx, n, derive_seed(spec.seed, spec.index, prop.name, st["runs"]), db)
                except _Stop:
                    break
                except Exception as exc:  # a bug in a property or an unusable implementation, not a finding
                    slot.errors.append(f"{prop.name}: {''.join(traceback.format_exception_only(exc)).strip()}")
                    st["errors"] += 1
                    if st["errors"] >= MAX_PROPERTY_ERRORS:
                        slot.errors.append(f"{prop.name}: stopped after {st['errors']} errors")
                        active.remove(prop)
                    continue
                st["runs"] += 1
                done = slot.examples.get(prop.name, 0) - before
                spent = max(time.monotonic() - t0, 1e-3)
                st["chunk"] = max(5, min(MAX_CHUNK, int(done / spent * CHUNK_SECONDS) or 5))
                if st["left"] is not None:
                    st["left"] = max(0, int(st["left"]) - n)
                    if st["left"] == 0:
                        active.remove(prop)
    except _Stop:
        pass
    except Exception as exc:
        slot.errors.append(f"slot {spec.index}: {''.join(traceback.format_exception_only(exc)).strip()}")
    finally:
        close_impls(impls)
    slot.progress(force=True)
    result = {"slot": spec.index, "seed": spec.seed, "examples": slot.examples, "busy": slot.busy,
              "impl_stats": slot.impl_stats, "coverage": _cov_delta(coverage.snapshot(), slot.cov0),
              "errors": slot.errors, "reported": slot.reported, "elapsed": time.monotonic() - slot.start,
              "stopped": slot.stopped, "pid": os.getpid(), "host": os.uname().nodename}
    channel.send({"type": "done", "slot": spec.index})
    return result


# --------------------------------------------------------------------------------------------------
# results
# --------------------------------------------------------------------------------------------------

@dataclass
class FoundRecord:
    """A finding as the parent recorded it."""

    signature: tuple[str, ...]
    property: str
    impl: str
    outcome: str
    first_difference: str
    quirk: str | None
    path: str
    reproduce: str
    new: bool
    slot: int
    partial: bool = False
    description: str = ""
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["signature"] = list(self.signature)
        return d


@dataclass
class CampaignResult:
    """Everything a campaign produced (see :mod:`btfspec.oracle.fuzz.report` for the renderings)."""

    campaign: str
    seed: int
    mode: str  # "local", "in-process" or "dask"
    workers: int
    scheduler: str | None
    db: str | None
    corpus_dir: str
    profile: str
    impls: list[str]
    unavailable: dict[str, str]
    properties: list[str]
    skipped: dict[str, str]
    time_budget: float | None
    max_examples: int | None
    elapsed: float = 0.0
    interrupted: bool = False
    examples: dict[str, int] = field(default_factory=dict)
    busy: dict[str, float] = field(default_factory=dict)
    slots: list[dict[str, Any]] = field(default_factory=list)
    impl_stats: dict[str, list[float]] = field(default_factory=dict)
    coverage: dict[str, dict[str, int]] = field(default_factory=dict)
    findings: list[FoundRecord] = field(default_factory=list)
    duplicates: int = 0
    errors: list[str] = field(default_factory=list)
    report_path: str | None = None

    @property
    def new_findings(self) -> list[FoundRecord]:
        return [f for f in self.findings if f.new]

    @property
    def exit_code(self) -> int:
        """1 when the campaign found something new, else 0."""
        return 1 if self.new_findings else 0

    def rate(self, prop: str) -> float:
        """Examples per second of ``prop`` over the campaign's wall time."""
        return self.examples.get(prop, 0) / self.elapsed if self.elapsed > 0 else 0.0

    def slot_rate(self, prop: str) -> float:
        """Examples per second of ``prop`` per slot (examples over the time slots spent on it)."""
        busy = self.busy.get(prop, 0.0)
        return self.examples.get(prop, 0) / busy if busy > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in dataclasses.asdict(self).items() if k != "findings"}
        d["findings"] = [f.to_dict() for f in self.findings]
        d["new_findings"] = len(self.new_findings)
        d["exit_code"] = self.exit_code
        d["rates"] = {p: {"examples_per_second": self.rate(p), "per_worker": self.slot_rate(p)}
                      for p in self.properties}
        return d


# --------------------------------------------------------------------------------------------------
# the parent: writing findings, progress, the run
# --------------------------------------------------------------------------------------------------

def _display_path(path: Path) -> str:
    """``path`` relative to the current directory when it is inside it, else absolute."""
    full = path.resolve()
    try:
        return str(full.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(full)


def reproduce_command(path: Path, impl: str, distill_cmd: str | None, relocate_cmd: str | None,
                      timeout: float, steps: Sequence[Mapping[str, Any]] = ()) -> str:
    """The command replaying a written finding on the implementation at fault (beside libbpf, and the
    kernel when a step records its verdict)."""
    words = ["btfspec", "corpus", "run", _display_path(path)]
    replay = impl if impl in KNOWN else "python"  # model/validator findings replay through the reference
    names = [replay, "libbpf"] + (["kernel"] if any("kernel" in s.get("expect", {}) for s in steps) else [])
    words += ["--impl", ",".join(dict.fromkeys(names))]
    if replay == "cmd":
        if distill_cmd:
            words += ["--distill-cmd", distill_cmd]
        if relocate_cmd:
            words += ["--relocate-cmd", relocate_cmd]
    if timeout != 10.0:
        words += ["--timeout", f"{timeout:g}"]
    return shlex.join(words)


def _operation(steps: Sequence[Mapping[str, Any]]) -> str:
    ops = {s["op"] for s in steps}
    if len(ops) == 1:
        return next(iter(ops))
    return "distill+relocate" if ops == {"distill", "relocate"} else "mixed"


def finding_manifest(f: Finding, *, name: str, campaign: str, seed: int, reproduce: str) -> dict[str, Any]:
    """The corpus manifest of a finding (``files`` is computed by :func:`btfspec.oracle.fuzz.corpus.write_entry`)."""
    import platform

    summary = f"{f.property} [{f.impl}] {f.outcome}: {f.first_difference}"
    m: dict[str, Any] = {
        "format": 1, "name": name, "category": "finding", "operation": _operation(f.steps),
        "summary": summary.replace("\n", " ")[:300], "description": f.description,
        "steps": [dict(s) for s in f.steps],
        "provenance": {"source": "fuzz", "campaign": campaign, "seed": seed, "reproduce": reproduce,
                       "generated_by": f"btfspec fuzz ({f.property})", "kernel": platform.release(),
                       "notes": SIGNATURE_NOTE + json.dumps(list(f.signature))},
    }
    quirks = [q for q in (f.quirk or "").split(",") if re.fullmatch(r"Q\d+", q.strip())]
    if quirks:
        m["quirks"] = [q.strip() for q in quirks]
    return m


class _Parent:
    """The parent's side: known signatures, writing findings, aggregated progress."""

    def __init__(self, result: CampaignResult, known: set[tuple[str, ...]], names: set[str],
                 publish: Callable[[list[list[str]]], None], opts: Mapping[str, Any]) -> None:
        self.result = result
        self.known = set(known)
        self.existing_names = names
        self.publish = publish
        self.opts = opts
        self.progress: dict[int, dict[str, Any]] = {}
        self.cov: dict[int, dict[str, dict[str, int]]] = {}
        self.pids: dict[int, tuple[str, int]] = {}
        self.done: set[int] = set()
        self.start = time.monotonic()

    def handle(self, raw: str) -> None:
        try:
            event = json.loads(raw)
        except ValueError:
            return
        kind, slot = event.get("type"), int(event.get("slot", -1))
        if kind == "progress":
            self.progress[slot] = event
            if "coverage" in event:
                self.cov[slot] = event["coverage"]
        elif kind == "finding":
            self.add_finding(finding_from_dict(event["finding"]), slot, bool(event.get("partial")))
        elif kind == "start":
            self.pids[slot] = (event.get("host", ""), int(event.get("pid", 0)))
        elif kind == "done":
            self.done.add(slot)

    def add_finding(self, f: Finding, slot: int, partial: bool = False) -> None:
        sig = tuple(f.signature)
        if sig in self.known:
            self.result.duplicates += 1
            return
        self.known.add(sig)
        self.publish([list(s) for s in sorted(self.known)])
        name = entry_name(sig)
        path = Path(self.result.corpus_dir) / name
        reproduce = reproduce_command(path, f.impl, self.opts.get("distill_cmd"), self.opts.get("relocate_cmd"),
                                      float(self.opts.get("timeout", DEFAULT_TIMEOUT)), f.steps)
        new = name not in self.existing_names
        error = None
        with _sigint_deferred():  # a Ctrl-C now must not cut the entry (or its record) in half
            if new:
                error = write_finding(path, f, campaign=self.result.campaign, seed=self.result.seed,
                                      reproduce=reproduce)
            self.result.findings.append(FoundRecord(sig, f.property, f.impl, f.outcome, f.first_difference,
                                                    f.quirk, _display_path(path), reproduce, new, slot, partial,
                                                    f.description, error))

    def totals(self) -> tuple[dict[str, int], dict[str, float]]:
        ex: dict[str, int] = {}
        busy: dict[str, float] = {}
        for ev in self.progress.values():
            for p, n in ev.get("examples", {}).items():
                ex[p] = ex.get(p, 0) + int(n)
            for p, s in ev.get("busy", {}).items():
                busy[p] = busy.get(p, 0.0) + float(s)
        return ex, busy

    def coverage_summary(self) -> dict[str, int]:
        merged: dict[str, set[str]] = {}
        for cov in self.cov.values():
            for cat, values in cov.items():
                merged.setdefault(cat, set()).update(values)
        return {cat: len(v) for cat, v in sorted(merged.items())}


@contextlib.contextmanager
def _sigint_deferred() -> Iterator[None]:
    """Hold a Ctrl-C back (main thread only) until the block ends; it takes effect right after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    old = signal.signal(signal.SIGINT, lambda signum, frame: pending.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)
        if pending and callable(old):
            old(signal.SIGINT, None)


def write_finding(path: Path, f: Finding, *, campaign: str, seed: int, reproduce: str) -> str | None:
    """Write one finding as a corpus entry; on failure keep the raw files beside it (never lose one).

    Returns None, or the error text when the entry could not be written as a valid entry.
    """
    from btfspec.oracle.fuzz.corpus import write_entry

    manifest = finding_manifest(f, name=path.name, campaign=campaign, seed=seed, reproduce=reproduce)
    try:
        write_entry(path, manifest, dict(f.files), overwrite=True)
        return None
    except Exception as exc:
        err = f"{type(exc).__name__}: {exc}"
    keep = path.parent / ".unwritten" / path.name
    try:
        keep.mkdir(parents=True, exist_ok=True)
        for name, data in f.files.items():
            (keep / name).write_bytes(data)
        (keep / "finding.json").write_text(json.dumps({"error": err, "manifest": manifest}, indent=1) + "\n")
    except OSError as exc2:
        err += f"; and the raw files could not be kept: {exc2}"
    return err


class _Display:
    """Live progress on stderr: a rich table on a TTY, plain lines otherwise."""

    def __init__(self, parent: _Parent, props: list[str], budget: float | None, stream: TextIO | None,
                 enabled: bool) -> None:
        self.parent, self.props, self.budget = parent, props, budget
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.live: Any = None
        self.interval = min(5.0, max(1.0, budget / 5)) if budget else 5.0
        self.last = time.monotonic()
        if enabled and getattr(self.stream, "isatty", lambda: False)():
            with contextlib.suppress(Exception):
                from rich.console import Console
                from rich.live import Live

                self.live = Live(self.render(), console=Console(file=self.stream), refresh_per_second=4,
                                 transient=False)
                self.live.start()

    def line(self) -> str:
        ex, busy = self.parent.totals()
        elapsed = time.monotonic() - self.parent.start
        parts = []
        for p in self.props:
            n = ex.get(p, 0)
            parts.append(f"{p} {n} ({n / elapsed if elapsed > 0 else 0:.0f}/s)")
        cov = self.parent.coverage_summary()
        new = len([f for f in self.parent.result.findings if f.new])
        covtext = ", ".join(f"{n} {c}" for c, n in cov.items()) or "-"
        return (f"[{elapsed:5.0f}s] {'; '.join(parts)}; findings {new}; coverage: {covtext}")

    def render(self) -> Any:
        from rich.table import Table

        ex, busy = self.parent.totals()
        elapsed = max(time.monotonic() - self.parent.start, 1e-3)
        left = f", {max(0.0, self.budget - elapsed):.0f}s left" if self.budget else ""
        table = Table(title=f"btfspec fuzz: {elapsed:.0f}s{left}", expand=False)
        for col in ("property", "examples", "ex/s", "ex/s/worker"):
            table.add_column(col, justify="right" if col != "property" else "left")
        for p in self.props:
            n = ex.get(p, 0)
            per = n / busy[p] if busy.get(p) else 0.0
            table.add_row(p, str(n), f"{n / elapsed:.1f}", f"{per:.1f}")
        new = len([f for f in self.parent.result.findings if f.new])
        cov = ", ".join(f"{n} {c}" for c, n in self.parent.coverage_summary().items()) or "-"
        table.caption = f"findings: {new} new; coverage: {cov}"
        return table

    def tick(self, force: bool = False) -> None:
        if not self.enabled:
            return
        if self.live is not None:
            self.live.update(self.render())
            return
        now = time.monotonic()
        if force or now - self.last >= self.interval:
            self.last = now
            print(self.line(), file=self.stream, flush=True)

    def close(self) -> None:
        if self.live is not None:
            with contextlib.suppress(Exception):
                self.live.update(self.render())
                self.live.stop()
        elif self.enabled:
            self.tick(force=True)


def _resolve_properties(names: Iterable[str] | None) -> tuple[list[Property], dict[str, str]]:
    wanted = list(names) if names else all_names()
    unknown = [n for n in wanted if n not in REGISTRY]
    if unknown:
        raise CampaignError(f"unknown propert{'ies' if len(unknown) > 1 else 'y'} {', '.join(unknown)} "
                            f"(known: {', '.join(all_names())})")
    props: list[Property] = []
    skipped: dict[str, str] = {}
    for n in dict.fromkeys(wanted):
        try:
            props.append(get_property(n))
        except ModuleNotFoundError as exc:
            skipped[n] = f"module {exc.name} not found" + (
                "" if exc.name == REGISTRY[n] else f" (needed by {REGISTRY[n]})")
        except (KeyError, AttributeError):
            skipped[n] = f"module {REGISTRY[n]} does not define {n}"
    return props, skipped


def _resolve_impls(names: Iterable[str] | None, opts: Mapping[str, Any]) -> tuple[list[Implementation], dict[str, str]]:
    reasons = available(distill_cmd=opts.get("distill_cmd"), relocate_cmd=opts.get("relocate_cmd"))
    if names:
        try:
            wanted = parse_impl_list(list(names))
        except ValueError as exc:
            raise CampaignError(str(exc)) from None
    else:
        wanted = [n for n in KNOWN if not reasons.get(n)]
    impls: list[Implementation] = []
    unavailable: dict[str, str] = {}
    for name in wanted:
        if reasons.get(name) and name != "cmd":
            unavailable[name] = str(reasons[name])
            continue
        try:
            impls.append(make_impl(name, timeout=float(opts.get("timeout", DEFAULT_TIMEOUT)),
                                   distill_cmd=opts.get("distill_cmd"), relocate_cmd=opts.get("relocate_cmd")))
        except ImplUnavailable as exc:
            if name == "cmd":
                raise CampaignError(str(exc)) from None
            unavailable[name] = str(exc)
    return impls, unavailable


def default_database(corpus_dir: Path) -> str:
    """The default example database: ``.hypothesis/campaign`` beside the corpus directory."""
    return str(corpus_dir.resolve().parent / ".hypothesis" / "campaign")


def run_campaign(properties: Iterable[str] | None = None, impl_names: Iterable[str] | None = None,
                 workers: int | None = None, time_budget: float | None = None, max_examples: int | None = None,
                 seed: int | None = None, db: str | None = "", scheduler: str | None = None,
                 corpus_dir: str | os.PathLike[str] | None = None, report_path: str | os.PathLike[str] | None = None,
                 *, profile: str = DEFAULT_PROFILE, timeout: float = DEFAULT_TIMEOUT,
                 distill_cmd: str | None = None, relocate_cmd: str | None = None,
                 progress: bool = True, stream: TextIO | None = None) -> CampaignResult:
    """Run a fuzz campaign and return its result (see the module docstring).

    ``properties``: names (default all; a property whose module is missing is skipped with a note).
    ``impl_names``: implementations (default every usable one; ``cmd`` needs a template).
    ``workers``: slots (default one per core, or every thread of the dask cluster; ``0`` runs one slot
    in this process).  ``time_budget`` (seconds, the whole campaign's wall time; default 120 s unless
    ``max_examples`` is given) and ``max_examples`` (total per property, spread over the slots).
    ``db``: ``""`` for the default directory database, ``None``/``"none"`` for none, a path, or
    ``redis://HOST:PORT``.  ``scheduler``: ``tcp://HOST:PORT`` of a dask scheduler.  Findings go to
    ``corpus_dir`` (default ``corpus/found``); ``report_path`` (``.md`` or ``.json``) gets a report.
    Raises :class:`CampaignError` for unusable options.
    """
    from btfspec.oracle.fuzz import report as report_mod

    if report_path is not None and Path(report_path).suffix.lower() not in report_mod.FORMATS:
        raise CampaignError(f"--report {report_path}: use a .md or .json file name")
    if time_budget is None and max_examples is None:
        time_budget = DEFAULT_TIME
    if max_examples is not None and max_examples < 1:
        raise CampaignError("--max-examples must be at least 1")
    opts = {"timeout": timeout, "distill_cmd": distill_cmd, "relocate_cmd": relocate_cmd}
    props, skipped = _resolve_properties(properties)
    impls, unavailable = _resolve_impls(impl_names, opts)
    try:
        ctx = Context(impls={i.name: i for i in impls}, profile=profile)
        runnable: list[str] = []
        for prop in props:
            module = sys.modules.get(REGISTRY[prop.name])
            why_fn = getattr(module, "unusable_reason", None)
            why = why_fn(prop.name, ctx) if callable(why_fn) else None
            if why is None and not prop.applies(ctx):
                why = f"no selected implementation has {', '.join(sorted(prop.needs))}"
            if why:
                skipped[prop.name] = why
            else:
                runnable.append(prop.name)
    finally:
        close_impls(impls)
    corpus = Path(corpus_dir) if corpus_dir is not None else Path.cwd() / DEFAULT_CORPUS
    db_spec = None if db is None or db == "none" else (db or default_database(corpus))
    check_database(db_spec)
    seed = seed if seed is not None else random.SystemRandom().randrange(1 << 32)
    campaign = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
    mode = "dask" if scheduler else ("in-process" if workers == 0 else "local")
    result = CampaignResult(campaign, seed, mode, 0, scheduler, db_spec, str(corpus), profile,
                            [i.name for i in impls], unavailable, runnable, skipped, time_budget, max_examples)
    if not runnable:
        if report_path is not None:
            report_mod.write_report(result, report_path)
            result.report_path = str(report_path)
        return result
    known, names = known_findings(corpus)
    specs_common = {"campaign": campaign, "properties": runnable, "impls": result.impls, "profile": profile,
                    "timeout": timeout, "distill_cmd": distill_cmd, "relocate_cmd": relocate_cmd, "db": db_spec,
                    "time_budget": time_budget, "known": [list(s) for s in sorted(known)],
                    "deadline_epoch": time.time() + time_budget if time_budget else None}
    runner = _run_dask if scheduler else (_run_inline if workers == 0 else _run_local)
    runner(result, specs_common, workers, seed, known, names, opts, progress, stream)
    if report_path is not None:
        report_mod.write_report(result, report_path)
        result.report_path = str(report_path)
    return result


def _quotas(max_examples: int | None, slots: int) -> list[int | None]:
    if max_examples is None:
        return [None] * slots
    base, extra = divmod(max_examples, slots)
    return [base + (1 if i < extra else 0) for i in range(slots)]


def _specs(common: Mapping[str, Any], n: int, seed: int, max_examples: int | None) -> list[SlotSpec]:
    return [SlotSpec(index=i, seed=derive_seed(seed, i), quota=q, **common)
            for i, q in enumerate(_quotas(max_examples, n)) if q is None or q > 0]


def _finish(result: CampaignResult, parent: _Parent, outputs: list[str | None], errors: list[str]) -> None:
    result.elapsed = time.monotonic() - parent.start
    merged_cov: dict[str, dict[str, int]] = {}
    for raw in outputs:
        if raw is None:
            continue
        res = json.loads(raw)
        result.slots.append({k: res[k] for k in ("slot", "seed", "examples", "busy", "elapsed", "stopped", "host",
                                                 "pid", "errors")})
        for p, n in res["examples"].items():
            result.examples[p] = result.examples.get(p, 0) + int(n)
        for p, s in res["busy"].items():
            result.busy[p] = result.busy.get(p, 0.0) + float(s)
        for k, (calls, secs) in res["impl_stats"].items():
            s = result.impl_stats.setdefault(k, [0, 0.0])
            s[0] += calls
            s[1] += secs
        for cat, values in res["coverage"].items():
            c = merged_cov.setdefault(cat, {})
            for v, n in values.items():
                c[v] = c.get(v, 0) + int(n)
        result.errors += [f"slot {res['slot']}: {e}" for e in res["errors"]]
    missing = [s for s in parent.progress if s not in {r["slot"] for r in result.slots}]
    for slot in missing:  # a slot without a final result: keep what its progress said
        ev = parent.progress[slot]
        for p, n in ev.get("examples", {}).items():
            result.examples[p] = result.examples.get(p, 0) + int(n)
        for p, s in ev.get("busy", {}).items():
            result.busy[p] = result.busy.get(p, 0.0) + float(s)
        for cat, values in parent.cov.get(slot, {}).items():
            c = merged_cov.setdefault(cat, {})
            for v, n in values.items():
                c[v] = c.get(v, 0) + int(n)
    result.coverage = {c: dict(sorted(v.items())) for c, v in sorted(merged_cov.items())}
    result.errors += errors
    if result.mode != "in-process":  # an in-process slot recorded into this process's counters already
        coverage.merge(result.coverage)


def _monitor(parent: _Parent, display: _Display, drain: Callable[[], list[str]], finished: Callable[[], bool],
             request_stop: Callable[[], None], hard_deadline: float | None) -> tuple[bool, bool]:
    """Handle events until every slot finished; Ctrl-C asks the slots to stop.

    Returns ``(interrupted, forced)``: forced when a second Ctrl-C or a slot that does not stop ended
    the wait (then the parent waits only briefly before ending the slots)."""
    interrupted = False
    stop_at: float | None = None
    while True:
        try:
            for raw in drain():
                parent.handle(raw)
            display.tick()
            if finished():
                for raw in drain():
                    parent.handle(raw)
                return interrupted, False
            now = time.monotonic()
            if stop_at is None and hard_deadline is not None and now > hard_deadline:
                request_stop()
                stop_at = now
            if stop_at is not None and now - stop_at > WAIT_AFTER_STOP:
                return interrupted, True
        except KeyboardInterrupt:
            if interrupted:  # a second Ctrl-C: stop waiting
                return True, True
            interrupted = True
            print("btfspec: interrupted: stopping the workers (findings are kept; Ctrl-C again to stop waiting)",
                  file=sys.stderr, flush=True)
            request_stop()
            stop_at = time.monotonic()


def _collect(futures: Sequence[Any], patience: float) -> tuple[list[str | None], list[str]]:
    """The slots' final results, waiting at most ``patience`` seconds in all (Ctrl-C stops the wait)."""
    outputs: list[str | None] = []
    errors: list[str] = []
    deadline = time.monotonic() + patience
    for i, f in enumerate(futures):
        try:
            outputs.append(f.result(timeout=max(0.1, deadline - time.monotonic())))
        except KeyboardInterrupt:
            errors.append(f"slot {i} and later: abandoned (interrupted while waiting for them)")
            outputs += [None] * (len(futures) - len(outputs))
            break
        except Exception as exc:
            outputs.append(None)
            errors.append(f"slot {i}: {type(exc).__name__}: {exc}" if str(exc) else f"slot {i}: no result "
                          f"({type(exc).__name__})")
    return outputs, errors


def _hard_deadline(budget: float | None) -> float | None:
    return time.monotonic() + budget + min(SHRINK_GRACE_MAX, 0.1 * budget) + 60.0 if budget else None


def _run_inline(result: CampaignResult, common: Mapping[str, Any], workers: int | None, seed: int,
                known: set[tuple[str, ...]], names: set[str], opts: Mapping[str, Any], progress: bool,
                stream: TextIO | None) -> None:
    q: _queue.Queue[str] = _queue.Queue()
    stop = threading.Event()
    box: dict[str, list[list[str]]] = {"known": [list(s) for s in known]}
    parent = _Parent(result, known, names, lambda v: box.__setitem__("known", v), opts)
    display = _Display(parent, result.properties, result.time_budget, stream, progress)
    (spec,) = _specs(common, 1, seed, result.max_examples)
    result.workers = 1
    out: list[str | None] = [None]
    errors: list[str] = []

    def target() -> None:
        try:
            out[0] = json.dumps(run_slot(spec, _ThreadChannel(q, stop, lambda: box["known"])))
        except BaseException as exc:  # reported, never silent
            errors.append(f"slot 0: {type(exc).__name__}: {exc}")

    thread = threading.Thread(target=target, name="btfspec-fuzz-slot", daemon=True)
    thread.start()

    def drain() -> list[str]:
        items = []
        try:
            items.append(q.get(timeout=0.2))
            while True:
                items.append(q.get_nowait())
        except _queue.Empty:
            pass
        return items

    forced = True
    try:
        result.interrupted, forced = _monitor(parent, display, drain, lambda: not thread.is_alive(), stop.set,
                                              _hard_deadline(result.time_budget))
    finally:
        stop.set()
        with contextlib.suppress(KeyboardInterrupt):
            thread.join(timeout=2.0 if forced else WAIT_AFTER_STOP)
        if thread.is_alive():
            errors.append("slot 0: abandoned (it did not stop in time)")
        display.close()
    for raw in drain():
        parent.handle(raw)
    _finish(result, parent, out, errors)


def _run_local(result: CampaignResult, common: Mapping[str, Any], workers: int | None, seed: int,
               known: set[tuple[str, ...]], names: set[str], opts: Mapping[str, Any], progress: bool,
               stream: TextIO | None) -> None:
    n = workers if workers else (os.cpu_count() or 1)
    specs = _specs(common, n, seed, result.max_examples)
    result.workers = len(specs)
    mp = multiprocessing.get_context("spawn")
    q = mp.Queue()
    stop = mp.Event()
    tmp = tempfile.mkdtemp(prefix="btfspec-fuzz-")
    known_path = os.path.join(tmp, "known.json")

    def publish(value: list[list[str]]) -> None:
        part = known_path + ".tmp"
        with open(part, "w", encoding="utf-8") as f:
            json.dump(value, f)
        os.replace(part, known_path)

    publish([list(s) for s in sorted(known)])
    parent = _Parent(result, known, names, publish, opts)
    display = _Display(parent, result.properties, result.time_budget, stream, progress)
    executor = ProcessPoolExecutor(max_workers=len(specs), mp_context=mp, initializer=_init_local_slot,
                                   initargs=(q, stop, known_path))
    futures: list[Future[str]] = [executor.submit(_local_slot, s.to_json()) for s in specs]

    def drain() -> list[str]:
        items = []
        try:
            items.append(q.get(timeout=0.2))
            while True:
                items.append(q.get_nowait())
        except (_queue.Empty, OSError, EOFError):
            pass
        return items

    forced = True
    try:
        result.interrupted, forced = _monitor(parent, display, drain, lambda: all(f.done() for f in futures),
                                              stop.set, _hard_deadline(result.time_budget))
    finally:
        stop.set()
        outputs, errors = _collect(futures, 2.0 if forced else WAIT_AFTER_STOP)
        _end_local_workers(parent, executor)
        for raw in drain():
            parent.handle(raw)
        display.close()
        with contextlib.suppress(OSError):
            os.remove(known_path)
            os.rmdir(tmp)
    _finish(result, parent, outputs, errors)


def _end_local_workers(parent: _Parent, executor: ProcessPoolExecutor) -> None:
    """Shut the pool down; slots still running after the wait are ended by their process id."""
    executor.shutdown(wait=False, cancel_futures=True)
    here = os.uname().nodename
    for host, pid in parent.pids.values():
        if host == here and pid and pid != os.getpid():
            with contextlib.suppress(OSError):
                os.kill(pid, 0)
                deadline = time.monotonic() + 5.0
                while time.monotonic() < deadline:
                    os.kill(pid, 0)
                    time.sleep(0.1)
                os.kill(pid, signal.SIGKILL)
    executor.shutdown(wait=True)


def _run_dask(result: CampaignResult, common: Mapping[str, Any], workers: int | None, seed: int,
              known: set[tuple[str, ...]], names: set[str], opts: Mapping[str, Any], progress: bool,
              stream: TextIO | None) -> None:
    try:
        from distributed import Client, Event, Queue, Variable
    except ImportError:
        raise CampaignError("--scheduler needs dask.distributed (pip install -e '.[campaign]')") from None
    try:
        client = Client(result.scheduler, timeout="15s")
    except (OSError, TimeoutError) as exc:
        raise CampaignError(f"cannot reach the dask scheduler {result.scheduler}: {exc}") from None
    try:
        info = client.scheduler_info()
        n = workers if workers else sum(int(w.get("nthreads", 1)) for w in info.get("workers", {}).values()) or 1
        specs = _specs(common, n, seed, result.max_examples)
        result.workers = len(specs)
        names_ = {k: f"btfspec-fuzz-{result.campaign}-{k}" for k in ("queue", "stop", "known")}
        q = Queue(names_["queue"], client=client)
        stop = Event(names_["stop"], client=client)
        var = Variable(names_["known"], client=client)
        var.set(json.dumps([list(s) for s in sorted(known)]))
        parent = _Parent(result, known, names, lambda v: var.set(json.dumps(v)), opts)
        display = _Display(parent, result.properties, result.time_budget, stream, progress)
        futures = [client.submit(_dask_slot, s.to_json(), names_, key=f"btfspec-fuzz-{result.campaign}-{s.index}",
                                 pure=False) for s in specs]

        def drain() -> list[str]:
            time.sleep(0.2)
            try:
                return list(q.get(batch=True))
            except Exception:
                return []

        forced = True
        try:
            result.interrupted, forced = _monitor(parent, display, drain, lambda: all(f.done() for f in futures),
                                                  stop.set, _hard_deadline(result.time_budget))
        finally:
            stop.set()
            outputs, errors = _collect(futures, 2.0 if forced else WAIT_AFTER_STOP)
            client.cancel([f for f in futures if not f.done()])
            for raw in drain():
                parent.handle(raw)
            display.close()
            with contextlib.suppress(Exception):
                q.close()
        _finish(result, parent, outputs, errors)
    finally:
        client.close()

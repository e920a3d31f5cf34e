"""What a campaign produced (:class:`CampaignResult`) and the parent that gathers it from the slots' events."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from btfspec.btfgen import coverage
from btfspec.oracle.fuzz.campaign.config import DEFAULT_TIMEOUT
from btfspec.oracle.fuzz.campaign.findings import (
    FoundRecord,
    display_path,
    finding_from_dict,
    reproduce_command,
    sigint_deferred,
    write_finding,
)
from btfspec.oracle.fuzz.groups import FindingGroup, group_key, group_name
from btfspec.oracle.fuzz.property import Finding

TIMELINE_EVERY = 1.0  # seconds between the timeline's points, at least


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
    groups: list[FindingGroup] = field(default_factory=list)  # one per root cause, in the order found
    duplicates: int = 0
    errors: list[str] = field(default_factory=list)
    report_path: str | None = None
    # examples per property so far, sampled as progress arrives: [{"t": seconds, "examples": {prop: n}}]
    timeline: list[dict[str, Any]] = field(default_factory=list)

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
        d = {k: v for k, v in dataclasses.asdict(self).items() if k not in ("findings", "groups")}
        d["groups"] = [g.to_dict() for g in self.groups]
        d["findings"] = [f.to_dict() for f in self.findings]
        d["new_findings"] = len(self.new_findings)
        d["exit_code"] = self.exit_code
        d["rates"] = {p: {"examples_per_second": self.rate(p), "per_worker": self.slot_rate(p)}
                      for p in self.properties}
        return d


class Parent:
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
        self.start_epoch = time.time()  # slots date their findings by the clock (found_at)
        self.stop_wanted = False  # opts["stop_when"] said yes to a finding
        self.groups: dict[tuple[str, ...], FindingGroup] = {}
        self.kept: dict[tuple[str, ...], tuple[Finding, list[tuple[str, ...]]]] = {}  # example, signatures

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
            self.sample()
        elif kind == "finding":
            self.add_finding(finding_from_dict(event["finding"]), slot, bool(event.get("partial")),
                             str(event.get("profile", "")), event.get("found_at"), str(event.get("unshrunk", "")))
        elif kind == "start":
            self.pids[slot] = (event.get("host", ""), int(event.get("pid", 0)))
        elif kind == "done":
            self.done.add(slot)

    def add_finding(self, f: Finding, slot: int, partial: bool = False, profile: str = "",
                    found_at: float | None = None, unshrunk: str = "") -> None:
        """Record a finding into its group (:mod:`btfspec.oracle.fuzz.groups`): the group's one corpus entry
        keeps the smallest example seen.  Its time is when the slot found it (``found_at``, epoch seconds;
        its shrinking came after), else when it arrives."""
        sig = tuple(f.signature)
        if sig in self.known:
            self.result.duplicates += 1
            return
        self.known.add(sig)
        self.publish([list(s) for s in sorted(self.known)])
        key = group_key(f)
        name = group_name(key)
        path = Path(self.result.corpus_dir) / name
        reproduce = self._reproduce(path, f)
        now = time.monotonic() - self.start
        seconds = round(now if found_at is None else min(max(float(found_at) - self.start_epoch, 0.0), now), 3)
        group = self.groups.get(key)
        if group is None:
            group = FindingGroup.of(key, display_path(path), name not in self.existing_names, seconds)
            self.groups[key] = group
            self.result.groups.append(group)
        group.seconds = min(group.seconds, seconds)  # found earlier than the group's first arrival
        smaller = group.add(f, profile)  # one entry per group: it keeps the smallest example ...
        kept, sigs = self.kept.get(key, (f, []))
        sigs.append(sig)  # ... and every signature seen, so a later campaign knows them all
        self.kept[key] = (f if smaller else kept, sigs)
        error = None
        with sigint_deferred():  # a Ctrl-C now must not cut the entry (or its record) in half
            if group.new:
                example = self.kept[key][0]
                error = write_finding(path, example, campaign=self.result.campaign, seed=self.result.seed,
                                      reproduce=self._reproduce(path, example), signatures=sigs)
            record = FoundRecord(sig, f.property, f.impl, f.outcome, f.first_difference, f.quirk,
                                 display_path(path), reproduce, group.new, slot, partial, f.description, error,
                                 seconds, profile, name, f.operator, list(f.shared_with), unshrunk)
            self.result.findings.append(record)
        stop_when = self.opts.get("stop_when")
        if callable(stop_when) and stop_when(record):
            self.stop_wanted = True

    def _reproduce(self, path: Path, f: Finding) -> str:
        return reproduce_command(path, f.impl, self.opts.get("distill_cmd"), self.opts.get("relocate_cmd"),
                                 float(self.opts.get("timeout", DEFAULT_TIMEOUT)), f.steps, self.opts.get("serve_cmd"))

    def sample(self) -> None:
        """A timeline point (examples per property so far), at most one per TIMELINE_EVERY seconds and
        at most ~300 in all (the spacing grows with the campaign's age)."""
        t = time.monotonic() - self.start
        line = self.result.timeline
        if not line or t - line[-1]["t"] >= max(TIMELINE_EVERY, t / 300):
            line.append({"t": round(t, 2), "examples": self.totals()[0]})

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


def finish(result: CampaignResult, parent: Parent, outputs: list[str | None], errors: list[str]) -> None:
    """Merge the slots' final results (or, for a slot without one, its last progress) into ``result``."""
    result.elapsed = time.monotonic() - parent.start
    merged_cov: dict[str, dict[str, int]] = {}
    for raw in outputs:
        if raw is None:
            continue
        res = json.loads(raw)
        result.slots.append({k: res[k] for k in ("slot", "seed", "examples", "seeded", "busy", "elapsed", "stopped",
                                                 "host", "pid", "errors", "schedule")})
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
    result.timeline.append({"t": round(result.elapsed, 2), "examples": dict(result.examples)})
    result.errors += errors
    if result.mode != "in-process":  # an in-process slot recorded into this process's counters already
        coverage.merge(result.coverage)

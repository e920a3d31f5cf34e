"""Campaign reports: plain text for the terminal, Markdown and JSON files.

All three show the same things: the campaign's setup (seed, workers, database, implementations,
properties run and skipped with the reason), its finding groups (:mod:`btfspec.oracle.fuzz.groups`:
quirk groups first, each with where it was seen and, when another implementation did exactly as
libbpf, "shared with libbpf (Qn)"), its findings (signature, quirk, corpus path, the command that
reproduces each; new ones first), throughput per property (examples per second over the campaign's
wall time and per worker slot) and per implementation operation (calls, mean time), and the coverage
reached (BTF kinds, shapes, mutation labels, validator rules, errnos). The terminal report also gives
each group the command that reproduces its entry, and lists the first ``FINDINGS_SHOWN_PER_GROUP``
findings of each group, counting the rest (a two-minute campaign records about a hundred).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from btfspec.oracle.impls.quirks import catalogue_key

if TYPE_CHECKING:
    from btfspec.oracle.fuzz.campaign import CampaignResult, FoundRecord

FORMATS = (".md", ".json")
FINDINGS_SHOWN_PER_GROUP = 2  # in the terminal report; the Markdown and JSON reports list every finding
COVERAGE_ORDER = ("kind", "shape", "label", "rule", "errno", "profile", "note")


def _fmt_secs(s: float | None) -> str:
    if s is None:
        return "-"
    if s >= 3600:
        return f"{s / 3600:.1f}h"
    if s >= 60:
        return f"{s / 60:.1f}m"
    return f"{s:.0f}s"


def _categories(result: CampaignResult) -> list[str]:
    cats = [c for c in COVERAGE_ORDER if c in result.coverage]
    return cats + sorted(c for c in result.coverage if c not in cats)


def _setup_lines(result: CampaignResult) -> list[tuple[str, str]]:
    budget = (f"time {_fmt_secs(result.time_budget)}" if result.time_budget else "") + (
        f"{', ' if result.time_budget else ''}max {result.max_examples} examples per property"
        if result.max_examples else "")
    rows = [
        ("campaign", f"{result.campaign} (seed {result.seed})"),
        ("workers", f"{result.workers} {result.mode}" + (f" on {result.scheduler}" if result.scheduler else "")),
        ("budget", f"{budget}; ran {result.elapsed:.1f}s" + ("; INTERRUPTED" if result.interrupted else "")),
        ("database", result.db or "none"),
        ("corpus", result.corpus_dir),
        ("profile", result.profile),
        ("implementations", ", ".join(result.impls) or "none"),
        ("mode", mode(result.impls)),
        ("properties", ", ".join(result.properties) or "none"),
    ]
    rows += [(f"skipped {name}", why) for name, why in result.unavailable.items()]
    rows += [(f"skipped {name}", why) for name, why in result.skipped.items()]
    return rows


def _ordered(result: CampaignResult) -> list[FoundRecord]:
    return sorted(result.findings, key=lambda f: (not f.new, f.property, f.impl, f.outcome))


def mode(impls: list[str]) -> str:
    """Which mode a campaign runs in: implementations tested against libbpf, or against the labels."""
    others = [i for i in impls if i not in ("libbpf", "kernel")]
    if "libbpf" in impls and others:
        return (f"testing {', '.join(others)} against libbpf: what {'they do' if len(others) > 1 else 'it does'} "
                "as libbpf does (a shared quirk) is libbpf's finding, reported once under libbpf (its group says "
                "'shared with libbpf (Qn)'), which is tested against the labels")
    if "libbpf" in impls:
        return "testing libbpf against the labels"
    return f"testing {', '.join(others) or 'nothing'} against the labels (no libbpf to compare with)"


def _ordered_groups(result: CampaignResult) -> list[Any]:
    from btfspec.oracle.fuzz.groups import ordered

    return ordered(result.groups)


def by_quirk(result: CampaignResult) -> dict[str, int]:
    """How many findings each quirk id (as python-strict attributes them) accounts for; "none" for the rest."""
    counts: dict[str, int] = {}
    for f in result.findings:
        for q in (f.quirk or "none").split(","):
            counts[q.strip()] = counts.get(q.strip(), 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (kv[0] == "none", catalogue_key(kv[0]), kv[0])))


def by_profile(result: CampaignResult) -> dict[str, int]:
    """How many findings each generator profile found (when the campaign recorded it)."""
    counts: dict[str, int] = {}
    for f in result.findings:
        if f.profile:
            counts[f.profile] = counts.get(f.profile, 0) + 1
    return dict(sorted(counts.items()))


def _impl_rows(result: CampaignResult) -> list[tuple[str, int, float, float, float, float]]:
    """Per implementation operation: calls, ms per call, calls/s, seconds in all, share of the busy time."""
    rows = []
    for key, (calls, secs) in sorted(result.impl_stats.items()):
        rows.append((key, int(calls), secs / calls * 1000 if calls else 0.0, calls / secs if secs else 0.0,
                     secs, _share(result, secs)))
    return rows


def _share(result: CampaignResult, seconds: float) -> float:
    """``seconds`` as a share of the time the slots spent checking (all properties): where a campaign's time
    goes, so that one property or one implementation eating most of it (waiting out hangs) stands out."""
    total = sum(result.busy.values())
    return seconds / total if total > 0 else 0.0


def render_text(result: CampaignResult) -> str:
    """The terminal report."""
    out: list[str] = ["== btfspec fuzz report"]
    width = max(len(k) for k, _ in _setup_lines(result))
    out += [f"  {k:<{width}}  {v}" for k, v in _setup_lines(result)]
    new = result.new_findings
    out.append("")
    out.append(f"== finding groups (one per root cause): {sum(g.new for g in result.groups)} new, "
               f"{sum(not g.new for g in result.groups)} already in the corpus")
    reproduce: dict[str, str] = {}  # a group's entry -> the command that replays it
    for f in result.findings:
        reproduce.setdefault(f.path, f.reproduce)
    for g in _ordered_groups(result):
        out.append(f"  [{'NEW' if g.new else 'old'}] {g.title()}: {g.count} finding{'s' if g.count != 1 else ''}, "
                   f"first at {g.seconds:.1f} s" + (f" ({', '.join(g.profiles)})" if g.profiles else ""))
        if g.tag():
            out.append(f"        {g.tag()}")
        out.append(f"        seen in: {g.seen_in()}")
        out.append(f"        smallest: {g.smallest} B, {g.property} {g.outcome}: {g.first_difference}")
        out.append(f"        entry: {g.path}")
        if reproduce.get(g.path):
            out.append(f"        reproduce: {reproduce[g.path]}")
    if not result.groups:
        out.append("  none")
    out.append("")
    out.append(f"== findings: {len(new)} new, {len(result.findings) - len(new)} already in the corpus, "
               f"{result.duplicates} duplicate reports")
    listed: dict[str, int] = {}
    unlisted = 0
    for f in _ordered(result):
        if listed.get(f.path, 0) >= FINDINGS_SHOWN_PER_GROUP and not f.error:
            unlisted += 1
            continue
        listed[f.path] = listed.get(f.path, 0) + 1
        tag = "NEW" if f.new else "old"
        out.append(f"  [{tag}] {f.property} [{f.impl}] {f.outcome}" + (f"  ({f.profile})" if f.profile else ""))
        out.append(f"        first difference: {f.first_difference}")
        if f.quirk:
            out.append(f"        quirk: {f.quirk}")
        out.append(f"        entry: {f.path}" + (f" ({f.unshrunk or 'not shrunk to the end'})" if f.partial else ""))
        out.append(f"        reproduce: {f.reproduce}")
        if f.error:
            out.append(f"        NOT WRITTEN as an entry ({f.error}); raw files kept under .unwritten/")
    if unlisted:
        out.append(f"  ... and {unlisted} more finding{'s' if unlisted != 1 else ''} of these groups (the first "
                   f"{FINDINGS_SHOWN_PER_GROUP} of each are listed): all of them are in the report file "
                   "(--report FILE.md or .json) and in --json")
    if not result.findings:
        out.append("  none")
    else:
        out.append("  by quirk: " + ", ".join(f"{q} {n}" for q, n in by_quirk(result).items()))
        profiles = by_profile(result)
        if profiles:
            out.append("  by profile: " + ", ".join(f"{p} {n}" for p, n in profiles.items()))
    out.append("")
    out.append("== throughput per property")
    out.append(f"  {'property':<9} {'examples':>9} {'ex/s':>8} {'ex/s/worker':>12} {'busy s':>8} {'share':>6}")
    for p in result.properties:
        busy = result.busy.get(p, 0.0)
        out.append(f"  {p:<9} {result.examples.get(p, 0):>9} {result.rate(p):>8.1f} {result.slot_rate(p):>12.1f} "
                   f"{busy:>8.1f} {_share(result, busy):>6.0%}")
    rows = _impl_rows(result)
    if rows:
        out.append("")
        out.append("== throughput per implementation (share: of the properties' busy time)")
        w = max(len(r[0]) for r in rows)
        out.append(f"  {'operation':<{w}} {'calls':>8} {'ms/call':>9} {'calls/s':>9} {'seconds':>8} {'share':>6}")
        for key, calls, ms, per, secs, share in rows:
            out.append(f"  {key:<{w}} {calls:>8} {ms:>9.2f} {per:>9.0f} {secs:>8.1f} {share:>6.0%}")
    out.append("")
    out.append("== coverage")
    for cat in _categories(result):
        values = result.coverage[cat]
        shown = ", ".join(sorted(values)[:40]) + (" ..." if len(values) > 40 else "")
        out.append(f"  {cat} ({len(values)}): {shown}")
    if not result.coverage:
        out.append("  nothing recorded")
    if result.errors:
        out.append("")
        out.append("== errors")
        out += [f"  {e}" for e in result.errors]
    return "\n".join(out) + "\n"


def _md_cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(result: CampaignResult) -> str:
    """The report as Markdown."""
    out = [f"# btfspec fuzz campaign {result.campaign}", "", "| setting | value |", "|---|---|"]
    out += [f"| {_md_cell(k)} | {_md_cell(v)} |" for k, v in _setup_lines(result)]
    new = result.new_findings
    out += ["", f"## Finding groups ({len(result.groups)}: one per root cause)", ""]
    if result.groups:
        out += ["| | root cause | findings | seen in | shared | smallest | first at | entry |",
                "|---|---|---:|---|---|---:|---:|---|"]
        out += [f"| {'**new**' if g.new else 'old'} | {_md_cell(g.title())} | {g.count} | {_md_cell(g.seen_in())} "
                f"| {_md_cell(g.tag())} | {g.smallest} B | {g.seconds:.1f} s | `{_md_cell(g.path)}` |"
                for g in _ordered_groups(result)]
    else:
        out.append("None.")
    out += ["", f"## Findings ({len(new)} new, {len(result.findings) - len(new)} already in the corpus)", ""]
    if result.findings:
        out += ["| | property | impl | outcome | first difference | quirk | entry | reproduce |",
                "|---|---|---|---|---|---|---|---|"]
        for f in _ordered(result):
            out.append(f"| {'**new**' if f.new else 'old'} | {f.property} | {_md_cell(f.impl)} | {_md_cell(f.outcome)} "
                       f"| {_md_cell(f.first_difference)} | {f.quirk or ''} | `{_md_cell(f.path)}` "
                       f"| `{_md_cell(f.reproduce)}` |")
        out += ["", "By quirk: " + ", ".join(f"{q} {n}" for q, n in by_quirk(result).items()) + "."]
    else:
        out.append("None.")
    out += ["", "## Throughput", "", "| property | examples | examples/s | examples/s per worker | busy s | share |",
            "|---|---:|---:|---:|---:|---:|"]
    out += [f"| {p} | {result.examples.get(p, 0)} | {result.rate(p):.1f} | {result.slot_rate(p):.1f} "
            f"| {result.busy.get(p, 0.0):.1f} | {_share(result, result.busy.get(p, 0.0)):.0%} |"
            for p in result.properties]
    rows = _impl_rows(result)
    if rows:
        out += ["", "| implementation operation | calls | ms/call | calls/s | seconds | share of busy |",
                "|---|---:|---:|---:|---:|---:|"]
        out += [f"| {k} | {c} | {ms:.2f} | {per:.0f} | {secs:.1f} | {share:.0%} |"
                for k, c, ms, per, secs, share in rows]
    out += ["", "## Coverage", ""]
    for cat in _categories(result):
        values = result.coverage[cat]
        out.append(f"- **{cat}** ({len(values)}): " + ", ".join(f"`{_md_cell(v)}`" for v in sorted(values)))
    if result.errors:
        out += ["", "## Errors", ""] + [f"- {_md_cell(e)}" for e in result.errors]
    return "\n".join(out) + "\n"


def render_json(result: CampaignResult) -> dict[str, Any]:
    """The report as a JSON-compatible dict."""
    return result.to_dict()


def write_report(result: CampaignResult, path: str | os.PathLike[str]) -> None:
    """Write the Markdown or JSON report (by extension) atomically."""
    p = Path(path)
    ext = p.suffix.lower()
    if ext not in FORMATS:
        raise ValueError(f"{p}: the report must be a .md or .json file")
    text = render_markdown(result) if ext == ".md" else json.dumps(render_json(result), indent=2) + "\n"
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", dir=p.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, p)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise

"""Reports as one self-contained web page: a campaign's JSON report or ``btfspec stats --json`` output.

:func:`render_html` takes the JSON (as a dict) and returns a page that needs nothing else: styles
inline, charts as inline SVG, no script, no network.  A campaign page shows the setup, the finding
groups (each with its first difference beside the command that reproduces it), throughput per
property (and over time, when the run recorded a ``timeline``), per-implementation call times and the
coverage reached.  A stats page shows the distilled-base size histogram, the summary figures, the
largest modules and the failures.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

PALETTE = ("#3b6fb6", "#d9822b", "#3a9a5b", "#b8475a", "#7b5ea7", "#8c6d46", "#c7649d", "#6b6b6b")
CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1d232b;background:#f5f6f8}
header{background:#1d2b3a;color:#fff;padding:18px 28px}header h1{margin:0;font-size:22px}
header .verdict{display:inline-block;margin-top:8px;padding:3px 10px;border-radius:12px;font-weight:600}
.ok{background:#2f8a4f;color:#fff}.bad{background:#c0392b;color:#fff}
main{padding:8px 28px 40px;max-width:1280px}section{background:#fff;border-radius:8px;margin:18px 0;
padding:14px 20px;box-shadow:0 1px 3px rgba(0,0,0,.08)}h2{font-size:17px;margin:4px 0 12px}
table{border-collapse:collapse;margin:6px 0}td,th{padding:4px 10px;border-bottom:1px solid #e3e6ea;
text-align:left;vertical-align:top}th{background:#f0f2f5}td.num,th.num{text-align:right}
.group{border:1px solid #dde1e6;border-radius:6px;margin:10px 0;padding:10px 14px}
.group h3{margin:0 0 8px;font-size:15px}.tag{font-size:12px;padding:1px 7px;border-radius:9px;
background:#e8ecf1;margin-left:6px}.tag.new{background:#c0392b;color:#fff}
.side{display:grid;grid-template-columns:1fr 1fr;gap:12px}.side>div{min-width:0}
.side h4{margin:0 0 4px;font-size:12px;text-transform:uppercase;color:#5b6570;letter-spacing:.04em}
pre{background:#f3f5f7;border:1px solid #e1e4e8;border-radius:4px;padding:8px;margin:0;
white-space:pre-wrap;word-break:break-word;font:12.5px/1.4 ui-monospace,Menlo,Consolas,monospace}
.chips span{display:inline-block;background:#eef2f7;border-radius:10px;padding:1px 8px;margin:2px;font-size:12px}
.muted{color:#68727d}svg text{font:11px system-ui,sans-serif;fill:#333}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _table(head: Sequence[str], rows: Sequence[Sequence[Any]], numeric: Sequence[int] = ()) -> str:
    cls = [' class="num"' if i in numeric else "" for i in range(len(head))]
    out = ["<table><tr>" + "".join(f"<th{c}>{_e(h)}</th>" for h, c in zip(head, cls, strict=True)) + "</tr>"]
    for row in rows:
        out.append("<tr>" + "".join(f"<td{c}>{_e(v)}</td>" for v, c in zip(row, cls, strict=True)) + "</tr>")
    return "".join(out) + "</table>"


def _page(title: str, verdict: tuple[str, bool] | None, sections: Sequence[tuple[str, str]]) -> str:
    badge = f'<div class="verdict {"ok" if verdict[1] else "bad"}">{_e(verdict[0])}</div>' if verdict else ""
    body = "".join(f"<section><h2>{_e(name)}</h2>{content}</section>" for name, content in sections)
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{CSS}</style></head>'
            f"<body><header><h1>{_e(title)}</h1>{badge}</header><main>{body}</main></body></html>\n")


# --------------------------------------------------------------------------------------------------
# inline SVG charts
# --------------------------------------------------------------------------------------------------

def svg_bars(items: Sequence[tuple[str, float]], unit: str = "", width: int = 640, digits: int = 1) -> str:
    """Horizontal bars, one per (label, value), each labelled with its value (``digits`` decimals)."""
    if not items:
        return '<p class="muted">nothing recorded</p>'
    top = max(v for _, v in items) or 1.0
    label_w, row_h = 150, 22
    height = row_h * len(items) + 6
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">']
    for i, (label, value) in enumerate(items):
        y = 3 + i * row_h
        w = (width - label_w - 90) * value / top
        parts.append(f'<text x="{label_w - 6}" y="{y + 14}" text-anchor="end">{_e(label)}</text>'
                     f'<rect x="{label_w}" y="{y + 2}" width="{w:.1f}" height="{row_h - 6}" '
                     f'fill="{PALETTE[i % len(PALETTE)]}"/>'
                     f'<text x="{label_w + w + 5:.1f}" y="{y + 14}">{value:,.{digits}f}{_e(unit)}</text>')
    return "".join(parts) + "</svg>"


def svg_lines(series: Mapping[str, Sequence[tuple[float, float]]], x_label: str, y_label: str,
              width: int = 720, height: int = 260) -> str:
    """Line chart of several series of (x, y) points, with a legend."""
    points = [p for s in series.values() for p in s]
    if len(points) < 2:
        return '<p class="muted">too few samples for a chart</p>'
    x_max = max(x for x, _ in points) or 1.0
    y_max = max(y for _, y in points) or 1.0
    left, right, top, bottom = 56, 120, 12, 34
    pw, ph = width - left - right, height - top - bottom

    def xy(x: float, y: float) -> str:
        return f"{left + pw * x / x_max:.1f},{top + ph - ph * y / y_max:.1f}"

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">',
             f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="#fafbfc" stroke="#ccd"/>']
    for k in range(5):
        y = y_max * k / 4
        parts.append(f'<text x="{left - 6}" y="{top + ph - ph * k / 4 + 4:.1f}" text-anchor="end">{y:,.0f}</text>')
        x = x_max * k / 4
        parts.append(f'<text x="{left + pw * k / 4:.1f}" y="{top + ph + 16}" text-anchor="middle">{x:,.0f}</text>')
    parts.append(f'<text x="{left + pw / 2}" y="{height - 4}" text-anchor="middle">{_e(x_label)}</text>'
                 f'<text x="12" y="{top + ph / 2}" transform="rotate(-90 12 {top + ph / 2})" '
                 f'text-anchor="middle">{_e(y_label)}</text>')
    for i, (name, pts) in enumerate(series.items()):
        colour = PALETTE[i % len(PALETTE)]
        path = " ".join(xy(x, y) for x, y in pts)
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{path}"/>'
                     f'<rect x="{left + pw + 12}" y="{top + 6 + i * 18}" width="12" height="12" fill="{colour}"/>'
                     f'<text x="{left + pw + 30}" y="{top + 16 + i * 18}">{_e(name)}</text>')
    return "".join(parts) + "</svg>"


def histogram_bins(values: Sequence[float], bins: int = 20) -> list[tuple[float, float, int]]:
    """``bins`` equal-width bins over the values' range: (low, high, count)."""
    lo, hi = min(values), max(values)
    if hi == lo:
        return [(lo, hi, len(values))]
    step = (hi - lo) / bins
    counts = [0] * bins
    for v in values:
        counts[min(bins - 1, int((v - lo) / step))] += 1
    return [(lo + i * step, lo + (i + 1) * step, c) for i, c in enumerate(counts)]


def svg_histogram(values: Sequence[float], x_label: str, width: int = 720, height: int = 260) -> str:
    """A histogram of ``values`` as vertical bars."""
    if not values:
        return '<p class="muted">no values</p>'
    bins = histogram_bins(values, max(1, min(24, int(math.sqrt(len(values))) + 1)))
    left, right, top, bottom = 48, 16, 12, 40
    pw, ph = width - left - right, height - top - bottom
    peak = max(c for _, _, c in bins) or 1
    bw = pw / len(bins)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">']
    for i, (low, high, count) in enumerate(bins):
        h = ph * count / peak
        parts.append(f'<rect x="{left + i * bw + 1:.1f}" y="{top + ph - h:.1f}" width="{max(bw - 2, 1):.1f}" '
                     f'height="{h:.1f}" fill="{PALETTE[0]}"><title>{low:,.0f}-{high:,.0f}: {count}</title></rect>')
        if count:
            parts.append(f'<text x="{left + (i + 0.5) * bw:.1f}" y="{top + ph - h - 3:.1f}" '
                         f'text-anchor="middle">{count}</text>')
    for k in range(5):
        x = bins[0][0] + (bins[-1][1] - bins[0][0]) * k / 4
        parts.append(f'<text x="{left + pw * k / 4:.1f}" y="{top + ph + 16}" text-anchor="middle">{x:,.0f}</text>')
    parts.append(f'<line x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{top + ph}" stroke="#888"/>'
                 f'<text x="{left + pw / 2}" y="{height - 6}" text-anchor="middle">{_e(x_label)}</text>')
    return "".join(parts) + "</svg>"


# --------------------------------------------------------------------------------------------------
# campaign pages
# --------------------------------------------------------------------------------------------------

def finding_groups(findings: Sequence[Mapping[str, Any]],
                   groups: Sequence[Mapping[str, Any]] = ()) -> list[list[Mapping[str, Any]]]:
    """Findings grouped by their ``group`` key when the campaign gave one, else by property,
    implementation, outcome and quirk; quirk groups (the report's ``groups``, when given, say which) first,
    then new groups first, quirk groups in catalogue order, each group's new findings first."""
    from btfspec.oracle.impls.quirks import catalogue_key

    by_key: dict[Any, list[Mapping[str, Any]]] = {}
    for f in findings:
        key = f.get("group") or (f.get("property"), f.get("impl"), f.get("outcome"), f.get("quirk"))
        by_key.setdefault(json.dumps(key, sort_keys=True, default=str), []).append(f)
    meta = {g.get("name"): g for g in groups}
    ordered = [sorted(g, key=lambda f: not f.get("new")) for g in by_key.values()]

    def key(g: list[Mapping[str, Any]]) -> tuple[Any, ...]:
        m = meta.get(g[0].get("group"), {})
        return (m.get("root") != "quirk", not any(f.get("new") for f in g), catalogue_key(str(m.get("quirk") or "")),
                str(g[0].get("property")))

    return sorted(ordered, key=key)


def _group_html(group: Sequence[Mapping[str, Any]], meta: Mapping[str, Any] | None = None) -> str:
    """One group's box; ``meta`` is its entry in the report's ``groups`` (root cause, where seen, shared)."""
    first = group[0]
    meta = meta or {}
    new = sum(1 for f in group if f.get("new"))
    tags = (f'<span class="tag new">{new} new</span>' if new else '<span class="tag">known</span>')
    if first.get("quirk"):
        tags += f'<span class="tag">quirk {_e(first["quirk"])}</span>'
    if len(group) > 1:
        tags += f'<span class="tag">{len(group)} findings</span>'
    if meta.get("tag"):
        tags += f'<span class="tag">{_e(meta["tag"])}</span>'
    if meta.get("root") == "quirk":
        title = f"[{meta.get('impl')}] quirk {meta.get('quirk')}"
    else:
        title = f"{first.get('property')} [{first.get('impl')}] {first.get('outcome')}"
    seen = ""
    if meta.get("properties"):
        where = (f'properties {", ".join(meta["properties"])}; outcomes {"; ".join(meta.get("outcomes", []))}; '
                 f'operations {", ".join(meta.get("operations", []))}')
        seen = f'<p class="muted">seen in {_e(where)}</p>'
    body = seen + (f'<div class="side"><div><h4>first difference</h4><pre>{_e(first.get("first_difference", ""))}</pre>'
            + (f'<p class="muted">{_e(first["description"])}</p>' if first.get("description") else "")
            + f'</div><div><h4>reproduce</h4><pre>{_e(first.get("reproduce", ""))}</pre>'
            f'<p class="muted">entry: <code>{_e(first.get("path", ""))}</code></p></div></div>')
    if len(group) > 1:
        body += ("<details><summary>every finding of this group</summary>"
                 + _table(["", "first difference", "reproduce"],
                          [("new" if f.get("new") else "old", f.get("first_difference", ""), f.get("reproduce", ""))
                           for f in group]) + "</details>")
    if first.get("error"):
        body += f'<p class="muted">not written as an entry: {_e(first["error"])}</p>'
    return f'<div class="group"><h3>{_e(title)}{tags}</h3>{body}</div>'


def _throughput_over_time(run: Mapping[str, Any]) -> str:
    timeline = run.get("timeline") or []
    if not timeline:
        return '<p class="muted">this run recorded no timeline (examples over time)</p>'
    series: dict[str, list[tuple[float, float]]] = {}
    previous: tuple[float, Mapping[str, Any]] = (0.0, {})
    for sample in timeline:
        t, counts = float(sample["t"]), sample["examples"]
        dt = t - previous[0]
        if dt <= 0:
            continue
        for prop, n in counts.items():
            series.setdefault(prop, []).append((t, (int(n) - int(previous[1].get(prop, 0))) / dt))
        previous = (t, counts)
    return svg_lines(series, "seconds since the start", "examples per second")


def campaign_page(run: Mapping[str, Any]) -> str:
    """The page of one campaign's JSON report."""
    findings = run.get("findings", [])
    new = int(run.get("new_findings", sum(1 for f in findings if f.get("new"))))
    budget = run.get("time_budget")
    setup = [("campaign", f"{run.get('campaign')} (seed {run.get('seed')})"),
             ("workers", f"{run.get('workers')} {run.get('mode')}"),
             ("budget", (f"{budget:g} s" if budget else f"{run.get('max_examples')} examples per property")
              + f"; ran {float(run.get('elapsed', 0)):.1f} s" + ("; INTERRUPTED" if run.get("interrupted") else "")),
             ("profile", run.get("profile")), ("implementations", ", ".join(run.get("impls", [])) or "none"),
             ("properties", ", ".join(run.get("properties", [])) or "none"),
             ("corpus", run.get("corpus_dir")), ("database", run.get("db") or "none")]
    setup += [(f"skipped {k}", v) for k, v in {**run.get("unavailable", {}), **run.get("skipped", {})}.items()]
    metas = {g.get("name"): g for g in run.get("groups", [])}
    groups = finding_groups(findings, run.get("groups", []))
    found = "".join(_group_html(g, metas.get(g[0].get("group"))) for g in groups) or "<p>None.</p>"
    examples, rates = run.get("examples", {}), run.get("rates", {})
    props = run.get("properties", [])
    busy = run.get("busy", {})
    total_busy = sum(busy.values()) or 1.0
    prop_rows = [(p, examples.get(p, 0), f"{rates.get(p, {}).get('examples_per_second', 0):.1f}",
                  f"{rates.get(p, {}).get('per_worker', 0):.1f}", f"{busy.get(p, 0):.1f}",
                  f"{busy.get(p, 0) / total_busy:.0%}") for p in props]
    throughput = (_table(["property", "examples", "examples/s", "examples/s per worker", "busy s", "share"],
                         prop_rows, (1, 2, 3, 4, 5))
                  + svg_bars([(p, float(rates.get(p, {}).get("examples_per_second", 0))) for p in props], "/s")
                  + "<h3>over time</h3>" + _throughput_over_time(run))
    impl_rows = [(k, int(c), f"{s / c * 1000 if c else 0:.2f}", f"{c / s if s else 0:.0f}", f"{s:.1f}",
                  f"{s / total_busy:.0%}") for k, (c, s) in sorted(run.get("impl_stats", {}).items())]
    if impl_rows:
        throughput += "<h3>implementation calls</h3>" + _table(
            ["operation", "calls", "ms/call", "calls/s", "seconds", "share of busy"], impl_rows, (1, 2, 3, 4, 5))
    cov = run.get("coverage", {})
    coverage = svg_bars([(c, float(len(v))) for c, v in cov.items()], " values", digits=0)
    for cat, values in cov.items():
        chips = "".join(f"<span>{_e(v)} <b>{_e(n)}</b></span>" for v, n in sorted(values.items()))
        coverage += f'<h3>{_e(cat)} ({len(values)})</h3><div class="chips">{chips}</div>'
    sections = [("Setup", _table(["setting", "value"], setup)),
                (f"Findings: {len(groups)} group{'s' if len(groups) != 1 else ''}, {new} new of {len(findings)}",
                 found),
                ("Throughput", throughput), ("Coverage", coverage or '<p class="muted">nothing recorded</p>')]
    if run.get("errors"):
        sections.append(("Errors", "<pre>" + _e("\n".join(run["errors"])) + "</pre>"))
    verdict = (f"{new} new finding{'s' if new != 1 else ''}", new == 0)
    return _page(f"btfspec fuzz campaign {run.get('campaign')}", verdict, sections)


# --------------------------------------------------------------------------------------------------
# stats pages
# --------------------------------------------------------------------------------------------------

SIZE_FIGURES = ("distilled_base_bytes", "distilled_base_types", "split_bytes_before", "split_bytes_after",
                "copied_types")


def stats_page(stats: Mapping[str, Any]) -> str:
    """The page of ``btfspec stats --json`` output."""
    rows = stats.get("rows", [])
    sizes = [float(r["base_bytes"]) for r in rows if r.get("status") == "ok" and r.get("base_bytes") is not None]
    summary = [(k, stats.get(k)) for k in ("modules", "distilled", "failed", "impl", "base") if k in stats]
    figures = [(name, *(f"{stats[name].get(k, 0):,.0f}" for k in ("count", "min", "median", "mean", "max", "total")))
               for name in SIZE_FIGURES if isinstance(stats.get(name), Mapping)]
    sections = [("Summary", _table(["", "value"], summary)),
                ("Distilled base size", svg_histogram(sizes, "distilled base bytes per module")
                 + f'<p class="muted">{len(sizes)} modules distilled</p>')]
    if figures:
        sections.append(("Figures", _table(["figure", "count", "min", "median", "mean", "max", "total"], figures,
                                           (1, 2, 3, 4, 5, 6))))
    largest = stats.get("largest", [])
    if largest:
        keys = list(largest[0])
        sections.append(("Largest distilled bases", _table(keys, [[r.get(k) for k in keys] for r in largest],
                                                           tuple(range(1, len(keys))))))
    failures = stats.get("failures_by_reason", {})
    if failures:
        sections.append(("Failures", _table(["reason", "modules"], sorted(failures.items()), (1,))))
    failed = int(stats.get("failed", 0))
    return _page(f"btfspec stats: {stats.get('base', '')}", (f"{failed} failed", failed == 0), sections)


def render_html(data: Mapping[str, Any]) -> str:
    """The page for a campaign report or stats output; ValueError for any other JSON."""
    if "campaign" in data and "findings" in data:
        return campaign_page(data)
    if "rows" in data and "modules" in data:
        return stats_page(data)
    raise ValueError("neither a campaign report (btfspec fuzz --report X.json) nor btfspec stats --json output")


def write_html(data: Mapping[str, Any], path: str | Path) -> None:
    """Render and write the page."""
    Path(path).write_text(render_html(data), encoding="utf-8")

"""The README's main job: what this machine can do, then every check btfspec has, with a short report.

Run through ``scripts/run``; each step is an ordinary ``btfspec`` command, so the report shows the
commands a person can re-run on their own. Everything it writes (campaign findings, the example
database, the campaign report as JSON and HTML) goes under :func:`btfspec.locations.results_dir`,
never into the source tree.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

from btfspec.locations import results_dir
from btfspec.oracle.impls.quirks import catalogue_order
from btfspec.spec.sources import HOST_VMLINUX as HOST

LIBBPF = "libbpf"  # the implementation whose findings are the campaign's product


def _step(title: str, argv: list[str], *, quiet: bool = False) -> tuple[int, float]:
    cmd = [sys.executable, "-m", "btfspec", *argv]
    print(f"\n== {title}\n$ btfspec {shlex.join(argv)}", flush=True)
    t0 = time.perf_counter()
    out = subprocess.run(cmd, stdout=subprocess.PIPE if quiet else None, text=True)
    dt = time.perf_counter() - t0
    if quiet and out.stdout:
        lines = out.stdout.splitlines()
        for line in lines[:5]:
            print(f"  {line}")
        if len(lines) > 5:
            print(f"  ... ({len(lines):,} lines)")
    return out.returncode, dt


def catalogued_only(report: str) -> str | None:
    """When every new finding of the campaign report ``report`` is libbpf v1.6's own (the implementation
    the main job tests against the generator's labels) or a catalogued libbpf v1.6 quirk (the id
    python-strict names), a note saying so; None when a finding is neither (a bug in the reference or the
    tool), or the report is unreadable."""
    try:
        with open(report, encoding="utf-8") as f:
            new = [x for x in json.load(f)["findings"] if x.get("new")]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not new or any(not x.get("quirk") and x.get("impl") != LIBBPF for x in new):
        return None
    quirks = catalogue_order(q.strip() for x in new if x.get("quirk") for q in x["quirk"].split(","))
    plain = sum(1 for x in new if not x.get("quirk"))
    parts = ([f"catalogued quirks ({', '.join(quirks)})"] if quirks else []) + (
        [f"{plain} libbpf finding{'s' if plain != 1 else ''} beyond the catalogue"] if plain else [])
    return f"{len(new)} new finding{'s' if len(new) != 1 else ''}: {' and '.join(parts)}"


def main(argv: list[str] | None = None) -> int:
    """Run every step; exit 1 when any check gave a negative answer."""
    argv = sys.argv[1:] if argv is None else argv
    results: list[tuple[str, int, float]] = []

    def record(title: str, args: list[str], quiet: bool = False) -> int:
        rc, dt = _step(title, args, quiet=quiet)
        results.append((title, rc, dt))
        return rc

    record("backends and tools", ["doctor"])
    if os.access(HOST, os.R_OK):
        record("validate host vmlinux (libbpf v1.6 rules)", ["validate", HOST, "--rules", "libbpf"])
        record("validate host vmlinux (kernel rules)", ["validate", HOST, "--rules", "kernel"])
        if shutil.which("bpftool"):
            with tempfile.TemporaryDirectory() as tmp:
                ours = os.path.join(tmp, "ours.txt")
                t0 = time.perf_counter()
                with open(ours, "wb") as f:
                    rc = subprocess.run([sys.executable, "-m", "btfspec", "dump", HOST], stdout=f).returncode
                dt = time.perf_counter() - t0
                ref = subprocess.run(["bpftool", "btf", "dump", "file", HOST, "format", "raw"],
                                     capture_output=True).stdout
                with open(ours, "rb") as f:
                    same = f.read() == ref
                print(f"\n== raw dump of host vmlinux vs bpftool\n  {'byte-identical' if same else 'DIFFERENT'} "
                      f"({len(ref):,} bytes of text)")
                results.append(("dump host vmlinux == bpftool", 0 if rc == 0 and same else 1, dt))
    else:
        print(f"\n(skipping host checks: {HOST} is not readable)")
    record("replay the regression corpus", ["corpus", "run"])
    out = results_dir() / "mainjob"
    report = str(out / "fuzz-report.json")
    fuzz_args = argv if "--report" in argv else [*argv, "--report", report]
    if fuzz_args is not argv and os.path.exists(report):
        os.remove(report)  # a report from an earlier run must not pass for this one's
    if record("default fuzz campaign", ["fuzz", *fuzz_args]) == 1 and fuzz_args is not argv:
        note = catalogued_only(report)
        if note:  # finding libbpf v1.6's bugs and quirks is what the campaign is for, not a failure
            title, _, dt = results.pop()
            results.append((f"{title}: {note}", 0, dt))
    if fuzz_args is not argv and os.path.isfile(report):
        record("campaign report as a web page", ["report", report, "--html", str(out / "fuzz-report.html")])
    record("speed (ratios against libbpf/bpftool)", ["bench", "spec", "--repeat", "3"])

    print("\n== report")
    worst = 0
    for title, rc, dt in results:
        verdict = "ok" if rc == 0 else ("NEGATIVE" if rc == 1 else f"exit {rc}")
        print(f"  {verdict:<9} {dt:7.1f}s  {title}")
        worst = max(worst, 0 if rc == 0 else 1)
    return worst


if __name__ == "__main__":
    sys.exit(main())

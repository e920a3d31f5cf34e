"""Campaign budgets that hold: SIGTERM keeps the report and findings, hanging implementations cannot
stretch the budget, shrinking has a bounded share, --max-examples counts shrinking."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from btfspec.oracle.fuzz.campaign import BUDGET_OVERRUN, run_campaign
from btfspec.oracle.fuzz.campaign.findings import PARTLY_TIME_UP

PY = sys.executable

# A serve program that answers every request with an error after ``DELAY`` seconds: every P1 case
# fails, and shrinking one (hundreds of calls) takes far longer than the test waits.
SLOW_WRONG = """
    import sys, time
    print("ready distill relocate", flush=True)
    for line in sys.stdin:
        time.sleep({delay})
        print("error -1 always wrong", flush=True)
"""

# The same, but only the first answer of all (across restarts: ``MARKER`` remembers it) is quick: the
# first case fails at once and every call of its replay and shrinking (even of a small case from the
# seeded fast path) takes ``DELAY`` seconds.
SLOW_AFTER_FIRST = """
    import os, sys, time
    print("ready distill relocate", flush=True)
    for line in sys.stdin:
        time.sleep({delay} if os.path.exists({marker!r}) else 0)
        open({marker!r}, "a").close()
        print("error -1 always wrong", flush=True)
"""

HANGS = """
    import sys, time
    print("ready distill relocate", flush=True)
    for line in sys.stdin:
        time.sleep(3600)
"""


def _server(tmp_path: Path, body: str, **fmt: object) -> str:
    path = tmp_path / "server.py"
    path.write_text(textwrap.dedent(body.format(**fmt)))
    return f"{PY} {path}"


def _entries(corpus: Path) -> list[Path]:
    return sorted(p for p in corpus.glob("*/manifest.json")) if corpus.is_dir() else []


def test_sigterm_mid_shrink_writes_the_report_and_the_findings(tmp_path: Path) -> None:
    corpus, report = tmp_path / "found", tmp_path / "report.json"
    server = _server(tmp_path, SLOW_AFTER_FIRST, delay=5.0, marker=str(tmp_path / "answered"))
    cmd = [PY, "-m", "btfspec", "fuzz", "--impl", "serve", "--serve-cmd", server, "--timeout", "60",
           "--property", "P1", "--workers", "1", "--time", "300", "--shrink-share", "1", "--db", "none",
           "--corpus-dir", str(corpus), "--report", str(report), "--quiet", "--seed", "3"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                            text=True, cwd=tmp_path)
    # started, found the failure at once, now shrinking it (300 s allowed, 5 s a call, 60 s before a timeout)
    time.sleep(10.0)
    assert proc.poll() is None, proc.communicate()
    assert not _entries(corpus)  # still shrinking: nothing reported yet
    start = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert time.monotonic() - start < 15.0
    assert proc.returncode == 1, (out, err)  # a new finding, as an uninterrupted run would say
    data = json.loads(report.read_text())
    assert data["interrupted"] is True
    (finding,) = data["findings"]
    assert finding["impl"] == "serve" and finding["partial"] is True, finding
    assert finding["error"] is None and len(_entries(corpus)) == 1, finding
    assert "P1" in out and "serve" in out


def test_an_implementation_that_hangs_on_every_call_cannot_stretch_the_budget(tmp_path: Path) -> None:
    budget = 8.0
    start = time.monotonic()
    r = run_campaign(["P1"], ["serve"], workers=1, time_budget=budget, seed=1, db=None, corpus_dir=tmp_path / "found",
                     progress=False, timeout=4.0, serve_cmd=_server(tmp_path, HANGS))
    took = time.monotonic() - start
    assert took < budget + BUDGET_OVERRUN, took
    assert r.examples.get("P1", 0) >= 1


def test_shrinking_gets_its_share_then_keeps_the_smallest_example(tmp_path: Path) -> None:
    budget = 20.0
    start = time.monotonic()
    r = run_campaign(["P1"], ["serve"], workers=0, time_budget=budget, seed=2, db=None, corpus_dir=tmp_path / "found",
                     progress=False, serve_cmd=_server(tmp_path, SLOW_WRONG, delay=1.0), shrink_share=0.1)
    assert time.monotonic() - start < budget + BUDGET_OVERRUN
    (finding,) = r.findings  # (at 0.3 s a call, the reducer finished within its 2 s)
    assert finding.partial and finding.seconds < 0.1 * budget + 6.0, finding  # 2 s of shrinking, not the budget
    assert finding.unshrunk == PARTLY_TIME_UP, finding


def test_max_examples_counts_shrinking(tmp_path: Path) -> None:
    r = run_campaign(["P1"], ["serve"], workers=0, max_examples=30, seed=2, db=None, corpus_dir=tmp_path / "found",
                     progress=False, serve_cmd=_server(tmp_path, SLOW_WRONG, delay=0.0))
    assert 1 <= r.examples["P1"] <= 30, r.examples
    assert len(r.findings) == 1


def test_no_orphan_server_after_a_campaign(tmp_path: Path) -> None:
    marker = tmp_path / "pids"
    body = f"""
        import os, sys, time
        with open({str(marker)!r}, "a") as f:
            f.write(f"{{os.getpid()}}\\n")
        print("ready distill relocate", flush=True)
        for line in sys.stdin:
            time.sleep(3600)
    """
    path = tmp_path / "server.py"
    path.write_text(textwrap.dedent(body))
    run_campaign(["P1"], ["serve"], workers=1, time_budget=4.0, seed=1, db=None, corpus_dir=tmp_path / "found",
                 progress=False, timeout=30.0, serve_cmd=f"{PY} {path}")
    pids = [int(x) for x in marker.read_text().split()]
    assert len(pids) >= 2  # the parent's probe and the slot's server
    deadline = time.monotonic() + 5.0
    while any(_running(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    alive = [p for p in pids if _running(p)]
    assert not alive, f"server processes left running: {alive}"


def _running(pid: int) -> bool:
    """Is ``pid`` a live process (not a zombie waiting for its reaper)?"""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True

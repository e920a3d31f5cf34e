"""Local worker processes that die: the parent notices, restarts them, and the campaign still ends in
its budget with its report; nothing a dead worker left behind can block the parent."""

from __future__ import annotations

import json
import os
import signal
import sys
import textwrap
import threading
import time
from pathlib import Path

from btfspec.oracle.fuzz.campaign import BUDGET_OVERRUN, run_campaign
from btfspec.oracle.fuzz.campaign.channels import EventReader, FileChannel, SlotFiles
from btfspec.oracle.fuzz.campaign.config import MAX_RESTARTS

PY = sys.executable

# The reference server, after writing the pid of the process that started it (a slot, or the parent's
# probe) to ``MARKER``.
RECORDS_ITS_PARENT = """
    import os, sys
    with open({marker!r}, "a") as f:
        f.write(f"{{os.getppid()}}\\n")
    os.execv(sys.executable, [sys.executable, "-m", "btfspec.oracle.impls.serve_reference"])
"""


def _slot_pids(marker: Path) -> list[int]:
    """The processes that started a server, other than this one (the probe)."""
    try:
        pids = [int(x) for x in marker.read_text().split()]
    except OSError:
        return []
    return list(dict.fromkeys(p for p in pids if p != os.getpid()))


def test_workers_killed_mid_run_are_restarted_and_the_campaign_ends_in_budget(tmp_path: Path) -> None:
    marker = tmp_path / "parents"
    server = tmp_path / "server.py"
    server.write_text(textwrap.dedent(RECORDS_ITS_PARENT.format(marker=str(marker))))
    budget, kill_until, kills = 24.0, 12.0, 4  # fewer kills than MAX_RESTARTS: the restarts outlive them
    killed: list[int] = []
    done = threading.Event()
    start = time.monotonic()

    def killer() -> None:  # SIGKILL the first ``kills`` slots seen in ``kill_until`` seconds, 1 s after each appears
        seen: dict[int, float] = {}
        while not done.is_set() and time.monotonic() - start < kill_until and len(killed) < kills:
            for pid in _slot_pids(marker):
                seen.setdefault(pid, time.monotonic())
                if pid not in killed and time.monotonic() - seen[pid] > 1.0:
                    try:
                        os.kill(pid, signal.SIGKILL)
                        killed.append(pid)
                    except ProcessLookupError:
                        pass
            time.sleep(0.1)

    assert kills < MAX_RESTARTS
    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    report = tmp_path / "report.json"
    try:
        r = run_campaign(["P1"], ["serve"], workers=2, time_budget=budget, seed=5, db=None,
                         corpus_dir=tmp_path / "found", report_path=report, progress=False,
                         serve_cmd=f"{PY} {server}")
    finally:
        done.set()
        thread.join()
    took = time.monotonic() - start
    assert len(killed) >= 2, killed  # the test did kill the workers
    assert took < budget + BUDGET_OVERRUN, took
    data = json.loads(report.read_text())
    assert data["elapsed"] < budget + BUDGET_OVERRUN
    died = [e for e in r.errors if "died (killed by signal 9)" in e]
    assert len(died) >= len(killed), r.errors
    assert any("restarted as slot" in e for e in died), r.errors
    survivors = [p for p in _slot_pids(marker) if p not in killed]
    assert survivors, ("no restarted slot started a server", r.errors, killed)
    assert any(s["pid"] in survivors for s in data["slots"]), data["slots"]  # a restarted slot finished
    assert r.examples.get("P1", 0) > 0


def test_a_torn_event_line_is_held_back_never_waited_for(tmp_path: Path) -> None:
    files = SlotFiles(str(tmp_path))
    channel = FileChannel(files, 0, {"terminated": False})
    channel.send({"type": "start", "slot": 0})
    with open(files.events(0), "ab") as f:
        f.write(b'{"type": "progr')  # a writer killed mid-line
    reader = EventReader()
    assert [json.loads(x) for x in reader.read(files.events(0))] == [{"type": "start", "slot": 0}]
    assert reader.read(files.events(0)) == []  # the torn line: nothing yet, and no wait
    with open(files.events(0), "ab") as f:
        f.write(b'ess"}\n')
    assert [json.loads(x) for x in reader.read(files.events(0))] == [{"type": "progress"}]
    assert not channel.stop_requested()
    Path(files.stop).touch()
    assert channel.stop_requested()
    channel.close()


# A serve program whose every answer is an error: every P1 and P8 case fails at once.
ALWAYS_WRONG = """
    import sys
    print("ready distill relocate", flush=True)
    for line in sys.stdin:
        print("error -1 always wrong", flush=True)
"""


def test_every_property_runs_before_any_failure_is_shrunk(tmp_path: Path) -> None:
    server = tmp_path / "server.py"
    server.write_text(textwrap.dedent(ALWAYS_WRONG))
    budget = 20.0
    start = time.monotonic()
    r = run_campaign(["P1", "P5", "P8"], ["libbpf", "serve"], workers=1, time_budget=budget, seed=7, db=None,
                     corpus_dir=tmp_path / "found", progress=False, serve_cmd=f"{PY} {server}")
    assert time.monotonic() - start < budget + BUDGET_OVERRUN
    assert r.properties == ["P1", "P5", "P8"], r.skipped
    assert all(r.examples.get(p, 0) >= 1 for p in r.properties), r.examples
    (slot,) = r.slots
    schedule = slot["schedule"]
    first = schedule[:3]
    assert [what for what, *_ in first] == ["chunk"] * 3, schedule  # the first round: no shrinking in it
    assert sorted(prop for _, prop, *_ in first) == ["P1", "P5", "P8"], schedule
    assert any(f.property == "P1" for f in r.findings), r.findings  # P1 did fail in its first chunk ...
    shrinks = [i for i, (what, *_) in enumerate(schedule) if what == "shrink"]
    assert not shrinks or shrinks[0] >= 3, schedule  # ... and was shrunk only after the round

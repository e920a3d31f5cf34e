"""The campaign runner (btfspec.oracle.fuzz.campaign), its reports and ``btfspec fuzz``: a broken external
implementation is found, shrunk and written as a replayable corpus entry; local workers, a dask
cluster, a shared Redis example database, Ctrl-C and the exit codes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from btfspec.cli import main
from btfspec.oracle.fuzz.campaign import known_findings, parse_duration, run_campaign
from btfspec.oracle.fuzz.campaign.findings import AS_FOUND_GROUP_SHRUNK, AS_FOUND_NO_SHRINKING
from btfspec.oracle.fuzz.corpus import FAIL, PASS, load_entry, run_entry
from btfspec.oracle.fuzz.report import render_markdown, render_text
from btfspec.oracle.impls.external import CmdImpl
from btfspec.spec.model import Btf
from tests.helpers import need_libbpf

REPO = Path(__file__).resolve().parent.parent
# A "distill" that returns its inputs unchanged: wrong bytes on nearly every input.
BROKEN_DISTILL = "sh -c 'cp \"$1\" \"$4\"; cp \"$2\" \"$3\"' sh {split} {base} {out_base} {out_split}"


def _cli(args: list[str], cwd: Path, **kw) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.Popen([sys.executable, "-m", "btfspec", *args], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def _cmd_findings(result) -> list:
    return [f for f in result.new_findings if f.property == "P3" and f.impl == "cmd"]


def test_parse_duration() -> None:
    assert [parse_duration(x) for x in ("90s", "2m", "1h", "1.5m", "45", 3)] == [90, 120, 3600, 90, 45, 3]
    for bad in ("", "10 minutes", "-5s", "0"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_broken_cmd_is_found_shrunk_and_replays_as_failing(tmp_path: Path) -> None:
    need_libbpf()
    found = tmp_path / "found"
    result = run_campaign(["P3"], ["cmd", "libbpf"], workers=0, max_examples=20, seed=1, db=str(tmp_path / "db"),
                          corpus_dir=found, distill_cmd=BROKEN_DISTILL, progress=False)
    assert result.exit_code == 1 and result.examples["P3"] >= 20
    (rec,) = _cmd_findings(result)[:1]
    assert rec.outcome == "distill differs from libbpf" and rec.error is None
    entry = load_entry(found / rec.group)
    m = entry.manifest
    assert m["category"] == "finding" and m["provenance"]["source"] == "fuzz"
    assert m["provenance"]["reproduce"].startswith(f"btfspec corpus run {found / entry.name}")
    assert "--distill-cmd" in m["provenance"]["reproduce"]
    # shrunk: a couple of types at most
    base = Btf.from_bytes(entry.file("base.btf"))
    split = Btf.from_bytes(entry.file("split.btf"), base=base)
    assert base.nr_types <= 3 and split.nr_types <= 2, (base.nr_types, split.nr_types)
    # replays as failing for the broken program, passing for libbpf
    cmd = CmdImpl(BROKEN_DISTILL)
    assert [r.status for r in run_entry(entry, [cmd])] == [FAIL]
    from btfspec.oracle.impls.adapter import make_impl

    lib = make_impl("libbpf")
    try:
        assert [r.status for r in run_entry(entry, [lib])] == [PASS]
    finally:
        lib.close()  # type: ignore[attr-defined]
    # the next campaign knows it: never reported as new again
    assert rec.signature in known_findings(found)[0]
    again = run_campaign(["P3"], ["cmd", "libbpf"], workers=0, max_examples=10, seed=2, db=None, corpus_dir=found,
                         distill_cmd=BROKEN_DISTILL, progress=False)
    assert all(f.signature != rec.signature for f in again.findings)
    text = render_text(result)
    assert "[NEW] P3 [cmd] distill differs from libbpf" in text and "reproduce: btfspec corpus run" in text
    assert "| **new** | P3 | cmd |" in render_markdown(result)


def test_shrink_share_zero_records_findings_as_found(tmp_path: Path) -> None:
    need_libbpf()
    result = run_campaign(["P3"], ["cmd", "libbpf"], workers=0, max_examples=20, seed=1, db=None,
                          corpus_dir=tmp_path / "found", distill_cmd=BROKEN_DISTILL, progress=False, shrink_share=0)
    (rec,) = _cmd_findings(result)[:1]
    assert rec.outcome == "distill differs from libbpf" and rec.partial  # kept as found, not shrunk
    assert rec.unshrunk == AS_FOUND_NO_SHRINKING and f"({AS_FOUND_NO_SHRINKING})" in render_text(result)
    (slot,) = result.slots
    assert slot["examples"]["P3"] == slot["seeded"]["P3"] == 20, slot  # every call a drawn case, none a shrink
    assert not any(what == "shrink" for what, *_ in slot["schedule"]), slot["schedule"]
    with pytest.raises(Exception, match=r"must be in \[0, 1\]"):
        run_campaign(["P3"], ["libbpf"], workers=0, max_examples=1, db=None, corpus_dir=tmp_path, progress=False,
                     shrink_share=-0.1)


def test_local_two_worker_campaign_prints_a_report(tmp_path: Path) -> None:
    need_libbpf()
    proc = _cli(["fuzz", "--time", "8s", "--workers", "2", "--property", "P3,P5", "--impl", "python,libbpf",
                 "--seed", "5", "--corpus-dir", "found", "--report", "report.json"], tmp_path)
    out, err = proc.communicate(timeout=120)
    report = json.loads((tmp_path / "report.json").read_text())
    assert proc.returncode == (1 if report["new_findings"] else 0), err
    assert "== btfspec fuzz report" in out and "== throughput per property" in out and "== coverage" in out
    assert report["mode"] == "local" and report["workers"] == 2 and len(report["slots"]) == 2
    assert {s["pid"] for s in report["slots"]} and all(s["examples"] for s in report["slots"])
    assert report["examples"]["P3"] > 0 and report["examples"]["P5"] > 0
    assert report["coverage"]["kind"] and report["coverage"]["label"]
    assert report["elapsed"] < 8 + 15
    assert "P3" in err and "findings" in err  # plain progress lines (stderr is not a TTY)


def test_exit_codes(tmp_path: Path) -> None:
    need_libbpf()
    runner = CliRunner()
    usage = [["--time", "ten minutes"], ["--property", "P9"], ["--impl", "nope"], ["--report", "r.txt"],
             ["--impl", "cmd"], ["--db", "redis://127.0.0.1:1"]]
    for args in usage:
        res = runner.invoke(main, ["fuzz", "--workers", "0", "--max-examples", "1", *args,
                                   "--corpus-dir", str(tmp_path / "u")])
        assert res.exit_code == 2, (args, res.output)
        assert "Traceback" not in res.output
    clean = runner.invoke(main, ["fuzz", "--workers", "0", "--max-examples", "5", "--property", "P3", "--impl",
                                 "python,libbpf", "--db", "none", "--seed", "3", "--quiet",
                                 "--corpus-dir", str(tmp_path / "c")])
    assert clean.exit_code == 0, clean.output
    bad = runner.invoke(main, ["fuzz", "--workers", "0", "--max-examples", "3", "--property", "P3", "--impl",
                               "cmd,libbpf", "--distill-cmd", BROKEN_DISTILL, "--db", "none", "--quiet",
                               "--corpus-dir", str(tmp_path / "b"), "--json"])
    assert bad.exit_code == 1, bad.output
    data = json.loads(bad.output)
    assert data["exit_code"] == 1 and data["new_findings"] >= 1


def test_hypothesis_still_honours_the_private_hooks(tmp_path: Path) -> None:
    """The campaign sets a run's seed and database key through hypothesis internals (hypothesis_glue):
    the same seed draws the same examples, another seed others, and failures are saved under the key."""
    from hypothesis import strategies as st
    from hypothesis.database import DirectoryBasedExampleDatabase

    from btfspec.oracle.fuzz.campaign.hypothesis_glue import campaign_test

    def drawn(seed: int) -> list[int]:
        seen: list[int] = []

        def body(x: int) -> None:
            seen.append(x)

        campaign_test(body, st.integers(0, 10**9), max_examples=20, seed=seed, database=None,
                      database_key=b"unused")()
        return seen

    assert drawn(1) == drawn(1) and drawn(1) != drawn(2)
    db = DirectoryBasedExampleDatabase(str(tmp_path / "db"))

    def fails(x: int) -> None:
        assert x < 100

    with pytest.raises(AssertionError):
        campaign_test(fails, st.integers(0, 10**9), max_examples=50, seed=3, database=db,
                      database_key=b"btfspec-hook-test")()
    assert list(db.fetch(b"btfspec-hook-test"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def redis_url(tmp_path: Path):
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed")
    try:
        import redis
    except ImportError:
        pytest.skip("the redis package is not installed (pip install -e '.[campaign]')")
    port = _free_port()
    proc = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(host="127.0.0.1", port=port)
    try:
        for _ in range(100):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        else:
            pytest.skip("redis-server did not start")
        yield f"redis://127.0.0.1:{port}", client
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_redis_example_database_is_shared(tmp_path: Path, redis_url) -> None:
    need_libbpf()
    url, client = redis_url
    result = run_campaign(["P3"], ["cmd", "libbpf"], workers=2, max_examples=10, seed=7, db=url,
                          corpus_dir=tmp_path / "found", distill_cmd=BROKEN_DISTILL, progress=False)
    assert result.db == url and _cmd_findings(result), result.errors
    from hypothesis.extra.redis import RedisExampleDatabase

    from btfspec.oracle.fuzz.campaign import database_key

    saved = list(RedisExampleDatabase(client).fetch(database_key("P3", "kernel-valid", ["cmd", "libbpf"])))
    assert saved  # the shrunk failure stays (a known finding is kept), for every worker and machine to replay
    # another campaign (its own corpus directory) on the same database replays it and finds it again
    again = run_campaign(["P3"], ["cmd", "libbpf"], workers=0, max_examples=1, seed=8, db=url,
                         corpus_dir=tmp_path / "other", distill_cmd=BROKEN_DISTILL, progress=False)
    # (one of the saved failures: the first campaign may have saved several signatures of one group)
    assert {f.signature for f in _cmd_findings(again)} & {f.signature for f in _cmd_findings(result)}


def test_dask_cluster(tmp_path: Path) -> None:
    need_libbpf()
    distributed = pytest.importorskip("distributed", reason="dask.distributed is not installed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        result = run_campaign(["P3"], ["cmd", "libbpf"], time_budget=6, seed=11, db=str(tmp_path / "db"),
                              scheduler=cluster.scheduler_address, corpus_dir=tmp_path / "found",
                              distill_cmd=BROKEN_DISTILL, progress=False)
    assert result.mode == "dask" and result.workers == 2 and len(result.slots) == 2, result.errors
    assert all(s["examples"].get("P3") for s in result.slots)
    (rec,) = _cmd_findings(result)[:1]
    load_entry(tmp_path / "found" / rec.group)


def _profiler_states() -> tuple[bool, list[bool]]:
    """In a dask task: whether the worker's stack sampling runs before, inside nested pauses, and after."""
    import distributed

    from btfspec.oracle.fuzz.campaign.dask_worker import PROFILER, profiler_paused

    pc = distributed.get_worker().periodic_callbacks[PROFILER]
    states = [pc.is_running()]
    with profiler_paused() as was_running:
        states.append(pc.is_running())
        with profiler_paused():  # a second slot of the same worker
            states.append(pc.is_running())
        states.append(pc.is_running())  # the first slot still runs: still paused
    states.append(pc.is_running())
    return was_running, states


def test_a_dask_slot_pauses_its_workers_stack_sampling_and_resumes_it() -> None:
    distributed = pytest.importorskip("distributed", reason="dask.distributed is not installed")
    from btfspec.oracle.fuzz.campaign.dask_worker import profiler_paused

    with profiler_paused() as was_running:  # outside a dask task: nothing to pause
        assert was_running is False
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as lc, \
            distributed.Client(lc) as client:
        was_running, states = client.submit(_profiler_states, pure=False).result(timeout=60)
    assert was_running is True and states == [True, False, False, False, True]


def test_ctrl_c_keeps_findings_and_exits_cleanly(tmp_path: Path) -> None:
    need_libbpf()
    # a shell's background job ignores Ctrl-C, and its children inherit that: give this one its own
    proc = _cli(["fuzz", "--time", "2m", "--workers", "2", "--property", "P3", "--impl", "cmd,libbpf",
                 "--distill-cmd", BROKEN_DISTILL, "--corpus-dir", "found", "--report", "r.json", "--quiet"], tmp_path,
                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    found = tmp_path / "found"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not list(found.glob("P3-cmd-*/manifest.json")) and proc.poll() is None:
        time.sleep(0.2)
    time.sleep(1.0)
    start = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert time.monotonic() - start < 30
    assert proc.returncode == 1, err  # new findings
    assert "Traceback" not in err and "INTERRUPTED" in out and "[NEW] P3 [cmd]" in out
    entries = list(found.glob("P3-cmd-*"))
    assert entries and all(load_entry(e) for e in entries)
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["interrupted"] is True
    for slot in report["slots"]:  # the worker processes are gone
        with pytest.raises(ProcessLookupError):
            os.kill(slot["pid"], 0)


def _fake_property_module(monkeypatch, check, seedable: bool = False, name: str = "P1") -> None:
    """Register an in-process property as ``name`` (only for workers=0: spawned workers cannot see it); with
    ``seedable`` its integers are drawn as the generators draw theirs (the campaign's seeded fast path)."""
    from hypothesis import strategies as st

    from btfspec.btfgen.chooser import HypothesisChooser
    from btfspec.oracle.fuzz.property import Property
    from btfspec.oracle.fuzz.registry import REGISTRY

    def pair(draw) -> tuple[int, int]:
        choose = HypothesisChooser(draw)
        return choose.int(0, 1000), choose.int(0, 5)

    strategy = st.composite(pair)() if seedable else st.integers(0, 1000)
    monkeypatch.setitem(REGISTRY, name, Property(name, "fake", lambda ctx: strategy, check, frozenset()))


def test_distinct_findings_are_each_shrunk_and_written(tmp_path: Path, monkeypatch) -> None:
    from btfspec.oracle.fuzz.property import Finding, PropertyFailure
    from btfspec.spec.builder import Builder

    blob = Builder().to_bytes()
    steps = [{"name": "accept", "op": "accept", "inputs": {"btf": "blob.btf"}, "expect": {"default": {"status": "ok"}}}]

    def check(x: int, ctx) -> None:
        if x >= 10:
            kind = "odd" if x % 2 else "even"
            f = Finding("P1", "python", f"{kind} number", kind, {"blob.btf": blob}, steps,
                        description=f"x={x}")
            if f.signature not in ctx.known:
                raise PropertyFailure(f)

    _fake_property_module(monkeypatch, check)
    result = run_campaign(["P1"], ["python"], workers=0, max_examples=200, seed=4, db=None, corpus_dir=tmp_path,
                          progress=False)
    got = {f.outcome: f.description for f in result.new_findings}
    assert got == {"even number": "x=10", "odd number": "x=11"}  # both found, each shrunk to its minimum
    assert {e.name for e in tmp_path.iterdir()} == {f.group for f in result.new_findings}


@pytest.mark.parametrize("database", ["none", "directory"])
def test_every_seeded_finding_is_shrunk_with_or_without_a_database(tmp_path: Path, monkeypatch,
                                                                    database: str) -> None:
    """Findings found on the seeded path after the first are shrunk too.  With an example database the
    one-example replay used to meet the first finding's saved (known, so passing) example and stop
    there: every later finding of the property was written as found (its example unshrunk)."""
    from btfspec.oracle.fuzz.property import Finding, PropertyFailure
    from btfspec.spec.builder import Builder

    blob = Builder().to_bytes()
    steps = [{"name": "accept", "op": "accept", "inputs": {"btf": "blob.btf"}, "expect": {"default": {"status": "ok"}}}]

    def check(case: tuple[int, int], ctx) -> None:
        x, flag = case
        if x >= 10:  # a shrink drives the flag down, never up: a higher flag is found on the seeded path
            f = Finding("P1", "python", f"flag {flag}", "f", {"blob.btf": blob}, steps, description=f"x={x}")
            if f.signature not in ctx.known:
                raise PropertyFailure(f)

    _fake_property_module(monkeypatch, check, seedable=True)
    db = None if database == "none" else str(tmp_path / "db")
    result = run_campaign(["P1"], ["python"], workers=0, max_examples=400, seed=4, db=db,
                          corpus_dir=tmp_path / "found", progress=False)
    assert sum(s["seeded"].get("P1", 0) for s in result.slots) > 0
    got = {f.outcome: (f.description, f.partial) for f in result.new_findings}
    assert got == {f"flag {i}": ("x=10", False) for i in range(6)}


def test_many_failures_of_one_root_cause_earn_one_shrinking_share(tmp_path: Path, monkeypatch) -> None:
    """A shrink that meets many failures of one group (its outcome with other first differences) gets one
    share of shrinking time, not one per failure: the shrink ends, and the other properties get their turns.
    Counting failures, P1's first shrink here took 4.4 s of the 8 s budget (a share is 0.8 s) and P2 had
    run 10 examples at 7 s, 0.9 s of the 8."""
    from btfspec.oracle.fuzz.property import Finding, PropertyFailure
    from btfspec.spec.builder import Builder

    blob = Builder().to_bytes()
    steps = [{"name": "accept", "op": "accept", "inputs": {"btf": "blob.btf"}, "expect": {"default": {"status": "ok"}}}]

    def fails(case: tuple[int, int], ctx) -> None:
        x, _ = case
        time.sleep(0.002)
        f = Finding("P1", "python", "always", f"x={x}", {"blob.btf": blob}, steps, description=f"x={x}")
        if f.signature not in ctx.known:
            raise PropertyFailure(f)

    _fake_property_module(monkeypatch, fails, seedable=True)
    _fake_property_module(monkeypatch, lambda case, ctx: time.sleep(0.002), seedable=True, name="P2")
    result = run_campaign(["P1", "P2"], ["python"], workers=0, time_budget=8.0, seed=4, db=None,
                          corpus_dir=tmp_path / "found", progress=False, shrink_share=0.1)
    (group,) = result.groups
    assert result.busy["P2"] > 0.25 * result.elapsed, (result.busy, result.examples)
    assert result.examples["P2"] > 300, result.examples


def test_a_run_ending_in_several_stops_reports_its_failures_and_the_slot_goes_on() -> None:
    """Hypothesis replays each distinct failure at the end of a run; when each replay meets the shrink limit
    it raises a group of stops.  That group used to escape the slot (a dead worker, "exit code 1"); it now
    ends the run like one stop: the failures are reported, as far as they were shrunk.  A real error or
    Ctrl-C still goes through."""
    from types import SimpleNamespace

    from btfspec.oracle.fuzz.campaign import slot
    from btfspec.oracle.fuzz.campaign.findings import PARTLY_STOPPED, PARTLY_TIME_UP
    from btfspec.oracle.fuzz.property import Finding, PropertyFailure

    a, b = (Finding("P1", "python", "o", first) for first in ("a", "b"))
    pending = {f.signature: f for f in (a, b)}
    ctx = SimpleNamespace(known=set())

    def ended(exc: BaseException) -> tuple[list[tuple[str, str]], list[Finding]]:
        reported: list[tuple[str, str]] = []
        fake = SimpleNamespace(deferred=[], report=lambda f, c, why="": reported.append((f.first_difference, why)))
        slot._Slot._run_ended(fake, exc, pending, lambda f: f, ctx)
        return reported, fake.deferred

    limits = BaseExceptionGroup("2 distinct failures", [slot._ShrinkLimit(), slot._ShrinkLimit()])
    assert ended(limits) == ([("a", PARTLY_TIME_UP), ("b", PARTLY_TIME_UP)], [])
    assert ended(BaseExceptionGroup("g", [slot._ShrinkLimit(), slot._Stop()]))[0][0] == ("a", PARTLY_STOPPED)
    assert ended(BaseExceptionGroup("g", [slot._Defer(), slot._Defer()])) == ([], [a, b])
    assert ended(ExceptionGroup("g", [PropertyFailure(a), ValueError("x")])) == ([("a", "")], [])  # shrunk
    for escapes in (ValueError("bug"), BaseExceptionGroup("g", [slot._ShrinkLimit(), KeyboardInterrupt()])):
        with pytest.raises(type(escapes)):
            ended(escapes)


def test_a_root_cause_is_shrunk_once_per_slot(tmp_path: Path, monkeypatch) -> None:
    """Findings of one group (one root cause: the same outcome, other first differences) are shrunk once:
    the group's entry keeps the shrunk example, later findings of it are reported as found and cost no
    shrinking time."""
    from btfspec.oracle.fuzz.property import Finding, PropertyFailure
    from btfspec.spec.builder import Builder

    blob = Builder().to_bytes()
    steps = [{"name": "accept", "op": "accept", "inputs": {"btf": "blob.btf"}, "expect": {"default": {"status": "ok"}}}]

    def check(case: tuple[int, int], ctx) -> None:
        x, flag = case
        if x >= 10:
            f = Finding("P1", "python", "big", f"flag {flag}", {"blob.btf": blob}, steps, description=f"x={x}")
            if f.signature not in ctx.known:
                raise PropertyFailure(f)

    _fake_property_module(monkeypatch, check, seedable=True)
    result = run_campaign(["P1"], ["python"], workers=0, max_examples=400, seed=4, db=None,
                          corpus_dir=tmp_path / "found", progress=False)
    (group,) = result.groups
    assert group.count == len(result.new_findings) == 6
    shrunk = [f for f in result.new_findings if not f.partial]
    assert shrunk and any(f.description == "x=10" for f in shrunk)
    assert any(f.partial and f.description != "x=10" for f in result.new_findings)  # reported as found
    assert {f.unshrunk for f in result.new_findings if f.partial} == {AS_FOUND_GROUP_SHRUNK}  # and says why
    assert all(f.unshrunk == "" for f in shrunk)


def test_a_finding_is_dated_when_found_not_when_its_shrinking_ends(tmp_path: Path, monkeypatch) -> None:
    """'first at' is when the slot found the failure; shrinking it (here over a second) comes after."""
    from btfspec.oracle.fuzz.property import Finding, PropertyFailure
    from btfspec.spec.builder import Builder

    blob = Builder().to_bytes()
    steps = [{"name": "accept", "op": "accept", "inputs": {"btf": "blob.btf"}, "expect": {"default": {"status": "ok"}}}]
    failed_at: list[float] = []

    def check(case: tuple[int, int], ctx) -> None:
        if case[0] >= 10:
            failed_at.append(time.time())
            time.sleep(0.05)
            f = Finding("P1", "python", "big", "b", {"blob.btf": blob}, steps, description=f"x={case[0]}")
            if f.signature not in ctx.known:
                raise PropertyFailure(f)

    _fake_property_module(monkeypatch, check, seedable=True)
    start = time.time()
    result = run_campaign(["P1"], ["python"], workers=0, max_examples=60, seed=4, db=None,
                          corpus_dir=tmp_path / "found", progress=False)
    (group,) = result.groups
    assert failed_at[-1] - failed_at[0] > 0.5  # the shrinking took a while ...
    assert group.seconds <= failed_at[0] - start + 0.2  # ... and the finding is dated by its discovery


def test_a_property_that_errors_is_reported_not_fatal(tmp_path: Path, monkeypatch) -> None:
    def check(x: int, ctx) -> None:
        raise KeyError("bug in the property")

    _fake_property_module(monkeypatch, check)
    result = run_campaign(["P1"], ["python"], workers=0, max_examples=50, seed=4, db=None, corpus_dir=tmp_path,
                          progress=False)
    assert result.exit_code == 0 and not result.findings
    assert any("KeyError" in e for e in result.errors) and any("stopped after 3 errors" in e for e in result.errors)
    assert "== errors" in render_text(result)


def test_bench_fuzz_measures_p1_per_implementation_and_workers() -> None:
    need_libbpf()
    res = CliRunner().invoke(main, ["bench", "fuzz", "--seconds", "3", "--repeat", "2", "--no-cluster",
                                    "--per-impl", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    names = [r["name"] for r in out["rows"]]
    assert out["property"] == "P1" and names == [
        "P1 python (in-process)", "P1 libbpf (in-process)", "P1 serve (in-process)",
        "P1 python+libbpf (local processes)", "P1 python+libbpf (local processes)"], names
    assert all(r["examples"] > 0 and r["steady_rate"] > 0 for r in out["rows"]), out["rows"]
    assert [r["workers"] for r in out["rows"]] == [1, 1, 1, 1, 2]
    # best of the runs, with every run's rate kept for the spread
    assert all(len(r["runs"]) == 2 and r["steady_rate"] == max(r["runs"]) for r in out["rows"]), out["rows"]
    served = out["rows"][2]
    assert served["note"].endswith("of in-process python") or "new finding" in served["note"], served
    one, two = out["rows"][3:]  # the 2-worker row's speed-up is its steady rate over the 1-worker row's
    assert two["speedup"] == pytest.approx(two["steady_rate"] / one["steady_rate"]) and two["speedup"] > 0
    assert two["per_worker"] == pytest.approx(two["steady_rate"] / 2)
    # the two configurations ran in rounds: the speed-up within each round is its pair of runs' ratio
    assert two["per_round"] == pytest.approx([t / o for t, o in zip(two["runs"], one["runs"], strict=True)])
    assert out["summary"][0].startswith("python on one core: ") and any("2 local workers: x" in x
                                                                       for x in out["summary"])
    # the cores the machine kept busy (every process), and the speed-up per busy core they give
    assert all(0 < r["cores"] <= os.cpu_count() + 0.5 for r in out["rows"]), [r["cores"] for r in out["rows"]]
    (line,) = [x for x in out["summary"] if x.startswith("2 local workers: x")]
    per_core = (two["steady_rate"] / two["cores"]) / (one["steady_rate"] / one["cores"])
    assert f"per busy core x{per_core:.2f})" in line, line


def test_the_report_says_where_the_campaigns_time_went() -> None:
    """Each property's and each implementation operation's share of the slots' busy time: a property that
    spends most of a campaign waiting out libbpf hangs (P6 before it used the Q5 prediction) stands out."""
    from btfspec.oracle.fuzz.campaign.results import CampaignResult

    result = CampaignResult("c", 1, "local", 2, None, None, "found", "mixed", ["python", "libbpf"], {},
                            ["P1", "P6"], {}, 120.0, None, elapsed=60.0, examples={"P1": 3000, "P6": 90},
                            busy={"P1": 30.0, "P6": 90.0}, impl_stats={"libbpf relocate": [100, 80.0]})
    rows = {line.split()[0]: line.split() for line in render_text(result).splitlines() if line.startswith("  ")}
    assert rows["P1"][-2:] == ["30.0", "25%"] and rows["P6"][-2:] == ["90.0", "75%"]
    assert render_text(result).count("libbpf relocate") == 1
    (lib,) = [line.split() for line in render_text(result).splitlines() if "libbpf relocate" in line]
    assert lib[-2:] == ["80.0", "67%"] and lib[3] == "800.00"  # ms per call
    assert "| P6 | 90 | 1.5 | 1.0 | 90.0 | 75% |" in render_markdown(result)

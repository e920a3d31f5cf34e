"""libbpf v1.6 backend (btfspec.oracle.impls.libbpf): in-process layer, crash-proof worker, and the Outcome type."""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
import time

import pytest

from btfspec.oracle.impls import libbpf as lb
from btfspec.oracle.impls import libbpf_process as lp
from btfspec.oracle.impls.adapter import LibbpfImpl
from btfspec.oracle.impls.batch import Output, Step
from btfspec.oracle.impls.libbpf_worker import _await_fork
from btfspec.oracle.impls.outcome import Outcome
from tests.helpers import appendix_a, need_libbpf
from tests.helpers import appendix_hex as h

# Appendix A of distill-relocate-behaviour.md (A.1, with the two relocation values replaced by A.2).
VECTORS = appendix_a()


def btf_blob(types: bytes, strings: bytes) -> bytes:
    """Little-endian raw BTF: 24-byte header, type section, string section."""
    return struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types), len(strings)) + types + strings


def rec(name_off: int, kind: int, vlen: int, size_or_type: int, *extra: int) -> bytes:
    return struct.pack(f"<III{len(extra)}I", name_off, (kind << 24) | vlen, size_or_type, *extra)


INT, STRUCT, CONST = 1, 4, 10
# base: [1] INT 'int' size 4 SIGNED nr_bits 32; strings "\0int\0" (str_len 5)
Q5_BASE = btf_blob(rec(1, INT, 0, 4, (1 << 24) | 32), b"\0int\0")
# split: [2] CONST -> 2 (a self-cycle); [3] STRUCT 'outer' size 4 { m: type 2 @0 }
# split strings "outer\0m\0" continue at the base's str_len: 'outer' = 5, 'm' = 11
Q5_SPLIT = btf_blob(rec(0, CONST, 0, 2) + rec(5, STRUCT, 1, 4, 11, 2, 0), b"outer\0m\0")

DISTILL_CASES = [c for c, d in VECTORS.items() if "split_in" in d]
RELOC_OK = [("distilled_base", "relocated_split"), ("distilled_base_multi", "relocated_split"),
            ("edge_E6_ordering", "relocated")]
RELOC_ERR = {
    "distilled_base_missing_err": "distilled base BTF type 'int' [2] is not mapped to base BTF id",
    "distilled_base_multi_err": "has multiple candidates of the same size (ids [2, 1])",
    "distilled_base_multi_err2": "has multiple candidates of the same size (ids [2, 1])",
    "distilled_base_embedded_err": "distilled base BTF type 's1' [1] is not mapped to base BTF id",
}

needs_libbpf = pytest.mark.skipif(lb.unavailable_reason() is not None,
                                  reason=f"libbpf unavailable: {lb.unavailable_reason()}")


@pytest.fixture(scope="module")
def lib() -> lb.LibBpf:
    return need_libbpf()


@pytest.fixture(scope="module")
def worker():
    need_libbpf()
    with lp.LibbpfWorker(timeout=10.0) as w:
        yield w


# --- Outcome --------------------------------------------------------------------------------------

def test_outcome_json_roundtrip_and_hash() -> None:
    o = Outcome("ok", outputs={"base": b"\x9f\xeb", "split": b""}, log="x\n", impl="libbpf", detail="d")
    back = Outcome.from_json(o.to_json())
    assert back == o and hash(back) == hash(o)
    assert o.to_dict()["outputs"] == {"base": "9feb", "split": ""}
    assert o.ok and o.describe() == "ok (base 2 B, split 0 B)"


def test_outcome_describe_and_validation() -> None:
    err = Outcome("error", -22, log="libbpf: first\nlibbpf: the reason\n\n", impl="libbpf")
    assert err.describe() == "error -EINVAL (22): libbpf: the reason"
    assert str(err) == "[libbpf] error -EINVAL (22): libbpf: the reason"
    assert not err.ok
    assert Outcome("crash", detail="SIGSEGV").describe() == "crash (SIGSEGV)"
    assert Outcome("timeout", detail="killed after 1 s").describe() == "timeout (killed after 1 s)"
    with pytest.raises(ValueError):
        Outcome("bogus")
    with pytest.raises(ValueError):
        Outcome("error", 0)
    with pytest.raises(ValueError):
        Outcome("ok", -22)


# --- locating libbpf -------------------------------------------------------------------------------

def test_unavailable_reason_is_text_or_none() -> None:
    reason = lb.unavailable_reason()
    assert reason is None or "pylibbpf" in reason or "libbpf" in reason
    if reason is None:
        assert lb.libbpf_path() is not None


# --- in-process layer ------------------------------------------------------------------------------

def test_version(lib: lb.LibBpf) -> None:
    assert lib.version() == "v1.6"


def test_parse_and_roundtrip(lib: lb.LibBpf) -> None:
    base = h("distilled_base", "base_in")
    assert lib.parse(base)[:3] == (True, 0, 18)
    ok, err, cnt, _ = lib.parse(h("distilled_base", "split_in"), base)
    assert (ok, err, cnt) == (True, 0, 30)
    assert lib.raw_roundtrip(base) == base


def test_parse_garbage(lib: lb.LibBpf) -> None:
    ok, err, cnt, log = lib.parse(b"garbage" * 8)
    assert (ok, err, cnt) == (False, -22, 0)
    assert "Invalid BTF magic" in log and "input BTF failed to parse" in log
    # a split blob without its base: the string section does not start with NUL
    ok, err, _, log = lib.parse(h("distilled_base", "split_in"))
    assert (ok, err) == (False, -22) and "did you forget to provide base BTF?" in log
    with pytest.raises(lb.LibbpfError) as info:
        lib.raw_roundtrip(b"")
    assert info.value.errno == -22


def test_inprocess_tuple_api(lib: lb.LibBpf) -> None:
    rc, nb, ns, _ = lib.distill(h("distilled_base", "split_in"), h("distilled_base", "base_in"))
    assert (rc, nb, ns) == (0, h("distilled_base", "dist_base"), h("distilled_base", "dist_split"))
    rc, out, _ = lib.relocate(ns, nb, h("distilled_base", "base_in"))
    assert (rc, out) == (0, h("distilled_base", "relocated_split"))
    rc, out, log = lib.relocate(h("distilled_base_missing_err", "dist_split"),
                                h("distilled_base_missing_err", "dist_base"),
                                h("distilled_base_missing_err", "reloc_base"))
    assert (rc, out) == (-22, None) and "is not mapped to base BTF id" in log


def test_distill_of_non_reachable_base_is_empty(lib: lb.LibBpf) -> None:
    # edge_E10: base INT int, split STRUCT x size 0 -> empty distilled base (Q6 territory)
    base = h("distilled_base_multi_err2", "base_in")
    split = btf_blob(rec(5, STRUCT, 0, 0), b"x\0")
    rc, nb, ns, _ = lib.distill(split, base)
    assert (rc, nb, ns) == (0, h("edge_E10_no_base_refs", "dist_base"), h("edge_E10_no_base_refs", "dist_split"))


# --- worker ----------------------------------------------------------------------------------------

@needs_libbpf
@pytest.mark.parametrize("case", DISTILL_CASES)
def test_worker_distill_vectors(worker: lp.LibbpfWorker, case: str) -> None:
    out = worker.distill(h(case, "split_in"), h(case, "base_in"))
    assert out.status == "ok", out.describe()
    assert out.impl == "libbpf"
    assert out.outputs == {"base": h(case, "dist_base"), "split": h(case, "dist_split")}


@needs_libbpf
@pytest.mark.parametrize("case,key", RELOC_OK)
def test_worker_relocate_vectors(worker: lp.LibbpfWorker, case: str, key: str) -> None:
    dist_split = h(case, "dist_split")
    out = worker.relocate(dist_split, h(case, "dist_base"), h(case, "base_in"))
    assert out.status == "ok", out.describe()
    assert out.outputs == {"split": h(case, key)}
    assert out.outputs["split"][:24] == dist_split[:24]  # the header is unchanged by relocation


@needs_libbpf
@pytest.mark.parametrize("case", sorted(RELOC_ERR))
def test_worker_relocate_errors(worker: lp.LibbpfWorker, case: str) -> None:
    target = h(case, "reloc_base") if "reloc_base" in VECTORS[case] else h(case, "base_in")
    out = worker.relocate(h(case, "dist_split"), h(case, "dist_base"), target)
    assert (out.status, out.errno, out.outputs) == ("error", VECTORS[case]["reloc_err"], {})
    assert out.errno == -22
    assert RELOC_ERR[case] in out.log
    assert out.describe().startswith("error -EINVAL (22): libbpf: distilled base BTF type")


@needs_libbpf
def test_worker_parse_errors(worker: lp.LibbpfWorker) -> None:
    out = worker.parse(b"\x00" * 40)
    assert (out.status, out.errno) == ("error", -22)
    assert "Invalid BTF magic" in out.log and out.detail == "parse failed: input"
    out = worker.parse(h("distilled_base", "split_in"), h("distilled_base", "base_in"))
    assert out.ok and out.detail == "type_cnt=30"
    out = worker.distill(b"junk", h("distilled_base", "base_in"))
    assert (out.status, out.errno, out.detail) == ("error", -22, "parse failed: split")
    out = worker.relocate(h("distilled_base", "dist_split"), b"", h("distilled_base", "base_in"))
    assert (out.status, out.errno, out.detail) == ("error", -22, "parse failed: distilled_base")
    out = worker.roundtrip(h("distilled_endianness", "base_in"))
    assert out.ok and out.outputs == {"raw": h("distilled_endianness", "base_in")}


@needs_libbpf
def test_worker_rejects_programming_errors(worker: lp.LibbpfWorker) -> None:
    with pytest.raises(ValueError):
        worker.call("nonsense")
    with pytest.raises(TypeError):
        worker.call("parse", "not bytes")
    with pytest.raises(TypeError):
        worker.call("relocate", b"", b"")


@needs_libbpf
def test_worker_is_reused_and_fast(worker: lp.LibbpfWorker) -> None:
    assert worker.call("version").detail == "v1.6"
    pid = worker.pid
    split, base = h("distilled_base", "split_in"), h("distilled_base", "base_in")
    inside = []
    start = time.perf_counter()
    for _ in range(50):
        assert worker.distill(split, base).ok
        inside.append(worker.last_worker_seconds)
    per_call = (time.perf_counter() - start) / 50
    assert worker.pid == pid
    assert min(inside) < 1e-3  # a small distill takes well under 1 ms inside the worker
    assert per_call < 0.05


@needs_libbpf
def test_worker_survives_crash(worker: lp.LibbpfWorker) -> None:
    assert worker.call("ping").ok
    old_pid = worker.pid
    out = worker.call("crash")
    assert (out.status, out.detail, out.errno) == ("crash", "SIGSEGV", 0)
    assert "Segmentation fault" in out.log and "died (SIGSEGV) during 'crash'" in out.log
    assert worker.pid is None
    assert worker.call("ping").ok
    assert worker.pid not in (None, old_pid)


@needs_libbpf
def test_worker_survives_hang(worker: lp.LibbpfWorker) -> None:
    start = time.monotonic()
    out = worker.call("sleep", timeout=1.0)
    elapsed = time.monotonic() - start
    assert out.status == "timeout" and out.errno == 0
    assert 0.9 <= elapsed < 5.0
    assert worker.call("ping").ok


@needs_libbpf
def test_q5_cyclic_modifier_relocation_hangs(worker: lp.LibbpfWorker) -> None:
    assert worker.parse(Q5_SPLIT, Q5_BASE).ok
    dist = worker.distill(Q5_SPLIT, Q5_BASE)
    assert dist.ok, dist.describe()
    out = worker.relocate(dist.outputs["split"], dist.outputs["base"], Q5_BASE, timeout=1.0)
    assert out.status == "timeout"
    assert worker.distill(Q5_SPLIT, Q5_BASE).outputs == dist.outputs  # fresh worker, same answer


def test_a_worker_that_died_is_replaced_by_a_spare_already_started() -> None:
    """After the first death a spare worker is kept starting: the next death is replaced by it at once
    (no 70 ms start on the campaign's time), and close() ends the spare too."""
    need_libbpf()
    with lp.LibbpfWorker(timeout=10.0) as w:
        assert w.call("ping").ok and w._spare is None  # a worker that never died has no spare
        assert w.call("crash").status == "crash"
        assert w.call("ping").ok  # started anew: from now on a spare is kept
        assert w._spare is not None
        spare_pid = w._spare[0].pid
        assert w.call("crash").status == "crash"
        start = time.perf_counter()
        assert w.call("ping").ok
        assert w.pid == spare_pid
        assert time.perf_counter() - start < 0.5
        spare = w._spare[0]
    assert spare.poll() is not None  # closed with its worker


def test_a_begun_batch_is_answered_later_and_settled_by_the_next_request() -> None:
    """begin_batch sends now and answers when asked; a request made before that answer was read
    settles it first (requests never interleave on the pipe), and a hang in it is still a timeout."""
    need_libbpf()
    split, base = h("distilled_base", "split_in"), h("distilled_base", "base_in")
    with lp.LibbpfWorker(timeout=10.0) as w:
        want = w.batch([Step("distill", (split, base), None)])[0]
        finish = w.begin_batch([Step("distill", (split, base), None), Step("ping", (), None)])
        other = w.call("version")  # made while the begun batch was not read yet
        got = finish()
        assert other.detail == "v1.6"
        assert [o.status for o in got] == ["ok", "ok"] and got[0].outputs == want.outputs
        assert finish() is got  # asked twice: the same answer
        hung = w.begin_batch([Step("sleep", (30.0,), 0.5)])
        time.sleep(0.8)  # past its limit before anyone asks
        assert hung()[0].status == "timeout"
        assert w.call("ping").ok


def test_worker_close_is_idempotent() -> None:
    need_libbpf()
    w = lp.LibbpfWorker()
    assert w.pid is None  # started lazily
    assert w.call("ping").ok
    proc = w._proc
    w.close()
    w.close()
    assert w.pid is None and proc is not None and proc.returncode == 0


def _children(pid: int) -> list[int]:
    """The pids of ``pid``'s child processes (Linux ``/proc/<pid>/task/*/children``)."""
    out: list[int] = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as f:
            out += [int(p) for p in f.read().split()]
    return out


def test_a_step_limited_below_fork_below_hangs_or_crashes_in_a_fork_and_the_worker_lives_on() -> None:
    """A step the caller expects to hang (a limit under ``fork_below``) runs in a fork of the worker:
    its timeout and crash outcomes are as usual, but the same worker process serves on, unrestarted."""
    need_libbpf()
    with lp.LibbpfWorker(timeout=1.5, fork_below=1.5) as w:
        assert w.call("ping").ok
        pid = w.pid
        start = time.monotonic()
        hung = w.call("sleep", 30.0, timeout=0.3)  # uses no CPU: a hang once the worker's own 1.5 s are over
        assert (hung.status, hung.detail) == ("timeout", "killed after 1.5 s of wall time")
        assert 1.4 <= time.monotonic() - start < 4.0
        crashed = w.call("crash", timeout=1.0)
        assert (crashed.status, crashed.detail) == ("crash", "SIGSEGV")
        assert "Segmentation fault" in crashed.log and "died (SIGSEGV) during 'crash'" in crashed.log
        assert w.pid == pid and w.starts == 1 and _children(pid) == []  # no restart, no fork left over
        split, base = h("distilled_base", "split_in"), h("distilled_base", "base_in")
        relocate = (Output(0, "split"), Output(0, "base"), base)
        want = w.batch([Step("distill", (split, base)), Step("relocate", relocate)])
        got = w.batch([Step("distill", (split, base), 1.0), Step("relocate", relocate, 1.0)])
        assert [o.outputs for o in got] == [o.outputs for o in want]  # type: ignore[union-attr]
        assert w.pid == pid and w.starts == 1


def test_a_libbpf_impl_times_out_a_predicted_q5_hang_without_restarting_its_worker() -> None:
    """The campaign's case: the reference predicts Q5, so libbpf's relocation gets a short limit, and the
    hang costs a fork of the worker rather than a new worker process (about 90 ms of CPU each)."""
    need_libbpf()
    impl = LibbpfImpl(timeout=1.0)
    try:
        dist = impl.distill(Q5_SPLIT, Q5_BASE)
        assert dist.ok, dist.describe()
        pid = impl.worker.pid
        for _ in range(3):
            start = time.monotonic()
            out = impl.relocate(dist.outputs["split"], dist.outputs["base"], Q5_BASE, timeout=0.2)
            assert out.status == "timeout"
            assert time.monotonic() - start < 0.9  # libbpf spins: 0.2 s of CPU, well before the 1 s cap
        assert impl.worker.pid == pid and impl.worker.starts == 1
        assert impl.relocate(dist.outputs["split"], dist.outputs["base"], Q5_BASE, timeout=None).status == "timeout"
        assert impl.worker.pid is None  # at its own limit a hang still kills the worker, as before
    finally:
        impl.close()


def test_a_forked_step_does_not_outlive_its_worker() -> None:
    """A worker killed while one of its forks hangs takes the fork with it (``PR_SET_PDEATHSIG``)."""
    need_libbpf()
    with lp.LibbpfWorker(timeout=10.0, fork_below=10.0) as w:
        assert w.call("ping").ok
        pid = w.pid
        assert pid is not None
        finish = w.begin_batch([Step("sleep", (60.0,), 5.0)])
        deadline = time.monotonic() + 3.0
        while not _children(pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        forks = _children(pid)
        assert len(forks) == 1
        os.kill(pid, signal.SIGKILL)
        assert finish()[0].status == "crash"  # type: ignore[union-attr]
        deadline = time.monotonic() + 3.0
        while os.path.exists(f"/proc/{forks[0]}") and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not os.path.exists(f"/proc/{forks[0]}")


def test_a_fork_is_killed_as_hung_once_it_has_spent_its_limit_on_a_cpu_not_before() -> None:
    """A forked step's limit is CPU time: a fork that answers late while using no CPU (as one starved by
    a loaded machine would) is waited for, up to the wall-clock cap; one that spins is killed soon after
    its limit."""
    late = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.6); print('late')"],
                            stdout=subprocess.PIPE)
    assert late.stdout is not None
    assert _await_fork(late.pid, late.stdout.fileno(), 0.1, 10.0) == b"late\n"
    late.wait()
    spin = subprocess.Popen([sys.executable, "-c", "while True: pass"], stdout=subprocess.PIPE)
    assert spin.stdout is not None
    start = time.monotonic()
    assert _await_fork(spin.pid, spin.stdout.fileno(), 0.3, 10.0) == "killed after 0.3 s"
    assert 0.3 <= time.monotonic() - start < 5.0
    starved = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], stdout=subprocess.PIPE)
    assert starved.stdout is not None
    start = time.monotonic()
    assert _await_fork(starved.pid, starved.stdout.fileno(), 0.1, 0.8) == "killed after 0.8 s of wall time"
    assert 0.75 <= time.monotonic() - start < 5.0

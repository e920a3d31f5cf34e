"""Batches (oracle.impls.batch): one request per case to the libbpf worker, the same answers as one call
per step, the crash/hang semantics kept, and large blobs sent once."""

from __future__ import annotations

import struct
import time
from pathlib import Path

import pytest

from btfspec.oracle.impls import libbpf as lb
from btfspec.oracle.impls import libbpf_process as lp
from btfspec.oracle.impls.adapter import ACCEPT, DISTILL, RELOCATE, PythonImpl, make_impl, run_steps
from btfspec.oracle.impls.batch import Output, Step
from btfspec.oracle.impls.outcome import Outcome

SELFTEST = Path(__file__).resolve().parent.parent / "corpus" / "selftests" / "distilled_base"
BASE = (SELFTEST / "base.btf").read_bytes()
SPLIT = (SELFTEST / "split.btf").read_bytes()

needs_libbpf = pytest.mark.skipif(lb.unavailable_reason() is not None,
                                  reason=f"libbpf unavailable: {lb.unavailable_reason()}")


def case_steps(split: bytes = SPLIT) -> list[Step]:
    """Distill, relocate the distilled outputs back onto the base, accept the split."""
    return [Step(DISTILL, (split, BASE)),
            Step(RELOCATE, (Output(0, "split"), Output(0, "base"), BASE)),
            Step(ACCEPT, (split, BASE))]


def big_btf(tag: int) -> bytes:
    """A valid standalone BTF (one INT) whose string section makes it larger than BLOB_MIN_SIZE."""
    strings = b"\0int\0" + b"".join(b"pad%d_%d\0" % (tag, i) for i in range(lp.BLOB_MIN_SIZE // 8))
    types = struct.pack("<IIII", 1, 1 << 24, 4, (1 << 24) | 32)
    return struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types), len(strings)) + types + strings


def one_by_one(impl: object, steps: list[Step]) -> list[Outcome | None]:
    """What the steps give called directly, each on its own."""
    outs: list[Outcome | None] = []
    for s in steps:
        args = tuple(outs[a.step].outputs[a.role] if isinstance(a, Output) else a for a in s.args)  # type: ignore[union-attr]
        outs.append(getattr(impl, s.op)(*args))
    return outs


@pytest.fixture(scope="module")
def libbpf_impl():
    impl = make_impl("libbpf", timeout=10.0)
    yield impl
    impl.close()


def test_fallback_runs_each_step_and_skips_a_step_without_its_input() -> None:
    impl = PythonImpl()
    assert run_steps(impl, case_steps()) == one_by_one(impl, case_steps())
    broken = run_steps(impl, case_steps(split=b"not btf"))
    assert [o is None for o in broken] == [False, True, False]
    assert not broken[0].ok and not broken[2].ok  # type: ignore[union-attr]


@needs_libbpf
def test_libbpf_batch_equals_one_call_per_step(libbpf_impl) -> None:
    got = run_steps(libbpf_impl, case_steps())
    assert all(o is not None and o.ok for o in got)
    assert got == one_by_one(libbpf_impl, case_steps())
    assert got[2].outputs == {}  # type: ignore[union-attr]  # accept has no outputs, as accept() itself


@needs_libbpf
def test_libbpf_batch_skips_a_step_without_its_input(libbpf_impl) -> None:
    got = run_steps(libbpf_impl, case_steps(split=b"not btf"))
    assert [o is None for o in got] == [False, True, False]
    assert got[0].errno == got[2].errno < 0  # type: ignore[union-attr]


@needs_libbpf
def test_a_step_may_only_take_outputs_of_earlier_steps() -> None:
    with lp.LibbpfWorker() as w, pytest.raises(ValueError, match="does not come before"):
        w.batch([Step("parse", (Output(0, "raw"),))])


@needs_libbpf
def test_hang_mid_batch_times_out_that_step_and_the_rest_run_in_a_new_worker() -> None:
    with lp.LibbpfWorker(timeout=10.0) as w:
        start = time.monotonic()
        got = w.batch([Step("ping", ()), Step("sleep", (), timeout=1.0), Step("distill", (SPLIT, BASE)),
                       Step("relocate", (Output(2, "split"), Output(2, "base"), BASE))])
        elapsed = time.monotonic() - start
        assert [o.status for o in got] == ["ok", "timeout", "ok", "ok"]  # type: ignore[union-attr]
        assert w.starts == 2
        assert elapsed < 5.0  # the 1 s limit of the step that hangs, not the 10 s of the one before it


@needs_libbpf
def test_crash_mid_batch_is_that_steps_outcome_and_later_steps_get_earlier_outputs() -> None:
    with lp.LibbpfWorker(timeout=10.0) as w:
        got = w.batch([Step("distill", (SPLIT, BASE)), Step("crash", ()),
                       Step("relocate", (Output(0, "split"), Output(0, "base"), BASE))])
        assert [o.status for o in got] == ["ok", "crash", "ok"]  # type: ignore[union-attr]
        assert "during 'crash'" in got[1].log  # type: ignore[union-attr]
        assert got[2] == w.relocate(got[0].outputs["split"], got[0].outputs["base"], BASE)  # type: ignore[union-attr]


@needs_libbpf
def test_a_large_blob_is_sent_once_and_the_caches_stay_in_step(monkeypatch: pytest.MonkeyPatch) -> None:
    sizes: list[int] = []
    send = lp.LibbpfWorker._send

    def recording_send(proc, obj):  # type: ignore[no-untyped-def]
        sizes.append(len(repr(obj)))
        send(proc, obj)

    monkeypatch.setattr(lp.LibbpfWorker, "_send", staticmethod(recording_send))
    blobs = [big_btf(i) for i in range(lp.BLOB_CACHE + 1)]
    small = 50 * len(repr(("batch", 0, [("parse", (("ref", "0" * 32),))])))

    def parse_sizes(order: list[int]) -> list[int]:
        del sizes[:]
        for i in order:
            assert w.parse(blobs[i]).detail == "type_cnt=2"
        return sizes[:]

    with lp.LibbpfWorker(timeout=10.0) as w:
        full = parse_sizes(list(range(lp.BLOB_CACHE)))  # fills both caches
        assert min(full) > lp.BLOB_MIN_SIZE
        assert max(parse_sizes(list(range(lp.BLOB_CACHE)))) < small  # every one named by its hash
        # one more blob evicts the oldest (0) on both sides: 0 is sent again, 1.. still by hash
        again = parse_sizes([lp.BLOB_CACHE, 0, 2, 3])
        assert [size > lp.BLOB_MIN_SIZE for size in again] == [True, True, False, False]
        assert w.starts == 1

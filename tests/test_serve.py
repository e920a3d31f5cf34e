"""The persistent external implementation (oracle.impls.serve) and its reference server."""

from __future__ import annotations

import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from btfspec.oracle.fuzz import corpus as C
from btfspec.oracle.fuzz.corpus import iter_entries
from btfspec.oracle.impls.adapter import ImplUnavailable, PythonImpl, available, make_impl
from btfspec.oracle.impls.outcome import CRASH, ERROR, OK, TIMEOUT, Outcome
from btfspec.oracle.impls.serve import ServeError, ServeImpl

PY = sys.executable
REFERENCE = f"{PY} -m btfspec.oracle.impls.serve_reference"
SELFTEST = Path(__file__).resolve().parent.parent / "corpus" / "selftests" / "distilled_base"


def _pair() -> tuple[bytes, bytes]:
    return (SELFTEST / "base.btf").read_bytes(), (SELFTEST / "split.btf").read_bytes()


@pytest.fixture(scope="module")
def server() -> Iterator[ServeImpl]:
    impl = ServeImpl(REFERENCE, timeout=30.0)
    yield impl
    impl.close()


def _steps() -> list[tuple[str, str, dict[str, bytes]]]:
    """(entry id, op, inputs) of every distill/relocate step of the committed corpus."""
    out = []
    for entry in iter_entries(C.DEFAULT_ROOT):
        if entry.id.startswith("found/"):
            continue
        for step in entry.steps:
            if step["op"] in ("distill", "relocate"):
                inputs = {k: entry.resolve(v) for k, v in step["inputs"].items()}
                out.append((entry.id, step["op"], inputs))
    return out


STEPS = _steps()


def _run(impl: ServeImpl | PythonImpl, op: str, inputs: dict[str, bytes]) -> Outcome:
    if op == "distill":
        return impl.distill(inputs["split"], inputs["base"])
    return impl.relocate(inputs["split"], inputs["distilled_base"], inputs["target"])


def test_reference_server_is_byte_identical_to_python_on_the_corpus(server: ServeImpl) -> None:
    assert len(STEPS) > 20
    python = PythonImpl()
    statuses = set()
    for entry_id, op, inputs in STEPS:
        want, got = _run(python, op, inputs), _run(server, op, inputs)
        statuses.add(want.status)
        assert (got.status, got.errno, got.outputs) == (want.status, want.errno, want.outputs), \
            f"{entry_id} {op}: python {want.describe()}, serve {got.describe()}"
        assert got.impl == "serve"
        if want.log:
            assert got.log.startswith(want.log.rstrip("\n")), entry_id
    assert {OK, ERROR} <= statuses  # both kinds of answer were compared
    assert server.starts == 1  # one process for every request


def test_registry_and_capabilities() -> None:
    assert available()["serve"] == "needs --serve-cmd"
    assert available(serve_cmd=REFERENCE)["serve"] is None
    impl = make_impl("serve", serve_cmd=REFERENCE)
    try:
        assert impl.capabilities == frozenset({"distill", "relocate"})
        with pytest.raises(NotImplementedError):
            impl.accept(b"")
    finally:
        impl.close()  # type: ignore[attr-defined]
    with pytest.raises(ImplUnavailable, match="serve: --serve-cmd is empty"):
        make_impl("serve", serve_cmd="")


def _script(tmp_path: Path, body: str) -> str:
    path = tmp_path / "server.py"
    path.write_text(textwrap.dedent(body))
    return f"{PY} {path}"


# A reference server that misbehaves on its first request only (a marker file remembers it across
# restarts): the fault is followed by a normal request on the restarted program.
FAULTY = """
    import os, sys, time
    from btfspec.oracle.impls.adapter import PythonImpl
    from btfspec.oracle.impls.serve_reference import serve

    MARKER = {marker!r}

    def once(fn):
        def wrapped(*args):
            if not os.path.exists(MARKER):
                open(MARKER, "w").close()
                sys.stderr.write("about to misbehave\\n")
                sys.stderr.flush()
                {fault}
            return fn(*args)
        return wrapped

    impl = PythonImpl()
    sys.exit(serve(once(impl.distill), impl.relocate, sys.stdin.buffer, sys.stdout.buffer, sys.stderr))
"""


@pytest.mark.parametrize(("fault", "status", "detail"), [
    ("time.sleep(3600)", TIMEOUT, "killed after 1 s"),
    ("os.kill(os.getpid(), 11)", CRASH, "SIGSEGV"),
    ("os._exit(3)", CRASH, "exit status 3"),
    ("sys.stdout.write('hello\\n'); sys.stdout.flush()", CRASH, "protocol: bad reply"),
])
def test_hang_or_crash_restarts_the_program(tmp_path: Path, fault: str, status: str, detail: str) -> None:
    cmd = _script(tmp_path, FAULTY.format(marker=str(tmp_path / "marker"), fault=fault))
    base, split = _pair()
    with ServeImpl(cmd, timeout=1.0) as impl:
        start = time.monotonic()
        bad = impl.distill(split, base)
        assert time.monotonic() - start < 10.0
        assert (bad.status, bad.detail) == (status, detail), bad.describe()
        assert "about to misbehave" in bad.log
        good = impl.distill(split, base)
        assert good.ok, good.describe()
        assert good.outputs == PythonImpl().distill(split, base).outputs
        assert impl.starts == 2


def test_ok_without_outputs_is_a_crash(tmp_path: Path) -> None:
    cmd = _script(tmp_path, """
        import sys
        print("ready distill", flush=True)
        for line in sys.stdin:
            print("ok", flush=True)
    """)
    base, split = _pair()
    with ServeImpl(cmd) as impl:
        assert impl.capabilities == frozenset({"distill"})
        out = impl.distill(split, base)
        assert (out.status, out.detail) == (CRASH, "no output out_base")
        with pytest.raises(NotImplementedError, match="does not serve 'relocate'"):
            impl.relocate(split, base, base)


def test_error_reply_gives_the_errno(tmp_path: Path) -> None:
    cmd = _script(tmp_path, """
        import sys
        print("ready distill relocate", flush=True)
        for i, line in enumerate(sys.stdin):
            print("error ENOENT no such type" if i else "error 22", flush=True)
    """)
    base, split = _pair()
    with ServeImpl(cmd) as impl:
        first, second = impl.distill(split, base), impl.relocate(split, base, base)
    assert (first.status, first.errno) == (ERROR, -22)
    assert (second.status, second.errno, second.detail) == (ERROR, -2, "no such type")


@pytest.mark.parametrize(("body", "message"), [
    ("import sys; sys.exit(4)", "ended before 'ready' (exit status 4)"),
    ("print('hello', flush=True)", "greeted with b'hello'"),
    ("print('ready accept', flush=True)", "'ready' must name distill and/or relocate"),
    ("import time; time.sleep(60)", "did not print 'ready' within 1 s"),
])
def test_startup_failures(tmp_path: Path, body: str, message: str) -> None:
    cmd = _script(tmp_path, body)
    with pytest.raises(ServeError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ServeImpl(cmd, startup_timeout=1.0)


def test_missing_program() -> None:
    with pytest.raises(ServeError, match="cannot run"):
        ServeImpl("/nonexistent/btfspec-server")

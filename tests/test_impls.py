"""The adapter protocol (oracle.impls.adapter), the cmd adapter (oracle.impls.external) and the
known-divergence rule."""

from __future__ import annotations

import errno
import os
import sys
import textwrap
import time
from pathlib import Path

import pytest

from btfspec.oracle.impls import adapter as impls
from btfspec.oracle.impls.adapter import (
    KNOWN,
    OPT_IN,
    Implementation,
    ImplUnavailable,
    agree,
    available,
    make_impls,
    merge_split,
    outcome_difference,
    parse_impl_list,
)
from btfspec.oracle.impls.external import CmdImpl, TemplateError, errno_from_stdout
from btfspec.oracle.impls.outcome import Outcome
from btfspec.spec.builder import Builder
from btfspec.spec.kinds import INT_SIGNED
from btfspec.spec.model import Btf
from btfspec.spec.text import dump_raw

REPO = Path(__file__).resolve().parent.parent
SELFTEST = REPO / "corpus" / "selftests" / "distilled_base"
PY = sys.executable


def _pair() -> tuple[bytes, bytes]:
    return (SELFTEST / "base.btf").read_bytes(), (SELFTEST / "split.btf").read_bytes()


def _script(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return str(path)


# --- the cmd adapter -------------------------------------------------------------------------------

REF_SCRIPT = """
    import sys
    from btfspec.oracle.impls.reference import distill_outcome, relocate_outcome

    def read(p):
        with open(p, "rb") as f:
            return f.read()

    op, args = sys.argv[1], sys.argv[2:]
    if op == "distill":
        out = distill_outcome(read(args[0]), read(args[1]))
        files = {"base": args[2], "split": args[3]}
    else:
        out = relocate_outcome(read(args[0]), read(args[1]), read(args[2]))
        files = {"split": args[3]}
    if not out.ok:
        print("reference failed:", out.errno)
        sys.exit(1)
    for role, path in files.items():
        with open(path, "wb") as f:
            f.write(out.outputs[role])
"""


@pytest.fixture(scope="module")
def ref_cmd(tmp_path_factory: pytest.TempPathFactory) -> CmdImpl:
    script = _script(tmp_path_factory.mktemp("cmd"), "ref.py", REF_SCRIPT)
    return CmdImpl(f"{PY} {script} distill {{split}} {{base}} {{out_base}} {{out_split}}",
                   f"{PY} {script} relocate {{split}} {{distilled_base}} {{base}} {{out}}", timeout=60)


def test_cmd_runs_the_reference_like_the_python_adapter(ref_cmd: CmdImpl) -> None:
    base, split = _pair()
    python = make_impls(["python"])[0]
    got, want = ref_cmd.distill(split, base), python.distill(split, base)
    assert got.impl == "cmd" and got.ok, got.describe()
    assert outcome_difference(got, want) is None
    rel = ref_cmd.relocate(got.outputs["split"], got.outputs["base"], base)
    assert rel.ok and rel.outputs == python.relocate(want.outputs["split"], want.outputs["base"], base).outputs
    assert ref_cmd.capabilities == frozenset({"distill", "relocate"})


def test_cmd_reference_error_becomes_its_errno(ref_cmd: CmdImpl) -> None:
    # selftest 5.3: the distilled 8-byte int is missing from the target -> -EINVAL printed by the script
    b = Builder()
    b.int("int", 4, INT_SIGNED)
    b.int("int", 8, INT_SIGNED)
    s = Builder(b.btf)
    s.ptr(1)
    s.const(2)
    d = ref_cmd.distill(s.to_bytes(), b.to_bytes())
    target = Builder()
    target.int("int", 4, INT_SIGNED)
    out = ref_cmd.relocate(d.outputs["split"], d.outputs["base"], target.to_bytes())
    assert (out.status, out.errno, out.detail) == ("error", -errno.EINVAL, "exit status 1")


def test_cmd_exit_status_and_stdout_errno(tmp_path: Path) -> None:
    script = _script(tmp_path, "fail.py", """
        import sys
        print("libbpf: cannot do it, rc = -2 (see log)", file=sys.stderr)
        print("result -2")
        sys.exit(1)
    """)
    out = CmdImpl(f"{PY} {script} {{split}} {{base}} {{out_base}} {{out_split}}").distill(b"s", b"b")
    assert (out.status, out.errno) == ("error", -errno.ENOENT)
    assert "cannot do it" in out.log
    script22 = _script(tmp_path, "fail22.py", "import sys\nprint('-22')\nsys.exit(3)\n")
    out = CmdImpl(None, f"{PY} {script22} {{split}} {{distilled_base}} {{base}} {{out}}").relocate(b"", b"", b"")
    assert (out.status, out.errno, out.detail) == ("error", -errno.EINVAL, "exit status 3")


@pytest.mark.parametrize("stdout, want", [
    ("-22", -22), ("rc=-2\n", -errno.EINVAL), ("error -2", -2), ("12 then 7", -7), ("", -errno.EINVAL),
    ("failed: -ENOENT", -errno.ENOENT), ("(-95).", -95), ("0", -errno.EINVAL), ("EBUSY", -errno.EBUSY),
])
def test_errno_from_stdout(stdout: str, want: int) -> None:
    assert errno_from_stdout(stdout) == want


def test_cmd_timeout_kills_the_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    script = _script(tmp_path, "sleep.py", f"""
        import os, subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        with open({str(pidfile)!r}, "w") as f:
            f.write(f"{{os.getpid()}} {{child.pid}}")
        time.sleep(60)
    """)
    impl = CmdImpl(f"{PY} {script} {{split}} {{base}} {{out_base}} {{out_split}}", timeout=1.0)
    start = time.monotonic()
    out = impl.distill(b"", b"")
    assert out.status == "timeout" and out.detail == "killed after 1 s"
    assert time.monotonic() - start < 10
    for pid in map(int, pidfile.read_text().split()):
        for _ in range(50):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            pytest.fail(f"process {pid} survived the timeout")


def test_cmd_signal_is_a_crash(tmp_path: Path) -> None:
    script = _script(tmp_path, "segv.py", "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n")
    out = CmdImpl(None, f"{PY} {script} {{split}} {{distilled_base}} {{base}} {{out}}").relocate(b"", b"", b"")
    assert (out.status, out.detail) == ("crash", "SIGSEGV")


def test_cmd_success_without_output_is_a_crash(tmp_path: Path) -> None:
    script = _script(tmp_path, "lazy.py", "import sys\nopen(sys.argv[1], 'wb').close()\n")
    out = CmdImpl(f"{PY} {script} {{out_base}} {{split}} {{base}} {{out_split}}").distill(b"", b"")
    assert out.status == "crash" and out.detail == "no output out_split"


def test_cmd_missing_program_is_a_crash() -> None:
    out = CmdImpl("/nonexistent/prog {split} {base} {out_base} {out_split}").distill(b"", b"")
    assert (out.status, out.detail) == ("crash", "cannot start")


@pytest.mark.parametrize("distill, relocate, message", [
    (None, None, "needs --distill-cmd"),
    ("prog {split} {base} {out_split}", None, "{out_base}"),
    ("prog {split} {base} {out_base} {out_split} {bogus}", None, "unknown placeholder"),
    (None, "prog {split} {distilled_base} {base}", "{out}"),
    ("prog 'unbalanced {out_base} {out_split}", None, "quotation"),
    ("   ", None, "--distill-cmd template is empty"),
])
def test_cmd_template_errors(distill: str | None, relocate: str | None, message: str) -> None:
    with pytest.raises(TemplateError, match=message.replace("{", r"\{").replace("}", r"\}")):
        CmdImpl(distill, relocate)


def test_cmd_capabilities_follow_templates() -> None:
    impl = CmdImpl(None, "prog --out={out} {split} {distilled_base} {base}")
    assert impl.capabilities == frozenset({"relocate"})
    with pytest.raises(NotImplementedError):
        impl.distill(b"", b"")
    with pytest.raises(NotImplementedError):
        impl.accept(b"")


# --- registry ---------------------------------------------------------------------------------------

def test_parse_impl_list() -> None:
    assert parse_impl_list("python, libbpf,python") == ["python", "libbpf"]
    assert parse_impl_list("all") == list(KNOWN)
    assert parse_impl_list(["kernel"]) == ["kernel"]
    with pytest.raises(ValueError, match=r"unknown implementation 'pyhton' \(known: python, python-strict"):
        parse_impl_list("pyhton,libbpf")
    with pytest.raises(ValueError, match="unknown implementations 'a', 'b'"):
        parse_impl_list("a,b")
    with pytest.raises(ValueError, match="no implementation given"):
        parse_impl_list(" , ")


def test_available_and_make_impls() -> None:
    reasons = available()
    assert list(reasons) == list(KNOWN + OPT_IN)
    assert reasons["python"] is None and reasons["python-strict"] is None
    assert "--distill-cmd" in str(reasons["cmd"])
    assert available(relocate_cmd="x {split} {distilled_base} {base} {out}")["cmd"] is None
    with pytest.raises(ImplUnavailable, match="needs --distill-cmd"):
        make_impls(["cmd"])
    with pytest.raises(ValueError, match="unknown implementation"):
        make_impls(["nope"])
    usable = [n for n in KNOWN if reasons[n] is None]
    made = make_impls(usable)
    try:
        assert [i.name for i in made] == usable
        for impl in made:
            assert isinstance(impl, Implementation)
            assert impl.capabilities <= {"distill", "relocate", "accept"}
    finally:
        impls.close_impls(made)


def test_python_accept_uses_the_libbpf_rules() -> None:
    python = make_impls(["python"])[0]
    assert "accept" in python.capabilities
    base, split = _pair()
    assert python.accept(split, base).ok
    bad = python.accept(split)  # a split without its base: string offsets out of range
    assert bad.status == "error" and bad.errno < 0 and bad.log


def test_libbpf_accept() -> None:
    if available()["libbpf"]:
        pytest.skip(f"libbpf unavailable: {available()['libbpf']}")
    lib = make_impls(["libbpf"], timeout=10)[0]
    try:
        base, split = _pair()
        assert lib.accept(split, base).ok and lib.accept(base).ok
        out = lib.accept(b"\x9f\xeb\x01\x00garbage")
        assert out.status == "error" and out.errno < 0 and out.outputs == {}
    finally:
        impls.close_impls([lib])


# --- merge_split and the kernel ------------------------------------------------------------------------

def _three_levels() -> Btf:
    b = Builder()
    i = b.int("int", 4, INT_SIGNED)
    b.struct("s", 8, [("a", i, 0, 0), ("b", i, 32, 0)])
    mid = Builder(b.btf)
    p = mid.ptr(2)
    mid.typedef("sp_t", p)
    top = Builder(mid.btf)
    top.struct("outer", 8, [("p", 4, 0, 0)])
    top.func("f", top.func_proto(i, [("x", 3)]), 1)
    return Btf.from_bytes(top.to_bytes(), base=Btf.from_bytes(mid.to_bytes(), base=Btf.from_bytes(b.to_bytes())))


def test_merge_split_keeps_ids_and_names() -> None:
    split = _three_levels()
    merged = Btf.from_bytes(merge_split(split))
    assert merged.type_cnt == split.type_cnt and merged.start_id == 1
    assert dump_raw(merged) == dump_raw(split, start_id=1)
    assert merge_split(Btf.from_bytes(merge_split(split))) == merge_split(split)


def test_kernel_accepts_merged_splits() -> None:
    if available()["kernel"]:
        pytest.skip(f"kernel unavailable: {available()['kernel']}")
    kernel = make_impls(["kernel"])[0]
    assert kernel.capabilities == frozenset({"accept"})
    base, split = _pair()
    assert kernel.accept(split, base).ok
    chain = _three_levels()
    assert kernel.accept(merge_split(chain)).ok
    bad = Builder(Btf.from_bytes(base))
    bad.ptr(1000)  # dangling
    out = kernel.accept(bad.to_bytes(), base)
    assert out.status == "error" and out.errno == -errno.EINVAL and out.detail == "merged split"
    assert kernel.accept(split).status == "error"  # a split alone is not standalone BTF
    with pytest.raises(NotImplementedError):
        kernel.distill(split, base)


# --- the known-divergence rule -------------------------------------------------------------------------

OK_A = Outcome("ok", outputs={"split": b"\x01\x02"})
OK_B = Outcome("ok", outputs={"split": b"\x01\x03"})
OK_Q17 = Outcome("ok", outputs={"base": b"", "split": b""}, impl="python", detail="Q17")
ELOOP = Outcome("error", -errno.ELOOP, impl="python", detail="Q3,Q5")
ELOOP_PLAIN = Outcome("error", -errno.ELOOP)
EINVAL = Outcome("error", -errno.EINVAL)
TIMEOUT = Outcome("timeout", detail="killed after 5 s")
CRASH = Outcome("crash", detail="SIGSEGV")


@pytest.mark.parametrize("libbpf, python, want", [
    (OK_A, Outcome("ok", outputs={"split": b"\x01\x02"}, impl="python"), (True, None)),
    (EINVAL, Outcome("error", -errno.EINVAL, log="other text"), (True, None)),
    (TIMEOUT, ELOOP, (True, "Q5")),
    (CRASH, OK_Q17, (True, "Q17")),
    (TIMEOUT, ELOOP_PLAIN, (False, None)),  # -ELOOP that does not name Q5
    (CRASH, OK_A, (False, None)),  # a crash the reference does not attribute to Q17 (e.g. Q12)
    (OK_A, OK_B, (False, None)),
    (EINVAL, ELOOP, (False, None)),
    (TIMEOUT, EINVAL, (False, None)),
    (TIMEOUT, OK_A, (False, None)),
    (CRASH, EINVAL, (False, None)),
    (ELOOP, TIMEOUT, (False, None)),
    (OK_A, CRASH, (False, None)),
    (OK_Q17, CRASH, (False, None)),
    (OK_A, Outcome("ok", outputs={"split": b"\x01\x02", "base": b""}), (False, None)),
])
def test_agree(libbpf: Outcome, python: Outcome, want: tuple[bool, str | None]) -> None:
    assert agree(libbpf, python) == want


def test_outcome_difference_names_the_type_record() -> None:
    base, split = _pair()
    b = Builder(Btf.from_bytes(base))
    b.ptr(3)
    b.ptr(5)
    c = Builder(Btf.from_bytes(base))
    c.ptr(3)
    c.ptr(6)
    diff = outcome_difference(Outcome("ok", outputs={"split": b.to_bytes()}),
                              Outcome("ok", outputs={"split": c.to_bytes()}))
    assert diff == "output split: type record #2: expected [0, 33554432, 5], got [0, 33554432, 6]"
    assert outcome_difference(EINVAL, ELOOP) == "errno -EINVAL (22) vs -ELOOP (40)"

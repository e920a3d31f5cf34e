"""The oracle-strength benchmark: its mutants of the reference, their servers, and short campaigns."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from btfspec.bench import mutants as M
from btfspec.bench import strength_bench
from btfspec.oracle.impls.adapter import PythonImpl
from btfspec.oracle.impls.outcome import call_outcome
from btfspec.oracle.impls.serve import ServeImpl
from tests.helpers import need_libbpf

SELFTESTS = Path(__file__).resolve().parent.parent / "corpus" / "selftests"


def test_mutants_apply_once_and_compile() -> None:
    source = M.reference_source()
    assert len(M.MUTANTS) >= 20 and len(M.BY_ID) == len(M.MUTANTS)
    assert {m.op for m in M.MUTANTS} == {"distill", "relocate"}
    assert sum(m.bytes_only for m in M.MUTANTS) >= 3
    for m in M.MUTANTS:
        assert M.mutated_source(m.id, source) != source, m.id
        assert hasattr(M.load(m.id), "relocate_outcome")
    assert M.mutated_source(M.CONTROL, source) == source
    with pytest.raises(M.MutantError, match="unknown mutant"):
        M.mutated_source("nope", source)
    with pytest.raises(M.MutantError, match="occurs 0 times"):
        M.mutated_source(M.MUTANTS[0].id, "nothing here")


def _case(name: str) -> dict[str, bytes]:
    return {f.stem: f.read_bytes() for f in (SELFTESTS / name).glob("*.btf")}


def test_mutant_servers_behave_as_mutated() -> None:
    """The control server answers as the reference; R08 changes exactly the errno it names."""
    files = _case("distilled_base_missing_err")
    python = PythonImpl()
    args = (files["distill.split"], files["distill.base"], files["target"])
    want = python.relocate(*args)
    assert want.errno == -22
    with ServeImpl(strength_bench.server_command(M.CONTROL)) as control:
        got = control.relocate(*args)
        assert (got.status, got.errno) == (want.status, want.errno)
        d = control.distill(files["split"], files["base"])
        assert d.outputs == python.distill(files["split"], files["base"]).outputs
    with ServeImpl(strength_bench.server_command("R08-unmapped-errno")) as mutant:
        got = mutant.relocate(*args)
        assert (got.status, got.errno) == ("error", -2), got.describe()


def test_usage_errors_of_the_mutant_server(tmp_path: Path) -> None:
    import subprocess

    out = subprocess.run([sys.executable, "-m", "btfspec.bench.mutants", "nope"], capture_output=True, text=True,
                         stdin=subprocess.DEVNULL, timeout=60)
    assert out.returncode == 2 and "unknown mutant 'nope'" in out.stderr


def test_a_bytes_only_mutant_is_killed_and_the_control_is_clean() -> None:
    need_libbpf()
    row = strength_bench.run_one("D08-byte-order-flipped", budget=30.0, workers=1)
    assert row.killed and row.seconds is not None and row.seconds < 40.0, row
    assert row.wall < 30.0 + 12.0  # the campaign ends at the kill (or within the budget + overrun)
    control = strength_bench.run_one(M.CONTROL, budget=10.0, workers=1)
    assert not control.killed, control
    assert sum(control.examples.values()) > 0, control


@pytest.mark.parametrize(("shape", "mutant", "log"), [
    ("base_decl_ref", "D02-kind-check-errno", "unexpected reference to base type"),
    ("odd_enum_size", "D04-enum-size-check", ""),
])
def test_libbpf_valid_shapes_reach_the_distill_error_path(shape: str, mutant: str, log: str) -> None:
    """The libbpf-valid shapes "base_decl_ref" (a module pointer to a kernel FUNC/VAR/DATASEC/DECL_TAG)
    and "odd_enum_size" (a reached kernel enum of 3, 5, 6 or 7 bytes): libbpf and the reference refuse
    them alike (nothing to flag); the seeded mutant answers otherwise."""
    import random

    from btfspec.btfgen.chooser import RandomChooser
    from btfspec.btfgen.encoder import make_case
    from btfspec.btfgen.generate import Knobs, generate
    from btfspec.oracle.impls.adapter import make_impl

    need_libbpf()
    lib = make_impl("libbpf", timeout=5.0)
    seeded = M.load(mutant)
    python = PythonImpl()
    refused = killed = 0
    try:
        for seed in range(60):
            u = generate(RandomChooser(random.Random(seed)), "libbpf-valid", 25,
                         Knobs(quirks=frozenset({shape}), quirk_percent=4))
            case = make_case(u)
            want = python.distill(case.split, case.base)
            got = lib.distill(case.split, case.base)
            assert (got.status, got.errno, got.outputs) == (want.status, want.errno, want.outputs)
            if want.ok:
                continue
            refused += 1
            assert log in want.log
            other = seeded.distill_outcome(case.split, case.base)
            killed += (other.status, other.errno) != (want.status, want.errno)
    finally:
        lib.close()  # type: ignore[attr-defined]
    assert refused >= 5 and killed >= 5, (refused, killed)


@pytest.mark.parametrize(("link", "mutant", "least"), [
    ("typedef", "R15-typedef-embedding-missed", 22),
    ("array", "R12-array-embedding-missed", 18),
])
def test_struct_typedefs_and_arrays_reach_the_embedded_size_check_through_the_chain(
        link: str, mutant: str, least: int) -> None:
    """About half the generated typedefs and arrays are of a named struct or union (vmlinux: 13% of its
    typedefs, 24% of its arrays; weighted up since relocation's embedded-size walk goes through them), so
    composites often embed kernel structs through a typedef or an array: resizing the embedded struct,
    libbpf and the reference refuse the relocation alike (nothing to flag), and the mutant whose walk skips
    that link accepts it in at least ``least`` of 400 universes (typedef 29, array 23 here; 17 and 14
    when such a link named a composite only as one target among all, a fifth of them)."""
    import random

    from btfspec.btfgen.chooser import RandomChooser
    from btfspec.btfgen.encoder import make_case
    from btfspec.btfgen.features import features
    from btfspec.btfgen.generate import generate
    from btfspec.btfgen.perturb import perturb
    from btfspec.btfgen.universe import Array, Composite, Typedef
    from btfspec.oracle.impls.adapter import make_impl

    need_libbpf()
    cls, field = (Typedef, "target") if link == "typedef" else (Array, "elem")
    lib = make_impl("libbpf", timeout=5.0)
    seeded = M.load(mutant)
    python = PythonImpl()
    links = of_structs = killed = 0
    try:
        for seed in range(400):
            u = generate(RandomChooser(random.Random(seed)), ("kernel-valid", "libbpf-valid")[seed % 2], 40)
            nodes = [n for n in u.nodes if isinstance(n, cls)]
            links += len(nodes)
            of_structs += sum(isinstance(u[t], Composite) and u[t].name is not None
                              for t in (getattr(n, field) for n in nodes) if t is not None)
            if ("shape", f"embedded_via_{link}") not in features(u):
                continue
            case = make_case(u)
            dist = python.distill(case.split, case.base)
            assert dist.ok, dist
            base2, _ = perturb(case, RandomChooser(random.Random(seed + 1)), ("resize_embedded",))
            split, dbase = dist.outputs["split"], dist.outputs["base"]
            want = python.relocate(split, dbase, base2)
            got = seeded.relocate_outcome(split, dbase, base2)
            if (got.status, got.errno) == (want.status, want.errno):
                continue
            killed += 1
            assert (want.status, want.errno) == ("error", -22) and got.ok, (seed, want, got)
            theirs = lib.relocate(split, dbase, base2)
            assert (theirs.status, theirs.errno) == (want.status, want.errno), (seed, theirs, want)
    finally:
        lib.close()  # type: ignore[attr-defined]
    assert 0.35 <= of_structs / links <= 0.7, (of_structs, links)
    assert killed >= least, killed


class _InProcessMutant:
    """A mutant as an in-process implementation (the campaign runs it through serve; P8 alone need not)."""

    capabilities = frozenset({"distill", "relocate"})

    def __init__(self, mutant_id: str) -> None:
        self.mod = M.load(mutant_id)
        self.name = "serve"

    def distill(self, split: bytes, base: bytes, *, timeout: float | None = None) -> Any:
        return call_outcome(self.name, lambda: self.mod.distill_outcome(split, base))

    def relocate(self, split: bytes, dist: bytes, base: bytes, *, timeout: float | None = None) -> Any:
        return call_outcome(self.name, lambda: self.mod.relocate_outcome(split, dist, base))


def _p8_findings(mutant_id: str, lib: Any, examples: int = 120) -> list[str]:
    from hypothesis import HealthCheck, Phase, given, settings

    from btfspec.oracle.fuzz.property import Context, PropertyFailure
    from btfspec.oracle.fuzz.registry import get_property

    p8 = get_property("relocation-inputs")
    ctx = Context(impls={"libbpf": lib, "serve": _InProcessMutant(mutant_id)}, profile="kernel-valid")
    found: list[str] = []

    @settings(max_examples=examples, database=None, deadline=None, suppress_health_check=list(HealthCheck),
              phases=[Phase.generate], derandomize=True)
    @given(p8.strategy(ctx))
    def run(case: Any) -> None:
        try:
            p8.check(case, ctx)
        except PropertyFailure as exc:
            found.append(exc.finding.outcome)

    run()
    return found


def test_p8_relocation_inputs_kill_the_unmapped_string_errno_and_spare_the_control() -> None:
    """P8 (mutated relocation inputs, compared with libbpf): the seeded R09 (-EINVAL for an unmapped
    string) is found through split-str; the unmutated reference is never flagged."""
    from btfspec.oracle.impls.adapter import make_impl

    need_libbpf()
    lib = make_impl("libbpf", timeout=5.0)
    try:
        assert not _p8_findings(M.CONTROL, lib)
        found = _p8_findings("R09-unmapped-string-errno", lib)
    finally:
        lib.close()  # type: ignore[attr-defined]
    assert found and all("(split-str)" in f for f in found), found

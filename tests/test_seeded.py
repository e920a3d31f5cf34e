"""The campaign's seeded fast path (oracle.fuzz.campaign.hypothesis_glue.seeded_example): a property's own
strategy drawn without hypothesis, replayed exactly by hypothesis from the recorded choices, and a failure
found there shrunk by hypothesis like any other."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.database import InMemoryExampleDatabase

from btfspec.oracle.fuzz.campaign import run_campaign
from btfspec.oracle.fuzz.campaign.hypothesis_glue import (
    DATABASE_KEY_HOOK,
    NotSeedable,
    save_for_shrinking,
    seeded_example,
)
from btfspec.oracle.fuzz.corpus import load_entry
from btfspec.oracle.fuzz.property import Context
from btfspec.oracle.fuzz.registry import get_property
from btfspec.spec.model import Btf
from tests.helpers import need_libbpf
from tests.test_campaign import BROKEN_DISTILL

KEY = b"btfspec-test-seeded"


def blobs(value: object) -> tuple[bytes, ...]:
    """The bytes a case carries (a RelocationCase: its case and base2; a Case: base and split)."""
    case = getattr(value, "case", value)
    return (case.base, case.split, getattr(value, "base2", b""))  # type: ignore[attr-defined]


def replayed(strategy: object, choices: list[int], phases: list[Phase], body=None) -> list[object]:  # type: ignore[no-untyped-def]
    """What a hypothesis run over ``strategy`` draws when the database holds ``choices`` to shrink."""
    db = InMemoryExampleDatabase()
    save_for_shrinking(db, KEY, choices)
    seen: list[object] = []

    @settings(database=db, max_examples=1, deadline=None, phases=phases, suppress_health_check=list(HealthCheck))
    @given(strategy)
    def test(value: object) -> None:
        seen.append(value)
        if body is not None:
            body(value)

    setattr(test, DATABASE_KEY_HOOK, KEY)
    test()
    return seen


@pytest.mark.parametrize("name", ["P1", "P2", "P3", "P4"])
def test_hypothesis_replays_the_seeded_case_exactly(name: str) -> None:
    strategy = get_property(name).strategy(Context({}))
    for seed in (1, 2, 3):
        value, choices = seeded_example(strategy, seed)
        assert seeded_example(strategy, seed)[1] == choices  # deterministic
        seen = replayed(strategy, choices, [Phase.reuse])
        assert seen and blobs(seen[0]) == blobs(value)


def test_a_strategy_it_cannot_draw_says_so() -> None:
    with pytest.raises(NotSeedable):
        seeded_example(get_property("P5").strategy(Context({})), 1)


def test_a_seeded_failure_shrinks_through_hypothesis() -> None:
    strategy = get_property("P1").strategy(Context({}))

    def big(value: object) -> int:
        return len(value.case.universe.nodes)  # type: ignore[attr-defined]

    def fails(value: object) -> None:  # a stand-in bug: any universe of 12 nodes or more
        assert big(value) < 12

    seed = next(s for s in range(1000) if big(seeded_example(strategy, s)[0]) >= 30)
    value, choices = seeded_example(strategy, seed)
    with pytest.raises(AssertionError):
        seen = []
        replayed(strategy, choices, [Phase.reuse, Phase.shrink], lambda v: (seen.append(big(v)), fails(v)))
    assert seen[0] == big(value) and min(n for n in seen if n >= 12) == 12


def test_a_campaign_finds_on_the_seeded_path_and_shrinks(tmp_path: Path) -> None:
    need_libbpf()
    result = run_campaign(["P3"], ["cmd", "libbpf"], workers=0, max_examples=20, seed=1, db=None,
                          corpus_dir=tmp_path / "found", distill_cmd=BROKEN_DISTILL, progress=False)
    assert sum(s["seeded"].get("P3", 0) for s in result.slots) > 0
    (rec,) = [f for f in result.new_findings if f.impl == "cmd"][:1]
    entry = load_entry(rec.path)
    base = Btf.from_bytes(entry.file("base.btf"))
    split = Btf.from_bytes(entry.file("split.btf"), base=base)
    assert base.nr_types <= 3 and split.nr_types <= 2, (base.nr_types, split.nr_types)  # shrunk by hypothesis


def _q2_shrinks(profile: str, count: int) -> list[tuple[int, int]]:
    """libbpf's Q2 findings (a referenced STRUCT became a UNION and relocation still succeeds) on the first
    ``count`` seeded kind_changed cases that show it, each shrunk as a campaign shrinks it: (found, shrunk)."""
    import random

    from btfspec.bench.shrink_bench import finding_signature, shrink_recorded
    from btfspec.oracle.fuzz.relocation import relocation_cases
    from btfspec.oracle.impls.adapter import make_impl

    prop = get_property("P1")
    libbpf = make_impl("libbpf")
    try:
        ctx = Context({"libbpf": libbpf}, profile=profile)
        strategy = relocation_cases(ctx, kinds=("kind_changed",))
        rng = random.Random(1)
        out: list[tuple[int, int]] = []
        for _ in range(200):
            value, choices = seeded_example(strategy, rng.getrandbits(64))
            sig = finding_signature(prop, ctx, value)
            if sig is None or sig[3] != "kind_changed: relocate ok":
                continue

            def same(c: object, sig: tuple[str, ...] = sig) -> bool:
                return finding_signature(prop, ctx, c) == sig

            shrunk, _, _, stopped = shrink_recorded(strategy, choices, same, seed=1, max_seconds=60)
            assert not stopped
            out.append((len(value.case.universe.nodes), shrunk))
            if len(out) == count:
                break
        return out
    finally:
        libbpf.close()


@pytest.mark.parametrize("profile", ["kernel-valid", "libbpf-valid"])
def test_a_seeded_finding_shrinks_to_the_few_nodes_it_needs(profile: str) -> None:
    """A finding found on the seeded path keeps only what it needs after hypothesis shrinks it: the
    generator makes each construct one span, so hypothesis can delete an unrelated construct. A Q2
    finding needs the index INT, a STRUCT and the module's pointer to it: these shrink to at most 8
    nodes; without the spans the kernel-valid ones kept 4, 9 and 14 nodes."""
    need_libbpf()
    shrinks = _q2_shrinks(profile, 3)
    assert len(shrinks) == 3 and max(found for found, _ in shrinks) >= 25, shrinks
    assert all(shrunk <= 8 for _, shrunk in shrinks), shrinks


def test_bench_shrink_reports_each_failure_and_a_summary() -> None:
    from click.testing import CliRunner

    from btfspec.cli import main

    res = CliRunner().invoke(main, ["bench", "shrink", "--impl", "python", "--findings", "1", "--stand-ins", "1",
                                    "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    groups = [r["group"] for r in out["rows"]]
    assert groups[:3] == ["stand-in"] * 3 and groups[3:] == ["finding"], groups
    assert all(r["shrunk"] <= r["found"] and r["checks"] > 0 for r in out["rows"]), out["rows"]
    assert all(r["reduced"] <= r["found"] and r["reduce_checks"] > 0 for r in out["rows"]), out["rows"]
    assert [line.split(":")[0] for line in out["summary"]] == [
        "stand-in, hypothesis shrink", "stand-in, reducer", "finding, hypothesis shrink", "finding, reducer"], \
        out["summary"]
    bad = CliRunner().invoke(main, ["bench", "shrink", "--impl", "nosuch"])
    assert bad.exit_code == 2 and "unknown implementation 'nosuch'" in bad.output, bad.output

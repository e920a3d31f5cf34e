"""Generated 2026-format blobs: layout sections, sorted splits (distill-then-sort), three levels, and
the layout-section mutation operators (each with a case the validator must flag, and one it must not)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from hypothesis import given, settings

from btfspec.btfgen.format2026 import layout_blobs, sorted_split_case, third_level, with_layout_section
from btfspec.btfgen.mutate import LAYOUT_MUTATIONS, layout_mutated_blobs
from btfspec.btfgen.samples import every_kind, small_split
from btfspec.cli import main
from btfspec.oracle.equiv.compare import equivalent_bytes
from btfspec.oracle.impls import libbpf as lb
from btfspec.oracle.impls import libbpf_process as lp
from btfspec.oracle.impls.reference import relocate
from btfspec.spec.formats import RULE_NAMES
from btfspec.spec.kinds import INFO_WIDE
from btfspec.spec.model import Btf
from btfspec.spec.permute import is_name_sorted, name_order, permute, sort_by_name
from btfspec.spec.text import dump_raw
from btfspec.spec.validate import validate


def sample_pair() -> tuple[bytes, bytes]:
    base = every_kind().btf
    base_blob = base.to_bytes()
    return base_blob, small_split(Btf.from_bytes(base_blob)).btf.to_bytes()


# --------------------------------------------------------------------------------------------------
# layout blobs
# --------------------------------------------------------------------------------------------------

@settings(max_examples=40, deadline=None)
@given(layout_blobs())
def test_layout_blobs_are_valid_under_the_2026_rules(blob: bytes) -> None:
    assert validate(blob, None, "libbpf-2026") == []
    btf = Btf.from_bytes(blob, info=INFO_WIDE, use_layout=True)
    assert btf.to_bytes() == blob
    other = "big" if btf.order == "little" else "little"
    swapped = btf.to_bytes(order=other)  # type: ignore[arg-type]
    assert validate(swapped, None, "libbpf-2026") == []
    assert Btf.from_bytes(swapped, info=INFO_WIDE, use_layout=True).to_bytes(order=btf.order) == blob


def test_with_layout_section_unknown_kinds_only_the_layout_sizes() -> None:
    seed = every_kind().btf.to_bytes()
    blob = with_layout_section(seed, [(20, 2, 3), (100, 0, 1)])
    assert validate(blob, None, "libbpf-2026") == []
    assert [v.rule for v in validate(blob, None, "libbpf1.6")] == ["type.kind"]
    btf = Btf.from_bytes(blob, info=INFO_WIDE, use_layout=True)
    last = btf.type(btf.type_cnt - 1)
    assert (last.kind, last.vlen, len(last.fixed)) == (100, 1, 0)
    assert dump_raw(btf).splitlines()[-1].endswith("UNKNOWN 'unknown_kind_100_1'")


# --------------------------------------------------------------------------------------------------
# layout mutations: the validator flags each operator's damage and never fails internally
# --------------------------------------------------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(layout_mutated_blobs())
def test_layout_mutations_never_break_the_validators(case: tuple[str, bytes]) -> None:
    _, blob = case
    for rules in RULE_NAMES:
        assert all(v.rule != "internal" for v in validate(blob, None, rules)), rules


def _apply(name: str, blob: bytes, *choices: int) -> bytes:
    """One operator with fixed draws (``choices`` feed ``draw`` in order; picks are indexes)."""
    it = iter(choices)

    def draw(strategy: object) -> int:
        return next(it)

    buf = bytearray(blob)
    LAYOUT_MUTATIONS[name](draw, buf, "little")  # type: ignore[arg-type]
    return bytes(buf)


def test_each_layout_operator_is_flagged() -> None:
    seed = with_layout_section(every_kind().btf.to_bytes(), [(20, 1, 1)])
    assert validate(seed, None, "libbpf-2026") == []  # the case that must not be flagged
    flagged = {
        "layout.align": _apply("layout_off", seed, 0),  # layout_off + 1
        "layout.len": _apply("layout_len", seed, 2),  # layout_len 2
        "type.kind": _apply("layout_entry", seed, 20, 0, 1, 2),  # kind 20's info_sz -> 2 (not a multiple of 4)
    }
    for rule, blob in flagged.items():
        assert rule in [v.rule for v in validate(blob, None, "libbpf-2026")], rule
    # flags of a known kind's entry: libbpf ignores the layout for kinds it knows
    assert validate(_apply("layout_entry", seed, 1, 2, 7), None, "libbpf-2026") == []
    # hdr_len 24: the layout fields leave the header, so kind 20 cannot be sized any more
    assert "type.kind" in [v.rule for v in validate(_apply("layout_header", seed, 0), None, "libbpf-2026")]


# --------------------------------------------------------------------------------------------------
# sorted splits (resolve_btfids: distill, then sort by name)
# --------------------------------------------------------------------------------------------------

def test_sort_by_name_matches_resolve_btfids_order() -> None:
    base_blob, split_blob = sample_pair()
    split = Btf.from_bytes(split_blob, Btf.from_bytes(base_blob))
    order = name_order(split)
    names = [split.name(split.type(i)) for i in order]
    assert names == sorted(names)  # strcmp order; '' (anonymous) first
    anon = [i for i in order if not split.type(i).name_off]
    assert anon == sorted(anon)  # ties keep their original order
    out, new_id = sort_by_name(split)
    assert is_name_sorted(out) and not is_name_sorted(split)
    for old, new in new_id.items():  # every reference follows its type
        assert out.type(new).kind == split.type(old).kind
    assert equivalent_bytes(out.to_bytes(), base_blob, split_blob, base_blob).equal


def test_permute_rejects_a_partial_order() -> None:
    base_blob, split_blob = sample_pair()
    split = Btf.from_bytes(split_blob, Btf.from_bytes(base_blob))
    try:
        permute(split, list(range(split.start_id, split.type_cnt - 1)))
    except ValueError:
        return
    raise AssertionError("a partial order was accepted")


def test_distill_then_sort_relocates_like_unsorted() -> None:
    base_blob, split_blob = sample_pair()
    case = sorted_split_case(base_blob, split_blob)
    assert case is not None
    dist = Btf.from_bytes(case.distilled_base)
    assert is_name_sorted(Btf.from_bytes(case.sorted_split, dist))
    plain = relocate(case.split, case.distilled_base, base_blob)
    srt = relocate(case.sorted_split, case.distilled_base, base_blob)
    assert plain.rc == 0 == srt.rc
    assert equivalent_bytes(srt.split, base_blob, plain.split, base_blob).equal
    # after relocation the own types are still name-sorted (relocation keeps the split's order)
    assert is_name_sorted(Btf.from_bytes(srt.split, Btf.from_bytes(base_blob)))


def test_cli_distill_sort(tmp_path) -> None:  # type: ignore[no-untyped-def]
    base_blob, split_blob = sample_pair()
    (tmp_path / "base").write_bytes(base_blob)
    (tmp_path / "split").write_bytes(split_blob)
    out = {k: str(tmp_path / k) for k in ("db", "s", "db2", "s2")}
    run = CliRunner().invoke
    common = ["distill", str(tmp_path / "split"), "--base", str(tmp_path / "base")]
    assert run(main, [*common, "--sort", "--out-base", out["db"], "--out-split", out["s"]]).exit_code == 0
    assert run(main, [*common, "--out-base", out["db2"], "--out-split", out["s2"]]).exit_code == 0
    db, s = (open(out[k], "rb").read() for k in ("db", "s"))
    assert db == open(out["db2"], "rb").read()  # the distilled base is not sorted
    assert is_name_sorted(Btf.from_bytes(s, Btf.from_bytes(db)))
    deduped = split_blob if lb.unavailable_reason() else _libbpf_dedup(split_blob, base_blob)  # as resolve_btfids
    case = sorted_split_case(base_blob, deduped)
    assert case is not None and s == case.sorted_split


def _libbpf_dedup(split: bytes, base: bytes) -> bytes:
    with lp.LibbpfWorker() as worker:
        return worker.dedup(split, base).outputs["split"]


@pytest.mark.skipif(lb.unavailable_reason() is not None, reason=f"libbpf unavailable: {lb.unavailable_reason()}")
def test_cli_distill_sort_dedups_first_like_resolve_btfids(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """resolve_btfids' finalize_btf: btf__dedup, then distill, then sort.  The sample's split has a PTR to
    list_head that its base has too: btf__dedup folds it into the base's (distill then copies that one)."""
    base_blob, split_blob = sample_pair()
    (tmp_path / "base").write_bytes(base_blob)
    (tmp_path / "split").write_bytes(split_blob)
    for impl in ("python", "libbpf"):
        out = tmp_path / f"s.{impl}"
        res = CliRunner().invoke(main, ["distill", str(tmp_path / "split"), "--base", str(tmp_path / "base"),
                                        "--sort", "--impl", impl, "--out-base", str(tmp_path / "db"),
                                        "--out-split", str(out)])
        assert res.exit_code == 0, res.output
        case = sorted_split_case(base_blob, _libbpf_dedup(split_blob, base_blob))
        assert case is not None and out.read_bytes() == case.sorted_split, impl
        undeduped = sorted_split_case(base_blob, split_blob)
        assert undeduped is not None and out.read_bytes() != undeduped.sorted_split, impl


# --------------------------------------------------------------------------------------------------
# three levels
# --------------------------------------------------------------------------------------------------

def test_third_level_is_written_with_cumulative_string_offsets() -> None:
    base_blob, split_blob = sample_pair()
    l2 = third_level(base_blob, split_blob, ["level2_a", "level2_b"])
    l0 = Btf.from_bytes(base_blob)
    l1 = Btf.from_bytes(split_blob, l0)
    assert validate(l2, l1, "libbpf-2026") == []
    assert [Btf.from_bytes(l2, l1).name(t) for _, t in Btf.from_bytes(l2, l1).own_types()] == ["level2_a", "level2_b"]


def test_the_robustness_property_draws_layout_sections() -> None:
    """P5 (in every default campaign) mutates blobs with a kind layout section too, so campaigns compare
    the validator, libbpf and the kernel on them."""
    from hypothesis import find

    from btfspec.oracle.fuzz.property import Context
    from btfspec.oracle.fuzz.robustness import PROPERTY

    mode, what, blob = find(PROPERTY.strategy(Context({})), lambda c: c[1].split(":")[0] in LAYOUT_MUTATIONS,
                            settings=settings(database=None, max_examples=2000, derandomize=True))
    assert mode == "standalone" and blob  # find() raises when no such case is drawn

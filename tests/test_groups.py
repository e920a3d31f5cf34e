"""One finding per root cause: quirk groups by (implementation, quirk), bug groups by what tells bugs
apart, one corpus entry each, listed first in every report."""

from __future__ import annotations

import json
from pathlib import Path

from btfspec.oracle.fuzz import report
from btfspec.oracle.fuzz.campaign import run_campaign
from btfspec.oracle.fuzz.campaign.results import CampaignResult, Parent
from btfspec.oracle.fuzz.groups import QUIRK, group_key, group_name
from btfspec.oracle.fuzz.property import Finding
from btfspec.oracle.fuzz.report_html import render_html
from tests.helpers import need_libbpf

OK = {"default": {"status": "ok"}}
DISTILL = {"name": "distill", "op": "distill", "inputs": {"split": "split.btf", "base": "base.btf"}, "expect": OK}
RELOCATE = {"name": "relocate", "op": "relocate",
            "inputs": {"split": "split.btf", "distilled_base": "base.btf", "target": "base.btf"}, "expect": OK}


def _finding(prop: str, impl: str, outcome: str, first: str, size: int, quirk: str | None = None,
             steps: tuple[dict, ...] = (DISTILL, RELOCATE), operator: str = "",
             shared: tuple[str, ...] = ()) -> Finding:
    return Finding(prop, impl, outcome, first, {"split.btf": b"\0" * size, "base.btf": b""}, list(steps), quirk,
                   f"{prop} case", operator, shared)


def _parent(tmp_path: Path) -> tuple[CampaignResult, Parent]:
    result = CampaignResult("c", 1, "in-process", 1, None, None, str(tmp_path / "found"), "mixed",
                            ["python-strict", "libbpf", "serve"], {}, ["P1", "P2"], {}, 10.0, None)
    return result, Parent(result, set(), set(), lambda known: None, {})


def test_a_quirk_is_one_group_whatever_property_outcome_or_operation(tmp_path: Path) -> None:
    result, parent = _parent(tmp_path)
    parent.add_finding(_finding("P1", "libbpf", "relocate error -EINVAL (22) where ok", "type 3", 300, "Q6"), 0)
    parent.add_finding(_finding("P2", "libbpf", "distill ok where error", "type 9", 120, "Q6", (DISTILL,)), 0,
                       profile="libbpf-valid")
    parent.add_finding(_finding("P1", "libbpf", "relocate bytes differ", "type 4", 200, "Q6",
                                shared=("serve",)), 1)
    parent.add_finding(_finding("P1", "libbpf", "relocate bytes differ", "type 5", 90, "Q2,Q6"), 1)
    (q6, q26) = result.groups
    assert (q6.root, q6.impl, q6.quirk, q6.count) == (QUIRK, "libbpf", "Q6", 3)
    assert q6.properties == ["P1", "P2"] and q6.operations == ["distill+relocate", "distill"]
    assert len(q6.outcomes) == 3
    assert (q6.smallest, q6.property, q6.first_difference) == (120, "P2", "type 9")  # the smallest example kept
    assert q6.shared_with == ["serve"] and q6.tag() == "serve: shared with libbpf (Q6)"
    assert q26.quirk == "Q2,Q6" and q26.name.startswith("Q2+Q6-libbpf-")
    entries = sorted(p.name for p in (tmp_path / "found").iterdir())
    assert entries == sorted([q6.name, q26.name])  # one corpus entry per root cause
    manifest = json.loads((tmp_path / "found" / q6.name / "manifest.json").read_text())
    assert "type 9" in manifest["summary"]  # ... holding the smallest example
    assert {f.group for f in result.findings} == {q6.name, q26.name}


def test_findings_without_a_quirk_are_told_apart_by_what_separates_bugs() -> None:
    base = _finding("P1", "serve", "relocate error -EINVAL (22) where ok", "type 3", 10, operator="resize")
    same_bug = _finding("P1", "serve", "relocate error -EINVAL (22) where ok", "type 8", 50, operator="resize")
    assert group_key(base) == group_key(same_bug)  # the first difference varies inside one bug
    others = [_finding("P2", "serve", base.outcome, "type 3", 10, operator="resize"),
              _finding("P1", "libbpf", base.outcome, "type 3", 10, operator="resize"),
              _finding("P1", "serve", "relocate ok where error", "type 3", 10, operator="resize"),
              _finding("P1", "serve", base.outcome, "type 3", 10, steps=(DISTILL,), operator="resize"),
              _finding("P1", "serve", base.outcome, "type 3", 10, operator="rename")]
    keys = {group_key(f) for f in [base, *others]}
    assert len(keys) == 6
    assert group_name(group_key(base)).startswith("P1-serve-")
    not_catalogued = _finding("P1", "serve", base.outcome, "type 3", 10, quirk="model", operator="resize")
    assert group_key(not_catalogued) == group_key(base)  # only catalogue ids name a root cause


def test_reports_list_quirk_groups_first_with_their_shared_tag(tmp_path: Path) -> None:
    result, parent = _parent(tmp_path)
    parent.add_finding(_finding("P1", "serve", "relocate bytes differ", "type 1", 10), 0)
    parent.add_finding(_finding("P1", "libbpf", "relocate bytes differ", "type 2", 10, "Q6", shared=("serve",)), 0)
    text = report.render_text(result)
    lines = text.splitlines()
    quirk_line = next(i for i, line in enumerate(lines) if "[libbpf] quirk Q6" in line)
    bug_line = next(i for i, line in enumerate(lines) if "P1 [serve] relocate bytes differ:" in line)
    assert quirk_line < bug_line
    assert lines[quirk_line + 1].strip() == "serve: shared with libbpf (Q6)"
    assert text.count("shared with libbpf (Q6)") == 1  # the mode line explains the tag in general
    data = report.render_json(result)
    assert [g["root"] for g in data["groups"]] == ["bug", "quirk"]  # the order found; renderings sort
    assert data["groups"][1]["tag"] == "serve: shared with libbpf (Q6)"
    md = report.render_markdown(result)
    assert md.index("quirk Q6") < md.index("P1 [serve] relocate bytes differ")
    page = render_html(json.loads(json.dumps(data)))
    assert page.index("quirk Q6") < page.index("P1 [serve] relocate bytes differ")
    assert "serve: shared with libbpf (Q6)" in page


def test_what_python_does_exactly_as_libbpf_is_shown_once_as_shared(tmp_path: Path) -> None:
    need_libbpf()
    # python follows libbpf on its quirks (python-strict follows the labels and names the quirk)
    result = run_campaign(["P1", "P2"], ["python-strict", "libbpf", "python"], workers=0, max_examples=150, seed=3,
                          db=None, corpus_dir=tmp_path / "found", progress=False)
    quirks = [g for g in result.groups if g.root == QUIRK]
    assert quirks, [(g.impl, g.outcome) for g in result.groups]
    # a quirk python imitates is shared; one it cannot (a Q5 hang: python says -ELOOP) is libbpf's alone
    assert all(g.impl == "libbpf" and g.shared_with in ([], ["python"]) for g in quirks), quirks
    assert any(g.shared_with == ["python"] for g in quirks), quirks
    assert not [f for f in result.findings if f.impl == "python" and f.quirk]  # never a second finding of its own
    text = report.render_text(result)
    for g in quirks:
        assert text.count(f"python: shared with libbpf ({g.quirk})") == (1 if g.shared_with else 0)


def test_the_terminal_lists_a_few_findings_of_each_group_and_counts_the_rest(tmp_path: Path) -> None:
    """A default campaign records a hundred findings or more, most of a few quirks: the terminal report
    gives each group the command that reproduces its entry and lists its first findings, counting the
    others; the Markdown and JSON reports keep every finding."""
    result, parent = _parent(tmp_path)
    for i in range(5):
        parent.add_finding(_finding("P1", "libbpf", f"relocate bytes differ {i}", f"type {i}", 100 + i, "Q6"), 0)
    parent.add_finding(_finding("P2", "serve", "relocate ok where error", "type 7", 80), 0)
    text = report.render_text(result)
    findings = text[text.index("== findings"):text.index("== throughput")]
    assert findings.count("[NEW] P1 [libbpf]") == report.FINDINGS_SHOWN_PER_GROUP == 2
    assert findings.count("[NEW] P2 [serve]") == 1  # a group's only finding is listed
    assert "... and 3 more findings of these groups" in findings
    groups = text[text.index("== finding groups"):text.index("== findings")]
    assert groups.count("reproduce: btfspec corpus run") == 2  # one per group, with its entry
    for g in result.groups:
        assert f"reproduce: btfspec corpus run {g.path}" in groups
    assert report.render_markdown(result).count("| **new** | P1 | libbpf |") == 5
    assert len(report.render_json(result)["findings"]) == 6
    parent.add_finding(_finding("P2", "serve", "relocate ok where error", "type 8", 90), 0)
    text = report.render_text(result)
    findings = text[text.index("== findings"):text.index("== throughput")]
    assert findings.count("[NEW] P2 [serve]") == 2 and "... and 3 more findings" in findings


def test_quirk_groups_and_counts_come_in_catalogue_order(tmp_path: Path) -> None:
    """Q2 before Q12 (a sort by the text put Q12 between Q1 and Q2), a combination after its first id."""
    result, parent = _parent(tmp_path)
    for i, quirk in enumerate(["Q12", "Q2", "Q1,Q3", "Q6", "Q1", "Q3,Q6", "Q3"]):
        parent.add_finding(_finding("P1", "libbpf", f"relocate bytes differ {i}", f"type {i}", 50, quirk), 0)
    order = ["Q1", "Q1,Q3", "Q2", "Q3", "Q3,Q6", "Q6", "Q12"]
    assert [g.quirk for g in report._ordered_groups(result)] == order
    text = report.render_text(result)
    assert [text.index(f"[libbpf] quirk {q}:") for q in order] == sorted(text.index(f"[libbpf] quirk {q}:")
                                                                          for q in order)
    assert list(report.by_quirk(result)) == ["Q1", "Q2", "Q3", "Q6", "Q12"]
    page = render_html(json.loads(json.dumps(report.render_json(result))))
    at = [page.index(f">quirk {q}<") for q in order]
    assert at == sorted(at)

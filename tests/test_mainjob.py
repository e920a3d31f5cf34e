"""The main job's campaign verdict: rediscovered catalogued quirks are listed, anything else is negative."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from btfspec.mainjob import catalogued_only


def test_only_catalogued_quirks_pass(tmp_path: Path) -> None:
    report = tmp_path / "run.json"
    res = subprocess.run([sys.executable, "-m", "btfspec", "fuzz", "--impl", "python", "--property", "P1",
                          "--time", "8s", "--workers", "0", "--seed", "3", "--quiet", "--db", "none",
                          "--corpus-dir", str(tmp_path / "found"), "--report", str(report)],
                         capture_output=True, text=True, timeout=180)
    assert res.returncode in (0, 1), res.stderr
    run = json.loads(report.read_text())
    new = [f for f in run["findings"] if f["new"]]
    if not new:
        pytest.skip("this campaign found nothing in its budget (P1 on the reference usually finds quirk Q2)")
    assert all(f["quirk"] for f in new), new  # the reference imitates libbpf: its P1 findings are quirks
    quirks = sorted({q for f in new for q in f["quirk"].split(",")}, key=lambda q: int(q[1:]))  # may be "Q6,Q3"
    assert catalogued_only(str(report)) == (f"{len(new)} new finding{'s' if len(new) != 1 else ''}: catalogued "
                                            f"quirks ({', '.join(quirks)})")
    new[0]["quirk"], new[0]["impl"] = None, "libbpf"  # libbpf's own finding beyond the catalogue: reported
    report.write_text(json.dumps(run))
    assert catalogued_only(str(report)).endswith("1 libbpf finding beyond the catalogue")  # type: ignore[union-attr]
    new[0]["impl"] = "python"  # a reference finding no quirk explains: the campaign's verdict stands
    report.write_text(json.dumps(run))
    assert catalogued_only(str(report)) is None
    assert catalogued_only(str(tmp_path / "nowhere.json")) is None


def test_quirks_are_listed_in_catalogue_order(tmp_path: Path) -> None:
    report = tmp_path / "run.json"
    findings = [{"new": True, "impl": "libbpf", "quirk": q} for q in ("Q12", "Q2", "Q6,Q3")]
    report.write_text(json.dumps({"findings": findings}))
    assert catalogued_only(str(report)) == "3 new findings: catalogued quirks (Q2, Q3, Q6, Q12)"

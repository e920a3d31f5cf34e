"""``btfspec ci``: the CI recipe (corpus replay + fixed-seed campaign + Markdown job summary, exit = verdict)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from btfspec.locations import CORPUS_DIR
from tests.helpers import WRONG_DISTILL_CMD, reference_server


def _ci(*args: str, cwd: Path, summary: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "GITHUB_STEP_SUMMARY"}
    if summary is not None:
        env["GITHUB_STEP_SUMMARY"] = str(summary)
    return subprocess.run([sys.executable, "-m", "btfspec", "ci", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=240)


def test_a_correct_implementation_passes_with_a_job_summary(tmp_path: Path) -> None:
    summary = tmp_path / "step-summary.md"
    summary.write_text("earlier steps' summary\n")  # GitHub's file is appended to, never replaced
    res = _ci("--impl", "python", "--property", "P2,P4", "--time", "4s", "--workers", "0", "--seed", "7",
              "--out", str(tmp_path / "out"), cwd=tmp_path, summary=summary)
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.splitlines()[-1] == "verdict: PASS"
    text = summary.read_text()
    assert text.startswith("earlier steps' summary\n# btfspec ci: PASS (python)\n")
    assert "## Corpus replay" in text and "## Campaign " in text and " 0 fail" in text
    run = json.loads((tmp_path / "out" / "campaign.json").read_text())
    assert run["seed"] == 7 and run["properties"] == ["P2", "P4"] and run["new_findings"] == 0
    assert run["corpus_dir"] == str(tmp_path / "out" / "found")
    assert (tmp_path / "out" / "campaign.html").read_text().startswith("<!DOCTYPE html>")
    assert (tmp_path / "out" / "campaign.md").read_text().startswith("# btfspec fuzz campaign ")


def test_a_wrong_implementation_fails_naming_the_entry(tmp_path: Path) -> None:
    mine = tmp_path / "my-corpus"
    shutil.copytree(CORPUS_DIR / "selftests" / "distilled_base", mine / "distilled_base")
    res = _ci("--impl", "cmd,python", "--distill-cmd", WRONG_DISTILL_CMD, "--no-installed-corpus", "--corpus",
              str(mine), "--property", "P2", "--time", "3s", "--workers", "0", "--out", str(tmp_path / "out"),
              "--summary", str(tmp_path / "summary.md"), cwd=tmp_path)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "verdict: FAIL" in res.stdout
    text = (tmp_path / "summary.md").read_text()
    assert text.startswith("# btfspec ci: FAIL (cmd)")  # python is there to compare with
    assert "1 entries x 2 implementations: 1 pass, 1 fail" in text
    assert "| `distilled_base` | cmd | distill: output base: " in text


def test_findings_on_the_implementations_compared_with_do_not_count(tmp_path: Path) -> None:
    mine = tmp_path / "my-corpus"
    shutil.copytree(CORPUS_DIR / "selftests" / "distilled_base", mine / "distilled_base")
    res = _ci("--impl", "python,python-strict", "--under-test", "python-strict", "--no-installed-corpus",
              "--corpus", str(mine), "--property", "P1", "--time", "8s", "--workers", "0", "--seed", "3",
              "--out", str(tmp_path / "out"), "--summary", str(tmp_path / "summary.md"), cwd=tmp_path)
    run = json.loads((tmp_path / "out" / "campaign.json").read_text())
    new = [f["impl"] for f in run["findings"] if f["new"]]
    assert res.returncode == (1 if "python-strict" in new else 0), res.stdout + res.stderr
    if "python" not in new:
        pytest.skip("the campaign found nothing on python in its budget (P1 usually finds quirk Q2 there)")
    text = (tmp_path / "summary.md").read_text()
    assert f"({new.count('python')} more on the implementations compared with, not counted)" in text


def test_usage_errors(tmp_path: Path) -> None:
    res = _ci("--impl", "python", "--no-installed-corpus", cwd=tmp_path)
    assert res.returncode == 2 and "nothing to replay" in res.stderr
    res = _ci("--impl", "python", "--under-test", "libbpf", cwd=tmp_path)
    assert res.returncode == 2 and "libbpf not in --impl" in res.stderr
    res = _ci("--impl", "pyton", cwd=tmp_path)
    assert res.returncode == 2 and "unknown implementation 'pyton'" in res.stderr


def test_the_recipe_against_the_serve_reference_server(tmp_path: Path) -> None:
    server = reference_server()
    res = _ci("--impl", "serve", "--serve-cmd", server, "--property", "P2", "--time", "4s", "--workers", "0",
              "--out", str(tmp_path / "out"), "--summary", str(tmp_path / "summary.md"), cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    text = (tmp_path / "summary.md").read_text()
    assert text.startswith("# btfspec ci: PASS (serve)") and " 0 fail" in text
    run = json.loads((tmp_path / "out" / "campaign.json").read_text())
    assert run["impls"] == ["serve"] and run["examples"]["P2"] > 0

"""The regression corpus: every entry replayed on every implementation, the format, writing, the CLI."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from btfspec.cli import main as cli
from btfspec.locations import IMPORT_ROOT
from btfspec.oracle.fuzz import corpus as C
from btfspec.oracle.fuzz.corpus import CorpusError, iter_entries, load_entry, run_entry, schema_errors, write_entry
from btfspec.oracle.impls.adapter import Implementation, ImplUnavailable, available, close_impls, make_impl

# The committed corpus is what CI replays; campaigns write findings under btfspec.locations.results_dir(),
# but an older checkout may still hold a corpus/found/ of its own (ignored by git): not replayed here.
ENTRIES = [e for e in iter_entries(C.DEFAULT_ROOT) if not e.id.startswith("found/")]
IMPLS = ["python", "python-strict", "libbpf", "kernel"]
SELFTESTS = ["distilled_base", "distilled_base_multi", "distilled_base_missing_err", "distilled_base_multi_err",
             "distilled_base_multi_err2", "distilled_base_embedded_err", "distilled_base_vmlinux",
             "distilled_endianness"]
CASES = ["E1", "E2", "E2b", "E3", "E4", "E6", "E9", "E10", "E12", "E13", "E14", "E15", "E17", "E18", "E19", "E20",
         "E21", "E22"]


@pytest.fixture(scope="module")
def impl_cache() -> Iterator[dict[str, Implementation | str]]:
    cache: dict[str, Implementation | str] = {}
    yield cache
    close_impls([i for i in cache.values() if not isinstance(i, str)])


def _impl(cache: dict[str, Implementation | str], name: str) -> Implementation:
    if name not in cache:
        why = available()[name]
        if why:
            cache[name] = why
        else:
            try:
                cache[name] = make_impl(name)  # its own limit: replay limits steps recorded as hanging
            except ImplUnavailable as exc:
                cache[name] = str(exc)
    impl = cache[name]
    if isinstance(impl, str):
        pytest.skip(f"{name} unavailable: {impl}")
    return impl


# --- replay --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("impl_name", IMPLS)
@pytest.mark.parametrize("entry", ENTRIES, ids=[e.id for e in ENTRIES])
def test_replay(entry: C.Entry, impl_name: str, impl_cache: dict[str, Implementation | str]) -> None:
    impl = _impl(impl_cache, impl_name)
    (result,) = run_entry(entry, [impl])
    assert result.status != C.FAIL, f"{result.reason}\n{result.difference or ''}"
    if result.status == C.SKIP:
        pytest.skip(result.reason)


def test_a_step_recorded_as_hanging_is_replayed_with_a_short_limit(impl_cache: dict[str, Implementation | str]) -> None:
    """libbpf's limit is 10 s, but the Q5 entries (recorded as hanging it) replay in about
    EXPECTED_HANG_LIMIT each, and still pass; the limit comes from the step's own expectation."""
    lib = _impl(impl_cache, "libbpf")
    hangs = [e for e in ENTRIES if any(s["expect"].get("libbpf", {}).get("status") == "timeout" for s in e.steps)]
    assert len(hangs) >= 2
    for entry in hangs:
        start = time.monotonic()
        (res,) = run_entry(entry, [lib])
        assert res.status == C.PASS, res.reason
        assert time.monotonic() - start < 4 * C.EXPECTED_HANG_LIMIT + 1.0, entry.id


def test_required_entries_exist() -> None:
    names = {e.name for e in ENTRIES}
    for name in SELFTESTS:
        assert name in names, name
    for cid in CASES:
        assert any(n.startswith(f"{cid}-") for n in names), cid
    cats = {e.name: e.manifest["category"] for e in ENTRIES}
    assert all(cats[n] == "selftest" for n in SELFTESTS)


# --- the format ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("entry", ENTRIES, ids=[e.id for e in ENTRIES])
def test_entry_files_and_views(entry: C.Entry) -> None:
    manifest = json.loads((entry.path / C.MANIFEST).read_text())
    assert schema_errors(manifest) == []
    assert C.semantic_errors(manifest) == []
    on_disk = {p.name for p in entry.path.iterdir()}
    listed = set(manifest["files"])
    texts = {meta["text"] for meta in manifest["files"].values()}
    assert on_disk == listed | texts | {C.MANIFEST}, "stray or missing files"
    assert all(name.endswith(".btf") for name in listed)
    for tname, text in C.render_texts(entry).items():
        if text.startswith("# btfspec: no text view, its base"):
            continue  # an external base absent here
        assert (entry.path / tname).read_bytes() == text.encode("latin-1"), f"{tname} is out of date"


def test_selftest_expectations_are_libbpf_results() -> None:
    """Spot-check a few expected outcomes the reference notes state (§5.1-§5.6, §5.9)."""
    by_name = {e.name: e for e in ENTRIES}

    def exp(name: str, step: str, impl: str = "default") -> dict[str, Any]:
        st = next(s for s in by_name[name].steps if s["name"] == step)
        return st["expect"].get(impl, st["expect"]["default"])

    assert exp("distilled_base_embedded_err", "relocate") == {"status": "error", "errno": -22}
    assert exp("distilled_base", "relocate")["outputs"] == {"split": "relocate.split.btf"}
    rel = by_name["distilled_base"].file("relocate.split.btf")
    assert rel != by_name["distilled_base"].file("distill.split.btf")  # A.2, not A.1's stale bytes (Q13)
    e13 = next(n for n in by_name if n.startswith("E13-"))
    assert exp(e13, "relocate", "libbpf") == {"status": "timeout", "finding": "Q5",
                                              "note": exp(e13, "relocate", "libbpf")["note"]}
    assert exp(e13, "relocate")["errno"] == -40
    q17 = exp("Q17-deep-chain-distill", "distill", "libbpf")
    assert (q17["status"], q17["finding"]) == ("crash", "Q17")


@pytest.mark.parametrize("mutate, message", [
    (lambda m: m.pop("steps"), "missing 'steps'"),
    (lambda m: m.update(format=2), "must be 1"),
    (lambda m: m.update(category="other"), "is not one of"),
    (lambda m: m.update(extra=1), "unexpected key 'extra'"),
    (lambda m: m["steps"][0]["inputs"].update(split={"external": "nowhere"}), "matches 0 of the allowed forms"),
    (lambda m: m["steps"][0]["expect"].update(default={"status": "fine"}), "matches 0 of the allowed forms"),
    (lambda m: m["steps"][0]["expect"].update(bogus={"skip": "x"}), "is not one of"),
    (lambda m: m["steps"][0]["expect"]["default"].update(errno=22), "matches 0 of the allowed forms"),
])
def test_schema_rejects(mutate: Any, message: str) -> None:
    m = json.loads((C.DEFAULT_ROOT / "selftests" / "distilled_base" / C.MANIFEST).read_text())
    mutate(m)
    errs = schema_errors(m)
    assert any(message in e for e in errs), errs


@pytest.mark.parametrize("mutate, message", [
    (lambda m: m["steps"][0]["inputs"].pop("base"), "distill needs input 'base'"),
    (lambda m: m["steps"][0]["inputs"].update(target="base.btf"), "distill takes no input 'target'"),
    (lambda m: m["steps"][0]["inputs"].update(split="nothere.btf"), "'nothere.btf' is not listed"),
    (lambda m: m["steps"][0]["expect"]["default"].update(status="error"), "outputs given for status 'error'"),
    (lambda m: m["steps"][1].update(name="distill"), "duplicate step name"),
])
def test_semantic_checks(mutate: Any, message: str) -> None:
    m = json.loads((C.DEFAULT_ROOT / "selftests" / "distilled_base" / C.MANIFEST).read_text())
    mutate(m)
    with pytest.raises(CorpusError, match=message):
        C.check_manifest(m)


def test_load_entry_checks_sha256_and_json(tmp_path: Path) -> None:
    src = C.DEFAULT_ROOT / "selftests" / "distilled_base_multi"
    dst = tmp_path / "e"
    shutil.copytree(src, dst)
    data = bytearray((dst / "split.btf").read_bytes())
    data[-1] ^= 1
    (dst / "split.btf").write_bytes(bytes(data))
    with pytest.raises(CorpusError, match="sha256"):
        load_entry(dst)
    (dst / C.MANIFEST).write_text("{")
    with pytest.raises(CorpusError, match="not JSON"):
        load_entry(dst)
    with pytest.raises(CorpusError, match="cannot read"):
        load_entry(tmp_path / "missing")


# --- writing and results -----------------------------------------------------------------------------------

def _tiny_manifest(expect_errno: int | None = None) -> tuple[dict[str, Any], dict[str, bytes]]:
    src = load_entry(C.DEFAULT_ROOT / "selftests" / "distilled_base_multi_err2")
    files = {"base.btf": src.file("base.btf"), "split.btf": src.file("split.btf")}
    expect: dict[str, Any] = {"status": "ok"} if expect_errno is None else {"status": "error", "errno": expect_errno}
    manifest = {"name": "tiny", "category": "finding", "operation": "distill", "summary": "a test entry",
                "steps": [{"name": "distill", "op": "distill", "inputs": {"split": "split.btf", "base": "base.btf"},
                           "expect": {"default": expect, "kernel": {"skip": "not for the kernel"}}}],
                "provenance": {"source": "fuzz", "campaign": "test", "seed": 1, "reproduce": "pytest"}}
    return manifest, files


def test_write_entry_is_atomic_and_complete(tmp_path: Path) -> None:
    manifest, files = _tiny_manifest()
    dest = tmp_path / "findings" / "tiny"
    entry = write_entry(dest, manifest, files)
    assert sorted(p.name for p in dest.iterdir()) == ["base.btf", "base.txt", "manifest.json", "split.btf",
                                                       "split.txt"]
    assert entry.manifest["files"]["split.btf"]["base"] == "base.btf"
    assert (dest / "split.txt").read_text() == "[2] PTR '(anon)' type_id=1\n"
    with pytest.raises(CorpusError, match="already exists"):
        write_entry(dest, manifest, files)
    manifest["summary"] = "replaced"
    assert write_entry(dest, manifest, files, overwrite=True).manifest["summary"] == "replaced"
    bad = dict(manifest, category="nope")
    with pytest.raises(CorpusError, match="invalid manifest"):
        write_entry(tmp_path / "findings" / "bad", bad, files)
    with pytest.raises(CorpusError, match="not listed"):
        write_entry(tmp_path / "findings" / "bad", manifest, {"base.btf": files["base.btf"]})
    assert sorted(p.name for p in (tmp_path / "findings").iterdir()) == ["tiny"]  # no temp leftovers
    assert [e.id for e in iter_entries(tmp_path)] == ["findings/tiny"]


def test_run_entry_reports_pass_fail_skip(tmp_path: Path) -> None:
    python = make_impl("python")
    good = write_entry(tmp_path / "good", *_tiny_manifest())
    bad = write_entry(tmp_path / "bad", *_tiny_manifest(expect_errno=-22))
    (res,) = run_entry(good, [python])
    assert (res.status, res.reason) == ("pass", "1 step as expected")
    (res,) = run_entry(bad, [python])
    assert res.status == "fail"
    assert res.reason.startswith("distill: expected error -EINVAL (22), got ok")
    if available()["kernel"] is None:
        (res,) = run_entry(good, [make_impl("kernel")])
        assert (res.status, res.reason) == ("skip", "kernel does not distill")
    d = res.to_dict()
    assert set(d) >= {"entry", "impl", "status", "reason", "steps"}


def test_host_dependent_verdicts_are_skipped_elsewhere() -> None:
    here = C.this_host()
    assert C.host_mismatch(here) is None
    assert C.host_mismatch({"kernel": "1.0"}) == f"verdict recorded on kernel 1.0, this host has {here['kernel']}"
    other = "big" if sys.byteorder == "little" else "little"
    assert "byte order" in str(C.host_mismatch({"byteorder": other}))


# --- the command line ----------------------------------------------------------------------------------------

def test_cli_list_and_run(tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(cli, ["corpus", "list"])
    everything = list(iter_entries(C.DEFAULT_ROOT))  # whatever else the directory holds, listed too
    assert res.exit_code == 0 and f"{len(everything)} entries" in res.output
    res = runner.invoke(cli, ["corpus", "list", "--json"])
    assert [r["id"] for r in json.loads(res.output)] == [e.id for e in everything]
    entry = str(C.DEFAULT_ROOT / "selftests" / "distilled_base")
    res = runner.invoke(cli, ["corpus", "run", entry, "--impl", "python", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["summary"] == {"entries": 1, "pass": 1, "fail": 0, "skip": 0}
    assert data["results"][0]["entry"] == "distilled_base"

    write_entry(tmp_path / "bad", *_tiny_manifest(expect_errno=-22))
    res = runner.invoke(cli, ["corpus", "run", str(tmp_path), "--impl", "python"])
    assert res.exit_code == 1 and "FAIL bad [python]: distill: expected error -EINVAL (22), got ok" in res.output

    res = runner.invoke(cli, ["corpus", "run", str(tmp_path), "--impl", "pyton"])
    assert res.exit_code == 2 and "unknown implementation 'pyton'" in res.output
    (tmp_path / "bad" / C.MANIFEST).write_text("[]")
    res = runner.invoke(cli, ["corpus", "run", str(tmp_path), "--impl", "python"])
    assert res.exit_code == 2 and "invalid manifest" in res.output
    res = runner.invoke(cli, ["corpus", "list", str(tmp_path / "nowhere")])
    assert res.exit_code == 2 and "not a directory" in res.output


def test_cli_run_with_an_external_command() -> None:
    runner = CliRunner()
    script = ("import sys; from btfspec.oracle.impls.reference import distill_outcome as d; "
              "r = lambda p: open(p, 'rb').read(); "
              "o = d(r(sys.argv[1]), r(sys.argv[2])); "
              "[open(p, 'wb').write(o.outputs[k]) for k, p in (('base', sys.argv[3]), ('split', sys.argv[4]))] "
              "if o.ok else sys.exit(print(o.errno))")
    entry = str(C.DEFAULT_ROOT / "selftests" / "distilled_base_embedded_err")
    tmpl = f"{sys.executable} -c \"{script}\" {{split}} {{base}} {{out_base}} {{out_split}}"
    res = runner.invoke(cli, ["corpus", "run", entry, "--impl", "cmd", "--distill-cmd", tmpl, "--json"],
                        env={"PYTHONPATH": str(IMPORT_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")})
    assert res.exit_code == 0, res.output
    (result,) = json.loads(res.output)["results"]
    assert result["status"] == "pass"
    steps = {s["step"]: s["status"] for s in result["steps"]}
    assert steps["distill"] == "pass" and steps["relocate"] == "skip"
    res = runner.invoke(cli, ["corpus", "run", entry, "--impl", "cmd", "--distill-cmd", "prog {split}"])
    assert res.exit_code == 2 and "{out_base}" in res.output

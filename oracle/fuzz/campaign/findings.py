"""Findings on the parent's side: their JSON form, the corpus entries already known, the record of one,
its manifest and reproduce command, and the writer that never loses one."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shlex
import signal
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from btfspec.oracle.fuzz.groups import operation
from btfspec.oracle.fuzz.property import Finding
from btfspec.oracle.impls.adapter import KNOWN, OPT_IN
from btfspec.oracle.impls.outcome import DEFAULT_TIMEOUT as REPLAY_TIMEOUT
from btfspec.oracle.impls.quirks import catalogue_ids

SIGNATURE_NOTE = "signature: "


def finding_to_dict(f: Finding) -> dict[str, Any]:
    """A JSON-friendly form of a finding (files as hex)."""
    return {"property": f.property, "impl": f.impl, "outcome": f.outcome, "first_difference": f.first_difference,
            "files": {k: bytes(v).hex() for k, v in f.files.items()}, "steps": [dict(s) for s in f.steps],
            "quirk": f.quirk, "description": f.description, "operator": f.operator,
            "shared_with": list(f.shared_with)}


def finding_from_dict(d: Mapping[str, Any]) -> Finding:
    """Inverse of :func:`finding_to_dict`."""
    return Finding(d["property"], d["impl"], d["outcome"], d["first_difference"],
                   {k: bytes.fromhex(v) for k, v in d["files"].items()}, list(d["steps"]), d.get("quirk"),
                   d.get("description", ""), d.get("operator", ""), tuple(d.get("shared_with", ())))


def known_findings(corpus_dir: str | os.PathLike[str]) -> tuple[set[tuple[str, ...]], set[str]]:
    """Signatures (from ``provenance.notes``) and entry names of the findings already in ``corpus_dir``."""
    sigs: set[tuple[str, ...]] = set()
    names: set[str] = set()
    root = Path(corpus_dir)
    if not root.is_dir():
        return sigs, names
    for mpath in sorted(root.glob("*/manifest.json")):
        names.add(mpath.parent.name)
        try:
            notes = json.loads(mpath.read_text(encoding="utf-8")).get("provenance", {}).get("notes", "")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(notes, str) and notes.startswith(SIGNATURE_NOTE):
            for line in notes[len(SIGNATURE_NOTE):].splitlines():  # one per finding its group has seen
                with contextlib.suppress(ValueError, TypeError):
                    sigs.add(tuple(json.loads(line)))
    return sigs, names


# Why a finding's example is not (fully) shrunk (FoundRecord.unshrunk, a report's "entry: ... (...)").
AS_FOUND_NO_SHRINKING = "as found: shrinking is off (--shrink-share 0)"
AS_FOUND_GROUP_SHRUNK = "as found: its group already has a shrunk example"
AS_FOUND_FLAKY = "as found: replayed to shrink it, it did not fail again (flaky)"
AS_FOUND_NO_TURN = "as found: the campaign ended before its turn to shrink"
PARTLY_TIME_UP = "partly shrunk: its shrinking time ran out"
PARTLY_STOPPED = "partly shrunk: the campaign ended meanwhile"


@dataclass
class FoundRecord:
    """A finding as the parent recorded it."""

    signature: tuple[str, ...]
    property: str
    impl: str
    outcome: str
    first_difference: str
    quirk: str | None
    path: str
    reproduce: str
    new: bool
    slot: int
    partial: bool = False  # not shrunk to the end: ``unshrunk`` says why
    description: str = ""
    error: str | None = None
    seconds: float = 0.0  # when the parent recorded it, from the campaign's start
    profile: str = ""  # the generator profile of the chunk that found it
    group: str = ""  # the name of its group (groups.FindingGroup), which is its corpus entry's name
    operator: str = ""  # the perturbation or mutation operator of its case, when recorded
    shared_with: list[str] = dataclasses.field(default_factory=list)  # implementations doing exactly as libbpf
    unshrunk: str = ""  # why the example is as found or partly shrunk (AS_FOUND_*, PARTLY_*); "" when shrunk

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["signature"] = list(self.signature)
        return d


def display_path(path: Path) -> str:
    """``path`` relative to the current directory when it is inside it, else absolute."""
    full = path.resolve()
    try:
        return str(full.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(full)


def reproduce_command(path: Path, impl: str, distill_cmd: str | None, relocate_cmd: str | None,
                      timeout: float, steps: Sequence[Mapping[str, Any]] = (), serve_cmd: str | None = None) -> str:
    """The command replaying a written finding on the implementation at fault (beside libbpf, and the
    kernel when a step records its verdict)."""
    words = ["btfspec", "corpus", "run", display_path(path)]
    replay = impl if impl in KNOWN + OPT_IN else "python"  # model/validator findings replay through the reference
    names = [replay, "libbpf"] + (["kernel"] if any("kernel" in s.get("expect", {}) for s in steps) else [])
    words += ["--impl", ",".join(dict.fromkeys(names))]
    if replay == "cmd":
        if distill_cmd:
            words += ["--distill-cmd", distill_cmd]
        if relocate_cmd:
            words += ["--relocate-cmd", relocate_cmd]
    if replay == "serve" and serve_cmd:
        words += ["--serve-cmd", serve_cmd]
    if timeout != REPLAY_TIMEOUT:  # the default of ``btfspec corpus run --timeout``
        words += ["--timeout", f"{timeout:g}"]
    return shlex.join(words)


def finding_manifest(f: Finding, *, name: str, campaign: str, seed: int, reproduce: str,
                     signatures: Sequence[Sequence[str]] = ()) -> dict[str, Any]:
    """The corpus manifest of a finding (``files`` is computed by :func:`btfspec.oracle.fuzz.corpus.write_entry`);
    its notes list ``signatures`` (default: the finding's own), one JSON line each."""
    import platform

    summary = f"{f.property} [{f.impl}] {f.outcome}: {f.first_difference}"
    m: dict[str, Any] = {
        "format": 1, "name": name, "category": "finding", "operation": operation(f.steps),
        "summary": summary.replace("\n", " ")[:300], "description": f.description,
        "steps": [dict(s) for s in f.steps],
        "provenance": {"source": "fuzz", "campaign": campaign, "seed": seed, "reproduce": reproduce,
                       "generated_by": f"btfspec fuzz ({f.property})", "kernel": platform.release(),
                       "notes": SIGNATURE_NOTE + "\n".join(json.dumps(list(sig))
                                                            for sig in (signatures or [f.signature]))},
    }
    quirks = catalogue_ids(f.quirk or "")
    if quirks:
        m["quirks"] = quirks
    return m


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def sigint_deferred() -> Iterator[None]:
    """Hold a Ctrl-C or SIGTERM back (main thread only) until the block ends; it takes effect right after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    old = {sig: signal.signal(sig, lambda signum, frame: pending.append(signum)) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
        for sig in dict.fromkeys(pending):
            handler = old[sig]
            if callable(handler):
                handler(sig, None)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM stops the campaign as Ctrl-C does (main thread only): the slots stop, the findings so far
    and the report are kept."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def write_finding(path: Path, f: Finding, *, campaign: str, seed: int, reproduce: str,
                  signatures: Sequence[Sequence[str]] = ()) -> str | None:
    """Write one finding as a corpus entry; on failure keep the raw files beside it (never lose one).

    Returns None, or the error text when the entry could not be written as a valid entry.
    """
    from btfspec.oracle.fuzz.corpus import write_entry

    manifest = finding_manifest(f, name=path.name, campaign=campaign, seed=seed, reproduce=reproduce,
                                signatures=signatures)
    try:
        write_entry(path, manifest, dict(f.files), overwrite=True)
        return None
    except Exception as exc:
        err = f"{type(exc).__name__}: {exc}"
    keep = path.parent / ".unwritten" / path.name
    try:
        keep.mkdir(parents=True, exist_ok=True)
        for name, data in f.files.items():
            (keep / name).write_bytes(data)
        (keep / "finding.json").write_text(json.dumps({"error": err, "manifest": manifest}, indent=1) + "\n")
    except OSError as exc2:
        err += f"; and the raw files could not be kept: {exc2}"
    return err

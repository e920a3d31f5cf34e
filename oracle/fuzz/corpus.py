"""The regression corpus: entries on disk, their validation, replay against implementations, writing.

An entry is a directory holding ``manifest.json`` (format in ``corpus/README.md``, JSON Schema in
``corpus/schema.json``), the binary BTF files it names, and a bpftool-style ``.txt`` view beside every
``.btf`` file.  A manifest lists *steps*; each step is one operation (``distill``, ``relocate``,
``accept``) on named inputs with the expected outcome per implementation (``"default"`` for every
implementation without its own key).

* :func:`load_entry` / :func:`iter_entries` read and validate entries (schema, roles, sha256 of every
  file); problems raise :class:`CorpusError`.
* :func:`run_entry` replays one entry against implementations: one :class:`EntryResult` (pass, fail or
  skip, a one-line reason, the first difference) per implementation.
* :func:`write_entry` writes an entry atomically (a temporary sibling directory renamed into place),
  computing the ``files`` section and the text views.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from btfspec.locations import CORPUS_DIR
from btfspec.oracle.fuzz.schema import schema_errors
from btfspec.oracle.impls.adapter import ACCEPT, DISTILL, RELOCATE, Implementation, bytes_difference
from btfspec.oracle.impls.outcome import ERROR, TIMEOUT, Outcome
from btfspec.spec.builder import Builder
from btfspec.spec.errors import BtfError, errno_text
from btfspec.spec.kinds import Kind
from btfspec.spec.model import Btf
from btfspec.spec.sources import HOST_VMLINUX

FORMAT = 1
MANIFEST = "manifest.json"
DEFAULT_ROOT = CORPUS_DIR
EXTERNALS: dict[str, str] = {"host-vmlinux": HOST_VMLINUX}

# op -> (required input roles, optional input roles, output roles)
ROLES: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    DISTILL: (("split", "base"), (), ("base", "split")),
    RELOCATE: (("split", "distilled_base", "target"), (), ("split",)),
    ACCEPT: (("btf",), ("base",), ()),
}
PASS, FAIL, SKIP = "pass", "fail", "skip"

Input = str | dict[str, Any]


class CorpusError(Exception):
    """An entry that cannot be read or is not a valid corpus entry (CLI exit status 2)."""


class InputUnavailable(Exception):
    """An input that cannot be produced here (an absent external file); the step is skipped."""


# --------------------------------------------------------------------------------------------------
# generated inputs
# --------------------------------------------------------------------------------------------------

Generator = Callable[[bytes | None, Mapping[str, Any]], bytes]
GENERATORS: dict[str, Generator] = {}


def generator(name: str) -> Callable[[Generator], Generator]:
    """Register a function ``(base bytes or None, args) -> BTF bytes`` for ``{"generate": name}`` inputs."""

    def deco(fn: Generator) -> Generator:
        GENERATORS[name] = fn
        return fn

    return deco


@generator("typedef-ptr-on-int")
def _typedef_ptr_on_int(base: bytes | None, args: Mapping[str, Any]) -> bytes:
    """Split on ``base``: ``TYPEDEF <name> -> base INT 'int'``, ``PTR -> typedef`` (selftest 5.7)."""
    if base is None:
        raise CorpusError("generator typedef-ptr-on-int needs a base")
    b = Builder(Btf.from_bytes(base))
    ints = b.btf.find_by_name("int", Kind.INT)
    if not ints:
        raise InputUnavailable("the base has no INT 'int'")
    b.ptr(b.typedef(str(args.get("name", "myint")), ints[0]))
    return b.to_bytes()


@generator("ptr-chain-base")
def _ptr_chain_base(base: bytes | None, args: Mapping[str, Any]) -> bytes:
    """Standalone base: ``[1] INT 'int'`` then ``depth`` PTRs, each pointing at the previous type."""
    b = Builder()
    prev = b.int("int", 4, 1)
    for _ in range(int(args["depth"])):
        prev = b.ptr(prev)
    return b.to_bytes()


@generator("ptr-to-last")
def _ptr_to_last(base: bytes | None, args: Mapping[str, Any]) -> bytes:
    """Split on ``base``: one PTR to the base's last type."""
    if base is None:
        raise CorpusError("generator ptr-to-last needs a base")
    b = Builder(Btf.from_bytes(base))
    b.ptr(b.btf.start_id - 1)
    return b.to_bytes()


# --------------------------------------------------------------------------------------------------
# entries
# --------------------------------------------------------------------------------------------------

def sha256(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def text_name(file_name: str) -> str:
    """The text view's name for a binary file: ``x.btf`` -> ``x.txt``."""
    return file_name[:-4] + ".txt" if file_name.endswith(".btf") else file_name + ".txt"


def _key(value: Input) -> str:
    return json.dumps(value, sort_keys=True)


@dataclass
class Entry:
    """A loaded corpus entry (see the module docstring)."""

    path: Path
    manifest: dict[str, Any]
    root: Path | None = None
    _cache: dict[str, bytes] = field(default_factory=dict, repr=False)

    @classmethod
    def from_files(cls, files: Mapping[str, bytes], manifest: Mapping[str, Any] | None = None) -> Entry:
        """An in-memory entry (nothing on disk) for resolving inputs while an entry is being built."""
        entry = cls(Path(os.devnull), dict(manifest or {"files": {}}))
        entry._cache.update({_key(n): bytes(b) for n, b in files.items()})
        return entry

    @property
    def name(self) -> str:
        return str(self.manifest["name"])

    @property
    def id(self) -> str:
        """The entry's path relative to the corpus root it was found under (else its name)."""
        if self.root is not None:
            try:
                return self.path.relative_to(self.root).as_posix()
            except ValueError:
                pass
        return self.name

    @property
    def steps(self) -> list[dict[str, Any]]:
        return list(self.manifest["steps"])

    def file(self, name: str) -> bytes:
        """Bytes of one of the entry's files (checked against its sha256 when loaded)."""
        key = _key(name)
        if key not in self._cache:
            try:
                self._cache[key] = (self.path / name).read_bytes()
            except OSError as exc:
                raise CorpusError(f"{self.path}: cannot read {name}: {exc.strerror or exc}") from None
        return self._cache[key]

    def resolve(self, value: Input) -> bytes:
        """Bytes of an input: an entry file, an external input, or generated BTF."""
        if isinstance(value, str):
            return self.file(value)
        key = _key(value)
        if key in self._cache:
            return self._cache[key]
        if "external" in value:
            path = EXTERNALS[value["external"]]
            data = _read_external(path)
            if data is None:
                raise InputUnavailable(f"external input {value['external']} ({path}) is not readable here")
        else:
            fn = GENERATORS.get(value["generate"])
            if fn is None:
                raise CorpusError(f"{self.path}: unknown generator {value['generate']!r}")
            base = self.resolve(value["base"]) if "base" in value else None
            try:
                data = fn(base, value.get("args", {}))
            except BtfError as exc:
                raise CorpusError(f"{self.path}: generator {value['generate']} failed: {exc}") from None
        self._cache[key] = data
        return data


@functools.cache
def _read_external(path: str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def _file_refs(value: Input) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif "base" in value:
        yield from _file_refs(value["base"])


def semantic_errors(manifest: Mapping[str, Any]) -> list[str]:
    """Problems the schema cannot express: roles per operation, outputs per status, file references."""
    errs: list[str] = []
    files = manifest.get("files", {})
    names: set[str] = set()
    for i, step in enumerate(manifest.get("steps", [])):
        where = f"steps[{i}] ({step.get('name')})"
        if step.get("name") in names:
            errs.append(f"{where}: duplicate step name")
        names.add(step.get("name"))
        required, optional, outs = ROLES[step["op"]]
        got = set(step["inputs"])
        for r in required:
            if r not in got:
                errs.append(f"{where}: {step['op']} needs input {r!r}")
        for r in sorted(got - set(required) - set(optional)):
            errs.append(f"{where}: {step['op']} takes no input {r!r}")
        refs = [v for v in step["inputs"].values()]
        for impl, exp in step["expect"].items():
            if "skip" in exp:
                continue
            for r in list(exp.get("outputs", {})) + list(exp.get("outputs_sha256", {})):
                if r not in outs:
                    errs.append(f"{where}: expect.{impl}: {step['op']} has no output {r!r}")
            if (exp.get("outputs") or exp.get("outputs_sha256")) and exp["status"] != "ok":
                errs.append(f"{where}: expect.{impl}: outputs given for status {exp['status']!r}")
            if "errno" in exp and exp["status"] != ERROR:
                errs.append(f"{where}: expect.{impl}: errno given for status {exp['status']!r}")
            refs += list(exp.get("outputs", {}).values())
        for ref in refs:
            for name in _file_refs(ref):
                if name not in files:
                    errs.append(f"{where}: file {name!r} is not listed in 'files'")
    for name, meta in files.items():
        for ref in _file_refs(meta.get("base", "")) if meta.get("base") else ():
            if ref not in files:
                errs.append(f"files.{name}: base {ref!r} is not listed in 'files'")
    if not manifest.get("steps"):
        errs.append("an entry needs at least one step")
    return errs


def check_manifest(manifest: Any, where: str = "manifest") -> None:
    """Raise :class:`CorpusError` unless ``manifest`` is a valid format-1 manifest."""
    errs = schema_errors(manifest)
    if not errs:
        errs = semantic_errors(manifest)
    if errs:
        more = f" (and {len(errs) - 3} more)" if len(errs) > 3 else ""
        raise CorpusError(f"{where}: invalid manifest: " + "; ".join(errs[:3]) + more)


def load_entry(path: str | os.PathLike[str], root: str | os.PathLike[str] | None = None) -> Entry:
    """Read and validate one entry directory (manifest, files present, sha256 match)."""
    p = Path(path)
    mpath = p / MANIFEST
    try:
        text = mpath.read_text(encoding="utf-8")
    except OSError as exc:
        raise CorpusError(f"{mpath}: cannot read: {exc.strerror or exc}") from None
    try:
        manifest = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CorpusError(f"{mpath}: not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    check_manifest(manifest, str(mpath))
    entry = Entry(p, manifest, Path(root) if root is not None else None)
    for name, meta in manifest["files"].items():
        data = entry.file(name)
        if sha256(data) != meta["sha256"]:
            raise CorpusError(f"{p / name}: sha256 {sha256(data)[:16]}… does not match the manifest "
                              f"({meta['sha256'][:16]}…)")
    return entry


def iter_entries(root: str | os.PathLike[str] = DEFAULT_ROOT) -> Iterator[Entry]:
    """Every entry under ``root`` (or ``root`` itself if it is an entry), in path order."""
    r = Path(root)
    if (r / MANIFEST).is_file():
        yield load_entry(r, r.parent)
        return
    if not r.is_dir():
        raise CorpusError(f"{r}: not a directory")
    for dirpath, dirnames, filenames in os.walk(r):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        if MANIFEST in filenames:
            dirnames[:] = []
            yield load_entry(dirpath, r)


# --------------------------------------------------------------------------------------------------
# replay
# --------------------------------------------------------------------------------------------------

@dataclass
class StepResult:
    """How one step went for one implementation."""

    step: str
    status: str  # pass / fail / skip
    reason: str
    difference: str | None = None
    outcome: Outcome | None = None
    finding: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"step": self.step, "status": self.status, "reason": self.reason}
        if self.difference:
            d["difference"] = self.difference
        if self.finding:
            d["finding"] = self.finding
        if self.outcome is not None:
            d["outcome"] = {"status": self.outcome.status, "errno": self.outcome.errno,
                            "detail": self.outcome.detail, "describe": self.outcome.describe()}
        return d


@dataclass
class EntryResult:
    """One entry against one implementation: pass, fail or skip, with a one-line reason."""

    entry: str
    impl: str
    status: str
    reason: str
    difference: str | None = None
    steps: list[StepResult] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"entry": self.entry, "impl": self.impl, "status": self.status, "reason": self.reason}
        if self.difference:
            d["difference"] = self.difference
        d["steps"] = [s.to_dict() for s in self.steps]
        return d


def expectation(step: Mapping[str, Any], impl: str) -> dict[str, Any] | None:
    """The expected outcome of ``step`` for ``impl`` (its own key, else ``default``)."""
    exp = step["expect"].get(impl, step["expect"].get("default"))
    return dict(exp) if exp is not None else None


def describe_expect(exp: Mapping[str, Any]) -> str:
    """One line for an expected outcome, e.g. ``timeout (finding Q5)``."""
    text = exp["status"]
    if exp["status"] == ERROR and "errno" in exp:
        text += f" {errno_text(exp['errno'])}"
    if exp.get("finding"):
        text += f" (finding {exp['finding']})"
    return text


def this_host() -> dict[str, str]:
    """This host in ``recorded_on`` form: kernel major.minor and byte order."""
    return {"kernel": ".".join(platform.release().split(".")[:2]), "byteorder": sys.byteorder}


def host_mismatch(recorded_on: Mapping[str, str]) -> str | None:
    """Why a verdict recorded on another host does not apply here, or None."""
    here = this_host()
    for key, what in (("kernel", "kernel"), ("byteorder", "byte order")):
        if recorded_on.get(key) and recorded_on[key] != here[key]:
            return f"verdict recorded on {what} {recorded_on[key]}, this host has {here[key]}"
    return None


# The limit of a step recorded as hanging on the implementation replaying it (libbpf's Q5 entries): corpus
# inputs are small and answered in milliseconds, so a second is a wide margin, and libbpf's worker counts
# it in CPU time in a fork (LibbpfImpl); the implementation's own limit (10 s) made those entries most of
# a libbpf replay's time (20 of 22 s).
EXPECTED_HANG_LIMIT = 1.0


def _replay_limit(impl: Implementation, exp: Mapping[str, Any]) -> float | None:
    """:data:`EXPECTED_HANG_LIMIT` for a step recorded as hanging on ``impl`` when it is below the
    implementation's own limit; None (its own limit) otherwise."""
    own = getattr(impl, "timeout", None)
    if exp["status"] != TIMEOUT or (own is not None and own <= EXPECTED_HANG_LIMIT):
        return None
    return EXPECTED_HANG_LIMIT


def _call(impl: Implementation, op: str, inputs: Mapping[str, bytes], timeout: float | None = None) -> Outcome:
    if op == DISTILL:
        return impl.distill(inputs["split"], inputs["base"], timeout=timeout)
    if op == RELOCATE:
        return impl.relocate(inputs["split"], inputs["distilled_base"], inputs["target"], timeout=timeout)
    return impl.accept(inputs["btf"], inputs.get("base"), timeout=timeout)


def _compare(entry: Entry, exp: Mapping[str, Any], out: Outcome) -> str | None:
    if out.status != exp["status"]:
        return f"expected {describe_expect(exp)}, got {out.describe()}"
    if out.status == ERROR and "errno" in exp and out.errno != exp["errno"]:
        return f"expected {errno_text(exp['errno'])}, got {errno_text(out.errno)}"
    for role, ref in exp.get("outputs", {}).items():
        if role not in out.outputs:
            return f"no {role} output"
        diff = bytes_difference(entry.resolve(ref), out.outputs[role])
        if diff:
            return f"output {role}: {diff}"
    for role, digest in exp.get("outputs_sha256", {}).items():
        if role not in out.outputs:
            return f"no {role} output"
        if sha256(out.outputs[role]) != digest:
            return f"output {role}: sha256 {sha256(out.outputs[role])[:16]}… expected {digest[:16]}…"
    return None


def run_step(entry: Entry, step: Mapping[str, Any], impl: Implementation) -> StepResult:
    """Run one step of ``entry`` on ``impl`` and compare with its expectation."""
    from btfspec.oracle.impls.kernel_vm import UnsupportedTarget, relocates

    name, op = step["name"], step["op"]
    if op not in impl.capabilities and not (op == RELOCATE and relocates(impl)):
        return StepResult(name, SKIP, f"{impl.name} does not {op}")
    exp = expectation(step, impl.name)
    if exp is None:
        return StepResult(name, SKIP, f"no expectation recorded for {impl.name}")
    if "skip" in exp:
        return StepResult(name, SKIP, exp["skip"])
    other_host = host_mismatch(exp.get("recorded_on", {}))
    if other_host:
        return StepResult(name, SKIP, other_host)
    try:
        inputs = {role: entry.resolve(v) for role, v in step["inputs"].items()}
    except InputUnavailable as exc:
        return StepResult(name, SKIP, str(exc))
    try:
        out = _call(impl, op, inputs, _replay_limit(impl, exp))
    except UnsupportedTarget as exc:  # kernel-vm, onto a base that is not its guest's vmlinux
        return StepResult(name, SKIP, str(exc))
    diff = _compare(entry, exp, out)
    finding = exp.get("finding")
    if diff:
        return StepResult(name, FAIL, f"{name}: {diff}", diff, out)
    note = f" (known finding {finding})" if finding else ""
    return StepResult(name, PASS, f"{name}: {describe_expect(exp)}{note}", None, out, finding)


def run_entry_on(entry: Entry, impl: Implementation) -> EntryResult:
    """Every step of ``entry`` on one implementation, summarized."""
    steps = [run_step(entry, s, impl) for s in entry.steps]
    failed = [s for s in steps if s.status == FAIL]
    passed = [s for s in steps if s.status == PASS]
    skipped = [s for s in steps if s.status == SKIP]
    if failed:
        first = failed[0]
        more = f" (+{len(failed) - 1} more failing steps)" if len(failed) > 1 else ""
        return EntryResult(entry.id, impl.name, FAIL, first.reason + more, first.difference, steps)
    if not passed:
        reason = skipped[0].reason if skipped else "no steps"
        return EntryResult(entry.id, impl.name, SKIP, reason, None, steps)
    findings = sorted({s.finding for s in passed if s.finding})
    text = f"{len(passed)} step{'s' if len(passed) != 1 else ''} as expected"
    if findings:
        text += f", known finding {', '.join(findings)}"
    if skipped:
        text += f"; {len(skipped)} skipped ({skipped[0].reason})"
    return EntryResult(entry.id, impl.name, PASS, text, None, steps)


def run_entry(entry: Entry, impls: Sequence[Implementation]) -> list[EntryResult]:
    """Replay ``entry`` against each implementation: one :class:`EntryResult` per implementation."""
    return [run_entry_on(entry, impl) for impl in impls]


# --------------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------------

def _infer_bases(manifest: Mapping[str, Any]) -> dict[str, Input]:
    """For each file used as split BTF, the input it is split on (from the steps' roles)."""
    bases: dict[str, Input] = {}

    def note(split: Input | None, base: Input | None) -> None:
        if isinstance(split, str) and base is not None:
            old = bases.setdefault(split, base)
            if _key(old) != _key(base):
                raise CorpusError(f"{split} is used as split BTF on two different bases ({old!r}, {base!r})")

    for step in manifest.get("steps", []):
        inp = step["inputs"]
        if step["op"] == DISTILL:
            note(inp.get("split"), inp.get("base"))
        elif step["op"] == RELOCATE:
            note(inp.get("split"), inp.get("distilled_base"))
        else:
            note(inp.get("btf"), inp.get("base"))
        for exp in step["expect"].values():
            outs = exp.get("outputs", {})
            if step["op"] == DISTILL:
                note(outs.get("split"), outs.get("base"))
            elif step["op"] == RELOCATE:
                note(outs.get("split"), inp.get("target"))
    return bases


def text_view(data: bytes, base: Btf | None) -> str:
    """The bpftool ``format raw`` view of ``data`` (split on ``base`` when given)."""
    from btfspec.spec.text import dump_raw

    try:
        return dump_raw(Btf.from_bytes(data, base=base))
    except BtfError as exc:
        return f"# btfspec: no text view, the model cannot parse this file: {exc}\n"


def _parsed(entry: Entry, value: Input, depth: int = 0) -> Btf:
    """``value`` parsed by the model on its own base chain (from the ``files`` section)."""
    meta = entry.manifest["files"].get(value) if isinstance(value, str) else None
    base = None
    if meta is not None and "base" in meta and depth < 8:
        base = _parsed(entry, meta["base"], depth + 1)
    return Btf.from_bytes(entry.resolve(value), base=base)


def render_texts(entry: Entry) -> dict[str, str]:
    """Text view name -> content for every binary file of ``entry``."""
    out: dict[str, str] = {}
    for name, meta in entry.manifest["files"].items():
        tname = meta.get("text", text_name(name))
        base = None
        if "base" in meta:
            try:
                base = _parsed(entry, meta["base"])
            except InputUnavailable:
                out[tname] = f"# btfspec: no text view, its base {meta['base']!r} is not available here\n"
                continue
            except BtfError as exc:
                out[tname] = f"# btfspec: no text view, the model cannot parse its base: {exc}\n"
                continue
        out[tname] = text_view(entry.file(name), base)
    return out


def write_entry(path: str | os.PathLike[str], manifest: Mapping[str, Any], files: Mapping[str, bytes], *,
                overwrite: bool = False) -> Entry:
    """Write an entry atomically and return it loaded.

    ``manifest`` is everything but ``files``, which is computed (sha256, split bases inferred from the
    steps, text view names); ``files`` maps file names to bytes.  The entry is built in a temporary
    sibling directory and renamed into place; an existing entry is replaced only with ``overwrite``.
    """
    dest = Path(path)
    m = {k: v for k, v in manifest.items() if k != "files"}
    m.setdefault("format", FORMAT)
    bases = _infer_bases(m)
    m["files"] = {}
    for name in sorted(files):
        meta: dict[str, Any] = {"sha256": sha256(files[name])}
        if name in bases:
            meta["base"] = bases[name]
        meta["text"] = text_name(name)
        m["files"][name] = meta
    check_manifest(m, str(dest / MANIFEST))
    if dest.exists() and not overwrite:
        raise CorpusError(f"{dest}: already exists")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.parent))
    try:
        for name, data in files.items():
            (tmp / name).write_bytes(data)
        entry = Entry(tmp, m)
        for tname, text in render_texts(entry).items():
            (tmp / tname).write_bytes(text.encode("latin-1", "replace"))
        (tmp / MANIFEST).write_text(json.dumps(m, indent=1) + "\n", encoding="utf-8")
        if dest.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.old-", dir=dest.parent))
            os.rename(dest, old / "entry")
            os.rename(tmp, dest)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return load_entry(dest)

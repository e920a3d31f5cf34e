"""Module-level distill and relocate: a kernel module (or a raw split) with its base, end to end.

What the toolchain does to an out-of-tree module, done on a copy:

* distill (pahole ``--btf_features=distilled_base`` + ``resolve_btfids -B``): new ``.BTF`` (the new
  split), ``.BTF.base`` (the distilled base) and ``.BTF_ids`` rewritten to the new ids;
* relocate (what the kernel does at module load, §4.1/§4.2): ``.BTF`` relocated onto the full base,
  ``.BTF.base`` dropped, ``.BTF_ids`` remapped like ``btf_relocate_id()``.

Any implementation of :mod:`btfspec.oracle.impls.adapter` can produce the BTF; the ``.BTF_ids`` id maps always come
from the Python reference (libbpf does not expose them), and another implementation's bytes must
then equal the reference's, or the operation fails with :class:`OracleError` rather than write ids
that may not match.

Failures are :class:`OracleError` (exit status 1, a one-line message in user terms such as
``relocation failed: -EINVAL (22): distilled base type 'foo' [3] is not mapped to base BTF id``) or
``InputError`` (exit status 2: unreadable input, usage).
"""

from __future__ import annotations

import dataclasses
import os
import re
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from btfspec.oracle.impls.adapter import Implementation, PythonImpl, bytes_difference
from btfspec.oracle.impls.outcome import CRASH, DEFAULT_TIMEOUT, TIMEOUT, Outcome
from btfspec.oracle.impls.quirks import Q5, describe, q5_limit
from btfspec.oracle.kernels import btfids
from btfspec.spec.elf import create_temp, remove_quietly, replace_keeping_mode, write_sections
from btfspec.spec.errors import BtfError, InputError, errno_text
from btfspec.spec.kinds import Kind
from btfspec.spec.model import Btf
from btfspec.spec.permute import sort_split_bytes
from btfspec.spec.sources import BtfInput, load_input, read_bytes_any


class OracleError(Exception):
    """distill or relocate failed (or implementations disagree): exit status 1."""

    def __init__(self, message: str, errno: int = 0) -> None:
        super().__init__(message)
        self.errno = errno


# --------------------------------------------------------------------------------------------------
# loading
# --------------------------------------------------------------------------------------------------

@dataclass
class Module:
    """A split BTF and everything needed to work on it.

    ``base`` is the full base (``--base``, or vmlinux for ``/sys/kernel/btf/<module>``), None when
    unknown; ``elf`` the (decompressed) ELF bytes for an ELF input; ``layout`` where the ``.BTF_ids``
    ids are (None without a ``.BTF_ids`` section).
    """

    inp: BtfInput
    base: bytes | None = None
    base_path: str | None = None
    elf: bytes | None = None
    layout: btfids.BtfIdsLayout | None = None

    @property
    def path(self) -> str:
        return self.inp.path

    @property
    def distilled(self) -> bool:
        """True when the module carries a ``.BTF.base`` (its ``.BTF`` is split on a distilled base)."""
        return self.inp.base is not None


def load_module(path: str, base_path: str | None = None) -> Module:
    """Load SPLIT (raw, ELF, compressed or sysfs) and its base (``base_path`` or the sysfs vmlinux)."""
    inp = load_input(path)
    base_path = base_path or inp.sysfs_vmlinux
    base = load_input(base_path).btf if base_path else None
    mod = Module(inp, base, base_path)
    if inp.is_elf:
        mod.elf = read_bytes_any(path)
        mod.layout = btfids.parse_layout(mod.elf, path)
    return mod


def require_base(mod: Module, what: str) -> bytes:
    """The module's full base, or an InputError telling the user to give ``--base``."""
    if mod.base is None:
        raise InputError(f"{mod.path}: {what} needs the base BTF the split was built on: give --base "
                         f"(for example --base /sys/kernel/btf/vmlinux)")
    return mod.base


# --------------------------------------------------------------------------------------------------
# the reference's id maps
# --------------------------------------------------------------------------------------------------

def _lookup(raw: Any, i: int) -> int | None:
    if raw is None:
        return None
    if isinstance(raw, Mapping):
        v = raw.get(i)
    elif isinstance(raw, Sequence):
        v = raw[i] if 0 <= i < len(raw) else None
    elif callable(raw):
        v = raw(i)
    else:
        raise TypeError(f"unsupported id map type {type(raw).__name__}")
    return None if v is None else int(v)


def distill_map(raw: Any, split_start: int, new_base_cnt: int) -> Callable[[int], int | None]:
    """Old id -> new id after distill (§1.6): a reached base type -> its new id, an unreached one -> None,
    a split id shifts down by ``split_start - new_base_cnt``; void stays 0."""
    diff = split_start - new_base_cnt

    def f(old: int) -> int | None:
        if old == 0:
            return 0
        if old >= split_start:
            v = _lookup(raw, old)
            return v if v else old - diff
        v = _lookup(raw, old)
        return v if v else None

    return f


def relocate_map(raw: Any, nr_dist: int, nr_base: int) -> Callable[[int], int | None]:
    """Pre-relocation id -> base-relative id (§2.3/§4.2, ``btf_relocate_id``)."""

    def f(old: int) -> int | None:
        if old == 0:
            return 0
        if old >= nr_dist:
            return old + nr_base - nr_dist
        v = _lookup(raw, old)
        return v if v and v != 0xFFFFFFFF else None

    return f


def reference_distill(split: bytes, base: bytes, strict: bool = False) -> Outcome:
    """The Python reference's distill; its Outcome carries the id map."""
    return PythonImpl(strict).distill(split, base)


def reference_relocate(split: bytes, distilled_base: bytes, base: bytes, strict: bool = False) -> Outcome:
    """The Python reference's relocation; its Outcome carries the id map."""
    return PythonImpl(strict).relocate(split, distilled_base, base)


def relocate_outcome(impl: Implementation, split: bytes, distilled_base: bytes, base: bytes) -> Outcome:
    """``impl``'s relocation; libbpf's is given only a moment when the Python reference predicts its Q5
    hang (as campaigns do: :func:`~btfspec.oracle.impls.quirks.q5_limit`), and its timeout then says so."""
    limit = None
    if impl.name == "libbpf":
        size = len(split) + len(distilled_base) + len(base)
        prediction = reference_relocate(split, distilled_base, base)
        limit = q5_limit(prediction, size, getattr(impl, "timeout", DEFAULT_TIMEOUT))
    if limit is None:
        return impl.relocate(split, distilled_base, base)
    out = impl.relocate(split, distilled_base, base, timeout=limit)
    if out.status != TIMEOUT:
        return out
    return dataclasses.replace(out, detail=f"{out.detail or 'timeout'}, the hang the Python reference predicts: "
                                           f"{describe(Q5)}")


# --------------------------------------------------------------------------------------------------
# errors in user terms
# --------------------------------------------------------------------------------------------------

_LIBBPF_PREFIX = re.compile(r"^(libbpf|btfspec|python(-strict)?):\s*")
_NOT_MAPPED = re.compile(r"distilled base BTF type '(?P<name>[^']*)' \[(?P<id>\d+)\] is not mapped to base BTF id")
_KNOWN_LINES = (
    "unexpected reference to base type", "unexpected kind when adding base type", "is invalid for distilled base",
    "in distilled based BTF has unexpected kind", "maps to invalid distilled base BTF id",
    "has multiple candidates", "is not mapped to base BTF id", "is not mapped to base BTF",
    "failed to parse", "Malformed", "malformed", "Unsupported", "unsupported",
    "BPF: ",  # the kernel's BTF verifier (kernel-vm's log)
)


def reason_of(out: Outcome) -> str:
    """The most telling line of an outcome's log: a §2.13 message when there is one."""
    lines = [_LIBBPF_PREFIX.sub("", ln.strip()).rstrip(".") for ln in out.log.splitlines() if ln.strip()]
    for line in reversed(lines):
        if any(k in line for k in _KNOWN_LINES):
            return line
    if lines:
        return lines[-1]
    return out.detail


_CHAIN = frozenset({Kind.CONST, Kind.VOLATILE, Kind.RESTRICT, Kind.TYPEDEF, Kind.TYPE_TAG})


def _embedded(split: Btf, dist_id: int) -> bool:
    """Is distilled type ``dist_id`` embedded by value in a split struct/union (§2.5)?"""
    for _, t in split.own_types():
        if t.kind not in (Kind.STRUCT, Kind.UNION):
            continue
        for m in t.elems:
            nxt, seen = m[1], set()
            while nxt and nxt not in seen:
                seen.add(nxt)
                c = split.type(nxt)
                if c.kind in _CHAIN or c.kind == Kind.ARRAY:
                    nxt = c.type
                    continue
                if nxt == dist_id:
                    return True
                break
    return False


def _describe_candidates(name: str, dist_id: int, split: bytes | None, distilled_base: bytes | None,
                         base: bytes | None) -> str:
    """Why distilled type ``name`` [``dist_id``] found no base match: what the base has under that name."""
    if distilled_base is None or base is None:
        return ""
    try:
        dist = Btf.from_bytes(distilled_base)
        want = dist.type(dist_id)
        full = Btf.from_bytes(base)
        same = full.find_by_name(name)
        embedded = split is not None and _embedded(Btf.from_bytes(split, base=dist), dist_id)
    except BtfError:
        return ""
    if not same:
        return f"the base has no type named '{name}'"
    label = f"{want.kind_name} '{name}' size {want.size}"
    found = ", ".join(f"{full.describe(i)} size {full.type(i).size}" for i in same[:4])
    if want.kind in (Kind.STRUCT, Kind.UNION):
        composites = [i for i in same if full.type(i).kind in (Kind.STRUCT, Kind.UNION)]
        if embedded:
            return f"{label} is embedded by value in the split, so the base type's size must match; " \
                   f"the base has {found}"
        if len(composites) > 1:
            return f"the base has several types named '{name}', so the size must match {label}: {found}"
    return f"no base type is compatible with {label}; the base has {found}"


def failure(op: str, out: Outcome, *, split: bytes | None = None, distilled_base: bytes | None = None,
            base: bytes | None = None) -> OracleError:
    """An OracleError for a failed outcome, e.g. ``relocation failed: -EINVAL (22): ...``."""
    who = f" [{out.impl}]" if out.impl else ""
    if out.status == TIMEOUT:
        return OracleError(f"{op} failed{who}: did not finish ({out.detail or 'timeout'})")
    if out.status == CRASH:
        tail = reason_of(out)
        return OracleError(f"{op} failed{who}: the implementation crashed ({out.detail or 'crash'})"
                           + (f": {tail}" if tail else ""))
    reason = reason_of(out)
    m = _NOT_MAPPED.search(reason)
    hint = _describe_candidates(m.group("name"), int(m.group("id")), split, distilled_base, base) if m else ""
    text = f"{op} failed{who}: {errno_text(out.errno)}"
    if reason:
        text += f": {reason}"
    if hint:
        text += f" ({hint})"
    return OracleError(text, out.errno)


# --------------------------------------------------------------------------------------------------
# operations
# --------------------------------------------------------------------------------------------------

@dataclass
class Result:
    """What distill or relocate produced for a module."""

    op: str
    impl: str
    outcome: Outcome
    outputs: dict[str, bytes]  # "base"/"split" for distill, "split" for relocate
    btf_ids: btfids.RemapResult | None = None
    warnings: list[str] = field(default_factory=list)
    written: list[str] = field(default_factory=list)

    def types(self, role: str) -> int:
        """Number of own types of one output."""
        try:
            return Btf.from_bytes(self.outputs[role]).nr_types
        except BtfError:
            return -1


def _check_same(op: str, impl: str, out: Outcome, ref: Outcome) -> None:
    for role, blob in ref.outputs.items():
        diff = bytes_difference(blob, out.outputs.get(role, b""))
        if diff:
            raise OracleError(f"{op} [{impl}]: its {role} output differs from the Python reference's ({diff}), so "
                              f"the reference's id map cannot be used for .BTF_ids; use --impl python")


def _require(op: str, impl: Implementation) -> None:
    """InputError unless ``impl`` can ``op``."""
    from btfspec.oracle.impls.kernel_vm import relocates

    if op not in impl.capabilities and not (op == "relocate" and relocates(impl)):
        raise InputError(f"implementation {impl.name!r} cannot {op} (it supports: "
                         f"{', '.join(sorted(impl.capabilities)) or 'nothing'})")


def _run_impl(op: str, impl: Implementation, *args: bytes) -> Outcome:
    _require(op, impl)
    return getattr(impl, op)(*args)


def _describe_old(src: Btf | None) -> Callable[[int], str]:
    def describe(tid: int) -> str:
        if src is None:
            return f"[{tid}]"
        try:
            return src.describe(tid)
        except BtfError:
            return f"[{tid}]"
    return describe


def _with_id_map(op: str, impl: str, out: Outcome, reference: Callable[[], Outcome]) -> Outcome:
    """``out`` if it carries an id map, else the reference's outcome (whose bytes must equal ``out``'s)."""
    if out.id_map:
        return out
    ref = reference()
    if not ref.ok:
        raise OracleError(f"{op} [{impl}] succeeded but the Python reference failed "
                          f"({ref.describe()}), so .BTF_ids cannot be rewritten")
    _check_same(op, impl, out, ref)
    return ref


def distill(mod: Module, impl: Implementation, *, sort: bool = False) -> Result:
    """Distill the module's split against its full base with ``impl``; with ``sort``, then sort the new
    split by name as resolve_btfids does on 2026 kernels.

    With a ``.BTF_ids`` section an id map rewrites it: the implementation's own (the Python reference
    returns one), else the reference's, whose output must then equal the implementation's byte for byte;
    a sort's permutation then applies on top, as resolve_btfids resolves ids after sorting.
    """
    if mod.distilled:
        raise InputError(f"{mod.path}: already has a .BTF.base section (it is distilled); relocate it first: "
                         f"btfspec relocate {mod.path} --base BASE -o OUT.ko")
    base = require_base(mod, "distill")
    split, skipped = dedup_like_resolve_btfids(mod, base) if sort else (mod.inp.btf, None)
    out = _run_impl("distill", impl, split, base)
    if not out.ok:
        raise failure("distill", out)
    result = Result("distill", impl.name, out, dict(out.outputs), warnings=[skipped] if skipped else [])
    sorted_ids: dict[int, int] = {}
    if sort:
        result.outputs["split"], sorted_ids = sort_split_bytes(out.outputs["split"], out.outputs["base"])
    if mod.layout is not None:
        mapped = _with_id_map("distill", impl.name, out, lambda: reference_distill(split, base))
        result.btf_ids = _remap_ids(mod, mapped, "distill", then=sorted_ids)
    return result


def dedup_like_resolve_btfids(mod: Module, base: bytes) -> tuple[bytes, str | None]:
    """resolve_btfids' first step before distilling and sorting: ``btf__dedup`` of the split (libbpf in a
    worker process), and None; or the split unchanged and why the dedup was skipped."""
    from btfspec.oracle.impls import libbpf, libbpf_process

    reason = libbpf.unavailable_reason()
    if reason:
        return mod.inp.btf, f"btf__dedup skipped before the sort: libbpf is not usable ({reason})"
    with libbpf_process.LibbpfWorker() as worker:
        out = worker.dedup(mod.inp.btf, base)
    if not out.ok:
        raise failure("btf__dedup", out)
    deduped = out.outputs["split"]
    if mod.layout is not None:
        full = Btf.from_bytes(base)
        before, after = (Btf.from_bytes(b, base=full).nr_types for b in (mod.inp.btf, deduped))
        if after != before:
            raise InputError(f"{mod.path}: btf__dedup merged {before - after} of its {before} types, so its "
                             f".BTF_ids cannot follow; write raw files (--out-base/--out-split)")
    return deduped, None


def relocate(mod: Module, base: bytes, impl: Implementation, distilled_base: bytes | None = None) -> Result:
    """Relocate the module's split (on ``distilled_base``, default its ``.BTF.base``) onto ``base``."""
    dist = distilled_base if distilled_base is not None else mod.inp.base
    if dist is None:
        raise InputError(f"{mod.path}: has no .BTF.base section; give --distilled-base")
    _require("relocate", impl)
    out = relocate_outcome(impl, mod.inp.btf, dist, base)
    if not out.ok:
        raise failure("relocation", out, split=mod.inp.btf, distilled_base=dist, base=base)
    result = Result("relocate", impl.name, out, dict(out.outputs))
    if mod.layout is not None:
        mapped = _with_id_map("relocation", impl.name, out, lambda: reference_relocate(mod.inp.btf, dist, base))
        result.btf_ids = _remap_ids(mod, mapped, "relocate", dist=dist, base=base)
    return result


def _remap_ids(mod: Module, ref: Outcome, op: str, *, dist: bytes | None = None,
               base: bytes | None = None, then: Mapping[int, int] | None = None) -> btfids.RemapResult:
    """The module's ``.BTF_ids`` through ``ref``'s id map (and then through ``then``, a later permutation)."""
    assert mod.layout is not None and mod.elf is not None
    if not ref.id_map:
        raise OracleError(f"{op}: no id map came back, so .BTF_ids cannot be rewritten")
    data = mod.inp.btf_ids or b""
    try:
        if op == "distill":
            assert mod.base is not None
            full = Btf.from_bytes(mod.base)
            src = Btf.from_bytes(mod.inp.btf, base=full)
            new_base = Btf.from_bytes(ref.outputs["base"])
            fn = distill_map(ref.id_map, src.start_id, new_base.type_cnt)
        else:
            assert dist is not None and base is not None
            dist_btf = Btf.from_bytes(dist)
            src = Btf.from_bytes(mod.inp.btf, base=dist_btf)
            fn = relocate_map(ref.id_map, dist_btf.type_cnt, Btf.from_bytes(base).type_cnt)
    except BtfError as exc:
        raise OracleError(f"{op}: cannot read the BTF to remap .BTF_ids: {exc}", exc.errno) from None
    missing = ("is a base type the split does not use, so the distilled BTF has no id for it" if op == "distill"
               else "was not mapped by relocation")
    if then:
        mapped_fn = fn

        def fn(old: int) -> int | None:
            v = mapped_fn(old)
            return None if v is None else then.get(v, v)
    return btfids.remap(data, mod.layout, fn, label=mod.path, limit=src.type_cnt, describe=_describe_old(src),
                        missing=missing)


def relocated_view(inp: BtfInput, base_bytes: bytes) -> bytes:
    """The split of ``inp`` as seen on ``base_bytes``: relocated from its ``.BTF.base`` when it has one.

    Raises BtfError (with the relocation's errno and reason) when relocation fails.
    """
    if inp.base is None:
        return inp.btf
    run = reference_relocate(inp.btf, inp.base, base_bytes)
    if not run.ok:
        err = failure("relocation onto the base", run, split=inp.btf, distilled_base=inp.base,
                      base=base_bytes)
        raise BtfError(f"{inp.path}: {err}", errno=run.errno or -22)
    return run.outputs["split"]


# --------------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------------

def _elf_source(mod: Module, tmpdir: str) -> str:
    """A path objcopy can read: the input itself, or its decompressed copy."""
    if mod.inp.compression is None:
        return mod.path
    src = os.path.join(tmpdir, "input.elf")
    with open(src, "wb") as f:
        f.write(mod.elf or b"")
    os.chmod(src, os.stat(mod.path).st_mode & 0o7777)
    return src


def write_outputs(mod: Module, result: Result, *, elf_out: str | None = None,
                  raw: Mapping[str, str] | None = None) -> list[str]:
    """Write the results: an ELF copy (``elf_out``) and/or raw files (role -> path). All or nothing.

    Returns warnings (objcopy's, a dropped module signature). Every file is first written to a
    temporary file beside its destination; destinations change only once everything is ready.
    """
    raw = dict(raw or {})
    temps: list[tuple[str, str]] = []
    warnings: list[str] = []
    try:
        for role, path in raw.items():
            tmp = create_temp(path)
            temps.append((tmp, path))
            try:
                with open(tmp, "wb") as f:
                    f.write(result.outputs[role])
            except OSError as e:
                raise InputError(f"{path}: cannot write: {e.strerror or e}") from None
        if elf_out is not None:
            if mod.elf is None:
                raise InputError(f"{mod.path}: is not an ELF file, so there is no ELF copy to write; "
                                 f"write raw files instead")
            sections = {".BTF": result.outputs["split"]}
            remove: list[str] = []
            if result.op == "distill":
                sections[".BTF.base"] = result.outputs["base"]
            elif mod.distilled:
                remove.append(".BTF.base")
            if result.btf_ids is not None:
                sections[".BTF_ids"] = result.btf_ids.data
            with tempfile.TemporaryDirectory(prefix="btfspec-module-") as tmpdir:
                warnings += write_sections(_elf_source(mod, tmpdir), elf_out, sections, remove)
            result.written.append(elf_out)
        for tmp, path in temps:
            replace_keeping_mode(tmp, path)
            result.written.append(path)
    except OSError as e:
        raise InputError(f"cannot write outputs: {e.strerror or e}") from None
    finally:
        for tmp, _ in temps:
            remove_quietly(tmp)
    result.warnings += warnings
    return warnings


# --------------------------------------------------------------------------------------------------
# comparing implementations
# --------------------------------------------------------------------------------------------------

@dataclass
class Difference:
    """The first disagreement between two implementations."""

    op: str
    a: str  # implementation names
    b: str
    what: str  # one line
    role: str | None = None  # differing output, when both succeeded
    text_a: list[str] = field(default_factory=list)  # bpftool-style text of the first differing type
    text_b: list[str] = field(default_factory=list)
    diff: list[str] = field(default_factory=list)  # unified diff lines around it

    def to_dict(self) -> dict[str, Any]:
        return {"op": self.op, "a": self.a, "b": self.b, "what": self.what, "role": self.role,
                "text_a": self.text_a, "text_b": self.text_b, "diff": self.diff}


@dataclass
class Comparison:
    """Outcomes of every implementation per stage (``distill``, ``relocate``) and the verdict."""

    stages: dict[str, dict[str, Outcome]] = field(default_factory=dict)
    findings: list[str] = field(default_factory=list)  # excused divergences (quirk ids)
    difference: Difference | None = None

    @property
    def agree(self) -> bool:
        return self.difference is None


def _pair_agrees(a: Outcome, b: Outcome) -> tuple[bool, str | None]:
    from btfspec.oracle.impls.adapter import agree, outcome_difference

    names = {a.impl, b.impl}
    if names == {"python", "libbpf"}:
        lib, py = (a, b) if a.impl == "libbpf" else (b, a)
        return agree(lib, py)
    return outcome_difference(a, b) is None, None


def _block(lines: list[str], start: int) -> list[str]:
    """The type record starting at ``start`` (its ``[id]`` line and indented member lines)."""
    end = start + 1
    while end < len(lines) and not lines[end].startswith("["):
        end += 1
    return lines[start:end]


def text_difference(a: str, b: str, context: int = 3, limit: int = 40,
                    names: tuple[str, str] = ("a", "b")) -> tuple[list[str], list[str], list[str]]:
    """The type blocks around the first differing line of two dumps, and a unified diff near it."""
    import difflib

    la, lb = a.splitlines(), b.splitlines()
    i = next((k for k, (x, y) in enumerate(zip(la, lb, strict=False)) if x != y), min(len(la), len(lb)))
    start = i
    while start > 0 and not (start < len(la) and la[start].startswith("[")):
        start -= 1
    block_a = _block(la, start) if start < len(la) else ["(no more types)"]
    block_b = _block(lb, start) if start < len(lb) else ["(no more types)"]
    lo = max(0, start - context)
    diff = list(difflib.unified_diff(la[lo:i + limit], lb[lo:i + limit], names[0], names[1], n=context,
                                     lineterm=""))
    return block_a, block_b, diff[:limit]


def _dump_role(op: str, role: str, out: Outcome, target: bytes) -> str:
    from btfspec.spec.text import dump_raw

    blob = out.outputs[role]
    if op == "distill" and role == "split":
        return dump_raw(Btf.from_bytes(blob, base=Btf.from_bytes(out.outputs["base"])))
    if op == "relocate":
        return dump_raw(Btf.from_bytes(blob, base=Btf.from_bytes(target)))
    return dump_raw(Btf.from_bytes(blob))


def _difference(op: str, a: Outcome, b: Outcome, target: bytes) -> Difference:
    from btfspec.oracle.impls.adapter import bytes_difference

    if a.status != b.status or a.errno != b.errno or not a.ok:
        return Difference(op, a.impl, b.impl, f"{a.impl}: {a.describe()}  vs  {b.impl}: {b.describe()}")
    for role in sorted(set(a.outputs) | set(b.outputs)):
        if a.outputs.get(role) == b.outputs.get(role):
            continue
        what = f"{role} output: " + (bytes_difference(a.outputs.get(role, b""), b.outputs.get(role, b""))
                                     or "differs")
        d = Difference(op, a.impl, b.impl, what, role)
        try:
            ta, tb = _dump_role(op, role, a, target), _dump_role(op, role, b, target)
        except (BtfError, KeyError):
            return d
        if ta == tb:
            d.what += " (the bpftool-style text is identical: the difference is in bytes bpftool does not print)"
            return d
        d.text_a, d.text_b, d.diff = text_difference(ta, tb, names=(a.impl, b.impl))
        return d
    return Difference(op, a.impl, b.impl, "the outcomes differ")


def compare(mod: Module, impls: Sequence[Any], target: bytes | None = None) -> Comparison:
    """Distill with every implementation, relocate each result onto ``target`` (default: the base).

    A module that already has ``.BTF.base`` is only relocated. The first implementation is the one the
    others are compared with; python vs libbpf goes through :func:`btfspec.oracle.impls.adapter.agree`.
    """
    cmp = Comparison()
    if mod.distilled:
        if target is None:
            target = require_base(mod, "relocation")
        assert mod.inp.base is not None
        inputs = {impl.name: (mod.inp.btf, mod.inp.base) for impl in impls}
    else:
        base = require_base(mod, "distill")
        target = base if target is None else target
        dist = cmp.stages.setdefault("distill", {})
        for impl in impls:
            if "distill" in impl.capabilities:
                dist[impl.name] = impl.distill(mod.inp.btf, base)
        first_ok = next((o for o in dist.values() if o.ok), None)
        inputs = {}
        for impl in impls:
            out = dist.get(impl.name) or first_ok
            if out is not None and out.ok:
                inputs[impl.name] = (out.outputs["split"], out.outputs["base"])
    rel = cmp.stages.setdefault("relocate", {})
    for impl in impls:
        if "relocate" in impl.capabilities and impl.name in inputs:
            split, dist_base = inputs[impl.name]
            rel[impl.name] = relocate_outcome(impl, split, dist_base, target)
    for op, outs in cmp.stages.items():
        names = list(outs)
        for other in names[1:]:
            ok, finding = _pair_agrees(outs[names[0]], outs[other])
            if finding:
                cmp.findings.append(f"{op}: {names[0]} vs {other}: known libbpf quirk {finding}")
            if not ok and cmp.difference is None:
                cmp.difference = _difference(op, outs[names[0]], outs[other], target)
    return cmp

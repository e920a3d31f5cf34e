"""``btfspec check``: will a module's BTF load on a given kernel, and if not, why not?

:func:`check_module` answers for one module and one target vmlinux:

1. A module with ``.BTF.base`` is relocated onto the target as it is; a classic split (no
   ``.BTF.base``) is first distilled against the vmlinux it was built on (``built_against``), which is
   what a build with distilled base BTF would have shipped.
2. Relocation runs with the chosen implementation (the Python reference or libbpf v1.6; the kernel's
   ``btf_relocate`` is the same code).  On failure :mod:`btfspec.oracle.kernels.unmapped` says, in
   user terms, why every distilled base type that does not map fails.
3. When relocation succeeds, the types distillation copied from the old base into the split are
   compared with the target (:mod:`btfspec.oracle.kernels.stale`): a copy with no identical counterpart is a *stale
   copy* -- the kernel accepts it, but the module describes the type as it was in the old kernel.
4. ``.BTF_ids`` (ELF modules): every id slot with its id before and after, remapped like the kernel's
   ``btf_relocate_id()`` (:mod:`btfspec.oracle.kernels.btfids`), through the reference's id maps.

The verdict: ``ok`` (exit 0), ``stale`` (loads, with stale copies: exit 1) or ``fails`` (exit 1).
Unreadable input raises :class:`~btfspec.spec.errors.InputError` (exit 2).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from btfspec.oracle.impls import reference as ref
from btfspec.oracle.impls.adapter import Implementation, ImplUnavailable, make_impl
from btfspec.oracle.impls.outcome import DEFAULT_TIMEOUT, Outcome
from btfspec.oracle.kernels import btfids
from btfspec.oracle.kernels.fetch import MANIFEST, VMLINUX_BTF, read_manifest
from btfspec.oracle.kernels.kmodule import (
    distill_map,
    failure,
    reason_of,
    reference_distill,
    reference_relocate,
    relocate_map,
    relocate_outcome,
)
from btfspec.oracle.kernels.stale import StaleFinder
from btfspec.oracle.kernels.unmapped import MapProblem, affected, analyse_mapping, reverse_refs
from btfspec.spec.errors import BtfError, InputError, errno_text
from btfspec.spec.kinds import Kind
from btfspec.spec.model import Btf, id_fields
from btfspec.spec.sources import HOST_VMLINUX, BtfInput, load_input, read_bytes_any

IMPLS = ("python", "libbpf")
OK, STALE, FAILS = "ok", "stale", "fails"


_COPYABLE = frozenset({Kind.ARRAY, Kind.TYPEDEF, Kind.PTR, Kind.CONST, Kind.RESTRICT, Kind.VOLATILE,
                       Kind.FUNC_PROTO, Kind.TYPE_TAG})
_ANON_COPYABLE = frozenset({Kind.STRUCT, Kind.UNION, Kind.ENUM, Kind.ENUM64})


# --------------------------------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------------------------------

def vmlinux_path(path: str) -> str:
    """The vmlinux BTF file ``path`` names: a ``fetch-kernel`` directory's ``vmlinux.btf``, a directory's
    ``vmlinux.btf[.zst|.xz|.gz]``, or ``path`` itself (vmlinux ELF, raw BTF, ``/sys/kernel/btf/vmlinux``)."""
    p = Path(path)
    if not p.is_dir():
        return path
    manifest = read_manifest(p)
    if manifest is not None:
        return str(p / manifest["vmlinux"]["btf"])
    if (p / MANIFEST).exists():
        raise InputError(f"{p / MANIFEST}: incomplete or unreadable extraction (run fetch-kernel again)")
    for z in ("", ".zst", ".xz", ".gz"):
        if (p / f"{VMLINUX_BTF}{z}").is_file():
            return str(p / f"{VMLINUX_BTF}{z}")
    raise InputError(f"{p}: directory holds no {VMLINUX_BTF} (give a vmlinux ELF, a raw BTF file or a "
                     f"fetch-kernel directory)")


def load_vmlinux(path: str, role: str = "target") -> tuple[bytes, str]:
    """Raw vmlinux BTF bytes and the file they came from; InputError unless it is a standalone BTF."""
    real = vmlinux_path(path)
    inp = load_input(real)
    if inp.base is not None:
        raise InputError(f"{real}: the {role} has a .BTF.base section: it is a module, not vmlinux")
    try:
        Btf.from_bytes(inp.btf).type_cnt  # noqa: B018 - header and type section must parse
    except BtfError as exc:
        raise InputError(f"{real}: the {role} is not a standalone (vmlinux) BTF: {exc}") from None
    return inp.btf, real


class Target:
    """A target vmlinux prepared for relocation analysis: bytes, the libbpf-checked parse, the model,
    and the stale-copy finder (built on first use).  One per process when checking many modules."""

    def __init__(self, data: bytes, label: str = "target") -> None:
        self.data = data
        self.label = label
        run = ref.Run(False)
        try:
            self.parsed = ref.parse_btf(data, None, run, "base")
        except ref.Fail:
            raise InputError(f"{label}: libbpf would not parse it as base BTF: {' '.join(run.log)}") from None
        self.btf = self.parsed.btf
        self._finders: dict[int, StaleFinder] = {}

    def finder(self, source: Btf | None) -> StaleFinder:
        """A :class:`StaleFinder` for this target (and ``source``, the base the module was built on)."""
        key = id(source)
        if key not in self._finders:
            self._finders[key] = StaleFinder(self.btf, source)
        return self._finders[key]


# --------------------------------------------------------------------------------------------------
# stale copies
# --------------------------------------------------------------------------------------------------

@dataclass
class StaleWarning:
    """A copied type that differs from (or is absent in) the target."""

    type_id: int  # in the relocated split (on the target)
    verdict: str  # "differs" or "gone"
    text: str
    difference: str | None = None  # the first difference with its target counterpart
    used_by: list[str] = field(default_factory=list)  # the module's own named types that reach the copy

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def copy_start(btf: Btf) -> int:
    """Where the types distillation copied begin in a distilled split (a heuristic for ``.BTF.base`` modules).

    libbpf's distill appends the copies after the module's own types, and a copy refers only to the
    distilled base and to other copies; so the copies are taken to be the longest suffix of copyable
    kinds (modifiers, typedefs, arrays, pointers, prototypes, anonymous composites/enums) that refers
    to no earlier split type.
    """
    start, end = btf.start_id, btf.type_cnt
    k = end
    while k > start:
        t = btf.type(k - 1)
        if t.kind in _COPYABLE or (t.kind in _ANON_COPYABLE and not t.name_off):
            k -= 1
        else:
            break
    changed = True
    while changed and k < end:
        changed = False
        for tid in range(k, end):
            if any(start <= r < k for r in id_fields(btf.type(tid))):
                k = tid + 1
                changed = True
    return k


def first_difference(relocated: Btf, copy_id: int, target_id: int) -> str | None:
    """The first difference between a copy in ``relocated`` (a split on the target) and target type
    ``target_id``, as :mod:`btfspec.oracle.equiv.compare` words it (None when they are equivalent)."""
    from btfspec.oracle.equiv.compare import type_difference

    assert relocated.base is not None
    text = type_difference(relocated, copy_id, Btf(base=relocated.base), target_id)
    if text is None:
        return None
    return text.replace("(B: base ", "(target ").replace("(B: ", "(target: ")


def find_stale(relocated: Btf, first_copy: int, target: Target, source: Btf | None = None,
               on_source: Btf | None = None) -> list[StaleWarning]:
    """Copies (ids ``>= first_copy``) of ``relocated`` that the target lacks (see :mod:`btfspec.oracle.kernels.stale`).

    With ``source`` (the base the module was built on) and ``on_source`` (the same split relocated
    onto it), each is classified ``differs`` (with the first difference) or ``gone``.  ``used_by``
    names the module's own types that reach the copy: a copy that is the prototype of the module's own
    function was shared with the kernel type only because both were identical, so it is stale only if
    the module's function was meant to keep that kernel signature (a callback).
    """
    finder = target.finder(source)
    found = finder.classify(relocated, first_copy, on_source)
    rev = reverse_refs(relocated) if found else {}
    out = []
    for f in found:
        diff = None
        if f.verdict == "differs" and f.target_id is not None:
            try:
                diff = first_difference(relocated, f.type_id, f.target_id)
            except (BtfError, LookupError, RecursionError):
                diff = None
        out.append(StaleWarning(f.type_id, f.verdict, f.text, diff, affected(relocated, f.type_id, rev, first_copy)))
    return out


# --------------------------------------------------------------------------------------------------
# .BTF_ids
# --------------------------------------------------------------------------------------------------

@dataclass
class IdEntry:
    """One ``.BTF_ids`` slot: what it names, the id the module carries and the id after loading."""

    symbol: str
    what: str
    old: int
    new: int | None  # None: unresolved (written as 0)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _id_entries(data: bytes, layout: btfids.BtfIdsLayout, fn: Callable[[int], int | None]) -> list[IdEntry]:
    out = []
    for slot, old in btfids.read_ids(data, layout):
        out.append(IdEntry(slot.symbol, slot.what, old, None if old == 0 else fn(old)))
    return out


# --------------------------------------------------------------------------------------------------
# the check
# --------------------------------------------------------------------------------------------------

@dataclass
class CheckReport:
    """Everything :func:`check_module` found out (see ``to_dict`` for the JSON form)."""

    module: str
    target: str
    impl: str
    built_against: str | None
    has_btf_base: bool
    status: str = OK  # OK, STALE, FAILS
    stage: str = "relocate"  # where it failed: "distill" or "relocate"
    errno: int = 0
    reason: str = ""  # the implementation's own first failure
    distilled_types: int | None = None
    own_types: int | None = None
    copied_types: int | None = None
    copies_exact: bool = True  # False: copies located with copy_start's heuristic
    problems: list[MapProblem] = field(default_factory=list)
    stale: list[StaleWarning] = field(default_factory=list)
    btf_ids: list[IdEntry] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 0 if self.status == OK else 1

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["loads"] = self.status != FAILS
        d["exit_status"] = self.exit_code
        d["errno_text"] = errno_text(self.errno) if self.errno else ""
        return d


def _impl(name: str, timeout: float) -> Implementation:
    if name not in IMPLS:
        raise InputError(f"unknown implementation {name!r} (choose from {', '.join(IMPLS)})")
    try:
        return make_impl(name, timeout=timeout)
    except ImplUnavailable as exc:
        raise InputError(str(exc)) from None


def _run(impl: Implementation, op: str, *args: bytes) -> Outcome:
    return getattr(impl, op)(*args)


def check_module(module: str, target: str = HOST_VMLINUX, built_against: str | None = None,
                 impl: str = "python", *, timeout: float = DEFAULT_TIMEOUT,
                 prepared: Target | None = None) -> CheckReport:
    """Will ``module`` (``.ko``, compressed or not, or a raw split BTF) load on ``target``?

    ``built_against`` names the vmlinux a classic split (no ``.BTF.base``) was built on; it is then
    distilled first.  ``prepared`` reuses a :class:`Target` (its ``data`` must be ``target``'s).
    Raises InputError for unreadable or unusable input.
    """
    inp = load_input(module)
    tdata, tlabel = (prepared.data, target) if prepared is not None else load_vmlinux(target)
    runner = _impl(impl, timeout)
    try:
        tgt = prepared or Target(tdata, tlabel)
        return _check(inp, tgt, tlabel, built_against, impl, runner)
    finally:
        close = getattr(runner, "close", None)
        if callable(close):
            close()


def check_on_kernel(module: str, kernel: str, built_against: str | None = None, impl: str = "python", *,
                    timeout: float = DEFAULT_TIMEOUT, guest: Any = None) -> CheckReport:
    """Will ``module`` load on ``kernel`` (a ``linux-image-*`` package or a kernel release)? Answered by
    that kernel's module loader: the module's BTF (distilled first by ``impl`` for a classic split) is
    carried in a real module and loaded in a QEMU guest booting the package (``kernel-vm``).

    The Python reference's relocation is compared with the loader's (a note when they differ).
    ``guest`` reuses a :class:`~btfspec.oracle.impls.kernel_vm.KernelVmImpl` of that package (left
    running). Raises InputError for unreadable input and when the guest cannot be had.
    """
    from btfspec.oracle.impls.kernel_vm import IMPL, KernelVmImpl
    from btfspec.oracle.kernels.guest.image import resolve_package

    inp = load_input(module)
    package = resolve_package(kernel)
    try:
        vm = guest or KernelVmImpl(timeout=timeout, package=package)
    except ImplUnavailable as exc:
        raise InputError(str(exc)) from None
    label = f"{vm.image.package} (its module loader, in a QEMU guest)"
    runner = _impl(impl, timeout)
    try:
        rep = _check(inp, Target(vm.vmlinux, label), label, built_against, impl, runner, relocator=vm)
        rep.impl = IMPL if rep.stage == "relocate" else impl
        if inp.base is None and rep.stage == "relocate":
            rep.notes.append(f"distilled by {impl}, relocated by the module loader of {vm.image.release}")
    except ImplUnavailable as exc:  # the guest did not boot
        raise InputError(str(exc)) from None
    finally:
        close = getattr(runner, "close", None)
        if callable(close):
            close()
        if guest is None:
            vm.close()
    return rep


def _check(inp: BtfInput, tgt: Target, tlabel: str, built_against: str | None, impl: str,
           runner: Any, relocator: Any = None) -> CheckReport:
    """The check (see :func:`check_module`); ``relocator`` relocates instead of ``runner`` when given (the
    guest's loader, onto its own vmlinux: then the reference's relocation must agree, or a note says how not)."""
    rep = CheckReport(inp.path, tlabel, impl, built_against, inp.base is not None)
    source: Btf | None = None
    src_data: bytes | None = None
    if built_against is not None:
        src_data, built_against = load_vmlinux(built_against, "--built-against vmlinux")
        rep.built_against = built_against
        source = Btf.from_bytes(src_data)
    layout = btfids.parse_layout(read_bytes_any(inp.path), inp.path) if inp.is_elf and inp.btf_ids else None
    maps: list[Callable[[int], int | None]] = []
    if inp.base is None:
        if src_data is None:
            raise InputError(f"{inp.path}: has no .BTF.base (a classic split, built on one exact vmlinux): give "
                             f"--built-against VMLINUX so it can be distilled first")
        rep.notes.append("a classic split loads only on the exact vmlinux it was built against"
                         + (" (the target is that vmlinux)" if src_data == tgt.data else "")
                         + "; this is the answer for the module a distilled-base build would ship")
        split, dist, own = _distill(inp, src_data, source, rep, runner, maps)
        if split is None:
            return rep
        first_copy = Btf.from_bytes(dist).type_cnt + own
    else:
        split, dist = inp.btf, inp.base
        try:
            on_dist = Btf.from_bytes(split, base=Btf.from_bytes(dist))
        except BtfError as exc:
            raise BtfError(f"{inp.path}: .BTF does not parse on its .BTF.base: {exc.message}", errno=exc.errno) \
                from None
        first_copy = copy_start(on_dist)
        rep.copies_exact = False
        rep.distilled_types = on_dist.start_id - 1
        rep.own_types = first_copy - on_dist.start_id
        rep.copied_types = on_dist.type_cnt - first_copy
    rel = relocate_outcome(relocator or runner, split, dist, tgt.data)
    if relocator is not None:
        _compare_loader(rep, rel, reference_relocate(split, dist, tgt.data))
    if not rel.ok:
        _failed(rep, "relocate", rel, failure("relocation", rel, split=split, distilled_base=dist, base=tgt.data))
        rep.problems = analyse_mapping(split, dist, tgt, first_copy)
        return rep
    relocated = Btf.from_bytes(rel.outputs["split"], base=tgt.btf)
    nr_dist = Btf.from_bytes(dist).type_cnt
    on_source = None
    if source is not None and src_data is not None:
        back = reference_relocate(split, dist, src_data)
        if back.ok:
            on_source = Btf.from_bytes(back.outputs["split"], base=source)
            if not rep.copies_exact:
                first_copy = _refine_copies(first_copy, nr_dist, on_source, tgt, source)
                rep.copies_exact = True
                rep.own_types = first_copy - nr_dist
                rep.copied_types = on_source.type_cnt - on_source.start_id - rep.own_types
    shift = relocated.start_id - nr_dist
    rep.stale = find_stale(relocated, first_copy + shift, tgt, source, on_source)
    if rep.stale:
        rep.status = STALE
    if layout is not None and inp.btf_ids is not None:
        ref_rel = reference_relocate(split, dist, tgt.data)
        maps.append(relocate_map(ref_rel.id_map, nr_dist, tgt.btf.type_cnt))
        rep.btf_ids = _id_entries(inp.btf_ids, layout, _compose(maps))
    return rep


def _compare_loader(rep: CheckReport, loader: Outcome, python: Outcome) -> None:
    """A note when the Python reference (libbpf's rules) relocates otherwise than the module loader."""
    from btfspec.oracle.impls.adapter import outcome_difference
    from btfspec.oracle.impls.kernel_vm import loader_messages

    diff = outcome_difference(python, loader)
    if diff is not None:
        rep.notes.append(f"the Python reference (libbpf's rules) disagrees with the loader: {diff}")
    if not loader.ok and loader.log:
        rep.notes.append("kernel log: " + " | ".join(loader_messages(loader.log)[-6:]))


def _refine_copies(first_copy: int, nr_dist: int, on_source: Btf, tgt: Target, source: Btf) -> int:
    """With the source base known, a copy has a twin there: move the boundary past own types that have none.

    ``first_copy`` and the result are ids on the distilled base; ``on_source`` is the split relocated
    onto ``source``.
    """
    old = tgt.finder(source).old
    if old is None:
        return first_copy
    shift = on_source.start_id - nr_dist
    memo: dict[tuple[int, int], bool] = {}
    k = first_copy
    while k + shift < on_source.type_cnt and old.twin(on_source, k + shift, memo) is None:
        k += 1
    return k


def _compose(maps: list[Callable[[int], int | None]]) -> Callable[[int], int | None]:
    def fn(old: int) -> int | None:
        v: int | None = old
        for m in maps:
            if v is None:
                return None
            v = m(v)
        return v
    return fn


def _failed(rep: CheckReport, stage: str, out: Outcome, err: Exception) -> None:
    rep.status, rep.stage, rep.errno = FAILS, stage, out.errno
    rep.reason = str(err) or reason_of(out)


def _distill(inp: BtfInput, src_data: bytes, source: Btf | None, rep: CheckReport, runner: Any,
             maps: list[Callable[[int], int | None]]) -> tuple[Any, bytes, int]:
    """Distill a classic split against its build base; (split, distilled base, own type count)."""
    try:
        own = Btf.from_bytes(inp.btf, base=source).nr_types
    except BtfError as exc:
        raise InputError(f"{inp.path}: does not parse on --built-against {rep.built_against} (was it built on "
                         f"another vmlinux?): {exc.message}") from None
    out = _run(runner, "distill", inp.btf, src_data)
    if not out.ok:
        _failed(rep, "distill", out, failure("distill", out))
        return None, b"", own
    split, dist = out.outputs["split"], out.outputs["base"]
    dbtf = Btf.from_bytes(dist)
    rep.distilled_types = dbtf.nr_types
    rep.own_types = own
    rep.copied_types = Btf.from_bytes(split, base=dbtf).nr_types - own
    if inp.btf_ids is not None:
        r = reference_distill(inp.btf, src_data)
        if r.ok:
            start = source.type_cnt if source is not None else 1
            maps.append(distill_map(r.id_map, start, dbtf.type_cnt))
    return split, dist, own


__all__ = ["CheckReport", "IdEntry", "StaleWarning", "Target", "check_module", "check_on_kernel", "copy_start",
           "find_stale", "first_difference", "load_vmlinux", "vmlinux_path"]

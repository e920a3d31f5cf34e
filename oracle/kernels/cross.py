"""Cross-kernel regression: do modules built for an older kernel, distilled and relocated onto a newer
vmlinux, describe the same types as the newer kernel's own build of those modules?

For every module present in both sets (paired by path below the set's directory, or by name):

1. distill the old build against the old vmlinux (``.BTF.base`` modules are used as they are);
2. relocate onto the new vmlinux; a failure is explained in user terms by
   :func:`btfspec.oracle.kernels.unmapped.analyse_mapping` (missing type, embedded struct size changed, ...);
3. compare the relocated split with the new build (on the new vmlinux) with
   :func:`btfspec.oracle.equiv.compare.equivalent`; a difference is attributed to *a stale copy* when every difference
   sits at or below a copied type the new vmlinux lacks (:func:`btfspec.oracle.kernels.check.find_stale`,
   :func:`btfspec.oracle.equiv.compare.only_at`), else to *the module's own types* (its source changed between the
   builds: new members, new parameters, longer strings in ``.modinfo`` arrays, ...).

:func:`run_cross` spreads the modules over a process pool (each worker parses both vmlinux BTFs
once); :func:`summarize_cross` counts; :func:`format_cross` words the summary.

With ``impl="kernel-vm"`` the relocation of step 2 is the module loader's: the new kernel (the
package of the new set, when it is a ``fetch-kernel`` directory) runs in a QEMU guest per worker,
libbpf distills (python where libbpf is unusable), and libbpf's own relocation of the same pair is
compared with the loader's; a difference is counted and listed (``loader_difference``).
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from btfspec.oracle.impls.adapter import close_impls, make_impl
from btfspec.oracle.impls.outcome import DEFAULT_TIMEOUT
from btfspec.oracle.kernels.check import Target, find_stale, load_vmlinux
from btfspec.oracle.kernels.kmodule import failure, reference_relocate, relocated_view
from btfspec.oracle.kernels.pool import run_each
from btfspec.oracle.kernels.stats import ModuleRef, collect_modules, probe_impl
from btfspec.oracle.kernels.unmapped import analyse_mapping
from btfspec.spec.errors import BtfError, InputError, errno_text
from btfspec.spec.model import Btf
from btfspec.spec.sources import load_input

EQUIVALENT, DIFFERENT, FAILED = "equivalent", "different", "failed"
OWN, STALE_COPY, BOTH = "own types changed", "stale copy", "both"
MAX_LISTED = 10


@dataclass(frozen=True)
class Pair:
    """One module in both sets."""

    key: str
    name: str
    old: str
    new: str


@dataclass
class CrossRow:
    """What happened to one module."""

    name: str
    old: str
    new: str
    status: str = EQUIVALENT  # EQUIVALENT, DIFFERENT, FAILED, "distill-failed", "unreadable"
    errno: int = 0
    reason: str = ""  # the implementation's first failure
    problems: list[str] = field(default_factory=list)  # every failing distilled type, in user terms
    problem_keys: list[str] = field(default_factory=list)  # "size-changed: STRUCT tc_action"
    cause: str = ""  # OWN, STALE_COPY or BOTH for DIFFERENT
    first_difference: str = ""
    differences: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)  # stale copies (btfspec.oracle.kernels.stale words)
    loader_difference: str = ""  # kernel-vm: how libbpf's relocation differs from the loader's ("" the same)
    seconds: float = 0.0


def pair_modules(old: str, new: str) -> tuple[list[Pair], list[str], list[str], str | None, str | None]:
    """(pairs, only-old names, only-new names, implied old base, implied new base) of two module sets."""
    old_refs, old_base = collect_modules(old)
    new_refs, new_base = collect_modules(new)

    def keyed(refs: list[ModuleRef], root: str) -> dict[str, ModuleRef]:
        out: dict[str, ModuleRef] = {}
        for r in refs:
            key = os.path.relpath(r.path, root) if Path(root).is_dir() else r.name
            for suffix in (".zst", ".xz", ".gz"):
                key = key.removesuffix(suffix)
            out.setdefault(key, r)
        return out

    a, b = keyed(old_refs, old), keyed(new_refs, new)
    pairs = [Pair(k, a[k].name, a[k].path, b[k].path) for k in sorted(a) if k in b]
    return pairs, sorted(a[k].name for k in a if k not in b), sorted(b[k].name for k in b if k not in a), \
        old_base, new_base


# --------------------------------------------------------------------------------------------------
# the worker side
# --------------------------------------------------------------------------------------------------

@dataclass
class _State:
    impl: Any  # distills (and relocates, unless there is a guest)
    old: bytes
    old_btf: Btf
    new: Target
    guest: Any = None  # kernel-vm: relocates onto the new vmlinux


_STATE: list[_State] = []
GUEST = "kernel-vm"


def guest_package(new: str) -> str | None:
    """The kernel package of a ``fetch-kernel`` directory (the guest kernel-vm boots for it), else None."""
    from btfspec.oracle.kernels.fetch import read_manifest

    manifest = read_manifest(new) if Path(new).is_dir() else None
    return str(manifest["package"]) if manifest else None


def _guest(package: str | None, new: bytes, timeout: float) -> Any:
    """A kernel-vm implementation (not booted) of ``package`` whose vmlinux is ``new``; ImplUnavailable
    (a ValueError) when it cannot run, InputError when its vmlinux is another."""
    from btfspec.oracle.impls.kernel_vm import KernelVmImpl

    vm = KernelVmImpl(timeout=timeout, package=package)
    if not vm.targets(new):
        vm.close()
        raise InputError(f"--impl {GUEST}: the new base is not the vmlinux of {vm.image.package}, which the guest "
                         f"boots (give the new set as that package's fetch-kernel directory)")
    return vm


def _distiller(impl: str, timeout: float) -> Any:
    if impl != GUEST:
        return make_impl(impl, timeout=timeout)
    try:
        return make_impl("libbpf", timeout=timeout)
    except ValueError:
        return make_impl("python")


def _init(base_old: str, base_new: str, impl: str, timeout: float, package: str | None = None) -> None:
    old, _ = load_vmlinux(base_old, "old base")
    new, label = load_vmlinux(base_new, "new base")
    guest = _guest(package, new, timeout) if impl == GUEST else None
    _STATE[:] = [_State(_distiller(impl, timeout), old, Btf.from_bytes(old), Target(new, label), guest)]


def _close() -> None:
    close_impls(x for st in _STATE for x in (st.impl, st.guest) if x is not None)
    _STATE.clear()


def _crashed(p: Pair, why: str) -> CrossRow:
    return CrossRow(p.name, p.old, p.new, status="crash", reason=why)


def measure(p: Pair) -> CrossRow:
    """Distill, relocate and compare one module (in a worker set up by :func:`_init`)."""
    st = _STATE[0]
    row = CrossRow(p.name, p.old, p.new)
    started = time.perf_counter()
    try:
        _measure(st, p, row)
    except (InputError, BtfError) as e:
        row.status, row.reason = "unreadable", str(e)
    row.seconds = time.perf_counter() - started
    return row


def _measure(st: _State, p: Pair, row: CrossRow) -> None:
    old = load_input(p.old)
    new = load_input(p.new)
    new_split = Btf.from_bytes(relocated_view(new, st.new.data), base=st.new.btf)
    if old.base is not None:
        split, dist = old.btf, old.base
        own = None
    else:
        own = Btf.from_bytes(old.btf, base=st.old_btf).nr_types
        d = st.impl.distill(old.btf, st.old)
        if not d.ok:
            row.status, row.errno, row.reason = "distill-failed", d.errno, str(failure("distill", d))
            return
        split, dist = d.outputs["split"], d.outputs["base"]
    nr_dist = Btf.from_bytes(dist).type_cnt
    first_copy = nr_dist + own if own is not None else None
    rel = (st.guest or st.impl).relocate(split, dist, st.new.data)
    if st.guest is not None:
        from btfspec.oracle.impls.adapter import outcome_difference

        row.loader_difference = outcome_difference(st.impl.relocate(split, dist, st.new.data), rel) or ""
    if not rel.ok:
        row.status, row.errno = FAILED, rel.errno
        row.reason = str(failure("relocation", rel, split=split, distilled_base=dist, base=st.new.data))
        for prob in analyse_mapping(split, dist, st.new, first_copy):
            row.problems.append(f"{prob.label}: {prob.text}")
            row.problem_keys.append(f"{prob.reason}: {prob.kind} {prob.name}".strip())
        return
    relocated = Btf.from_bytes(rel.outputs["split"], base=st.new.btf)
    from btfspec.oracle.equiv.compare import equivalent

    res = equivalent(relocated, new_split)
    if res.equal:
        return
    row.status = DIFFERENT
    row.first_difference = _words(res.first_difference or "")
    row.differences = [_words(d) for d in res.differences]
    stale_ids: list[int] = []
    if first_copy is not None:
        back = reference_relocate(split, dist, st.old)
        on_source = Btf.from_bytes(back.outputs["split"], base=st.old_btf) if back.ok else None
        shift = relocated.start_id - nr_dist
        found = find_stale(relocated, first_copy + shift, st.new, st.old_btf, on_source)
        stale_ids = [f.type_id for f in found]
        row.stale = [f"{f.verdict}: {f.text}" for f in found]
    own, stale = causes(res, stale_ids)
    row.cause = BOTH if own and stale else STALE_COPY if stale else OWN


def _words(text: str) -> str:
    """btfspec.oracle.equiv.compare's route text with its sides named: A is the relocated module, B the new build."""
    return (text.replace("(B: ", "(new build: ")
            .replace(" of A has no counterpart in B", " of the relocated module has no counterpart in the new build")
            .replace(" of B has no counterpart in A", " of the new build has no counterpart in the relocated module"))


def causes(res: Any, stale_ids: list[int]) -> tuple[bool, bool]:
    """(the module's own types differ, a stale copy differs) for a non-equivalent :class:`EquivResult`:
    a local difference reachable from a compared pair whose relocated side is a stale copy is the
    copy's; any other local difference, or a type without counterpart, is the module's own."""
    starts = [p for p in res.compared_pairs() if p[0] in stale_ids] if stale_ids else []
    below = res.below(starts) if starts else set()
    stale = any(p in below for p in res.local)
    own = bool(res.unmatched_a or res.unmatched_b) or any(p not in below for p in res.local)
    return own, stale


# --------------------------------------------------------------------------------------------------
# the driver
# --------------------------------------------------------------------------------------------------

@dataclass
class CrossRun:
    """Everything one :func:`run_cross` call produced."""

    rows: list[CrossRow]
    base_old: str
    base_new: str
    impl: str
    jobs: int
    seconds: float
    only_old: list[str] = field(default_factory=list)
    only_new: list[str] = field(default_factory=list)


def run_cross(pairs: list[Pair], base_old: str, base_new: str, *, impl: str = "libbpf", jobs: int | None = None,
              timeout: float = DEFAULT_TIMEOUT, progress: Callable[[CrossRow], None] | None = None,
              package: str | None = None) -> CrossRun:
    """Measure every pair with ``jobs`` processes (default: all cores; 1 runs here). ``package``: the
    kernel the guest boots for ``impl="kernel-vm"`` (default: kernel-vm's).

    Raises InputError when a base cannot be loaded and ValueError when the implementation is unusable.
    """
    jobs = max(1, jobs or os.cpu_count() or 1)
    started = time.monotonic()
    args = (base_old, base_new, impl, timeout, package)
    if jobs > 1 and len(pairs) > 1:
        load_vmlinux(base_old, "old base")  # fail early and clearly, before starting workers
        new, _ = load_vmlinux(base_new, "new base")
        if impl == GUEST:
            close_impls([_guest(package, new, timeout)])
        else:
            probe_impl(impl, timeout)
    rows = run_each(pairs, measure, jobs=jobs, init=_init, initargs=args, close=_close, crashed=_crashed,
                    progress=progress, state=_STATE)
    return CrossRun(rows, base_old, base_new, impl, jobs, time.monotonic() - started)


def summarize_cross(run: CrossRun, top: int = MAX_LISTED) -> dict[str, Any]:
    """Counts: relocated, failed by reason (and by type), equivalent, different by cause."""
    rows = run.rows
    failed = [r for r in rows if r.status == FAILED]
    diff = [r for r in rows if r.status == DIFFERENT]
    by_cause = Counter(r.cause for r in diff)
    return {
        "modules": len(rows),
        "only_old": run.only_old,
        "only_new": run.only_new,
        "base_old": run.base_old,
        "base_new": run.base_new,
        "impl": run.impl,
        "status": dict(Counter(r.status for r in rows)),
        "relocated": sum(1 for r in rows if r.status in (EQUIVALENT, DIFFERENT, FAILED)),
        "relocation_ok": sum(1 for r in rows if r.status in (EQUIVALENT, DIFFERENT)),
        "failed": len(failed),
        "failed_by_reason": dict(Counter(k.split(":")[0] for r in failed for k in r.problem_keys[:1]).most_common()),
        "failed_by_type": dict(Counter(k for r in failed for k in r.problem_keys).most_common()),
        "loader_differs": [{"name": r.name, "difference": r.loader_difference} for r in rows if r.loader_difference],
        "equivalent": sum(1 for r in rows if r.status == EQUIVALENT),
        "different": len(diff),
        "different_by_cause": {OWN: by_cause.get(OWN, 0), STALE_COPY: by_cause.get(STALE_COPY, 0),
                               BOTH: by_cause.get(BOTH, 0)},
        "failures": [{"name": r.name, "reason": r.reason, "problems": r.problems} for r in failed],
        "differences": [{"name": r.name, "cause": r.cause, "first_difference": r.first_difference,
                         "count": len(r.differences), "differences": r.differences[:top], "stale": r.stale}
                        for r in diff],
        "errors": [{"name": r.name, "status": r.status, "reason": r.reason} for r in rows
                   if r.status not in (EQUIVALENT, DIFFERENT, FAILED)],
        "timing": {"seconds": round(run.seconds, 2), "jobs": run.jobs,
                   "seconds_per_module": round(run.seconds / len(rows), 4) if rows else None},
    }


def format_cross(s: dict[str, Any], top: int = MAX_LISTED) -> list[str]:
    """The summary in words, one line per item."""
    t = s["timing"]
    out = [f"cross: {s['modules']} modules in both sets, {s['base_old']} -> {s['base_new']} (impl {s['impl']}, "
           f"{t['jobs']} jobs, {t['seconds']:.1f} s)"]
    if s["only_old"] or s["only_new"]:
        out.append(f"  not paired: {len(s['only_old'])} only in the old set, {len(s['only_new'])} only in the new")
    out.append(f"  relocated: {s['relocated']} ({s['relocation_ok']} ok, {s['failed']} failed)")
    for reason, n in s["failed_by_reason"].items():
        out.append(f"    {n:5}  {reason}")
    for key, n in list(s["failed_by_type"].items())[:top]:
        out.append(f"           {n:5}  {key}")
    if s["impl"] == GUEST:
        lines = s["loader_differs"]
        same = "the same on every module" if not lines else f"{len(lines)} differ"
        out.append(f"  the module loader vs libbpf: {same}")
        out.extend(f"    {d['name']}: {d['difference']}" for d in lines[:top])
    out.append(f"  equivalent to the new build: {s['equivalent']}")
    c = s["different_by_cause"]
    out.append(f"  different: {s['different']} ({c[OWN]} only the module's own types changed, {c[STALE_COPY]} only "
               f"a stale copy, {c[BOTH]} both)")
    for d in s["differences"][:top]:
        more = f" (+{d['count'] - 1} more)" if d["count"] > 1 else ""
        out.append(f"    {d['name']} [{d['cause']}]: {d['first_difference']}{more}")
    for f in s["failures"][:top]:
        out.append(f"    {f['name']}: {f['problems'][0] if f['problems'] else f['reason']}")
    for e in s["errors"][:top]:
        out.append(f"    {e['name']}: {e['status']}: {e['reason']}")
    return out


def cross_report(old: str, new: str, base_old: str | None, base_new: str | None,
                 on_start: Callable[[int], None] | None = None, **kw: Any) -> tuple[CrossRun, dict[str, Any]]:
    """Pair, run and summarize (bases default to the sets' implied vmlinux BTFs); ``on_start(n)`` is
    called with the number of pairs before the run."""
    pairs, only_old, only_new, implied_old, implied_new = pair_modules(old, new)
    base_old, base_new = base_old or implied_old, base_new or implied_new
    if base_old is None or base_new is None:
        raise InputError("--cross needs --base-old and --base-new (no vmlinux.btf beside the modules)")
    if not pairs:
        raise InputError(f"{old} and {new} have no module in common")
    if on_start:
        on_start(len(pairs))
    if kw.get("impl") == GUEST:
        kw.setdefault("package", guest_package(new))
    run = run_cross(pairs, base_old, base_new, **kw)
    run.only_old, run.only_new = only_old, only_new
    return run, summarize_cross(run)


def rows_as_dicts(run: CrossRun) -> list[dict[str, Any]]:
    """Per-module rows for ``--json``."""
    return [asdict(r) for r in run.rows]


__all__ = ["CrossRow", "CrossRun", "Pair", "cross_report", "errno_text", "format_cross", "guest_package", "measure",
           "pair_modules", "rows_as_dicts", "run_cross", "summarize_cross"]

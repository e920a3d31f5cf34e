"""Distill statistics over many kernel modules, like the figures of the distilled-base patch series.

:func:`collect_modules` finds the modules (a directory of ``.ko``/raw split ``.btf`` files, a
``fetch-kernel`` package directory, or a text file listing paths); :func:`run_stats` distills each
against the base in a process pool (each worker loads the base once and keeps one implementation)
and, optionally, relocates the result onto another kernel's vmlinux and looks for *stale copies*;
:func:`summarize` computes the figures; :func:`write_csv` and :func:`plot_histogram` write files.

A stale copy is a base type that distillation copied into the new split and that the base it was
relocated onto does not contain (:mod:`btfspec.oracle.kernels.stale`).
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from btfspec.oracle.impls.adapter import close_impls, make_impl
from btfspec.oracle.impls.outcome import DEFAULT_TIMEOUT, Outcome
from btfspec.oracle.kernels.fetch import MANIFEST, VMLINUX_BTF, module_name, read_manifest
from btfspec.oracle.kernels.pool import run_each
from btfspec.oracle.kernels.stale import BaseIndex, StaleFinder
from btfspec.spec.errors import BtfError, InputError, errno_text
from btfspec.spec.kinds import Kind
from btfspec.spec.model import Btf
from btfspec.spec.sources import load_input, write_atomic

# What the patch series reported (v4 cover letter).
SERIES_V4 = {"modules": 2667, "mean": 1556, "stddev": 1563, "total": "5.3Mb",
             "source": "cover letter of the distilled base BTF patch series v4 (Alan Maguire, bpf-next, 2024)"}
MODULE_SUFFIXES = (".ko", ".ko.xz", ".ko.zst", ".ko.gz", ".btf", ".btf.zst", ".btf.xz", ".btf.gz")
MAX_STALE_LISTED = 5


@dataclass(frozen=True)
class ModuleRef:
    """One module to measure: display name and path of a ``.ko`` or raw split BTF file."""

    name: str
    path: str


@dataclass
class ModuleRow:
    """Per-module figures (sizes in bytes; type counts exclude void and the base)."""

    name: str
    path: str
    status: str = "ok"  # ok | error | timeout | crash | unreadable | skipped
    errno: int = 0
    reason: str = ""
    split_types: int | None = None
    split_bytes: int | None = None
    base_types: int | None = None
    base_bytes: int | None = None
    new_split_types: int | None = None
    new_split_bytes: int | None = None
    copied_types: int | None = None
    seconds: float = 0.0
    reloc_status: str = ""  # "" when no relocation was asked for
    reloc_errno: int = 0
    reloc_reason: str = ""
    stale_copies: int | None = None  # copied types that differ in the target ("differs")
    gone_copies: int | None = None  # copied types the target has nowhere ("gone")
    stale_examples: list[str] = field(default_factory=list)


CSV_FIELDS = [f for f in ModuleRow.__dataclass_fields__ if f != "stale_examples"] + ["stale_examples"]


# --------------------------------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------------------------------

def _is_module_file(name: str) -> bool:
    return name.endswith(MODULE_SUFFIXES) and not name.startswith("vmlinux") and not name.endswith(".btf.base")


def collect_modules(source: str) -> tuple[list[ModuleRef], str | None]:
    """The modules named by ``source`` and the base it implies (a package directory's vmlinux.btf).

    ``source`` is a ``fetch-kernel`` package directory (its manifest lists the modules), any
    directory (searched recursively for ``.ko[.xz|.zst|.gz]`` and ``.btf[.zst|.xz|.gz]``, files
    called ``vmlinux*`` excluded; a ``vmlinux.btf[.zst|.xz|.gz]`` at its top is the implied base),
    or a text file with one path per line (``#`` comments; relative paths are relative to the
    file). Raises InputError when it is none of these or lists nothing.
    """
    src = Path(source)
    if src.is_dir():
        manifest = read_manifest(src)
        if manifest is not None:
            refs = [ModuleRef(m["name"], str(src / m["btf"])) for m in manifest["modules"]]
            return refs, str(src / manifest["vmlinux"]["btf"])
        if (src / MANIFEST).exists():
            raise InputError(f"{src / MANIFEST}: incomplete or unreadable extraction (run fetch-kernel again)")
        found = sorted(str(Path(d) / f) for d, _, files in os.walk(src) for f in files if _is_module_file(f))
        refs = [ModuleRef(module_name(p), p) for p in found]
        base = next((str(src / f"{VMLINUX_BTF}{z}") for z in ("", ".zst", ".xz", ".gz")
                     if (src / f"{VMLINUX_BTF}{z}").is_file()), None)
        if not refs:
            raise InputError(f"{src}: no module files (*.ko, *.btf, optionally .xz/.zst/.gz) in this directory")
        return refs, base
    try:
        text = src.read_text(errors="replace")
    except OSError as e:
        raise InputError(f"{src}: cannot read: {e.strerror or e}") from None
    if "\0" in text[:4096]:
        raise InputError(f"{src}: not a directory or a text file listing module paths")
    refs = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            path = line if os.path.isabs(line) else str(src.parent / line)
            refs.append(ModuleRef(module_name(path), path))
    if not refs:
        raise InputError(f"{src}: the list names no module files")
    return refs, None


# --------------------------------------------------------------------------------------------------
# the worker side
# --------------------------------------------------------------------------------------------------

@dataclass
class _WorkerState:
    impl: Any
    base: bytes
    base_btf: Btf
    target: bytes | None
    finder: StaleFinder | None


_STATE: list[_WorkerState] = []


def probe_impl(impl: str, timeout: float) -> None:
    """Raise ValueError (ImplUnavailable) with the reason when ``impl`` cannot be used here."""
    close_impls([make_impl(impl, timeout=timeout)])


def _load_base(path: str, role: str) -> bytes:
    inp = load_input(path)
    if inp.base is not None:
        raise InputError(f"{path}: the {role} has a .BTF.base section: it is a module, not vmlinux")
    return inp.btf


def _init_worker(base_path: str, impl: str, target_path: str | None, timeout: float) -> None:
    base = _load_base(base_path, "base")
    target = _load_base(target_path, "relocation target") if target_path else None
    base_btf = Btf.from_bytes(base)
    finder = StaleFinder(Btf.from_bytes(target), base_btf) if target is not None else None
    _STATE[:] = [_WorkerState(make_impl(impl, timeout=timeout), base, base_btf, target, finder)]


def _reason(out: Outcome) -> str:
    return out.describe()


def _count(blob: bytes, base: Btf | None) -> int | None:
    try:
        return Btf.from_bytes(blob, base=base).nr_types
    except BtfError:
        return None


def measure(ref: ModuleRef) -> ModuleRow:
    """Distill (and optionally relocate) one module in a worker set up by :func:`_init_worker`."""
    st = _STATE[0]
    row = ModuleRow(ref.name, ref.path)
    started = time.perf_counter()
    try:
        inp = load_input(ref.path)
    except (InputError, BtfError) as e:
        row.status, row.reason = "unreadable", str(e)
        return row
    row.split_bytes = len(inp.btf)
    if inp.base is not None:
        row.status, row.reason = "skipped", "already has a .BTF.base (distilled at build time)"
        return row
    row.split_types = _count(inp.btf, st.base_btf)
    out = st.impl.distill(inp.btf, st.base)
    row.seconds = time.perf_counter() - started
    if not out.ok:
        row.status, row.errno, row.reason = out.status, out.errno, _reason(out)
        return row
    dbase, nsplit = out.outputs["base"], out.outputs["split"]
    row.base_bytes, row.new_split_bytes = len(dbase), len(nsplit)
    try:
        dbtf = Btf.from_bytes(dbase)
        row.base_types = dbtf.nr_types
        row.new_split_types = _count(nsplit, dbtf)
    except BtfError:
        pass
    if row.new_split_types is not None and row.split_types is not None:
        row.copied_types = row.new_split_types - row.split_types
    if st.target is not None:
        _relocate(st, row, dbase, nsplit)
    row.seconds = time.perf_counter() - started
    return row


def _relocate(st: _WorkerState, row: ModuleRow, dbase: bytes, nsplit: bytes) -> None:
    assert st.target is not None and st.finder is not None
    rel = st.impl.relocate(nsplit, dbase, st.target)
    row.reloc_status = rel.status
    if not rel.ok:
        row.reloc_errno, row.reloc_reason = rel.errno, _reason(rel)
        row.reloc_reason += _size_hint(row.reloc_reason, dbase, st.finder.new)
        return
    if row.split_types is None:
        return
    try:
        relocated = Btf.from_bytes(rel.outputs["split"], base=st.finder.target)
        first = relocated.start_id + row.split_types
        on_source = None
        if st.finder.missing(relocated, first):  # locate them in the source base to judge them
            back = st.impl.relocate(nsplit, dbase, st.base)
            if back.ok:
                on_source = Btf.from_bytes(back.outputs["split"], base=st.base_btf)
        found = st.finder.classify(relocated, first, on_source)
    except (BtfError, RecursionError) as e:
        row.reloc_reason = f"stale-copy check failed: {e}"
        return
    row.stale_copies = sum(1 for f in found if f.verdict == "differs")
    row.gone_copies = sum(1 for f in found if f.verdict == "gone")
    row.stale_examples = [f"{f.verdict}: {f.text}" for f in found[:MAX_STALE_LISTED]]


_UNMAPPED = re.compile(r"distilled base BTF type '([^']*)' \[(\d+)\] is not mapped")


def _size_hint(reason: str, dbase: bytes, target: BaseIndex) -> str:
    """`` (size 736 in the distilled base; struct device is 744 in the target)`` for an unmapped type."""
    m = _UNMAPPED.search(reason)
    if not m:
        return ""
    try:
        t = Btf.from_bytes(dbase).type(int(m.group(2)))
    except BtfError:
        return ""
    if t.kind not in (Kind.STRUCT, Kind.UNION):
        return ""
    sizes = sorted({target.btf.type(i).size for i in target.named(m.group(1), t.kind)})
    there = ", ".join(map(str, sizes)) if sizes else "absent"
    return f" (size {t.size} in the distilled base; {t.kind_name.lower()} {m.group(1)} is {there} in the target)"


# --------------------------------------------------------------------------------------------------
# the driver
# --------------------------------------------------------------------------------------------------

@dataclass
class StatsRun:
    """Everything one :func:`run_stats` call produced."""

    rows: list[ModuleRow]
    base: str
    impl: str
    jobs: int
    seconds: float
    target: str | None = None


def _crash_row(ref: ModuleRef, why: str) -> ModuleRow:
    return ModuleRow(ref.name, ref.path, status="crash", reason=why)


def run_stats(refs: list[ModuleRef], base: str, *, impl: str = "libbpf", jobs: int | None = None,
              target: str | None = None, timeout: float = DEFAULT_TIMEOUT,
              progress: Callable[[ModuleRow], None] | None = None) -> StatsRun:
    """Distill every module against ``base`` (and relocate onto ``target`` when given).

    ``jobs`` processes (default: all cores); ``jobs == 1`` runs in this process. A worker process
    that dies takes only its module down: such modules are retried one per fresh process and
    reported as ``crash`` if that dies too. Raises InputError when the base cannot be loaded and
    ValueError when the implementation is unusable.
    """
    jobs = max(1, jobs or os.cpu_count() or 1)
    initargs = (base, impl, target, timeout)
    started = time.monotonic()
    if jobs > 1 and len(refs) > 1:
        _load_base(base, "base")  # fail early and clearly, before starting workers
        if target:
            _load_base(target, "relocation target")
        probe_impl(impl, timeout)
    ordered = run_each(refs, measure, jobs=jobs, init=_init_worker, initargs=initargs, close=_close_state,
                       crashed=_crash_row, progress=progress, state=_STATE)
    return StatsRun(ordered, base, impl, jobs, time.monotonic() - started, target)


def _close_state() -> None:
    close_impls(st.impl for st in _STATE)


# --------------------------------------------------------------------------------------------------
# figures
# --------------------------------------------------------------------------------------------------

_NUM = re.compile(r"\b\d+\b|0x[0-9a-f]+")
_QUOTED = re.compile(r"'[^']*'")
_HINT = re.compile(r" \(size \d+ in the distilled base;.*\)$")


def reason_key(errno: int, reason: str) -> str:
    """Failure reason with ids and names blanked, for grouping (``-EINVAL (22): ... type [N] ...``)."""
    text = reason.split(": ", 1)[1] if reason.startswith(("error ", "crash", "timeout")) and ": " in reason else reason
    text = _NUM.sub("N", _QUOTED.sub("'…'", _HINT.sub("", text)))
    head = errno_text(errno) if errno else ""
    return f"{head}: {text}" if head and text else head or text or "unknown"


def _spread(values: list[int]) -> dict[str, float | int]:
    if not values:
        return {"count": 0}
    return {"count": len(values), "mean": statistics.fmean(values), "pstdev": statistics.pstdev(values),
            "total": sum(values), "min": min(values), "median": statistics.median(values), "max": max(values)}


def summarize(run: StatsRun, top: int = 10) -> dict[str, Any]:
    """The patch-series figures and more, as plain data (see ``btfspec stats --json``)."""
    rows = run.rows
    ok = [r for r in rows if r.status == "ok" and r.base_bytes is not None]
    failed = [r for r in rows if r.status != "ok"]
    by_reason = Counter(reason_key(r.errno, r.reason) for r in failed)
    by_status = Counter(r.status for r in rows)
    split_before = [r.split_bytes for r in ok if r.split_bytes is not None]
    split_after = [r.new_split_bytes for r in ok if r.new_split_bytes is not None]
    largest = sorted(ok, key=lambda r: (-(r.base_bytes or 0), r.name))[:top]
    out: dict[str, Any] = {
        "modules": len(rows),
        "distilled": len(ok),
        "failed": len(failed),
        "status": dict(by_status),
        "base": run.base,
        "impl": run.impl,
        "distilled_base_bytes": _spread([r.base_bytes for r in ok if r.base_bytes is not None]),
        "distilled_base_types": _spread([r.base_types for r in ok if r.base_types is not None]),
        "split_bytes_before": _spread(split_before),
        "split_bytes_after": _spread(split_after),
        "copied_types": _spread([r.copied_types for r in ok if r.copied_types is not None]),
        "failures_by_reason": dict(by_reason.most_common()),
        "failures": [{"name": r.name, "path": r.path, "status": r.status, "errno": r.errno, "reason": r.reason}
                     for r in failed],
        "largest": [{"name": r.name, "base_bytes": r.base_bytes, "base_types": r.base_types,
                     "split_bytes": r.split_bytes, "new_split_bytes": r.new_split_bytes} for r in largest],
        "series_v4": SERIES_V4,
        "timing": {"seconds": round(run.seconds, 3), "jobs": run.jobs,
                   "seconds_per_module": round(run.seconds / len(rows), 5) if rows else None},
    }
    if run.target:
        out["relocation"] = _relocation_summary(run.target, ok)
    return out


def _relocation_summary(target: str, ok: list[ModuleRow]) -> dict[str, Any]:
    tried = [r for r in ok if r.reloc_status]
    good = [r for r in tried if r.reloc_status == "ok"]
    bad = [r for r in tried if r.reloc_status != "ok"]
    stale = [r for r in good if r.stale_copies or r.gone_copies]
    return {
        "target": target,
        "relocated": len(tried),
        "ok": len(good),
        "failed": len(bad),
        "failures_by_reason": dict(Counter(reason_key(r.reloc_errno, r.reloc_reason) for r in bad).most_common()),
        "failures_by_type": dict(Counter(m.group(1) for r in bad if (m := _UNMAPPED.search(r.reloc_reason)))
                                 .most_common()),
        "failures": [{"name": r.name, "path": r.path, "reason": r.reloc_reason} for r in bad],
        "modules_with_stale_copies": sum(1 for r in good if r.stale_copies),
        "stale_copies": sum(r.stale_copies or 0 for r in good),
        "modules_with_gone_copies": sum(1 for r in good if r.gone_copies),
        "gone_copies": sum(r.gone_copies or 0 for r in good),
        "stale": [{"name": r.name, "path": r.path, "stale_copies": r.stale_copies, "gone_copies": r.gone_copies,
                   "examples": r.stale_examples}
                  for r in sorted(stale, key=lambda r: (-(r.stale_copies or 0), -(r.gone_copies or 0), r.name))],
    }


def write_csv(rows: Iterable[ModuleRow], path: str) -> None:
    """The per-module table as CSV (written atomically)."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    w.writeheader()
    for r in rows:
        d = asdict(r)
        d["seconds"] = f"{r.seconds:.4f}"
        d["stale_examples"] = "; ".join(r.stale_examples)
        w.writerow({k: "" if d[k] is None else d[k] for k in CSV_FIELDS})
    write_atomic(path, buf.getvalue().encode())


def plot_histogram(run: StatsRun, path: str, title: str | None = None) -> None:
    """PNG histogram of distilled base sizes with mean and stddev marked (matplotlib, Agg)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise InputError("--plot needs matplotlib: pip install -e '.[campaign]'") from None
    sizes = [r.base_bytes for r in run.rows if r.status == "ok" and r.base_bytes is not None]
    if not sizes:
        raise InputError("--plot: no module was distilled, nothing to plot")
    mean, sd = statistics.fmean(sizes), statistics.pstdev(sizes)
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    bins = max(10, min(60, int(math.sqrt(len(sizes)) * 2)))
    ax.hist(sizes, bins=bins, color="#4c72b0", edgecolor="white")
    ax.axvline(mean, color="#c44e52", label=f"mean {mean:,.0f} B")
    ax.axvspan(max(0.0, mean - sd), mean + sd, color="#c44e52", alpha=0.12, label=f"±1 stddev ({sd:,.0f} B)")
    ax.set_xlabel("distilled base (.BTF.base) size, bytes")
    ax.set_ylabel("modules")
    ax.set_title(title or f"{len(sizes)} modules, total {sum(sizes):,} B")
    ax.legend()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    write_atomic(path, buf.getvalue())

"""``btfspec bench stats``: distill statistics over every module of one kernel, python vs libbpf."""

from __future__ import annotations

import time
from pathlib import Path

from btfspec.bench.timing import Row


def find_kernel(cache: Path) -> Path | None:
    """A fetched kernel directory (as ``btfspec fetch-kernel`` writes) in the cache, if any."""
    if not cache.is_dir():
        return None
    for d in sorted(cache.iterdir()):
        if (d / "vmlinux.btf").is_file() and (d / "modules").is_dir():
            return d
    return None


def run(kernel_dir: Path, jobs: int | None = None) -> tuple[list[Row], int]:
    """Wall time of ``stats`` with libbpf and with python on the same modules; returns rows and module count."""
    from btfspec.oracle.kernels.stats import collect_modules, run_stats

    refs, _ = collect_modules(str(kernel_dir))
    base = str(kernel_dir / "vmlinux.btf")
    rows: list[Row] = []
    seconds: dict[str, float] = {}
    for impl in ("libbpf", "python"):
        t0 = time.perf_counter()
        run_stats(refs, base, impl=impl, jobs=jobs)
        seconds[impl] = time.perf_counter() - t0
    n = max(1, len(refs))
    rows.append(Row(f"stats, libbpf ({len(refs)} modules)", seconds["libbpf"]))
    rows.append(Row(f"stats, python ({len(refs)} modules)", seconds["python"], "libbpf", seconds["libbpf"], 2))
    rows.append(Row("  per module, libbpf", seconds["libbpf"] / n))
    rows.append(Row("  per module, python", seconds["python"] / n, "libbpf", seconds["libbpf"] / n))
    return rows, len(refs)

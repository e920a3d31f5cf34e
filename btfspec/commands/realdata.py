"""``btfspec fetch-kernel`` and ``btfspec stats``: real Debian kernel BTF and distill statistics."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import click

from btfspec.clitools import EXIT_USAGE, emit_json, fail, guarded, json_option
from btfspec.oracle.impls.outcome import DEFAULT_TIMEOUT
from btfspec.spec.errors import InputError

T = TypeVar("T")


def _progress_enabled(as_json: bool) -> bool:
    return sys.stderr.isatty() and not as_json


def _track(enabled: bool) -> Callable[[Iterable[T], str, int], Iterable[T]]:
    """A ``track(items, label, total)`` for btfspec.oracle.kernels.fetch: a rich progress bar on a terminal."""

    def track(items: Iterable[T], label: str, total: int) -> Iterable[T]:
        if not enabled:
            return items
        from rich.console import Console
        from rich.progress import track as rich_track

        return rich_track(items, description=label, total=total, console=Console(stderr=True), transient=True)

    return track


@click.command("fetch-kernel")
@click.argument("package")
@click.option("--cache", "cache", metavar="DIR", default=None,
              help="Cache directory [default: $XDG_CACHE_HOME/btfspec or ~/.cache/btfspec].")
@click.option("--force", is_flag=True, help="Extract again even when a complete extraction exists.")
@click.option("--keep-unpacked", is_flag=True, help="Keep the unpacked package tree (<dir>/unpacked).")
@click.option("--quiet", "-q", is_flag=True, help="No progress messages on stderr.")
@json_option
@guarded
def fetch_kernel_cmd(package: str, cache: str | None, force: bool, keep_unpacked: bool, quiet: bool,
                     as_json: bool) -> None:
    """Download a Debian kernel image package and extract vmlinux and module BTF.

    PACKAGE is a package name such as linux-image-6.1.0-47-cloud-amd64 (fetched with
    `apt-get download`) or the path of a .deb. Writes <cache>/<package>/vmlinux.btf,
    modules/<path>.btf (raw split BTF per module) and manifest.json; a complete extraction is
    reused.
    """
    from btfspec.oracle.kernels.fetch import fetch_kernel

    def log(msg: str) -> None:
        if not quiet:
            click.echo(f"fetch-kernel: {msg}", err=True)

    m = fetch_kernel(package, cache, force=force, keep_unpacked=keep_unpacked, log=log,
                     track=_track(_progress_enabled(as_json) and not quiet))
    if as_json:
        emit_json(m)
        return
    c = m["counts"]
    how = f"{m['compression']} payload at byte offset {m['payload_offset']:#x}" if m["compression"] else "plain ELF"
    click.echo(f"{m['package']} {m['version']} ({m['architecture']}): {m['dir']}")
    click.echo(f"  .deb      {m['deb']} sha256 {m['deb_sha256']}")
    click.echo(f"  vmlinux   {m['vmlinux']['btf']}: {m['vmlinux']['bytes']:,} bytes of .BTF ({m['image']}, {how})")
    click.echo(f"  modules   {c['modules']} ({c['with_btf']} with .BTF, {c['without_btf']} without, "
               f"{c['with_btf_base']} with .BTF.base, {c['unreadable']} unreadable)")
    done = "reused the existing extraction" if m["reused"] else f"extracted in {m['seconds']} s"
    click.echo(f"  {done}")


def _fmt(v: float | int | None) -> str:
    return "-" if v is None else f"{v:,.0f}"


def _print_report(s: dict[str, Any], rows: list[Any], table: bool, top: int) -> None:
    t = s["timing"]
    jobs = f"{t['jobs']} job{'s' if t['jobs'] > 1 else ''}"
    click.echo(f"stats: {s['modules']} modules, base {s['base']} (impl {s['impl']}, {jobs}, "
               f"{t['seconds']:.1f} s, {1000 * (t['seconds_per_module'] or 0):.1f} ms/module)")
    b = s["distilled_base_bytes"]
    if b["count"]:
        click.echo(f"distilled base: {b['count']} modules, mean {b['mean']:,.0f} B, stddev {b['pstdev']:,.0f} B "
                   f"(population), total {b['total']:,} B ({b['total'] / 2**20:.2f} MiB); "
                   f"min {b['min']:,}, median {b['median']:,.0f}, max {b['max']:,}")
    else:
        click.echo("distilled base: no module was distilled")
    v4 = s["series_v4"]
    click.echo(f"patch series v4 reported: {v4['modules']} modules, mean {v4['mean']} B, stddev {v4['stddev']} B, "
               f"total {v4['total']}")
    sb, sa = s["split_bytes_before"], s["split_bytes_after"]
    if sb["count"] and sa["count"]:
        grow = 100.0 * (sa["total"] - sb["total"]) / sb["total"] if sb["total"] else 0.0
        click.echo(f"split .BTF: before total {sb['total']:,} B (mean {sb['mean']:,.0f}), after total "
                   f"{sa['total']:,} B (mean {sa['mean']:,.0f}), {grow:+.1f}%; "
                   f"copied base types per module: mean {s['copied_types'].get('mean', 0):.1f}")
    if s["failed"]:
        click.echo(f"failed: {s['failed']}")
        for reason, n in s["failures_by_reason"].items():
            click.echo(f"  {n:6}  {reason}")
        for f in s["failures"][:top]:
            click.echo(f"    {f['name']}: {f['reason']}")
    if table or len(rows) <= 40:
        click.echo(f"{'module':28} {'status':8} {'split T':>8} {'split B':>9} {'base T':>7} {'base B':>8} "
                   f"{'new split B':>11}")
        for r in rows:
            click.echo(f"{r.name[:28]:28} {r.status:8} {_fmt(r.split_types):>8} {_fmt(r.split_bytes):>9} "
                       f"{_fmt(r.base_types):>7} {_fmt(r.base_bytes):>8} {_fmt(r.new_split_bytes):>11}")
    elif s["largest"]:
        click.echo(f"largest distilled bases (top {len(s['largest'])}):")
        for r in s["largest"]:
            click.echo(f"  {r['name'][:28]:28} base {r['base_bytes']:>7,} B / {r['base_types']:>4} types, "
                       f"split {r['split_bytes']:>9,} -> {r['new_split_bytes']:>9,} B")
    rel = s.get("relocation")
    if rel:
        click.echo(f"relocation onto {rel['target']}: {rel['relocated']} relocated, {rel['ok']} ok, "
                   f"{rel['failed']} failed; copied types that differ in the target: {rel['stale_copies']} "
                   f"in {rel['modules_with_stale_copies']} modules; absent from it: {rel['gone_copies']} "
                   f"in {rel['modules_with_gone_copies']} modules")
        for reason, n in rel["failures_by_reason"].items():
            click.echo(f"  {n:6}  {reason}")
        for f in rel["failures"][:top]:
            click.echo(f"    {f['name']}: {f['reason']}")
        for st in rel["stale"][:top]:
            click.echo(f"    {st['name']}: {'; '.join(st['examples'][:2])}")


@click.command("stats")
@click.argument("modules", metavar="MODULES", required=False)
@click.option("--cross", "cross", nargs=2, metavar="OLD_MODULES NEW_MODULES", default=None,
              help="Cross-kernel regression instead: distill the old builds, relocate onto --base-new and compare "
                   "with the new builds.")
@click.option("--base-old", metavar="VMLINUX", default=None, help="--cross: the old vmlinux [default: OLD_MODULES'].")
@click.option("--base-new", metavar="VMLINUX", default=None, help="--cross: the new vmlinux [default: NEW_MODULES'].")
@click.option("-B", "--base", "base", metavar="VMLINUX", default=None,
              help="vmlinux BTF (raw or ELF) [default: MODULES/vmlinux.btf of a fetch-kernel directory].")
@click.option("--impl", type=click.Choice(["libbpf", "python", "kernel-vm"]), default="libbpf", show_default=True,
              help="Implementation that distills (and relocates). kernel-vm: --cross only, the new kernel's module "
                   "loader relocates in a QEMU guest (libbpf distills, and its relocation is compared).")
@click.option("--relocate-onto", "target", metavar="VMLINUX", default=None,
              help="Also relocate every distilled module onto this vmlinux BTF and look for stale copies.")
@click.option("--csv", "csv_path", metavar="FILE", default=None, help="Write the per-module table as CSV.")
@click.option("--plot", "plot_path", metavar="FILE.png", default=None,
              help="Write a histogram of distilled base sizes (PNG).")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=None, help="Worker processes [default: all cores].")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=DEFAULT_TIMEOUT, show_default=True,
              help="Seconds per libbpf call before it counts as a timeout.")
@click.option("--table", is_flag=True, help="Print the per-module table even for many modules.")
@click.option("--top", type=click.IntRange(min=0), default=10, show_default=True,
              help="How many largest modules / failures to list.")
@json_option
@guarded
def stats_cmd(modules: str | None, cross: tuple[str, str] | None, base_old: str | None, base_new: str | None,
              base: str | None, impl: str, target: str | None, csv_path: str | None,
              plot_path: str | None, jobs: int | None, timeout: float, table: bool, top: int,
              as_json: bool) -> None:
    """Distill every module against vmlinux and report the patch series' figures.

    MODULES is a fetch-kernel package directory, a directory of .ko or raw split .btf files
    (searched recursively, .xz/.zst/.gz allowed), or a text file listing paths. Reports the number
    of modules, mean and population standard deviation of the distilled base size, total bytes, the
    largest modules, split sizes before and after, and failures by reason (failures are not fatal).
    With --cross OLD_MODULES NEW_MODULES: relocated/failed/equivalent/different counts instead.
    """
    if cross:
        _cross(cross, base_old, base_new, impl, jobs, timeout, top, as_json)
        return
    if modules is None:
        fail("give MODULES (or --cross OLD_MODULES NEW_MODULES)", EXIT_USAGE)
    if impl == "kernel-vm":
        fail("--impl kernel-vm relocates only: use it with --cross OLD_MODULES NEW_MODULES", EXIT_USAGE)
    assert modules is not None
    from btfspec.oracle.kernels import stats

    refs, implied = stats.collect_modules(modules)
    base = base or implied
    if base is None:
        fail(f"{modules}: no base: give --base VMLINUX", EXIT_USAGE)
    assert base is not None
    if plot_path:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise InputError("--plot needs matplotlib: pip install -e '.[campaign]'") from None
    enabled = _progress_enabled(as_json)
    try:
        if enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            with Progress(TextColumn("distilling"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                          console=Console(stderr=True), transient=True) as bar:
                task = bar.add_task("distill", total=len(refs))
                run = stats.run_stats(refs, base, impl=impl, jobs=jobs, target=target, timeout=timeout,
                                      progress=lambda _row: bar.advance(task))
        else:
            run = stats.run_stats(refs, base, impl=impl, jobs=jobs, target=target, timeout=timeout)
    except ValueError as e:  # btfspec.oracle.impls.adapter.ImplUnavailable
        fail(str(e), EXIT_USAGE)
    summary = stats.summarize(run, top=top)
    if csv_path:
        stats.write_csv(run.rows, csv_path)
    if plot_path:
        stats.plot_histogram(run, plot_path, title=f"distilled base sizes: {modules}")
    if as_json:
        from dataclasses import asdict

        emit_json({**summary, "rows": [asdict(r) for r in run.rows]})
        return
    _print_report(summary, run.rows, table, top)
    for label, path in (("csv", csv_path), ("plot", plot_path)):
        if path:
            click.echo(f"{label}: {path}")


def _cross(sets: tuple[str, str], base_old: str | None, base_new: str | None, impl: str, jobs: int | None,
           timeout: float, top: int, as_json: bool) -> None:
    from btfspec.oracle.kernels import cross

    enabled = _progress_enabled(as_json)
    try:
        if enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            with Progress(TextColumn("cross"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                          console=Console(stderr=True), transient=True) as bar:
                task = bar.add_task("cross", total=None)
                run, summary = cross.cross_report(*sets, base_old, base_new, impl=impl, jobs=jobs, timeout=timeout,
                                                  progress=lambda _row: bar.advance(task),
                                                  on_start=lambda n: bar.update(task, total=n))
        else:
            run, summary = cross.cross_report(*sets, base_old, base_new, impl=impl, jobs=jobs, timeout=timeout)
    except ValueError as e:  # btfspec.oracle.impls.adapter.ImplUnavailable
        fail(str(e), EXIT_USAGE)
    if as_json:
        emit_json({**summary, "rows": cross.rows_as_dicts(run)})
    else:
        click.echo("\n".join(cross.format_cross(summary, top)))


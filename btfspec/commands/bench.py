"""``btfspec bench ...``: speed figures as ratios against libbpf or bpftool measured in the same run."""

from __future__ import annotations

import click

from btfspec.bench.timing import Row, as_dict, interpreter
from btfspec.clitools import emit_json, guarded, json_option
from btfspec.oracle.fuzz.property import (
    ACCEPTANCE,
    DIFFERENTIAL,
    RELOCATION,
    ROBUSTNESS,
    ROUNDTRIP,
    SORTED_SPLITS,
)
from btfspec.spec.model import Btf
from btfspec.spec.sources import HOST_VMLINUX, load_input


@click.group()
def bench() -> None:
    """Benchmarks; they print figures and never fail on a missed target."""


def _report(as_json: bool, header: str, rows: list[Row], **meta: object) -> None:
    """``rows`` as one JSON object (``meta``, the interpreter, the rows), or the header and a line per row."""
    if as_json:
        emit_json({**meta, "python": interpreter(), "rows": as_dict(rows)})
        return
    click.echo(f"{header}, {interpreter()}")
    for row in rows:
        click.echo("  " + row.line())


@bench.command("spec")
@click.option("--input", "path", default=HOST_VMLINUX, show_default=True, help="BTF to measure (raw or ELF).")
@click.option("--repeat", default=5, show_default=True, help="Best of N runs.")
@json_option
@guarded
def bench_spec(path: str, repeat: int, as_json: bool) -> None:
    """Open+index, full decode, build, raw dump and Construct codec, beside libbpf and bpftool."""
    from btfspec.bench import spec_bench

    inp = load_input(path)
    nr = Btf.from_bytes(inp.btf).nr_types
    rows = spec_bench.run(inp.btf, path, repeat)
    _report(as_json, f"bench spec: {path} ({len(inp.btf):,} bytes, {nr:,} types), best of {repeat}", rows,
            input=path, types=nr)


@bench.command("startup")
@click.option("--input", "path", default=HOST_VMLINUX, show_default=True, help="BTF that `dump` prints.")
@click.option("--repeat", type=click.IntRange(min=1), default=10, show_default=True, help="Best of N runs.")
@json_option
@guarded
def bench_startup(path: str, repeat: int, as_json: bool) -> None:
    """`btfspec --help` and `btfspec dump` end to end, process start included, beside bpftool."""
    from btfspec.bench import startup_bench

    load_input(path)  # unreadable input: a usage error, before any timing
    try:
        rows = startup_bench.run(path, repeat)
    except ValueError as exc:  # a benchmark never fails: say what went wrong
        click.echo(f"bench startup: cannot run: {exc}")
        return
    command = " ".join(startup_bench.btfspec_command())
    _report(as_json, f"bench startup: {command} on {path}, best of {repeat}", rows, input=path, command=command)


@bench.command("oracle")
@click.option("--split", "split_path", metavar="F", help="Split BTF to use (default: a ~350-type module built "
              "against --base).")
@click.option("--base", "base_path", default=HOST_VMLINUX, show_default=True, metavar="F", help="Its base BTF.")
@click.option("--repeat", default=5, show_default=True, help="Best of N runs.")
@click.option("--kernel-vm/--no-kernel-vm", "with_vm", default=True, show_default=True,
              help="Also time relocation by the module loader of a QEMU guest (kernel-vm), when usable.")
@json_option
@guarded
def bench_oracle(split_path: str | None, base_path: str, repeat: int, with_vm: bool, as_json: bool) -> None:
    """Distill and relocate of a module-sized split: the Python reference vs libbpf (target <= 20x)."""
    from btfspec.bench import oracle_bench

    base = load_input(base_path).btf
    split = load_input(split_path).btf if split_path else None
    try:
        rows, info = oracle_bench.run(split or oracle_bench.build_module(base), base, repeat)
    except ValueError as exc:
        click.echo(f"bench oracle: cannot run: {exc}")
        return
    vm_rows, vm_info, vm_why = [], {}, "skipped (--no-kernel-vm)"
    if with_vm:
        try:
            vm_rows, vm_info = oracle_bench.run_kernel_vm()
            vm_why = ""
        except (ValueError, OSError) as exc:  # the guest would not boot, or its pipe broke
            vm_why = str(exc)
    if as_json:
        emit_json({"split": split_path or "generated", "base": base_path, **info, "python": interpreter(),
                   "rows": as_dict(rows),
                   "kernel_vm": {**vm_info, "rows": as_dict(vm_rows)} if vm_rows else {"skipped": vm_why}})
        return
    click.echo(f"bench oracle: {split_path or 'generated module'} ({info['split_types']:,} types) on {base_path} "
               f"({info['base_types']:,} types; distilled base {info['distilled_base_types']} types), "
               f"best of {repeat}, {interpreter()}")
    for row in rows:
        click.echo("  " + row.line())
    if not vm_rows:
        click.echo(f"bench oracle: kernel-vm: {vm_why}")
        return
    cpu = vm_info["qemu_cpu_seconds_per_relocation"]
    click.echo(f"bench oracle: kernel-vm onto the guest's vmlinux ({vm_info['accel']}, {vm_info['agent']} agent): "
               f"boot {vm_info['boot_seconds']:.1f} s, {vm_info['relocations_per_second']:.1f} relocations/s "
               f"(mean of {vm_info['count']}), {1 / cpu if cpu else float('nan'):.1f} per QEMU CPU-second "
               f"(load average {vm_info['load_average']:.1f})")
    for row in vm_rows:
        click.echo("  " + row.line())


@bench.command("fuzz")
@click.option("--seconds", type=click.FloatRange(min=1), default=8.0, show_default=True,
              help="Campaign time per run.")
@click.option("--repeat", type=click.IntRange(min=1), default=3, show_default=True,
              help="Runs per configuration (the best is shown, with the spread).")
@click.option("--property", "prop",
              type=click.Choice([RELOCATION, ROUNDTRIP, DIFFERENTIAL, ACCEPTANCE, ROBUSTNESS, SORTED_SPLITS]),
              default=RELOCATION, show_default=True, help="The property measured.")
@click.option("--no-cluster", is_flag=True, help="Skip the 2-worker dask LocalCluster row.")
@click.option("--per-impl", is_flag=True, help="Also libbpf alone and serve (the reference server) alone.")
@json_option
@guarded
def bench_fuzz(seconds: float, repeat: int, prop: str, no_cluster: bool, per_impl: bool, as_json: bool) -> None:
    """Examples/s per worker (python, python+libbpf) and the speed-up of 2 workers and of a 2-worker cluster."""
    import os

    from btfspec.bench import fuzz_bench

    if not as_json:
        click.echo(f"bench fuzz: {prop}, {seconds:g} s per run, best of {repeat}, {os.cpu_count()} cores, "
                   f"load {os.getloadavg()[0]:.1f}, {interpreter()}; no shrinking (findings recorded as found)")
    try:
        rows = fuzz_bench.run(seconds, cluster=not no_cluster, echo=None if as_json else click.echo, prop=prop,
                              repeat=repeat, per_impl=per_impl)
    except Exception as exc:  # a benchmark never fails: say what went wrong
        click.echo(f"bench fuzz: cannot run: {type(exc).__name__}: {exc}")
        return
    if as_json:
        emit_json({"seconds": seconds, "repeat": repeat, "property": prop, "cores": os.cpu_count(),
                   "python": interpreter(), "rows": fuzz_bench.as_dicts(rows), "summary": fuzz_bench.summary(rows)})
    else:
        for line in fuzz_bench.summary(rows):
            click.echo(f"  = {line}")


@bench.command("oracle-strength")
@click.option("--budget", type=click.FloatRange(min=1), default=60.0, show_default=True,
              help="Campaign seconds per mutant (a mutant is killed once a finding blames it).")
@click.option("--workers", type=click.IntRange(min=0), default=2, show_default=True, help="Worker slots per campaign.")
@click.option("--mutant", "mutant_list", metavar="ID[,ID...]", help="Only these mutants (default: all).")
@click.option("--property", "prop_list", metavar="P[,P...]", default="P1,P2,P3,P4,P8", show_default=True,
              help="Properties of each campaign.")
@click.option("--profile", type=click.Choice(["mixed", "kernel-valid", "libbpf-valid"]), default="mixed",
              show_default=True, help="Generator profile.")
@click.option("--seed", type=int, default=1, show_default=True, help="Campaign seed.")
@click.option("--list", "list_only", is_flag=True, help="List the mutants and exit.")
@json_option
@guarded
def bench_oracle_strength(budget: float, workers: int, mutant_list: str | None, prop_list: str, profile: str,
                          seed: int, list_only: bool, as_json: bool) -> None:
    """Mutation score: mutants of the Python reference, each served next to libbpf in a short campaign."""
    from btfspec.bench import strength_bench
    from btfspec.bench.mutants import MUTANTS
    from btfspec.clitools import split_list

    if list_only:
        if as_json:
            emit_json({"mutants": [{"id": m.id, "op": m.op, "what": m.what, "bytes_only": m.bytes_only}
                                   for m in MUTANTS]})
            return
        for m in MUTANTS:
            click.echo(f"{m.id:<34} {m.op:<9} {m.what}{'  [bytes only]' if m.bytes_only else ''}")
        return
    ids = split_list(mutant_list) or None
    props = split_list(prop_list)
    if not as_json:
        n = len(ids) if ids else len(MUTANTS)
        click.echo(f"bench oracle-strength: {n} mutants + control, serve,libbpf, {','.join(props)}, {profile}, "
                   f"{budget:g} s budget, {workers} workers")
    try:
        rows = strength_bench.run(ids, budget, workers, props, seed, profile, echo=None if as_json else click.echo)
    except ValueError as exc:
        click.echo(f"bench oracle-strength: cannot run: {exc}")
        return
    summary = strength_bench.summary(rows, budget)
    if as_json:
        emit_json({"budget": budget, "workers": workers, "properties": props, "profile": profile, "seed": seed,
                   "summary": summary, "rows": strength_bench.as_dicts(rows)})
        return
    slowest = summary["slowest_kill"]
    click.echo(f"killed {summary['killed']}/{summary['total']} ({summary['within_budget']} within {budget:g} s"
               + (f", slowest {slowest:.1f} s" if slowest is not None else "") + "); control "
               + ("clean" if summary["control_clean"] else "NOT clean")
               + (f"; survivors: {', '.join(summary['survivors'])}" if summary["survivors"] else ""))


@bench.command("stats")
@click.option("--kernel", "kernel_dir", type=click.Path(file_okay=False), default=None,
              help="A directory written by 'btfspec fetch-kernel' (default: the first one in the cache).")
@click.option("--jobs", type=int, default=None, help="Worker processes (default: all cores).")
@json_option
@guarded
def bench_stats(kernel_dir: str | None, jobs: int | None, as_json: bool) -> None:
    """'stats' over all modules of one fetched kernel with python and with libbpf, side by side."""
    from pathlib import Path

    from btfspec.bench import stats_bench
    from btfspec.oracle.kernels.fetch import cache_root

    kdir = Path(kernel_dir) if kernel_dir else stats_bench.find_kernel(cache_root())
    if kdir is None:
        click.echo("bench stats: no fetched kernel found; run 'btfspec fetch-kernel "
                   "linux-image-6.1.0-47-cloud-amd64' first (skipped)")
        return
    rows, n = stats_bench.run(kdir, jobs)
    if as_json:
        emit_json({"kernel": str(kdir), "modules": n, "rows": as_dict(rows)})
        return
    click.echo(f"bench stats: {kdir} ({n} modules)")
    for row in rows:
        click.echo("  " + row.line())


@bench.command("gen")
@click.option("--seconds", default=5.0, show_default=True, help="Sampling time per row.")
@json_option
@guarded
def bench_gen(seconds: float, as_json: bool) -> None:
    """Generated examples per second for 50- and 500-type universes, beside a plain strategy."""
    from btfspec.bench import gen_bench

    rows = gen_bench.run(seconds=seconds)
    if as_json:
        emit_json({"python": interpreter(), "rows": as_dict(rows)})
        return
    click.echo("bench gen: seconds per example (examples/s = 1 / time); ratio = cost against the plain strategy; "
               + interpreter())
    for row in rows:
        click.echo(f"  {row.line()}   [{1 / row.seconds:8.1f} ex/s]")



@bench.command("shrink")
@click.option("--impl", "impl_list", default="libbpf", show_default=True, metavar="NAME[,NAME...]",
              help="Implementations whose P1 findings are shrunk (none: stand-ins only).")
@click.option("--findings", type=click.IntRange(min=0), default=6, show_default=True,
              help="Distinct findings shrunk per implementation.")
@click.option("--stand-ins", "stand_ins", type=click.IntRange(min=0), default=4, show_default=True,
              help="Seeded cases shrunk per stand-in condition.")
@click.option("--max-seconds", type=click.FloatRange(min=1), default=60.0, show_default=True,
              help="Time limit of one shrink or reduction.")
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of the seeded cases.")
@json_option
@guarded
def bench_shrink(impl_list: str, findings: int, stand_ins: int, max_seconds: float, seed: int,
                 as_json: bool) -> None:
    """Nodes a failure found on the campaign's seeded path keeps after shrinking, and the time it takes.

    Each P1 failure goes both ways: hypothesis shrinking its recorded choices (what properties without a
    reduction get) and the universe-level reducer (what P1-P4 and P6 get), with nodes, seconds and checks.
    """
    from btfspec.bench import shrink_bench
    from btfspec.clitools import fail
    from btfspec.oracle.impls.adapter import close_impls, open_usable, parse_impl_list

    try:
        names = parse_impl_list(impl_list) if impl_list.strip() not in ("", "none") else []
    except ValueError as exc:
        fail(f"--impl: {exc}")
    impls, unusable = open_usable(names) if names and findings else ([], {})

    def show(row: shrink_bench.ShrinkRow) -> None:
        click.echo("  " + row.line())

    on_row = None if as_json else show
    if not as_json:
        click.echo(f"bench shrink: P1 failures from seeded cases, shrunk by hypothesis from their choices and "
                   f"reduced from their universe (the campaign's path), seed {seed}, at most {max_seconds:g} s each "
                   f"(* stopped there)")
    rows = []
    try:
        rows += shrink_bench.stand_in_rows(stand_ins, seed, max_seconds, on_row) if stand_ins else []
        for impl in impls:
            rows += shrink_bench.finding_rows(impl, findings, seed, max_seconds, on_row)
    finally:
        close_impls(impls)
    if as_json:
        emit_json({"seed": seed, "max_seconds": max_seconds, "rows": shrink_bench.as_dicts(rows),
                   "skipped": unusable, "summary": shrink_bench.summary(rows)})
        return
    for name, why in unusable.items():
        click.echo(f"  {name}: skipped ({why})")
    for line in shrink_bench.summary(rows):
        click.echo(f"  = {line}")

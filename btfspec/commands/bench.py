"""``btfspec bench ...``: speed figures as ratios against libbpf or bpftool measured in the same run."""

from __future__ import annotations

import click

from btfspec.bench.timing import as_dict
from btfspec.clitools import emit_json, guarded, json_option
from spec.model import Btf
from spec.sources import load_input

HOST_VMLINUX = "/sys/kernel/btf/vmlinux"


@click.group()
def bench() -> None:
    """Benchmarks; they print figures and never fail on a missed target."""


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
    if as_json:
        emit_json({"input": path, "types": nr, "rows": as_dict(rows)})
        return
    click.echo(f"bench spec: {path} ({len(inp.btf):,} bytes, {nr:,} types), best of {repeat}")
    for row in rows:
        click.echo("  " + row.line())


@bench.command("oracle")
@click.option("--split", "split_path", metavar="F", help="Split BTF to use (default: a ~350-type module built "
              "against --base).")
@click.option("--base", "base_path", default=HOST_VMLINUX, show_default=True, metavar="F", help="Its base BTF.")
@click.option("--repeat", default=5, show_default=True, help="Best of N runs.")
@json_option
@guarded
def bench_oracle(split_path: str | None, base_path: str, repeat: int, as_json: bool) -> None:
    """Distill and relocate of a module-sized split: the Python reference vs libbpf (target <= 20x)."""
    from btfspec.bench import oracle_bench

    base = load_input(base_path).btf
    split = load_input(split_path).btf if split_path else None
    try:
        rows, info = oracle_bench.run(split or oracle_bench.build_module(base), base, repeat)
    except ValueError as exc:
        click.echo(f"bench oracle: cannot run: {exc}")
        return
    if as_json:
        emit_json({"split": split_path or "generated", "base": base_path, **info, "rows": as_dict(rows)})
        return
    click.echo(f"bench oracle: {split_path or 'generated module'} ({info['split_types']:,} types) on {base_path} "
               f"({info['base_types']:,} types; distilled base {info['distilled_base_types']} types), "
               f"best of {repeat}")
    for row in rows:
        click.echo("  " + row.line())


COMMANDS = [bench]

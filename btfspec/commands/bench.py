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


COMMANDS = [bench]

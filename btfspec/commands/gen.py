"""``btfspec gen``: one generated base/split case with a labelled perturbed base."""

from __future__ import annotations

import json
import os
import sys
from importlib import metadata

import click

from btfspec.clitools import emit_json, fail, guarded, json_option
from btfspec.spec.model import Btf
from btfspec.spec.sources import write_atomic

PROFILES = ("kernel-valid", "libbpf-valid")


def _version() -> str:
    try:
        return metadata.version("btfspec")
    except metadata.PackageNotFoundError:
        return "unknown"


def _write(data: bytes) -> None:
    try:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)


@click.command("gen")
@click.option("--seed", type=int, required=True, help="Seed; the same seed and version give the same case.")
@click.option("--size", type=click.IntRange(2, 5000), default=50, show_default=True,
              help="Types in the logical universe (kernel and module part together).")
@click.option("--profile", type=click.Choice(PROFILES), default="kernel-valid", show_default=True,
              help="kernel-valid: the kernel's verifier accepts it; libbpf-valid: wider, with quirk shapes.")
@click.option("-o", "--output", "outdir", metavar="DIR",
              help="Write base.btf, split.btf, base2.btf and expected.json into DIR instead of printing.")
@json_option
@guarded
def gen(seed: int, size: int, profile: str, outdir: str | None, as_json: bool) -> None:
    """Generate one case: a base (kernel part), a split (module part) and a perturbed base2.

    Without -o, prints the three as bpftool raw text, each after a '## name' line, preceded by
    '#' lines giving the perturbation, its label (equivalent, error or stale-copy) and errno:
    what a correct relocation of the distilled split onto base2 must do.
    """
    from btfspec.btfgen.recipe import seeded_case
    from btfspec.spec.text import dump_raw

    case, base2, p = seeded_case(seed, size, profile)
    expected = {**p.expected(), "seed": seed, "size": size, "profile": profile, "btfspec": _version(),
                "types": {"base": len(case.kernel_keys), "split_module": len(case.module_keys)}}
    files = {"base.btf": case.base, "split.btf": case.split, "base2.btf": base2,
             "expected.json": (json.dumps(expected, indent=2) + "\n").encode()}
    if outdir is not None:
        try:
            os.makedirs(outdir, exist_ok=True)
        except OSError as exc:
            fail(f"{outdir}: cannot create directory: {exc.strerror or exc}")
        for name, data in files.items():
            write_atomic(os.path.join(outdir, name), data)
        if as_json:
            emit_json({**expected, "files": [os.path.join(outdir, n) for n in files]})
        else:
            click.echo(f"{outdir}: base.btf split.btf base2.btf expected.json "
                       f"({p.label}{f', errno {p.errno}' if p.errno else ''}: {p.kind})")
        return
    if as_json:
        emit_json({**expected, "base": case.base.hex(), "split": case.split.hex(), "base2": base2.hex()})
        return
    base_btf = Btf.from_bytes(case.base)
    parts = [
        f"# btfspec gen --seed {seed} --size {size} --profile {profile}\n",
        f"# perturbation: {p.kind}: {p.description}\n",
        f"# label: {p.label} errno: {p.errno}"
        + (f" stale: {' '.join(p.stale_nodes)}" if p.stale_nodes else "") + "\n",
        f"## base.btf ({base_btf.nr_types} types)\n", dump_raw(base_btf),
        "## split.btf\n", dump_raw(Btf.from_bytes(case.split, base=base_btf)),
        "## base2.btf\n", dump_raw(Btf.from_bytes(base2)),
    ]
    _write("".join(parts).encode("latin-1"))


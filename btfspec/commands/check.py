"""``btfspec check``: will a module's BTF load on a given kernel (:mod:`btfspec.oracle.kernels.check`)?

Exit status: 0 loads cleanly, 1 will not load or loads with stale copies, 2 usage error or unreadable
input.
"""

from __future__ import annotations

import click

from btfspec.clitools import emit_json, guarded, json_option
from btfspec.oracle.impls.outcome import DEFAULT_TIMEOUT
from btfspec.oracle.kernels.check import FAILS, IMPLS, OK, STALE, CheckReport, check_module, check_on_kernel
from btfspec.spec.errors import InputError
from btfspec.spec.sources import HOST_VMLINUX

MAX_LISTED = 40


def _module_line(r: CheckReport) -> str:
    if r.has_btf_base:
        how = "has .BTF.base (distilled at build time)"
        if r.distilled_types is not None:
            how += (f": {r.distilled_types} distilled base types, {r.own_types} own types, "
                    f"{r.copied_types} copied types{'' if r.copies_exact else ' (copies located heuristically)'}")
        return how
    how = f"classic split (no .BTF.base), distilled here against {r.built_against}"
    if r.distilled_types is not None:
        how += f": {r.distilled_types} distilled base types, {r.copied_types} copied types"
    return how


def print_report(r: CheckReport) -> None:
    """The report in user terms."""
    verdict = {OK: "LOADS", STALE: "LOADS, WITH STALE COPIES", FAILS: "WILL NOT LOAD"}[r.status]
    click.echo(f"check: {r.module} on {r.target}: {verdict}")
    click.echo(f"  module: {_module_line(r)}")
    if r.status == FAILS:
        click.echo(f"  {r.stage} [{r.impl}], which stops at the first failure: {r.reason}")
    else:
        click.echo(f"  relocation [{r.impl}]: ok, every distilled base type maps onto the target")
    for p in (p for p in r.problems if not p.dist_id):  # the module's BTF or the target as a whole
        click.echo(f"  {p.label}: {p.text}")
    typed = [p for p in r.problems if p.dist_id]
    if typed:
        n = len(typed)
        click.echo(f"  {n} distilled base type{'s' if n > 1 else ''} cannot be mapped onto the target:")
        for p in typed[:MAX_LISTED]:
            click.echo(f"    {p.label}: {p.text}")
            if p.affected:
                click.echo(f"      affects: {', '.join(p.affected)}")
            else:
                click.echo("      affects: no named type of the module (only anonymous types nothing refers to)")
        if n > MAX_LISTED:
            click.echo(f"    ... and {n - MAX_LISTED} more (--json lists all)")
    if r.stale:
        n = len(r.stale)
        click.echo(f"  {n} copied type{'s' if n > 1 else ''} {'do' if n > 1 else 'does'} not match the target: the "
                   f"module describes {'them' if n > 1 else 'it'} as in the kernel it was built against")
        for s in r.stale[:MAX_LISTED]:
            click.echo(f"    {s.verdict}: {s.text}")
            if s.difference:
                click.echo(f"      first difference: {s.difference}")
            if s.used_by:
                click.echo(f"      used by: {', '.join(s.used_by)}")
        if not r.built_against and any(s.verdict == "gone" for s in r.stale):
            click.echo("    (give --built-against to say what changed)")
    if r.btf_ids is not None:
        changed = [e for e in r.btf_ids if e.new != e.old]
        unresolved = [e for e in r.btf_ids if e.new is None and e.old]
        click.echo(f"  .BTF_ids: {len(r.btf_ids)} id slot(s), {len(changed)} remapped on load"
                   + (f", {len(unresolved)} unresolved" if unresolved else ""))
        for e in changed[:MAX_LISTED]:
            new = "unresolved (0)" if e.new is None else f"[{e.new}]"
            click.echo(f"    {e.what}: [{e.old}] -> {new}")
    for note in r.notes:
        click.echo(f"  note: {note}")


@click.command("check")
@click.argument("module", metavar="MODULE")
@click.option("--target", "target", metavar="VMLINUX", default=None,
              help="The kernel to load on: vmlinux ELF, raw BTF, a fetch-kernel directory or /sys/kernel/btf/vmlinux "
                   f"[default: {HOST_VMLINUX}].")
@click.option("--target-kernel", "target_kernel", metavar="PACKAGE_OR_VERSION", default=None,
              help="Instead of --target: load it on that Debian kernel (a linux-image-* package or a release such as "
                   "6.12.118+deb12-cloud-amd64), booted in a QEMU guest whose module loader relocates (kernel-vm; "
                   "the package is fetched into the cache on first use).")
@click.option("--built-against", "built_against", metavar="VMLINUX", default=None,
              help="The vmlinux the module was built on (needed without .BTF.base; sharpens stale-copy reports).")
@click.option("--impl", type=click.Choice(IMPLS), default="python", show_default=True,
              help="Implementation that distills and relocates (the kernel runs libbpf's code); with "
                   "--target-kernel it only distills (the guest's loader relocates).")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=DEFAULT_TIMEOUT, show_default=True,
              help="Seconds per libbpf call.")
@json_option
@guarded
def check_cmd(module: str, target: str | None, target_kernel: str | None, built_against: str | None, impl: str,
              timeout: float, as_json: bool) -> None:
    """Will MODULE's BTF load on the target kernel?

    MODULE is a .ko (optionally .xz/.zst/.gz) or a raw split BTF file. With a .BTF.base it is
    relocated onto the target; without one, --built-against names the vmlinux it was built on and it
    is distilled first. Reports every distilled base type that fails to map (missing, size changed,
    several candidates, INT encoding changed) with the module types it affects, stale copies (types
    copied from the old kernel that differ in the target) with their first difference, and the
    .BTF_ids remapping. With --target-kernel the answer is that kernel's: its module loader loads the
    module's BTF in a QEMU guest, and the kernel log says why not.
    """
    if target_kernel is not None:
        if target is not None:
            raise InputError("give --target or --target-kernel, not both")
        rep = check_on_kernel(module, target_kernel, built_against, impl, timeout=timeout)
    else:
        rep = check_module(module, target or HOST_VMLINUX, built_against, impl, timeout=timeout)
    if as_json:
        emit_json(rep.to_dict())
    else:
        print_report(rep)
    raise SystemExit(rep.exit_code)


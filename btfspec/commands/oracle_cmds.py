"""``btfspec distill``, ``btfspec relocate`` and ``btfspec compare``: module-level operations.

Exit status: 0 success (compare: every implementation agrees), 1 distill/relocate failed or the
implementations disagree, 2 usage error or unreadable input.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from typing import Any, TypeVar

import click

from btfspec.clitools import EXIT_NEGATIVE, emit_json, fail, guarded, json_option, split_list
from btfspec.oracle.impls.outcome import DEFAULT_TIMEOUT, Outcome
from btfspec.oracle.kernels import kmodule
from btfspec.oracle.kernels.kmodule import Module, OracleError, Result
from btfspec.spec.errors import InputError, errno_text

F = TypeVar("F", bound=Callable[..., Any])


def _oracle_guarded(func: F) -> F:
    """:func:`guarded` plus OracleError -> one line, exit status 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except OracleError as exc:
            fail(str(exc), EXIT_NEGATIVE)
        return None

    return guarded(wrapper)  # type: ignore[return-value]


def _impl_options(multi: bool, guest: bool = False) -> Callable[[F], F]:
    def deco(func: F) -> F:
        help_impl = ("Comma-separated implementations to compare (python, python-strict, libbpf, cmd); "
                     "the first is the reference the others are compared with." if multi else
                     "Implementation: python (the reference), python-strict, libbpf"
                     + (", cmd or kernel-vm (the module loader of a QEMU guest; opt-in)." if guest else " or cmd."))
        options = [
            click.option("--impl", "impl_names", default="python,libbpf" if multi else "python",
                         show_default=True, help=help_impl),
            click.option("--distill-cmd", metavar="TEMPLATE",
                         help="For --impl cmd: '{split} {base} {out_base} {out_split}' command template."),
            click.option("--relocate-cmd", metavar="TEMPLATE",
                         help="For --impl cmd: '{split} {distilled_base} {base} {out}' command template."),
            click.option("--timeout", default=DEFAULT_TIMEOUT, show_default=True,
                         help="Seconds per libbpf/cmd operation."),
        ]
        for opt in reversed(options):
            func = opt(func)
        return func
    return deco


def _make_impls(names: str, *, multi: bool, timeout: float, distill_cmd: str | None,
                relocate_cmd: str | None) -> list[Any]:
    """The implementations named by ``--impl``; InputError (exit 2) for unknown or unusable ones."""
    from btfspec.oracle.impls import adapter as impls

    try:
        parsed = impls.parse_impl_list(split_list(names) or [names])
        if "kernel" in parsed:
            raise ValueError("the kernel implementation cannot distill or relocate (it only accepts/rejects BTF)")
        if not multi and len(parsed) != 1:
            raise ValueError(f"--impl takes one implementation here, got {', '.join(parsed)}")
        if multi and len(parsed) < 2:
            raise ValueError("compare needs at least two implementations, e.g. --impl python,libbpf")
        return impls.make_impls(parsed, timeout=timeout, distill_cmd=distill_cmd, relocate_cmd=relocate_cmd)
    except ValueError as exc:  # unknown names and ImplUnavailable
        raise InputError(f"--impl: {exc}") from None


def _single_impl(names: str, timeout: float, distill_cmd: str | None, relocate_cmd: str | None) -> Any:
    """The one implementation ``--impl`` names."""
    return _make_impls(names, multi=False, timeout=timeout, distill_cmd=distill_cmd, relocate_cmd=relocate_cmd)[0]


def _close(impl: Any) -> None:
    from btfspec.oracle.impls.adapter import close_impls

    close_impls([impl])


# --------------------------------------------------------------------------------------------------
# reporting
# --------------------------------------------------------------------------------------------------

_SECTION = {"split": ".BTF", "base": ".BTF.base"}


def _result_dict(mod: Module, res: Result) -> dict[str, Any]:
    ids = res.btf_ids
    return {
        "op": res.op,
        "input": mod.path,
        "base": mod.base_path,
        "impl": res.impl,
        "outputs": {role: {"bytes": len(blob), "types": res.types(role),
                           "sha256": hashlib.sha256(blob).hexdigest()} for role, blob in res.outputs.items()},
        "btf_ids": None if ids is None else {"remapped": ids.remapped, "changed": ids.changed,
                                             "sets_sorted": ids.sets_sorted, "unresolved": ids.unresolved},
        "written": res.written,
        "warnings": res.warnings,
        "log": res.outcome.log,
    }


def _report(mod: Module, res: Result, as_json: bool, head: str) -> None:
    for w in res.warnings + (res.btf_ids.unresolved if res.btf_ids else []):
        click.echo(f"btfspec: warning: {w}", err=True)
    if as_json:
        emit_json(_result_dict(mod, res))
        return
    click.echo(head)
    ids = res.btf_ids
    if ids is not None:
        extra = f", {ids.sets_sorted} set(s) re-sorted" if ids.sets_sorted else ""
        unres = f", {len(ids.unresolved)} unresolved (written as 0)" if ids.unresolved else ""
        click.echo(f"  .BTF_ids: {ids.remapped} id(s) remapped ({ids.changed} changed){extra}{unres}")
    for path in res.written:
        click.echo(f"  wrote {path}")


def _sizes(res: Result, roles: tuple[str, ...]) -> str:
    return ", ".join(f"{_SECTION[r] if r in _SECTION else r} {res.types(r)} types ({len(res.outputs[r]):,} B)"
                     for r in roles)


# --------------------------------------------------------------------------------------------------
# commands
# --------------------------------------------------------------------------------------------------

@click.command("distill")
@click.argument("split")
@click.option("-B", "--base", "base_path", metavar="BASE",
              help="Base BTF SPLIT was built on (default for /sys/kernel/btf/<module>: vmlinux).")
@_impl_options(multi=False)
@click.option("-o", "--output", "out_elf", metavar="OUT.ko",
              help="Write a copy of the ELF SPLIT with new .BTF, .BTF.base and .BTF_ids.")
@click.option("--out-base", metavar="FILE", help="Write the distilled base as raw BTF.")
@click.option("--out-split", metavar="FILE", help="Write the new split as raw BTF.")
@click.option("--sort", "sort_names", is_flag=True,
              help="As resolve_btfids does on 2026 kernels: btf__dedup the split first (libbpf, when usable), "
                   "then distill, then sort the new split by name.")
@json_option
@_oracle_guarded
def distill_cmd(split: str, base_path: str | None, impl_names: str, distill_cmd: str | None,
                relocate_cmd: str | None, timeout: float, out_elf: str | None, out_base: str | None,
                out_split: str | None, sort_names: bool, as_json: bool) -> None:
    """Distill SPLIT's base, as pahole --btf_features=distilled_base and resolve_btfids -B do.

    For an ELF module, -o writes a copy whose .BTF is the new split, .BTF.base the distilled base,
    and whose .BTF_ids ids (located through the __BTF_ID__* symbols) are rewritten to the new ids.
    """
    if out_elf is None and out_base is None and out_split is None:
        raise InputError("distill: say where to write: -o OUT.ko (ELF input) and/or --out-base F --out-split F")
    mod = kmodule.load_module(split, base_path)
    if out_elf is not None and not mod.inp.is_elf:
        raise InputError(f"{split}: -o writes an ELF copy and needs an ELF input; use --out-base/--out-split")
    impl = _single_impl(impl_names, timeout, distill_cmd, relocate_cmd)
    try:
        res = kmodule.distill(mod, impl, sort=sort_names)
    finally:
        _close(impl)
    raw = {role: path for role, path in (("base", out_base), ("split", out_split)) if path}
    kmodule.write_outputs(mod, res, elf_out=out_elf, raw=raw)
    _report(mod, res, as_json, f"distilled {split} against {mod.base_path} [{res.impl}]: "
                               f"{_sizes(res, ('base', 'split'))}")


def _guest_base(impl: Any, base_path: str | None) -> tuple[bytes, str]:
    """For ``--impl kernel-vm``: the guest's vmlinux BTF and its label; ``--base`` must be that vmlinux."""
    from btfspec.spec.sources import load_input

    label = f"the {impl.image.package} guest's vmlinux"
    if base_path is None:
        return impl.vmlinux, label
    base = load_input(base_path).btf
    if not impl.targets(base):
        raise InputError(f"--base {base_path}: kernel-vm relocates onto {label} only "
                         f"({len(impl.vmlinux):,} B of BTF), not onto this base ({len(base):,} B); omit --base")
    return base, base_path


@click.command("relocate")
@click.argument("split")
@click.option("--distilled-base", "dist_path", metavar="DB",
              help="Distilled base SPLIT sits on (default: its .BTF.base section).")
@click.option("-B", "--base", "base_path", metavar="BASE",
              help="Full base BTF to relocate onto (required, except with --impl kernel-vm: its guest's vmlinux).")
@_impl_options(multi=False, guest=True)
@click.option("-o", "--output", "out", metavar="OUT", required=True,
              help="Raw BTF; an ELF copy when SPLIT is an ELF and OUT ends in .ko.")
@json_option
@_oracle_guarded
def relocate_cmd(split: str, dist_path: str | None, base_path: str, impl_names: str, distill_cmd: str | None,
                 relocate_cmd: str | None, timeout: float, out: str, as_json: bool) -> None:
    """Relocate SPLIT from its distilled base onto BASE, as the kernel does when it loads a module.

    An ELF output gets the relocated .BTF, loses .BTF.base, and has its .BTF_ids remapped like the
    kernel's btf_relocate_id(). With --impl kernel-vm the module loader of a QEMU guest relocates
    (the split and distilled base carried in a real module, insmod'ed): onto the guest's vmlinux only.
    """
    from btfspec.oracle.impls.adapter import ImplUnavailable
    from btfspec.spec.sources import load_input

    guest = split_list(impl_names) == ["kernel-vm"]
    if base_path is None and not guest:
        raise InputError("relocate: give --base BASE, the full base to relocate onto "
                         "(only --impl kernel-vm defaults to its guest's vmlinux)")
    dist = load_input(dist_path).btf if dist_path else None
    impl = _single_impl(impl_names, timeout, distill_cmd, relocate_cmd)
    try:
        if guest:
            base, base_path = _guest_base(impl, base_path)
            mod = kmodule.load_module(split)
            mod.base, mod.base_path = base, base_path
        else:
            mod = kmodule.load_module(split, base_path)
        as_elf = mod.inp.is_elf and out.endswith(".ko")
        if not as_elf:
            mod.layout = None  # raw output: .BTF_ids stays behind
        assert mod.base is not None
        try:
            res = kmodule.relocate(mod, mod.base, impl, dist)
        except ImplUnavailable as exc:  # the guest did not boot
            raise InputError(str(exc)) from None
    finally:
        _close(impl)
    if as_elf:
        kmodule.write_outputs(mod, res, elf_out=out)
    else:
        kmodule.write_outputs(mod, res, raw={"split": out})
    _report(mod, res, as_json, f"relocated {split} onto {base_path} [{res.impl}]: {_sizes(res, ('split',))}")


def _outcome_dict(out: Outcome) -> dict[str, Any]:
    return {"status": out.status, "errno": out.errno, "error": errno_text(out.errno) if out.errno else None,
            "reason": kmodule.reason_of(out) if not out.ok else None, "detail": out.detail,
            "outputs": {role: {"bytes": len(b), "sha256": hashlib.sha256(b).hexdigest()}
                        for role, b in out.outputs.items()}}


@click.command("compare")
@click.argument("split")
@click.option("-B", "--base", "base_path", metavar="BASE", help="Base BTF SPLIT was built on.")
@click.option("--target", "target_path", metavar="BASE2", help="Base to relocate onto (default: BASE).")
@_impl_options(multi=True)
@json_option
@_oracle_guarded
def compare_cmd(split: str, base_path: str | None, target_path: str | None, impl_names: str,
                distill_cmd: str | None, relocate_cmd: str | None, timeout: float, as_json: bool) -> None:
    """Distill SPLIT, relocate the result onto BASE2, with each implementation, and compare.

    Exit 0 when all agree (output bytes and errno; python vs libbpf also accepts the two excused
    libbpf quirks), 1 with both sides' bpftool-style text at the first differing type otherwise. A
    module that already has .BTF.base is only relocated.
    """
    from btfspec.spec.sources import load_input

    mod = kmodule.load_module(split, base_path)
    target = load_input(target_path).btf if target_path else None
    impls = _make_impls(impl_names, multi=True, timeout=timeout, distill_cmd=distill_cmd,
                        relocate_cmd=relocate_cmd)
    try:
        cmp = kmodule.compare(mod, impls, target)
    finally:
        for impl in impls:
            _close(impl)
    diff = cmp.difference
    if as_json:
        emit_json({"input": split, "base": mod.base_path, "target": target_path or mod.base_path,
                   "impls": [i.name for i in impls], "agree": cmp.agree, "findings": cmp.findings,
                   "stages": {op: {name: _outcome_dict(o) for name, o in outs.items()}
                              for op, outs in cmp.stages.items()},
                   "difference": diff.to_dict() if diff else None})
    else:
        click.echo(f"compare {split} (base {mod.base_path}, target {target_path or mod.base_path}): "
                   f"{', '.join(i.name for i in impls)}")
        for op, outs in cmp.stages.items():
            for name, out in outs.items():
                click.echo(f"  {op:<8} {name:<14} {out.describe()}")
        for f in cmp.findings:
            click.echo(f"  note: {f}")
        if diff is None:
            click.echo("all implementations agree")
        else:
            click.echo(f"DISAGREE at {diff.op} ({diff.a} vs {diff.b}): {diff.what}")
            if diff.text_a or diff.text_b:
                for name, text in ((diff.a, diff.text_a), (diff.b, diff.text_b)):
                    click.echo(f"  {name}:")
                    for line in text:
                        click.echo(f"    {line}")
                click.echo("  diff:")
                for line in diff.diff:
                    click.echo(f"    {line}")
    if diff is not None:
        raise SystemExit(EXIT_NEGATIVE)


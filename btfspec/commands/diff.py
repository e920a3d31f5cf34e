"""``btfspec diff``: are two BTFs (each split on its own base) semantically equivalent?"""

from __future__ import annotations

import click

from btfspec.clitools import EXIT_NEGATIVE, EXIT_OK, EXIT_USAGE, emit_json, fail, guarded, json_option
from btfspec.commands.text import load_btf
from btfspec.oracle.equiv.compare import equivalent
from btfspec.spec.errors import BtfError, errno_text
from btfspec.spec.model import Btf


def _open(path: str, base_path: str | None) -> Btf:
    """``path`` as ``btfspec dump`` reads it (a module with ``.BTF.base`` and ``--base-*`` is relocated onto
    that base first, as ``bpftool -B`` does); invalid BTF is bad input here (exit 2), not a negative answer."""
    try:
        return load_btf(path, base_path)
    except BtfError as exc:
        fail(f"invalid BTF: {exc} [{errno_text(exc.errno)}]", EXIT_USAGE)
        raise AssertionError from exc  # fail() exits


def _where(btf: Btf) -> str:
    if btf.base is None:
        return f"{btf.nr_types} types, no base"
    return f"{btf.nr_types} split types on a base of {btf.base.nr_types}"


@click.command("diff")
@click.argument("a_path", metavar="A")
@click.argument("b_path", metavar="B")
@click.option("--base-a", "base_a", metavar="BASE", help="Base BTF of A (default: its .BTF.base, or vmlinux for "
              "/sys/kernel/btf/<module>).")
@click.option("--base-b", "base_b", metavar="BASE", help="Base BTF of B (same defaults).")
@click.option("-n", "--max-differences", "max_diffs", type=click.IntRange(1, 20), default=5, show_default=True,
              help="Differences to print.")
@json_option
@guarded
def diff_cmd(a_path: str, b_path: str, base_a: str | None, base_b: str | None, max_diffs: int, as_json: bool) -> None:
    """Compare A and B by meaning: do they describe the same types?

    Type ids, order, string offsets and placement do not matter (a type that distillation moved from
    the base into the split is the same type when both resolve to the same graph); named structs,
    unions and enums in both bases are compared by name and size. Without --base-a/--base-b a module's
    .BTF.base is its base (a distilled module compares as it is); with it, the module is relocated onto
    that base first. Exit status: 0 equivalent, 1 different, 2 bad input.
    """
    a = _open(a_path, base_a)
    b = _open(b_path, base_b)
    try:
        res = equivalent(a, b)
    except BtfError as exc:
        fail(f"invalid BTF: {exc} [{errno_text(exc.errno)}]", EXIT_USAGE)
        return
    if as_json:
        emit_json({"a": a_path, "b": b_path, "base_a": base_a, "base_b": base_b, **res.to_dict()})
    elif res.equal:
        click.echo(f"equivalent: {a_path} ({_where(a)}) and {b_path} ({_where(b)})")
    else:
        click.echo(f"different: {res.first_difference}")
        for line in res.differences[1:max_diffs]:
            click.echo(f"  also: {line}")
        if res.count > max_diffs:
            click.echo(f"  ... {res.count - max_diffs} more difference{'s' if res.count - max_diffs > 1 else ''}")
    raise SystemExit(EXIT_OK if res.equal else EXIT_NEGATIVE)


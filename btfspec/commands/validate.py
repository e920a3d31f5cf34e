"""``btfspec validate``: list every rule a BTF blob breaks (libbpf v1.6 or kernel rules)."""

from __future__ import annotations

import os

import click

from btfspec.clitools import EXIT_NEGATIVE, EXIT_OK, emit_json, guarded, json_option
from btfspec.spec.elf import is_elf
from btfspec.spec.errors import InputError
from btfspec.spec.formats import rule_set
from btfspec.spec.sources import load_input, read_bytes_any
from btfspec.spec.validate import RULES, validate


def _load(path: str) -> tuple[bytes, bytes | None, str | None]:
    """(BTF bytes, base bytes from the file itself, path of an implied base file).

    Content that is neither BTF nor ELF is returned as is, so it is reported as a violation (bad
    magic, truncated header) rather than as an unreadable file.
    """
    try:
        inp = load_input(path)
    except InputError as exc:
        if os.path.isfile(path) and os.access(path, os.R_OK) and os.path.getsize(path) == 0:
            return b"", None, None
        data = read_bytes_any(path)  # unreadable or corrupt compression: InputError, exit 2
        if is_elf(data):  # an ELF without .BTF: a usage problem, keep the loader's message
            raise exc from None
        return data, None, None
    return inp.btf, inp.base, inp.sysfs_vmlinux


@click.command("validate")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("-B", "--base", "base_path", type=click.Path(dir_okay=False),
              help="Base BTF for a split FILE (default: FILE's own .BTF.base, or vmlinux for /sys/kernel/btf "
                   "modules).")
@click.option("--rules", type=click.Choice(RULES), default="libbpf", show_default=True,
              help="libbpf (= libbpf1.6): exactly what libbpf v1.6 btf__new rejects; libbpf-2026: libbpf "
                   "master (layout section, 7-bit kind / 24-bit vlen); kernel (= kernel-6.18): the kernel's "
                   "BTF verifier (BPF_BTF_LOAD for standalone BTF, module rules with a base); kernel-7.1: "
                   "with its 32-byte header and layout section.")
@json_option
@guarded
def validate_cmd(file: str, base_path: str | None, rules: str, as_json: bool) -> None:
    """Check FILE (raw BTF, ELF with .BTF, compressed, or /sys/kernel/btf/*) against the rules.

    Prints one line per violation with its byte offset, type id, rule and errno.  Exit status:
    0 valid, 1 invalid (truncated or garbage data included), 2 usage error or unreadable file.
    """
    blob, own_base, implied_base = _load(file)
    base = own_base
    if base_path is not None:
        base = load_input(base_path).btf
    elif base is None and implied_base is not None:
        base = load_input(implied_base).btf
    problems = validate(blob, base, rules)  # type: ignore[arg-type]
    if as_json:
        emit_json({"file": file, "rules": rules, "split": base is not None, "valid": not problems,
                   "violations": [v.to_dict() for v in problems]})
    elif problems:
        for v in problems:
            click.echo(str(v))
    else:
        kind = "split BTF" if base is not None else "BTF"
        click.echo(f"{file}: valid {kind} under {rule_set(rules).title}")
    raise SystemExit(EXIT_NEGATIVE if problems else EXIT_OK)


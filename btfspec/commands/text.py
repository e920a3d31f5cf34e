"""``btfspec dump`` (bpftool's ``format raw`` text or its ``-j`` JSON) and ``btfspec parse-text``."""

from __future__ import annotations

import json
import sys

import click

from btfspec.clitools import guarded, leave_now, quiet_stdout
from btfspec.spec.errors import InputError
from btfspec.spec.loader import implied_base, open_standalone, parse_labeled
from btfspec.spec.model import Btf
from btfspec.spec.sources import load_input, write_atomic
from btfspec.spec.text import dump_json, dump_raw_chunks


def load_btf(path: str, base_path: str | None) -> Btf:
    """FILE as bpftool would dump it (see :func:`btfspec.spec.loader.open_btf`); a module with ``.BTF.base``
    and ``--base`` is relocated onto that base first, as ``bpftool -B`` does."""
    inp = load_input(path)
    if inp.base is not None and base_path is not None:
        from btfspec.oracle.kernels.kmodule import relocated_view

        base = open_standalone(base_path)
        return parse_labeled(relocated_view(inp, base.raw or base.to_bytes()), path, base)
    return parse_labeled(inp.btf, path, implied_base(inp, base_path), use_layout=True)


def _write_stdout(chunks: list[bytes]) -> None:
    """Write to stdout; a closed pipe (``| head``) ends quietly with status 0."""
    out = sys.stdout.buffer
    try:
        for data in chunks:
            out.write(data)
        out.flush()
    except BrokenPipeError:
        quiet_stdout()
        sys.exit(0)


@click.command("dump")
@click.argument("file")
@click.option("-B", "--base", "base_path", metavar="BASE",
              help="Base BTF: FILE is split BTF on top of it (bpftool's -B).")
@click.option("--format", "fmt", type=click.Choice(["raw", "json"]), default="raw", show_default=True,
              help="bpftool's 'format raw' text, or its -j JSON.")
@guarded
def dump_cmd(file: str, base_path: str | None, fmt: str) -> None:
    """Print FILE like 'bpftool btf dump file FILE [-B BASE] format raw' (byte-identical).

    FILE may be raw BTF, an ELF file with .BTF (a module's .BTF.base is its base), a compressed
    file, or /sys/kernel/btf/<name> (modules get /sys/kernel/btf/vmlinux as their base). For split
    BTF only the split's own types are printed, numbered after the base's.
    """
    btf = load_btf(file, base_path)
    if fmt == "json":
        text = json.dumps({"types": dump_json(btf)}, ensure_ascii=False, separators=(",", ":")) + "\n"
        chunks = [text.encode("utf-8", "surrogateescape")]
    else:
        chunks = dump_raw_chunks(btf)
    _write_stdout(chunks)
    leave_now()


@click.command("parse-text")
@click.argument("text_path", metavar="TEXT")
@click.option("-B", "--base", "base_path", metavar="BASE", help="Base BTF of split-BTF text.")
@click.option("--endian", type=click.Choice(["little", "big"]), default="little", show_default=True,
              help="Byte order of the output.")
@click.option("-o", "--output", "out_path", required=True, metavar="OUT", help="Raw BTF file to write.")
@guarded
def parse_text_cmd(text_path: str, base_path: str | None, endian: str, out_path: str) -> None:
    """Rebuild raw BTF from 'format raw' TEXT ('-' for stdin) and write it to OUT.

    Dumping OUT prints TEXT again; the string layout is rebuilt (names interned like libbpf),
    and bits bpftool does not print are zero.
    """
    if text_path == "-":
        data = sys.stdin.buffer.read()
    else:
        try:
            with open(text_path, "rb") as f:
                data = f.read()
        except OSError as e:
            raise InputError(f"{text_path}: cannot read: {e.strerror or e}") from None
    from btfspec.spec.textparse import parse_text

    base = open_standalone(base_path) if base_path is not None else None
    btf = parse_text(data, base=base, order=endian, path=text_path)  # type: ignore[arg-type]
    write_atomic(out_path, btf.to_bytes())


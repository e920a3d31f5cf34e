"""Open BTF inputs as models, with the base each input implies; errors name the file."""

from __future__ import annotations

from btfspec.spec.errors import BtfError
from btfspec.spec.model import Btf
from btfspec.spec.sources import BtfInput, load_input


def parse_labeled(blob: bytes, label: str, base: Btf | None = None, *, use_layout: bool = False) -> Btf:
    """Parse a blob; a :class:`BtfError` names the file (``label``) it came from. ``use_layout``: size
    kinds the grammar does not know from the blob's layout section (libbpf master)."""
    try:
        return Btf.from_bytes(blob, base=base, use_layout=use_layout)
    except BtfError as exc:
        raise BtfError(f"{label}: {exc.message}", offset=exc.offset, type_id=exc.type_id, errno=exc.errno,
                       rule=exc.rule) from None


def open_standalone(path: str) -> Btf:
    """A base file (raw, ELF or sysfs) as standalone BTF."""
    return parse_labeled(load_input(path).btf, path)


def implied_base(inp: BtfInput, base_path: str | None) -> Btf | None:
    """The base bpftool would use: ``--base``, else a module's ``.BTF.base``, else vmlinux for sysfs modules.

    When both ``--base`` and ``.BTF.base`` exist the distilled base wins here (relocating onto
    ``--base`` is an oracle operation, see ``btfspec.oracle.kernels.kmodule``).
    """
    if inp.base is not None:
        return parse_labeled(inp.base, f"{inp.path} (.BTF.base)")
    if base_path is not None:
        return open_standalone(base_path)
    if inp.sysfs_vmlinux is not None:
        return open_standalone(inp.sysfs_vmlinux)
    return None


def open_btf(path: str, base_path: str | None = None) -> Btf:
    """FILE as bpftool would read it: split on its implied base, standalone otherwise."""
    inp = load_input(path)
    return parse_labeled(inp.btf, path, implied_base(inp, base_path))

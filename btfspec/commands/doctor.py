"""``btfspec doctor``: which implementations and tools are usable here, and why others are not."""

from __future__ import annotations

import importlib
import importlib.util
import os
import shutil
import subprocess

import click

from btfspec.clitools import emit_json, guarded, json_option
from btfspec.spec.sources import HOST_VMLINUX


def _tool(name: str, version_args: list[str], purpose: str, package: str) -> dict[str, object]:
    path = shutil.which(name)
    if path is None:
        return {"name": name, "usable": False, "purpose": purpose,
                "reason": f"not installed (Debian package {package}; scripts/bootstrap.sh installs it as root)"}
    try:
        out = subprocess.run([path, *version_args], capture_output=True, text=True, timeout=10)
        text = (out.stdout or out.stderr).strip().splitlines()
        version = text[0] if text else ""
    except (OSError, subprocess.SubprocessError) as exc:
        version = f"(version unknown: {exc})"
    return {"name": name, "usable": True, "purpose": purpose, "path": path, "version": version}


def _impl_reason(module: str) -> str | None:
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        return f"module {module} unavailable: {exc}"
    reason = getattr(mod, "unavailable_reason", None)
    return reason() if callable(reason) else None


def _python_pkg(name: str, purpose: str) -> dict[str, object]:
    ok = importlib.util.find_spec(name) is not None
    row: dict[str, object] = {"name": name, "usable": ok, "purpose": purpose}
    if not ok:
        row["reason"] = "not installed (pip install -e '.[campaign]')"
    return row


def report() -> dict[str, list[dict[str, object]]]:
    """Everything doctor checks, as plain data."""
    impls = [
        {"name": "python", "usable": True, "purpose": "reference distill/relocate, libbpf-compatible"},
        {"name": "python-strict", "usable": True, "purpose": "reference that reports libbpf quirks"},
    ]
    for name, module, purpose in [("libbpf", "btfspec.oracle.impls.libbpf", "libbpf v1.6 via ctypes (pylibbpf wheel)"),
                                  ("kernel", "btfspec.oracle.impls.kernel", "accept/reject via bpf(BPF_BTF_LOAD)")]:
        reason = _impl_reason(module)
        row: dict[str, object] = {"name": name, "usable": reason is None, "purpose": purpose}
        if reason:
            row["reason"] = reason
        impls.append(row)
    impls.append({"name": "cmd", "usable": True,
                  "purpose": "any external program via --distill-cmd/--relocate-cmd templates"})
    from btfspec.oracle.impls import kernel_vm

    vm_reason = kernel_vm.unavailable_reason()
    vm_row: dict[str, object] = {"name": "kernel-vm", "usable": vm_reason is None,
                                 "purpose": "relocation by the module loader of a Debian kernel in QEMU"}
    vm_row["reason" if vm_reason else "version"] = vm_reason or kernel_vm.describe_setup()
    impls.append(vm_row)
    tools = [
        _tool("bpftool", ["version"], "text-format cross-check", "bpftool"),
        _tool("pahole", ["--version"], "DWARF-to-BTF encoder", "pahole"),
        _tool("gcc", ["--version"], "compiles C for pahole", "gcc"),
        _tool("objcopy", ["--version"], "writes ELF sections", "binutils"),
        _tool("redis-server", ["--version"], "shared hypothesis example database", "redis-server"),
        _tool("qemu-system-x86_64", ["--version"], "boots the kernel-vm guest", "qemu-system-x86"),
    ]
    host = {"name": HOST_VMLINUX, "usable": os.access(HOST_VMLINUX, os.R_OK), "purpose": "host vmlinux BTF"}
    if not host["usable"]:
        host["reason"] = "absent or unreadable (kernel without CONFIG_DEBUG_INFO_BTF, or not Linux)"
    packages = [
        _python_pkg("distributed", "multi-machine campaigns (--scheduler)"),
        _python_pkg("redis", "redis:// example database"),
        _python_pkg("matplotlib", "stats histograms"),
    ]
    return {"implementations": impls, "tools": tools, "inputs": [host], "packages": packages}


@click.command()
@json_option
@guarded
def doctor(as_json: bool) -> None:
    """Say which implementations, tools and inputs are usable here, and why others are not."""
    rep = report()
    if as_json:
        emit_json(rep)
        return
    for section, rows in rep.items():
        click.echo(f"{section}:")
        for row in rows:
            mark = "ok  " if row["usable"] else "NO  "
            extra = row.get("version") or row.get("reason") or ""
            click.echo(f"  {mark}{row['name']:<22} {row['purpose']}" + (f" — {extra}" if extra else ""))


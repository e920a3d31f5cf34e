"""The lazy command table: ``--help`` imports no command module and lists what the commands say."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from btfspec.cli import COMMANDS, load_command, main

CASE = Path(__file__).resolve().parent.parent / "corpus" / "cases" / "E1-fwd-and-struct-same-name"
HEAVY = ("hypothesis", "numpy", "rich", "construct", "elftools", "btfspec.oracle.fuzz.campaign",
         "btfspec.oracle.impls.reference")


def imported_after(argv: list[str]) -> set[str]:
    """The modules of ``HEAVY`` a fresh interpreter has imported after running ``btfspec ARGV``."""
    code = ("import json, sys\n"
            "from btfspec.cli import main\n"
            "try:\n"
            f"    main({argv!r})\n"
            "except SystemExit as exc:\n"
            "    assert exc.code in (0, None), exc.code\n"
            f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]), file=sys.stderr)\n")
    proc = subprocess.run([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return set(json.loads(proc.stderr.splitlines()[-1]))


def test_top_level_help_imports_nothing_heavy() -> None:
    assert imported_after(["--help"]) == set()


def test_dump_imports_nothing_heavy() -> None:
    assert imported_after(["dump", str(CASE / "base.btf")]) == set()


@pytest.mark.parametrize("width", [60, 80, 120, 200])
def test_listing_matches_the_commands_own_help(width: int) -> None:
    """The table's short help gives the same ``--help`` as a group holding the imported commands."""
    eager = click.Group(name="btfspec", help=main.help, params=main.params,
                        context_settings=main.context_settings,
                        commands={name: load_command(name) for name in COMMANDS})
    runner = CliRunner()
    lazy_out = runner.invoke(main, ["--help"], terminal_width=width, prog_name="btfspec").output
    eager_out = runner.invoke(eager, ["--help"], terminal_width=width, prog_name="btfspec").output
    assert "Commands:" in lazy_out
    assert lazy_out == eager_out


def _every_command_path() -> list[list[str]]:
    paths = []
    for name in sorted(COMMANDS):
        command = load_command(name)
        paths.append([name])
        if isinstance(command, click.Group):
            paths.extend([name, sub] for sub in sorted(command.commands))
    return paths


@pytest.mark.parametrize("path", _every_command_path(), ids=" ".join)
def test_every_command_help_works(path: list[str]) -> None:
    result = CliRunner().invoke(main, [*path, "--help"], prog_name="btfspec")
    assert result.exit_code == 0, result.output
    assert f"Usage: btfspec {' '.join(path)}" in result.output


def test_unknown_command_is_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["no-such-command"])
    assert result.exit_code == 2
    assert "No such command" in result.output


def test_a_helpers_broken_pipe_is_an_error_and_a_closed_stdout_is_not(tmp_path: Path) -> None:
    """A BrokenPipeError from a helper's pipe (a QEMU guest, a worker) is a one-line error, exit 2; one
    from stdout (``| head`` stopped reading) ends the command quietly with 0."""
    from btfspec.clitools import guarded

    @click.command()
    @guarded
    def broken() -> None:
        raise BrokenPipeError(32, "Broken pipe")

    res = CliRunner().invoke(broken, [])
    assert res.exit_code == 2 and res.output.strip() == \
        "btfspec: a helper process closed its pipe: Broken pipe [-EPIPE (32)]", res.output
    from btfspec.spec.sources import HOST_VMLINUX
    from tests.helpers import host_vmlinux

    host_vmlinux()  # skips without one
    proc = subprocess.Popen([sys.executable, "-m", "btfspec", "dump", HOST_VMLINUX], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline().startswith(b"[1] ")
    proc.stdout.close()  # as head does after its line
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0 and b"Traceback" not in err and b"helper" not in err, err

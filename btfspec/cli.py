"""The ``btfspec`` console command: a click group; each area registers its commands here."""

from __future__ import annotations

import importlib

import click

from btfspec.locations import keep_hypothesis_out_of_the_tree

# One module per area; each exposes ``COMMANDS``, a list of click commands.
COMMAND_MODULES = [
    "btfspec.commands.doctor",
    "btfspec.commands.bench",
    "btfspec.commands.realdata",
    "btfspec.commands.oracle_cmds",
    "btfspec.commands.text",
    "btfspec.commands.corpus",
    "btfspec.commands.validate",
    "btfspec.commands.fuzz",
    "btfspec.commands.gen",
    "btfspec.commands.diff",
    "btfspec.commands.check",
    "btfspec.commands.report",
    "btfspec.commands.ci",
]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="btfspec")
def main() -> None:
    """Declarative spec and fuzz-testing framework for BTF (BPF Type Format).

    Exit status: 0 success or positive answer, 1 the negative answer a command exists
    to give, 2 usage error or unreadable input.
    """
    keep_hypothesis_out_of_the_tree()


for _name in COMMAND_MODULES:
    for _cmd in importlib.import_module(_name).COMMANDS:
        main.add_command(_cmd)

"""The ``btfspec`` console command: a click group whose commands are imported on first use.

``btfspec --help`` lists every command from :data:`COMMANDS` without importing any of them, so
a command pays only for the modules it uses (``btfspec dump`` never imports hypothesis).
"""

from __future__ import annotations

import importlib

import click

from btfspec.clitools import running_as_command
from btfspec.locations import keep_hypothesis_out_of_the_tree

# name -> ("module:attribute" of the click command, its short help: the docstring's first
# paragraph, kept here so that ``--help`` needs no import; tests/test_cli.py checks they agree).
COMMANDS: dict[str, tuple[str, str]] = {
    "bench": ("btfspec.commands.bench:bench",
              "Benchmarks; they print figures and never fail on a missed target."),
    "check": ("btfspec.commands.check:check_cmd",
              "Will MODULE's BTF load on the target kernel?"),
    "ci": ("btfspec.commands.ci:ci",
           "Check an implementation the way a port's CI job would: replay the corpus, run a short campaign "
           "with a fixed seed, write the Markdown summary (the job summary on GitHub Actions)."),
    "compare": ("btfspec.commands.oracle_cmds:compare_cmd",
                "Distill SPLIT, relocate the result onto BASE2, with each implementation, and compare."),
    "corpus": ("btfspec.commands.corpus:corpus",
               "The regression corpus (corpus/README.md): replay or list its entries."),
    "diff": ("btfspec.commands.diff:diff_cmd",
             "Compare A and B by meaning: do they describe the same types?"),
    "distill": ("btfspec.commands.oracle_cmds:distill_cmd",
                "Distill SPLIT's base, as pahole --btf_features=distilled_base and resolve_btfids -B do."),
    "doctor": ("btfspec.commands.doctor:doctor",
               "Say which implementations, tools and inputs are usable here, and why others are not."),
    "dump": ("btfspec.commands.text:dump_cmd",
             "Print FILE like 'bpftool btf dump file FILE [-B BASE] format raw' (byte-identical)."),
    "fetch-kernel": ("btfspec.commands.realdata:fetch_kernel_cmd",
                     "Download a Debian kernel image package and extract vmlinux and module BTF."),
    "fuzz": ("btfspec.commands.fuzz:fuzz",
             "Fuzz the implementations with properties P1-P8; shrunk findings become corpus entries."),
    "gen": ("btfspec.commands.gen:gen",
            "Generate one case: a base (kernel part), a split (module part) and a perturbed base2."),
    "parse-text": ("btfspec.commands.text:parse_text_cmd",
                   "Rebuild raw BTF from 'format raw' TEXT ('-' for stdin) and write it to OUT."),
    "report": ("btfspec.commands.report:report",
               "Render RUN.json -- a campaign report (btfspec fuzz --report RUN.json) or btfspec stats --json "
               "output -- as one web page: finding groups with their reproduce command beside the first "
               "difference, throughput (over time when recorded), coverage; for stats the size histogram."),
    "relocate": ("btfspec.commands.oracle_cmds:relocate_cmd",
                 "Relocate SPLIT from its distilled base onto BASE, as the kernel does when it loads a module."),
    "stats": ("btfspec.commands.realdata:stats_cmd",
              "Distill every module against vmlinux and report the patch series' figures."),
    "validate": ("btfspec.commands.validate:validate_cmd",
                 "Check FILE (raw BTF, ELF with .BTF, compressed, or /sys/kernel/btf/*) against the rules."),
}


def load_command(name: str) -> click.Command:
    """Import and return the click command registered as ``name`` in :data:`COMMANDS`."""
    module_name, attribute = COMMANDS[name][0].split(":")
    command = getattr(importlib.import_module(module_name), attribute)
    assert isinstance(command, click.Command), f"{COMMANDS[name][0]} is not a click command"
    return command


class LazyGroup(click.Group):
    """A group that imports a command's module only when that command runs (or shows its help)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return load_command(cmd_name) if cmd_name in COMMANDS else None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """List the commands as :meth:`click.Group.format_commands` does, from the table's help."""
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = [(name, click.Command(name, help=COMMANDS[name][1]).get_short_help_str(limit)) for name in names]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="btfspec")
def main() -> None:
    """Declarative spec and fuzz-testing framework for BTF (BPF Type Format).

    Exit status: 0 success or positive answer, 1 the negative answer a command exists
    to give, 2 usage error or unreadable input.
    """
    keep_hypothesis_out_of_the_tree()


def run() -> None:
    """The ``btfspec`` console script (and ``python -m btfspec``): :func:`main` as the process itself."""
    running_as_command()
    main()

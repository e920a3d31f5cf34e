"""``btfspec fuzz``: a property-based fuzz campaign over the implementations (:mod:`btfspec.oracle.fuzz.campaign`)."""

from __future__ import annotations

import sys

import click

from btfspec.clitools import EXIT_NEGATIVE, EXIT_OK, EXIT_USAGE, emit_json, fail, split_list
from btfspec.oracle.fuzz.campaign.config import DEFAULT_TIMEOUT
from btfspec.oracle.fuzz.property import ALIASES
from btfspec.oracle.impls.adapter import NAMES_HELP


def _duration(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    from btfspec.oracle.fuzz.campaign import parse_duration

    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command("fuzz")
@click.option("--impl", "impl_list", metavar="NAME[,NAME...]",
              help=f"Implementations ({NAMES_HELP}); default: every usable one.")
@click.option("--property", "prop_list", metavar="P[,P...]",
              help=f"Properties ({', '.join(ALIASES.values())}, or by meaning: {', '.join(ALIASES)}); default: all.")
@click.option("--workers", type=click.IntRange(min=0), metavar="N",
              help="Worker slots (default: one per core, or every dask thread; 0 = in this process).")
@click.option("--time", "time_budget", callback=_duration, metavar="DURATION",
              help="Wall time of the whole campaign: 90s, 10m, 1h (default 2m unless --max-examples).")
@click.option("--max-examples", type=click.IntRange(min=1), metavar="N", help="Examples per property in total.")
@click.option("--seed", type=int, help="Campaign seed (default: random; printed in the report).")
@click.option("--db", metavar="PATH|redis://HOST:PORT|none",
              help="Shared hypothesis example database (default: .hypothesis/campaign beside the corpus dir).")
@click.option("--scheduler", metavar="tcp://HOST:PORT", help="Run the slots on this dask.distributed cluster.")
@click.option("--corpus-dir", type=click.Path(file_okay=False), metavar="DIR",
              help="Where findings are written as corpus entries (default: found/ in the results directory: "
                   "$BTFSPEC_RESULTS, else ~/.cache/btfspec/results).")
@click.option("--report", "report_path", type=click.Path(dir_okay=False), metavar="FILE",
              help="Also write the report as Markdown (.md) or JSON (.json).")
@click.option("--profile", type=click.Choice(["mixed", "kernel-valid", "libbpf-valid"]), default="mixed",
              show_default=True, help="Generator profile (mixed: chunks alternate between kernel-valid and "
              "libbpf-valid; the report says which found what).")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=DEFAULT_TIMEOUT, show_default=True,
              help="Seconds per libbpf or external-command call before it counts as a timeout.")
@click.option("--distill-cmd", metavar="TEMPLATE", help="cmd: '... {split} {base} {out_base} {out_split}'.")
@click.option("--relocate-cmd", metavar="TEMPLATE", help="cmd: '... {split} {distilled_base} {base} {out}'.")
@click.option("--serve-cmd", metavar="COMMAND",
              help="serve: a program answering requests on stdin/stdout (oracle/impls/PROTOCOL.md).")
@click.option("--shrink-share", type=click.FloatRange(min=0.0, max=1.0), default=0.1, show_default=True,
              metavar="FRACTION", help="Shrinking (or, for P1-P4 and P6, reducing) time per finding, as a share of "
              "--time (30 s without --time); then its smallest example so far is kept. 0: findings are kept as found.")
@click.option("--quiet", is_flag=True, help="No live progress on stderr.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout instead of text.")
def fuzz(impl_list: str | None, prop_list: str | None, workers: int | None, time_budget: float | None,
         max_examples: int | None, seed: int | None, db: str | None, scheduler: str | None, corpus_dir: str | None,
         report_path: str | None, profile: str, timeout: float, distill_cmd: str | None, relocate_cmd: str | None,
         serve_cmd: str | None, shrink_share: float, quiet: bool, as_json: bool) -> None:
    """Fuzz the implementations with properties P1-P8; shrunk findings become corpus entries.

    Two modes: with libbpf and another implementation (--impl serve,libbpf), the other is tested
    against libbpf -- what it does exactly as libbpf does (a shared quirk) is libbpf's finding, reported
    once, and only what separates them is its own; --impl libbpf alone tests libbpf against the
    generator's labels.  The report's "mode" line says which.  Findings are grouped by root cause
    (property, implementation, outcome, quirk, operation): one report line and one corpus entry each,
    with the smallest example.

    Each finding is written as soon as it is found (Ctrl-C or SIGTERM keeps them all and still prints
    the report); the campaign ends within --time + 10 s whatever the implementations do.
    Exit status 1 when the campaign found something not already in the corpus directory, 0 when it
    did not, 2 for a bad option, an unusable implementation or scheduler, or when no example ran.
    """
    from btfspec.oracle.fuzz.campaign import CampaignError, run_campaign
    from btfspec.oracle.fuzz.report import render_json, render_text

    try:
        result = run_campaign(
            properties=split_list(prop_list) or None, impl_names=split_list(impl_list) or None, workers=workers,
            time_budget=time_budget, max_examples=max_examples, seed=seed, db=db if db is not None else "",
            scheduler=scheduler, corpus_dir=corpus_dir, report_path=report_path, profile=profile,
            timeout=timeout, distill_cmd=distill_cmd, relocate_cmd=relocate_cmd, serve_cmd=serve_cmd,
            shrink_share=shrink_share, progress=not quiet)
    except CampaignError as exc:
        fail(str(exc), EXIT_USAGE)
        return
    except KeyboardInterrupt:
        fail("interrupted", 130)
        return
    if as_json:
        emit_json(render_json(result))
    else:
        click.echo(render_text(result), nl=False)
    if not result.properties:
        fail("nothing to run: " + "; ".join(f"{k}: {v}" for k, v in result.skipped.items()), EXIT_USAGE)
    if result.errors and not sum(result.examples.values()) and not result.interrupted:
        fail("no example ran: " + result.errors[0], EXIT_USAGE)
    sys.exit(EXIT_NEGATIVE if result.exit_code else EXIT_OK)


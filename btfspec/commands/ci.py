"""``btfspec ci``: the CI recipe for a port -- corpus replay, a fixed-seed short campaign, a Markdown summary.

The summary goes to ``--summary FILE`` or, on GitHub Actions, is appended to ``$GITHUB_STEP_SUMMARY``
(the job's summary page); everything else (findings as corpus entries, the campaign report as JSON,
Markdown and HTML) goes to ``--out DIR``.  The exit status is the verdict.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from btfspec.clitools import EXIT_NEGATIVE, EXIT_OK, EXIT_USAGE, fail, guarded, split_list
from btfspec.locations import CORPUS_DIR, results_dir

DEFAULT_SEED = 20260101
DEFAULT_TIME = "60s"


def _duration(ctx: click.Context, param: click.Parameter, value: str) -> float:
    from btfspec.oracle.fuzz.campaign import parse_duration

    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command("ci")
@click.option("--impl", "impl_list", required=True, metavar="NAME[,NAME...]",
              help="The implementations under test (e.g. cmd with --distill-cmd/--relocate-cmd), plus any to "
                   "compare with (libbpf).")
@click.option("--under-test", "under_test", metavar="NAME[,NAME...]",
              help="The implementations whose findings fail the job (default: the external ones in --impl, "
                   "cmd/serve; else all): the others are there to compare with.")
@click.option("--corpus", "corpora", multiple=True, type=click.Path(file_okay=False), metavar="DIR",
              help="Also replay this corpus directory (repeatable): the port's own entries.")
@click.option("--no-installed-corpus", is_flag=True, help="Do not replay the corpus installed with btfspec.")
@click.option("--findings", type=click.Path(file_okay=False), metavar="DIR",
              help="Where the campaign reads known findings and writes new ones (default: OUT/found).")
@click.option("--time", "time_budget", default=DEFAULT_TIME, show_default=True, callback=_duration,
              metavar="DURATION", help="Wall time of the campaign.")
@click.option("--seed", type=int, default=DEFAULT_SEED, show_default=True, help="Campaign seed (fixed: reruns agree).")
@click.option("--property", "prop_list", metavar="P[,P...]", help="Properties (default: all).")
@click.option("--workers", type=click.IntRange(min=0), metavar="N", help="Campaign workers (default: one per core).")
@click.option("--profile", type=click.Choice(["kernel-valid", "libbpf-valid"]), default="kernel-valid",
              show_default=True, help="Generator profile.")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=5.0, show_default=True,
              help="Seconds per worker or external-command call before it counts as a timeout.")
@click.option("--distill-cmd", metavar="TEMPLATE", help="cmd: '... {split} {base} {out_base} {out_split}'.")
@click.option("--relocate-cmd", metavar="TEMPLATE", help="cmd: '... {split} {distilled_base} {base} {out}'.")
@click.option("--serve-cmd", metavar="COMMAND",
              help="serve: a program answering requests on stdin/stdout (oracle/impls/PROTOCOL.md).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), metavar="DIR",
              help="Results directory (default: ci/ in $BTFSPEC_RESULTS, else ~/.cache/btfspec/results).")
@click.option("--summary", "summary_path", type=click.Path(dir_okay=False), metavar="FILE",
              help="Append the Markdown summary here (default: $GITHUB_STEP_SUMMARY when set).")
@guarded
def ci(impl_list: str, under_test: str | None, corpora: tuple[str, ...], no_installed_corpus: bool,
       findings: str | None, time_budget: float, seed: int, prop_list: str | None, workers: int | None,
       profile: str, timeout: float, distill_cmd: str | None, relocate_cmd: str | None, serve_cmd: str | None,
       out_dir: str | None, summary_path: str | None) -> None:
    """Check an implementation the way a port's CI job would: replay the corpus, run a short campaign
    with a fixed seed, write the Markdown summary (the job summary on GitHub Actions).

    Exit status 0 when every corpus entry passed (skips are fine) and the campaign found nothing new
    on the implementations under test, 1 when one of theirs failed or the campaign found something on
    one of them, 2 for a bad option or when nothing ran.
    """
    from btfspec.commands.corpus import entries_under, impl_names, replay
    from btfspec.oracle.fuzz import report as report_mod
    from btfspec.oracle.fuzz.campaign import CampaignError, run_campaign
    from btfspec.oracle.fuzz.corpus import FAIL, CorpusError
    from btfspec.oracle.fuzz.report_html import write_html
    from btfspec.testing import EXTERNAL_OPTIONS

    commands = {k: v for k, v in (("distill_cmd", distill_cmd), ("relocate_cmd", relocate_cmd),
                                  ("serve_cmd", serve_cmd)) if v is not None}
    names = impl_names(impl_list, commands)
    judged = split_list(under_test) or [n for n in names if n in EXTERNAL_OPTIONS] or names
    stray = sorted(set(judged) - set(names))
    if stray:
        raise click.BadParameter(f"{', '.join(stray)} not in --impl", param_hint="--under-test")
    out = Path(out_dir) if out_dir else results_dir() / "ci"
    roots = ([] if no_installed_corpus else [str(CORPUS_DIR)]) + list(corpora)
    if not roots:
        raise click.UsageError("nothing to replay: --no-installed-corpus without --corpus DIR")
    entries = entries_under(roots)
    try:
        rep = replay(entries, names, timeout=timeout, **commands)
    except CorpusError as exc:
        fail(str(exc), EXIT_USAGE)
        return
    click.echo(f"corpus: {rep.summary_line()}")
    try:
        result = run_campaign(properties=split_list(prop_list) or None, impl_names=names, workers=workers,
                              time_budget=time_budget, seed=seed, db=None,
                              corpus_dir=findings or out / "found", report_path=out / "campaign.json",
                              profile=profile, timeout=timeout, progress=False, **commands)
    except CampaignError as exc:
        fail(str(exc), EXIT_USAGE)
        return
    if not result.properties or not sum(result.examples.values()):
        why = "; ".join(f"{k}: {v}" for k, v in result.skipped.items()) or "; ".join(result.errors) or "no examples"
        fail(f"the campaign ran nothing: {why}", EXIT_USAGE)
    report_mod.write_report(result, out / "campaign.md")
    write_html(json.loads((out / "campaign.json").read_text()), out / "campaign.html")
    failed = sum(1 for r in rep.ordered if r.status == FAIL and r.impl in judged)
    new = sum(1 for f in result.new_findings if f.impl in judged)
    others = len(result.new_findings) - new
    verdict = "PASS" if not failed and not new else "FAIL"
    campaign_line = (f"{sum(result.examples.values())} examples in {result.elapsed:.0f} s (seed {seed}), "
                     f"{new} new finding{'s' if new != 1 else ''} on {', '.join(judged)}"
                     + (f" ({others} more on the implementations compared with, not counted)" if others else ""))
    click.echo(f"campaign: {campaign_line}")
    summary = (f"# btfspec ci: {verdict} ({', '.join(judged)})\n\n"
               f"- corpus replay: {rep.summary_line()}\n- campaign: {campaign_line}\n"
               f"- results: `{out}` (campaign.html, campaign.json, found/)\n\n"
               + rep.markdown() + "\n"
               + report_mod.render_markdown(result).replace("# btfspec fuzz campaign", "## Campaign", 1))
    target = summary_path or os.environ.get("GITHUB_STEP_SUMMARY")
    if target:
        with open(target, "a", encoding="utf-8") as f:
            f.write(summary)
        click.echo(f"summary: {target}")
    else:
        sys.stdout.write("\n" + summary)
    click.echo(f"verdict: {verdict}")
    sys.exit(EXIT_OK if verdict == "PASS" else EXIT_NEGATIVE)


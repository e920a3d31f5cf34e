"""``btfspec report``: a campaign report or stats output as one self-contained web page."""

from __future__ import annotations

import json

import click

from btfspec.clitools import EXIT_USAGE, fail, guarded
from btfspec.spec.errors import errno_text


@click.command("report")
@click.argument("run", metavar="RUN.json", type=click.Path(dir_okay=False))
@click.option("--html", "html_path", required=True, type=click.Path(dir_okay=False), metavar="OUT.html",
              help="Write the page here (styles and charts inline: it opens anywhere, without a network).")
@guarded
def report(run: str, html_path: str) -> None:
    """Render RUN.json -- a campaign report (btfspec fuzz --report RUN.json) or btfspec stats --json
    output -- as one web page: finding groups with their reproduce command beside the first
    difference, throughput (over time when recorded), coverage; for stats the size histogram.

    Exit status 0 when the page was written, 2 when RUN.json cannot be read or is neither kind.
    """
    from btfspec.oracle.fuzz.report_html import write_html

    try:
        with open(run, encoding="utf-8") as f:
            data = json.load(f)
    except OSError as exc:
        fail(f"{run}: cannot read: {exc.strerror or exc} {errno_text(exc.errno or 5)}", EXIT_USAGE)
    except ValueError as exc:
        fail(f"{run}: not JSON ({exc})", EXIT_USAGE)
    if not isinstance(data, dict):
        fail(f"{run}: neither a campaign report nor stats output (a JSON {type(data).__name__})", EXIT_USAGE)
    try:
        write_html(data, html_path)
    except ValueError as exc:
        fail(f"{run}: {exc}", EXIT_USAGE)
    except OSError as exc:
        fail(f"{html_path}: cannot write: {exc.strerror or exc} {errno_text(exc.errno or 5)}", EXIT_USAGE)
    click.echo(f"wrote {html_path}")


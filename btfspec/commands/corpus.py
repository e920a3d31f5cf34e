"""``btfspec corpus run|list``: replay the regression corpus against implementations, list its entries."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import click

from btfspec.clitools import EXIT_NEGATIVE, EXIT_USAGE, emit_json, fail, guarded, json_option
from btfspec.oracle.fuzz.corpus import (
    DEFAULT_ROOT,
    FAIL,
    PASS,
    SKIP,
    CorpusError,
    Entry,
    EntryResult,
    iter_entries,
    run_entry,
)
from btfspec.oracle.impls.adapter import NAMES_HELP, ImplUnavailable, close_impls, parse_impl_list
from btfspec.oracle.impls.outcome import DEFAULT_TIMEOUT

_MARK = {PASS: "pass", FAIL: "FAIL", SKIP: "skip"}


def entries_under(paths: Sequence[str]) -> list[Entry]:
    """Every entry under each of ``paths`` (default: the installed corpus); exits 2 naming an unreadable one."""
    try:
        return [e for p in (paths or [str(DEFAULT_ROOT)]) for e in iter_entries(p)]
    except CorpusError as exc:
        fail(str(exc), EXIT_USAGE)
        raise AssertionError from None  # unreachable: fail() exits


def impl_names(value: str | None, options: Mapping[str, Any]) -> list[str]:
    """``--impl`` as names (default: every known one, an external one only with its program given);
    bad names -> usage error."""
    from btfspec.testing import default_names

    if value:
        try:
            return parse_impl_list(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--impl") from None
    return default_names(options)


@dataclass
class Replay:
    """A corpus replay: every entry on every named implementation (unusable ones skip with the reason)."""

    entries: list[Entry]
    names: list[str]
    results: dict[tuple[str, str], EntryResult]
    unusable: dict[str, str]

    @property
    def counts(self) -> Counter[str]:
        return Counter(r.status for r in self.results.values())

    @property
    def ordered(self) -> list[EntryResult]:
        return [self.results[(e.id, n)] for e in self.entries for n in self.names]

    def to_dict(self) -> dict[str, Any]:
        c = self.counts
        return {"implementations": {n: self.unusable.get(n) for n in self.names},
                "summary": {"entries": len(self.entries), PASS: c[PASS], FAIL: c[FAIL], SKIP: c[SKIP]},
                "results": [r.to_dict() for r in self.ordered]}

    def summary_line(self) -> str:
        c = self.counts
        return (f"{len(self.entries)} entries x {len(self.names)} implementations: {c[PASS]} pass, "
                f"{c[FAIL]} fail, {c[SKIP]} skip")

    def markdown(self) -> str:
        """The replay as Markdown: the summary, the unusable implementations and every failure."""
        out = ["## Corpus replay", "", self.summary_line() + ".", ""]
        out += [f"- {n} skipped: {why}" for n, why in self.unusable.items()]
        failures = [r for r in self.ordered if r.status == FAIL]
        if failures:
            out += ["", "| entry | implementation | first difference |", "|---|---|---|"]
            out += [f"| `{r.entry}` | {r.impl} | {r.reason.replace('|', chr(92) + '|')} |" for r in failures]
        return "\n".join(out) + "\n"


def replay(entries: list[Entry], names: list[str], **options: Any) -> Replay:
    """Replay ``entries`` on the implementations ``names`` (``options`` go to the registry: ``timeout``,
    ``distill_cmd``, ``serve_cmd``, ...); raises click.BadParameter for an external program's bad
    options and :class:`CorpusError` for an entry that cannot be read."""
    from btfspec.testing import open_implementations

    try:
        impls, unusable = open_implementations(names, **options)
    except ImplUnavailable as exc:
        raise click.BadParameter(str(exc), param_hint="--distill-cmd/--relocate-cmd/--serve-cmd") from None
    results: dict[tuple[str, str], EntryResult] = {}
    try:
        for entry in entries:
            for r in run_entry(entry, impls):
                results[(entry.id, r.impl)] = r
            for name, why in unusable.items():
                results[(entry.id, name)] = EntryResult(entry.id, name, SKIP, f"{name} unavailable: {why}")
    finally:
        close_impls(impls)
    return Replay(entries, names, results, unusable)


def _table(rep: Replay) -> None:
    width = max([len(e.id) for e in rep.entries] + [5])
    cols = [max(len(n), 4) for n in rep.names]
    click.echo(f"{'entry':<{width}}  " + "  ".join(f"{n:<{w}}" for n, w in zip(rep.names, cols, strict=True)))
    for e in rep.entries:
        cells = [f"{_MARK[rep.results[(e.id, n)].status]:<{w}}" for n, w in zip(rep.names, cols, strict=True)]
        click.echo(f"{e.id:<{width}}  " + "  ".join(cells).rstrip())


@click.group("corpus")
def corpus() -> None:
    """The regression corpus (corpus/README.md): replay or list its entries."""


@corpus.command("run")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--impl", "impl_list", metavar="NAME[,NAME...]",
              help=f"Implementations to replay on ({NAMES_HELP}); default: every usable one.")
@click.option("--timeout", type=float, default=DEFAULT_TIMEOUT, show_default=True,
              help="Seconds per libbpf or external-command call before it counts as a timeout.")
@click.option("--distill-cmd", metavar="TEMPLATE", help="cmd: '... {split} {base} {out_base} {out_split}'.")
@click.option("--relocate-cmd", metavar="TEMPLATE", help="cmd: '... {split} {distilled_base} {base} {out}'.")
@click.option("--serve-cmd", metavar="COMMAND",
              help="serve: a program answering requests on stdin/stdout (oracle/impls/PROTOCOL.md).")
@click.option("-v", "--verbose", is_flag=True, help="Also print the reason of every pass and skip.")
@json_option
@guarded
def run(paths: tuple[str, ...], impl_list: str | None, timeout: float, distill_cmd: str | None,
        relocate_cmd: str | None, serve_cmd: str | None, verbose: bool, as_json: bool) -> None:
    """Replay every entry under each PATH (default: the corpus installed with btfspec) on each implementation.

    A PATH is any directory in the corpus format (a port's own findings, a campaign's found/) or one
    entry. Exit status 0 when nothing failed (skips are fine), 1 when an entry failed on an
    implementation, 2 for a bad option or an unreadable manifest.
    """
    options = {"timeout": timeout, "distill_cmd": distill_cmd, "relocate_cmd": relocate_cmd, "serve_cmd": serve_cmd}
    names = impl_names(impl_list, options)
    entries = entries_under(paths)
    try:
        rep = replay(entries, names, **options)
    except CorpusError as exc:
        fail(str(exc), EXIT_USAGE)
        return
    if as_json:
        emit_json(rep.to_dict())
    else:
        for name, why in rep.unusable.items():
            click.echo(f"note: {name} skipped: {why}")
        _table(rep)
        for r in rep.ordered:
            if r.status == FAIL or verbose:
                click.echo(f"{_MARK[r.status]} {r.entry} [{r.impl}]: {r.reason}")
        click.echo(rep.summary_line())
    if rep.counts[FAIL]:
        raise SystemExit(EXIT_NEGATIVE)


@corpus.command("list")
@click.argument("path", required=False, type=click.Path())
@json_option
@guarded
def list_(path: str | None, as_json: bool) -> None:
    """List the entries under PATH (default: the corpus installed with btfspec) with their operation and summary."""
    entries = entries_under([path] if path else [])
    rows = [{"id": e.id, "name": e.name, "category": e.manifest["category"], "operation": e.manifest["operation"],
             "quirks": e.manifest.get("quirks", []), "steps": len(e.steps),
             "summary": e.manifest["summary"]} for e in entries]
    if as_json:
        emit_json(rows)
        return
    width = max([len(r["id"]) for r in rows] + [5])
    for r in rows:
        tags = ",".join(r["quirks"])
        click.echo(f"{r['id']:<{width}}  {r['operation']:<16}  {tags:<8}  {r['summary']}")
    click.echo(f"{len(rows)} entries")


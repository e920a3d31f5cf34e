"""``btfspec corpus run|list``: replay the regression corpus against implementations, list its entries."""

from __future__ import annotations

from collections import Counter
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
from btfspec.oracle.impls.adapter import (
    KNOWN,
    Implementation,
    ImplUnavailable,
    available,
    close_impls,
    make_impl,
    parse_impl_list,
)
from btfspec.oracle.impls.outcome import DEFAULT_TIMEOUT

_MARK = {PASS: "pass", FAIL: "FAIL", SKIP: "skip"}


def _entries(path: str | None) -> list[Entry]:
    try:
        return list(iter_entries(path or DEFAULT_ROOT))
    except CorpusError as exc:
        fail(str(exc), EXIT_USAGE)
        raise AssertionError from None  # unreachable: fail() exits


def _impl_names(value: str | None, distill_cmd: str | None, relocate_cmd: str | None) -> list[str]:
    if value:
        try:
            return parse_impl_list(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--impl") from None
    return [n for n in KNOWN if n != "cmd" or distill_cmd or relocate_cmd]


def _table(entries: list[Entry], names: list[str], results: dict[tuple[str, str], EntryResult]) -> None:
    width = max([len(e.id) for e in entries] + [5])
    cols = [max(len(n), 4) for n in names]
    click.echo(f"{'entry':<{width}}  " + "  ".join(f"{n:<{w}}" for n, w in zip(names, cols, strict=True)))
    for e in entries:
        cells = [f"{_MARK[results[(e.id, n)].status]:<{w}}" for n, w in zip(names, cols, strict=True)]
        click.echo(f"{e.id:<{width}}  " + "  ".join(cells).rstrip())


@click.group("corpus")
def corpus() -> None:
    """The regression corpus (corpus/README.md): replay or list its entries."""


@corpus.command("run")
@click.argument("path", required=False, type=click.Path())
@click.option("--impl", "impl_list", metavar="NAME[,NAME...]",
              help=f"Implementations to replay on ({', '.join(KNOWN)}, all); default: every usable one.")
@click.option("--timeout", type=float, default=DEFAULT_TIMEOUT, show_default=True,
              help="Seconds per libbpf or external-command call before it counts as a timeout.")
@click.option("--distill-cmd", metavar="TEMPLATE", help="cmd: '... {split} {base} {out_base} {out_split}'.")
@click.option("--relocate-cmd", metavar="TEMPLATE", help="cmd: '... {split} {distilled_base} {base} {out}'.")
@click.option("-v", "--verbose", is_flag=True, help="Also print the reason of every pass and skip.")
@json_option
@guarded
def run(path: str | None, impl_list: str | None, timeout: float, distill_cmd: str | None,
        relocate_cmd: str | None, verbose: bool, as_json: bool) -> None:
    """Replay every entry under PATH (default: the repository's corpus) on each implementation.

    Exit status 0 when nothing failed (skips are fine), 1 when an entry failed on an implementation,
    2 for a bad option or an unreadable manifest.
    """
    names = _impl_names(impl_list, distill_cmd, relocate_cmd)
    entries = _entries(path)
    reasons = available(distill_cmd=distill_cmd, relocate_cmd=relocate_cmd)
    impls: list[Implementation] = []
    unusable: dict[str, str] = {}
    try:
        for name in names:
            if reasons.get(name):
                unusable[name] = str(reasons[name])
                continue
            try:
                impls.append(make_impl(name, timeout=timeout, distill_cmd=distill_cmd, relocate_cmd=relocate_cmd))
            except ImplUnavailable as exc:
                if name == "cmd":
                    raise click.BadParameter(str(exc), param_hint="--distill-cmd/--relocate-cmd") from None
                unusable[name] = str(exc)
        results: dict[tuple[str, str], EntryResult] = {}
        for entry in entries:
            for r in run_entry(entry, impls):
                results[(entry.id, r.impl)] = r
            for name, why in unusable.items():
                results[(entry.id, name)] = EntryResult(entry.id, name, SKIP, f"{name} unavailable: {why}")
    except CorpusError as exc:
        fail(str(exc), EXIT_USAGE)
    finally:
        close_impls(impls)
    counts = Counter(r.status for r in results.values())
    ordered = [results[(e.id, n)] for e in entries for n in names]
    if as_json:
        out: dict[str, Any] = {
            "implementations": {n: unusable.get(n) for n in names},
            "summary": {"entries": len(entries), PASS: counts[PASS], FAIL: counts[FAIL], SKIP: counts[SKIP]},
            "results": [r.to_dict() for r in ordered],
        }
        emit_json(out)
    else:
        for name, why in unusable.items():
            click.echo(f"note: {name} skipped: {why}")
        _table(entries, names, results)
        for r in ordered:
            if r.status == FAIL or verbose:
                click.echo(f"{_MARK[r.status]} {r.entry} [{r.impl}]: {r.reason}")
        click.echo(f"{len(entries)} entries x {len(names)} implementations: {counts[PASS]} pass, "
                   f"{counts[FAIL]} fail, {counts[SKIP]} skip")
    if counts[FAIL]:
        raise SystemExit(EXIT_NEGATIVE)


@corpus.command("list")
@click.argument("path", required=False, type=click.Path())
@json_option
@guarded
def list_(path: str | None, as_json: bool) -> None:
    """List the entries under PATH (default: the repository's corpus) with their operation and summary."""
    entries = _entries(path)
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


COMMANDS = [corpus]

"""Starting a campaign: resolve the properties and implementations, then run a :mod:`~.runners` runner."""

from __future__ import annotations

import os
import random
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TextIO

from btfspec.locations import results_dir
from btfspec.oracle.fuzz.campaign.config import (
    DEFAULT_PROFILE,
    DEFAULT_SHRINK_SHARE,
    DEFAULT_TIME,
    DEFAULT_TIMEOUT,
    PROFILE_CHOICES,
    CampaignError,
    check_database,
    default_database,
)
from btfspec.oracle.fuzz.campaign.findings import FoundRecord, known_findings, sigterm_as_interrupt
from btfspec.oracle.fuzz.campaign.results import CampaignResult
from btfspec.oracle.fuzz.campaign.runners import runner_for
from btfspec.oracle.fuzz.property import ALIASES, Context, Property
from btfspec.oracle.fuzz.registry import all_names, get_property
from btfspec.oracle.impls.adapter import (
    Implementation,
    close_impls,
    open_usable,
    parse_impl_list,
)


def _resolve_properties(names: Iterable[str] | None) -> list[Property]:
    """The properties named (``P1`` .. ``P5`` or aliases, default all), each once, in the order given."""
    wanted = list(names) if names else all_names()
    props: dict[str, Property] = {}
    unknown: list[str] = []
    for n in wanted:
        try:
            prop = get_property(n)
        except KeyError:
            unknown.append(n)
            continue
        props.setdefault(prop.name, prop)
    if unknown:
        raise CampaignError(f"unknown propert{'ies' if len(unknown) > 1 else 'y'} {', '.join(unknown)} "
                            f"(known: {', '.join(all_names())}, or {', '.join(ALIASES)})")
    return list(props.values())


def _resolve_impls(names: Iterable[str] | None, opts: Mapping[str, Any]) -> tuple[list[Implementation], dict[str, str]]:
    try:
        wanted = parse_impl_list(list(names)) if names else None
        return open_usable(wanted, explicit_external=True, timeout=float(opts.get("timeout", DEFAULT_TIMEOUT)),
                           distill_cmd=opts.get("distill_cmd"), relocate_cmd=opts.get("relocate_cmd"),
                           serve_cmd=opts.get("serve_cmd"))
    except ValueError as exc:  # an unknown name, or an external program's wrong options (ImplUnavailable)
        raise CampaignError(str(exc)) from None


def run_campaign(properties: Iterable[str] | None = None, impl_names: Iterable[str] | None = None,
                 workers: int | None = None, time_budget: float | None = None, max_examples: int | None = None,
                 seed: int | None = None, db: str | None = "", scheduler: str | None = None,
                 corpus_dir: str | os.PathLike[str] | None = None, report_path: str | os.PathLike[str] | None = None,
                 *, profile: str = DEFAULT_PROFILE, timeout: float = DEFAULT_TIMEOUT,
                 distill_cmd: str | None = None, relocate_cmd: str | None = None, serve_cmd: str | None = None,
                 progress: bool = True, stream: TextIO | None = None,
                 stop_when: Callable[[FoundRecord], bool] | None = None,
                 shrink_share: float = DEFAULT_SHRINK_SHARE) -> CampaignResult:
    """Run a fuzz campaign and return its result (see the module docstring).

    ``properties``: names, ``P1`` .. ``P5`` or aliases such as ``relocation`` (default all).
    ``impl_names``: implementations (default every usable one; ``cmd`` needs a template).
    ``workers``: slots (default one per core, or every thread of the dask cluster; ``0`` runs one slot
    in this process).  ``time_budget`` (seconds, the whole campaign's wall time; default 120 s unless
    ``max_examples`` is given) and ``max_examples`` (total per property, spread over the slots).
    ``db``: ``""`` for the default directory database, ``None``/``"none"`` for none, a path, or
    ``redis://HOST:PORT``.  ``scheduler``: ``tcp://HOST:PORT`` of a dask scheduler.  Findings go to
    ``corpus_dir`` (default ``results_dir()/found``); ``report_path`` (``.md`` or ``.json``) gets a report.
    ``profile``: ``mixed`` (default: chunks alternate between the generator profiles), ``kernel-valid``
    or ``libbpf-valid``.  ``serve_cmd``: the program of ``serve``.  ``shrink_share``: the seconds each
    finding may be shrunk, as a share of ``time_budget`` (30 s without one); then its smallest example
    so far is reported (0: every finding is reported as found, unshrunk).  ``stop_when(record)``: end
    the campaign (as the time budget would) once it says yes to a finding.  SIGTERM stops it as
    Ctrl-C does (findings and report kept).
    Raises :class:`CampaignError` for unusable options.
    """
    from btfspec.oracle.fuzz import report as report_mod

    if report_path is not None and Path(report_path).suffix.lower() not in report_mod.FORMATS:
        raise CampaignError(f"--report {report_path}: use a .md or .json file name")
    if time_budget is None and max_examples is None:
        time_budget = DEFAULT_TIME
    if max_examples is not None and max_examples < 1:
        raise CampaignError("--max-examples must be at least 1")
    if not 0 <= shrink_share <= 1:
        raise CampaignError(f"--shrink-share must be in [0, 1], got {shrink_share:g}")
    if profile not in PROFILE_CHOICES:
        raise CampaignError(f"unknown profile {profile!r} (known: {', '.join(PROFILE_CHOICES)})")
    opts = {"timeout": timeout, "distill_cmd": distill_cmd, "relocate_cmd": relocate_cmd, "serve_cmd": serve_cmd,
            "stop_when": stop_when}
    props = _resolve_properties(properties)
    skipped: dict[str, str] = {}
    impls, unavailable = _resolve_impls(impl_names, opts)
    try:
        ctx = Context(impls={i.name: i for i in impls}, profile=profile, timeout=timeout)
        runnable: list[str] = []
        for prop in props:
            why = prop.unusable_reason(ctx)
            if why:
                skipped[prop.name] = why
            else:
                runnable.append(prop.name)
    finally:
        close_impls(impls)
    corpus = Path(corpus_dir) if corpus_dir is not None else results_dir() / "found"
    db_spec = None if db is None or db == "none" else (db or default_database(corpus))
    check_database(db_spec)
    seed = seed if seed is not None else random.SystemRandom().randrange(1 << 32)
    campaign = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
    runner = runner_for(scheduler, workers)
    result = CampaignResult(campaign, seed, runner.mode, 0, scheduler, db_spec, str(corpus), profile,
                            [i.name for i in impls], unavailable, runnable, skipped, time_budget, max_examples)
    if not runnable:
        if report_path is not None:
            report_mod.write_report(result, report_path)
            result.report_path = str(report_path)
        return result
    known, names = known_findings(corpus)
    specs_common = {"campaign": campaign, "properties": runnable, "impls": result.impls, "profile": profile,
                    "timeout": timeout, "distill_cmd": distill_cmd, "relocate_cmd": relocate_cmd,
                    "serve_cmd": serve_cmd, "shrink_share": shrink_share, "db": db_spec,
                    "time_budget": time_budget, "known": [list(s) for s in sorted(known)],
                    "deadline_epoch": time.time() + time_budget if time_budget else None}
    with sigterm_as_interrupt():
        runner(result, specs_common, workers, seed, known, names, opts, progress, stream).run()
    if report_path is not None:
        report_mod.write_report(result, report_path)
        result.report_path = str(report_path)
    return result

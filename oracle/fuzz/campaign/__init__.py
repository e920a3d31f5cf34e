"""Fuzz campaigns: properties x implementations on parallel workers, on this machine or a dask cluster.

:func:`run_campaign` runs every selected property (:mod:`btfspec.oracle.fuzz.property`) on N *worker
slots*, each with its own seed.  A slot is a worker process ("spawn" context; one that dies without a
result is restarted as a new slot), a task on a ``dask.distributed`` cluster
(``scheduler="tcp://HOST:PORT"``), or, with ``workers=0``, a thread of the calling process.  Each slot
makes its own implementations (the libbpf worker is a subprocess, never a multiprocessing child, so it
also runs inside daemonic dask workers) and loops over the properties in chunks -- a first round runs
every property once before anything found in it is shrunk -- one hypothesis run per chunk
(``@given(prop.strategy(ctx))``, explicit settings, a seed derived from the campaign seed, the slot,
the property and the chunk), catching the shrunk :class:`~btfspec.oracle.fuzz.property.PropertyFailure`\\ s.

All slots share one hypothesis example database -- a directory (default ``.hypothesis/campaign``
beside the corpus directory) or ``redis://HOST:PORT`` -- so they replay and extend one set of
failures.  Every distinct finding (by :attr:`~btfspec.oracle.fuzz.property.Finding.signature`) travels
to the parent as soon as it is found and is written there atomically as a corpus entry
(:func:`btfspec.oracle.fuzz.corpus.write_entry`, ``category: "finding"``), one per root cause
(:mod:`btfspec.oracle.fuzz.groups`: ``Q6-libbpf-<hash>``, ``P3-serve-<hash>``, the smallest example of
the group); its signature then becomes *known* to every slot, whose checks treat it as passing, so the
search moves on to other failures.  Findings already in the corpus directory are known from the start
and are never *new*.

Slots report progress (examples per property, busy seconds, coverage of :mod:`btfspec.btfgen.coverage`)
about once a second as JSON events (a file per local slot, a thread queue or a dask ``Queue``: nothing
a dead worker leaves behind can block the parent); the parent shows them live (rich on a TTY, plain
lines otherwise).  A stop request (Ctrl-C in the parent, or the time budget) reaches the slots through
a file or an event; a slot that is shrinking a failure when the budget ends may finish within a short
grace period, and one stopped earlier reports the smallest failing example it has, so an interrupt
loses nothing.

The package, by job:

* :mod:`.config` -- defaults, :func:`parse_duration`, entry names and seeds, the example database,
  :class:`SlotSpec`;
* :mod:`.channels` -- how a slot and the parent talk (thread, process, dask);
* :mod:`.slot` -- :func:`run_slot`, the slot loop;
* :mod:`.hypothesis_glue` -- every use of hypothesis's private hooks;
* :mod:`.findings` -- :class:`FoundRecord`, :func:`finding_manifest`, :func:`reproduce_command`,
  :func:`write_finding`, :func:`known_findings`;
* :mod:`.results` -- :class:`CampaignResult` and the parent gathering the slots' events;
* :mod:`.display` -- the live progress;
* :mod:`.runners` -- :class:`~.runners.Runner` (the run skeleton, written once) and its in-process,
  local and dask modes;
* :mod:`.run` -- :func:`run_campaign`.

Public API: :data:`__all__` (imported on first use, so the CLI stays cheap).
"""

from btfspec.lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "BUDGET_OVERRUN": "btfspec.oracle.fuzz.campaign.config",
    "CampaignError": "btfspec.oracle.fuzz.campaign.config",
    "CampaignResult": "btfspec.oracle.fuzz.campaign.results",
    "DEFAULT_PROFILE": "btfspec.oracle.fuzz.campaign.config",
    "DEFAULT_SHRINK_SHARE": "btfspec.oracle.fuzz.campaign.config",
    "DEFAULT_TIME": "btfspec.oracle.fuzz.campaign.config",
    "DEFAULT_TIMEOUT": "btfspec.oracle.fuzz.campaign.config",
    "FoundRecord": "btfspec.oracle.fuzz.campaign.findings",
    "PROFILE_CHOICES": "btfspec.oracle.fuzz.campaign.config",
    "SlotSpec": "btfspec.oracle.fuzz.campaign.config",
    "database_key": "btfspec.oracle.fuzz.campaign.config",
    "default_database": "btfspec.oracle.fuzz.campaign.config",
    "derive_seed": "btfspec.oracle.fuzz.campaign.config",
    "entry_name": "btfspec.oracle.fuzz.campaign.config",
    "finding_from_dict": "btfspec.oracle.fuzz.campaign.findings",
    "finding_manifest": "btfspec.oracle.fuzz.campaign.findings",
    "finding_to_dict": "btfspec.oracle.fuzz.campaign.findings",
    "known_findings": "btfspec.oracle.fuzz.campaign.findings",
    "parse_duration": "btfspec.oracle.fuzz.campaign.config",
    "reproduce_command": "btfspec.oracle.fuzz.campaign.findings",
    "run_campaign": "btfspec.oracle.fuzz.campaign.run",
    "run_slot": "btfspec.oracle.fuzz.campaign.slot",
    "signature_key": "btfspec.oracle.fuzz.campaign.config",
    "write_finding": "btfspec.oracle.fuzz.campaign.findings",
}

__all__, __getattr__ = lazy_exports(__name__, _EXPORTS)

"""Fuzz campaigns: properties x implementations on parallel workers, on this machine or a dask cluster.

:func:`run_campaign` runs every selected property (:mod:`btfspec.oracle.fuzz.property`) on N *worker
slots*, each with its own seed.  A slot is a worker process (``concurrent.futures.ProcessPoolExecutor``,
"spawn" context), a task on a ``dask.distributed`` cluster (``scheduler="tcp://HOST:PORT"``), or, with
``workers=0``, a thread of the calling process.  Each slot makes its own implementations (the libbpf
worker is a subprocess, never a multiprocessing child, so it also runs inside daemonic dask workers)
and loops over the properties in chunks: one hypothesis run per chunk (``@given(prop.strategy(ctx))``,
explicit settings, a seed derived from the campaign seed, the slot, the property and the chunk),
catching the shrunk :class:`~btfspec.oracle.fuzz.property.PropertyFailure`\\ s.

All slots share one hypothesis example database -- a directory (default ``.hypothesis/campaign``
beside the corpus directory) or ``redis://HOST:PORT`` -- so they replay and extend one set of
failures.  Every distinct finding (by :attr:`~btfspec.oracle.fuzz.property.Finding.signature`) travels
to the parent as soon as it is found and is written there atomically as a corpus entry
(:func:`btfspec.oracle.fuzz.corpus.write_entry`, ``category: "finding"``) named
``<property>-<impl>-<hash>``; its signature then becomes *known* to every slot, whose checks treat it
as passing, so the search moves on to other failures.  Findings already in the corpus directory are
known from the start and are never *new*.

Slots report progress (examples per property, busy seconds, coverage of :mod:`btfspec.btfgen.coverage`)
about once a second as JSON events through a queue (multiprocessing, thread or dask ``Queue``); the
parent shows them live (rich on a TTY, plain lines otherwise).  A stop request (Ctrl-C in the parent,
or the time budget) reaches the slots through an event; a slot that is shrinking a failure when the
budget ends may finish within a short grace period, and one stopped earlier reports the smallest
failing example it has, so an interrupt loses nothing.

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

Public API: :data:`__all__`.
"""

from btfspec.oracle.fuzz.campaign.config import (
    DEFAULT_PROFILE,
    DEFAULT_TIME,
    DEFAULT_TIMEOUT,
    CampaignError,
    SlotSpec,
    database_key,
    default_database,
    derive_seed,
    entry_name,
    parse_duration,
    signature_key,
)
from btfspec.oracle.fuzz.campaign.findings import (
    FoundRecord,
    finding_from_dict,
    finding_manifest,
    finding_to_dict,
    known_findings,
    reproduce_command,
    write_finding,
)
from btfspec.oracle.fuzz.campaign.results import CampaignResult
from btfspec.oracle.fuzz.campaign.run import run_campaign
from btfspec.oracle.fuzz.campaign.slot import run_slot

__all__ = [
    "DEFAULT_PROFILE",
    "DEFAULT_TIME",
    "DEFAULT_TIMEOUT",
    "CampaignError",
    "CampaignResult",
    "FoundRecord",
    "SlotSpec",
    "database_key",
    "default_database",
    "derive_seed",
    "entry_name",
    "finding_from_dict",
    "finding_manifest",
    "finding_to_dict",
    "known_findings",
    "parse_duration",
    "reproduce_command",
    "run_campaign",
    "run_slot",
    "signature_key",
    "write_finding",
]

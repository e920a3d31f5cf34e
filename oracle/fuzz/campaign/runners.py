"""Where the slots run: a thread of this process, local worker processes, or a dask cluster.

:class:`Runner` holds the part every mode shares, written once: make the slot specs, publish the
known signatures, start the slots, handle their events until all finished (:func:`monitor`: Ctrl-C
and the hard deadline ask them to stop), then -- whatever happened -- stop them, collect their
results, end what is left, drain the last events and merge everything into the result.  A mode
says only how to start, drain, publish, stop, collect and clean up (:class:`InlineRunner`,
:class:`LocalRunner`, :class:`DaskRunner`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import multiprocessing
import multiprocessing.connection
import os
import queue as _queue
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TextIO

from btfspec.oracle.fuzz.campaign.channels import EventReader, SlotFiles, ThreadChannel
from btfspec.oracle.fuzz.campaign.config import (
    BUDGET_OVERRUN,
    ENDING_SECONDS,
    MAX_RESTARTS,
    RESTART_MIN_SECONDS,
    SHRINK_GRACE_MAX,
    WAIT_AFTER_STOP,
    CampaignError,
    SlotSpec,
    derive_seed,
    slot_specs,
)
from btfspec.oracle.fuzz.campaign.display import Display
from btfspec.oracle.fuzz.campaign.results import CampaignResult, Parent, finish
from btfspec.oracle.fuzz.campaign.slot import dask_slot_task, local_slot_main, run_slot

Outputs = tuple[list[str | None], list[str]]  # the slots' final results (JSON or None) and errors


def monitor(parent: Parent, display: Display, drain: Callable[[], list[str]], finished: Callable[[], bool],
            request_stop: Callable[[], None], hard_deadline: float | None,
            give_up_at: float | None = None) -> tuple[bool, bool]:
    """Handle events until every slot finished; Ctrl-C (or SIGTERM) asks the slots to stop, and so do
    ``hard_deadline`` and a finding ``opts["stop_when"]`` accepts; at ``give_up_at`` the wait ends
    whatever the slots do.

    Returns ``(interrupted, forced)``: forced when a second Ctrl-C, ``give_up_at`` or a slot that does
    not stop ended the wait (then the parent waits only briefly before ending the slots)."""
    interrupted = False
    stop_at: float | None = None
    while True:
        try:
            for raw in drain():
                parent.handle(raw)
            display.tick()
            if finished():
                for raw in drain():
                    parent.handle(raw)
                return interrupted, False
            now = time.monotonic()
            if stop_at is None and (parent.stop_wanted or (hard_deadline is not None and now > hard_deadline)):
                request_stop()
                stop_at = now
            if stop_at is not None and now - stop_at > WAIT_AFTER_STOP:
                return interrupted, True
            if give_up_at is not None and now > give_up_at:
                request_stop()
                return interrupted, True
        except KeyboardInterrupt:
            if interrupted:  # a second Ctrl-C: stop waiting
                return True, True
            interrupted = True
            print("btfspec: interrupted: stopping the workers (findings are kept; Ctrl-C again to stop waiting)",
                  file=sys.stderr, flush=True)
            request_stop()
            stop_at = time.monotonic()


def collect(futures: Sequence[Any], patience: float) -> Outputs:
    """The slots' final results, waiting at most ``patience`` seconds in all (Ctrl-C stops the wait)."""
    outputs: list[str | None] = []
    errors: list[str] = []
    deadline = time.monotonic() + patience
    for i, f in enumerate(futures):
        try:
            outputs.append(f.result(timeout=max(0.1, deadline - time.monotonic())))
        except KeyboardInterrupt:
            errors.append(f"slot {i} and later: abandoned (interrupted while waiting for them)")
            outputs += [None] * (len(futures) - len(outputs))
            break
        except Exception as exc:
            outputs.append(None)
            errors.append(f"slot {i}: {type(exc).__name__}: {exc}" if str(exc) else f"slot {i}: no result "
                          f"({type(exc).__name__})")
    return outputs, errors


def hard_deadline(budget: float | None) -> float | None:
    """When the parent asks the slots to stop although none asked to: the budget and their shrink grace
    are over."""
    return time.monotonic() + budget + min(SHRINK_GRACE_MAX, 0.1 * budget) + 0.5 if budget else None


def give_up_at(budget: float | None) -> float | None:
    """When the parent stops waiting for the slots, so that the campaign ends within the budget + overrun."""
    return time.monotonic() + budget + BUDGET_OVERRUN - ENDING_SECONDS if budget else None


def _drain_queue(q: Any, *errors: type[BaseException]) -> list[str]:
    """Every event waiting in ``q`` (blocking up to 0.2 s for the first)."""
    items = []
    try:
        items.append(q.get(timeout=0.2))
        while True:
            items.append(q.get_nowait())
    except (_queue.Empty, *errors):
        pass
    return items


class Runner:
    """The skeleton of a campaign run (module docstring); subclasses fill in the transport."""

    mode = ""
    stop: Any  # the event that asks the slots to stop (made by :meth:`start`)

    def __init__(self, result: CampaignResult, common: Mapping[str, Any], workers: int | None, seed: int,
                 known: set[tuple[str, ...]], names: set[str], opts: Mapping[str, Any], progress: bool,
                 stream: TextIO | None) -> None:
        self.result, self.common, self.workers, self.seed = result, common, workers, seed
        self.known, self.names, self.opts = known, names, opts
        self.show_progress, self.stream = progress, stream

    # --- what a mode provides ----------------------------------------------------------------------

    def slot_count(self) -> int:
        """How many slots to run."""
        raise NotImplementedError

    def publish(self, known: list[list[str]]) -> None:
        """Make the known signatures visible to the slots."""
        raise NotImplementedError

    def start(self, specs: list[SlotSpec]) -> None:
        """Start one slot per spec."""
        raise NotImplementedError

    def drain(self) -> list[str]:
        """The events the slots sent since the last call."""
        raise NotImplementedError

    def finished(self) -> bool:
        """Has every slot ended?"""
        raise NotImplementedError

    def request_stop(self) -> None:
        """Ask every slot to stop (every mode has a ``stop`` event once started)."""
        self.stop.set()

    def collect(self, patience: float) -> Outputs:
        """The slots' final results, waiting at most ``patience`` seconds."""
        raise NotImplementedError

    def end(self, patience: float = 5.0) -> None:
        """End what still runs after :meth:`collect` (called once, after it), waiting ``patience`` s at most."""

    def close(self) -> None:
        """Release the mode's resources (called last, whatever happened)."""

    # --- the skeleton ------------------------------------------------------------------------------

    def run(self) -> None:
        """Run the slots to the end and merge their results into ``self.result``."""
        try:
            specs = slot_specs(self.common, self.slot_count(), self.seed, self.result.max_examples)
            self.result.workers = len(specs)
            self.publish([list(s) for s in sorted(self.known)])
            self.parent = parent = Parent(self.result, self.known, self.names, self.publish, self.opts)
            display = Display(parent, self.result.properties, self.result.time_budget, self.stream,
                              self.show_progress)
            self.start(specs)
            forced = True
            try:
                budget = self.result.time_budget
                self.result.interrupted, forced = monitor(parent, display, self.drain, self.finished,
                                                          self.request_stop, hard_deadline(budget), give_up_at(budget))
            finally:
                self.request_stop()
                outputs, errors = self.collect(1.0 if forced else WAIT_AFTER_STOP)
                self.end(1.0 if forced else 5.0)
                for raw in self.drain():
                    parent.handle(raw)
                display.close()
            finish(self.result, parent, outputs, errors)
        finally:
            self.close()


class InlineRunner(Runner):
    """``workers=0``: one slot in a thread of this process."""

    mode = "in-process"

    def slot_count(self) -> int:
        return 1

    def publish(self, known: list[list[str]]) -> None:
        self._known = known

    def start(self, specs: list[SlotSpec]) -> None:
        self.q: _queue.Queue[str] = _queue.Queue()
        self.stop = threading.Event()
        self.out: list[str | None] = [None]
        self.errors: list[str] = []
        (spec,) = specs

        def target() -> None:
            try:
                self.out[0] = json.dumps(run_slot(spec, ThreadChannel(self.q, self.stop, lambda: self._known)))
            except BaseException as exc:  # reported, never silent
                self.errors.append(f"slot 0: {type(exc).__name__}: {exc}")

        self.thread = threading.Thread(target=target, name="btfspec-fuzz-slot", daemon=True)
        self.thread.start()

    def drain(self) -> list[str]:
        return _drain_queue(self.q)

    def finished(self) -> bool:
        return not self.thread.is_alive()

    def collect(self, patience: float) -> Outputs:
        with contextlib.suppress(KeyboardInterrupt):
            self.thread.join(timeout=patience)
        if self.thread.is_alive():
            self.errors.append("slot 0: abandoned (it did not stop in time)")
        return self.out, self.errors


class _FutureRunner(Runner):
    """A mode whose slots are futures (``self.futures``): local processes and dask tasks."""

    futures: list[Any]

    def finished(self) -> bool:
        return all(f.done() for f in self.futures)

    def collect(self, patience: float) -> Outputs:
        return collect(self.futures, patience)


class LocalRunner(Runner):
    """Worker processes of this machine (``spawn`` context), one slot each, talking through plain files
    (:class:`~.channels.SlotFiles`: nothing the parent reads can block it).  A slot that dies without a
    result (killed, crashed) is noticed through its process sentinel and restarted as a new slot (its
    own seed, the rest of its quota) while at least :data:`~.config.RESTART_MIN_SECONDS` of the budget
    are left, at most :data:`~.config.MAX_RESTARTS` times in all; its findings so far are kept, and so
    are its examples (from its last progress)."""

    mode = "local"

    def slot_count(self) -> int:
        return self.workers if self.workers else (os.cpu_count() or 1)

    def publish(self, known: list[list[str]]) -> None:
        if not hasattr(self, "files"):
            self.files = SlotFiles(tempfile.mkdtemp(prefix="btfspec-fuzz-"))
        part = self.files.known + ".tmp"
        with open(part, "w", encoding="utf-8") as f:
            json.dump(known, f)
        os.replace(part, self.files.known)

    def start(self, specs: list[SlotSpec]) -> None:
        self.mp = multiprocessing.get_context("spawn")
        self.reader = EventReader()
        self.procs: dict[int, Any] = {}  # slot index -> its process
        self.specs: dict[int, SlotSpec] = {}
        self.reaped: set[int] = set()
        self.errors: list[str] = []
        self.restarts = 0
        self.next_index = len(specs)
        self.stopping = False
        for spec in specs:
            self._launch(spec)

    def _launch(self, spec: SlotSpec) -> None:
        proc = self.mp.Process(target=local_slot_main, args=(spec.to_json(), self.files.directory),
                               name=f"btfspec-fuzz-slot-{spec.index}")
        proc.start()
        self.procs[spec.index], self.specs[spec.index] = proc, spec

    def drain(self) -> list[str]:
        alive = [p.sentinel for p in self.procs.values() if p.is_alive()]
        if alive:
            multiprocessing.connection.wait(alive, timeout=0.2)  # returns early when a slot ends
        else:
            time.sleep(0.05)
        return [line for i in sorted(self.procs) for line in self.reader.read(self.files.events(i))]

    def _reap(self) -> None:
        """Note every slot that ended since the last call; restart one that died without a result."""
        for index, proc in list(self.procs.items()):
            if index in self.reaped or proc.is_alive():
                continue
            self.reaped.add(index)
            if os.path.exists(self.files.result(index)):
                continue
            how = f"killed by signal {-proc.exitcode}" if (proc.exitcode or 0) < 0 else f"exit code {proc.exitcode}"
            spec = self.specs[index]
            left = (spec.deadline_epoch - time.time()) if spec.deadline_epoch is not None else None
            quota = spec.quota
            if quota is not None:  # the rest of its quota, by its last progress
                done = self.parent.progress.get(index, {}).get("examples", {})
                quota = max(0, quota - min((int(done.get(p, 0)) for p in spec.properties), default=0))
            if (self.stopping or self.restarts >= MAX_RESTARTS or quota == 0
                    or (left is not None and left < RESTART_MIN_SECONDS)):
                self.errors.append(f"slot {index}: died ({how}) without a result; not restarted")
                continue
            self.restarts += 1
            new = dataclasses.replace(spec, index=self.next_index, seed=derive_seed(self.seed, self.next_index),
                                      quota=quota, known=[list(s) for s in sorted(self.parent.known)])
            self.next_index += 1
            try:
                self._launch(new)
            except OSError as exc:
                self.errors.append(f"slot {index}: died ({how}) without a result; its restart failed: {exc}")
                continue
            self.errors.append(f"slot {index}: died ({how}) without a result; restarted as slot {new.index}")

    def finished(self) -> bool:
        self._reap()
        return not any(p.is_alive() for p in self.procs.values())

    def request_stop(self) -> None:
        self.stopping = True
        if hasattr(self, "files"):
            with contextlib.suppress(OSError):
                open(self.files.stop, "a").close()

    def collect(self, patience: float) -> Outputs:
        deadline = time.monotonic() + patience
        with contextlib.suppress(KeyboardInterrupt):
            for proc in self.procs.values():
                proc.join(timeout=max(0.0, deadline - time.monotonic()))
        self._reap()
        outputs: list[str | None] = []
        for index, proc in sorted(self.procs.items()):
            try:
                with open(self.files.result(index), encoding="utf-8") as f:
                    outputs.append(f.read())
            except OSError:
                outputs.append(None)
                if proc.is_alive():
                    self.errors.append(f"slot {index}: abandoned (it did not stop in time)")
        return outputs, self.errors

    def end(self, patience: float = 5.0) -> None:
        """Slots still running after ``patience`` s (in all) are killed."""
        deadline = time.monotonic() + patience
        for proc in self.procs.values():
            proc.join(timeout=max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=1.0)

    def close(self) -> None:
        if hasattr(self, "files"):
            shutil.rmtree(self.files.directory, ignore_errors=True)


class DaskRunner(_FutureRunner):
    """Tasks on a ``dask.distributed`` cluster (``result.scheduler``), one slot each."""

    mode = "dask"

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        try:
            from distributed import Client
        except ImportError:
            raise CampaignError("--scheduler needs dask.distributed (pip install -e '.[campaign]')") from None
        try:
            self.client = Client(self.result.scheduler, timeout="15s")
        except (OSError, TimeoutError) as exc:
            raise CampaignError(f"cannot reach the dask scheduler {self.result.scheduler}: {exc}") from None
        from distributed import Event, Queue, Variable

        self.task_names = {k: f"btfspec-fuzz-{self.result.campaign}-{k}" for k in ("queue", "stop", "known")}
        self.q = Queue(self.task_names["queue"], client=self.client)
        self.stop = Event(self.task_names["stop"], client=self.client)
        self.var = Variable(self.task_names["known"], client=self.client)
        self.futures: list[Any] = []

    def slot_count(self) -> int:
        if self.workers:
            return self.workers
        info = self.client.scheduler_info()
        return sum(int(w.get("nthreads", 1)) for w in info.get("workers", {}).values()) or 1

    def publish(self, known: list[list[str]]) -> None:
        self.var.set(json.dumps(known))

    def start(self, specs: list[SlotSpec]) -> None:
        self.futures = [self.client.submit(dask_slot_task, s.to_json(), self.task_names,
                                           key=f"btfspec-fuzz-{self.result.campaign}-{s.index}", pure=False)
                        for s in specs]

    def drain(self) -> list[str]:
        time.sleep(0.2)
        try:
            return list(self.q.get(batch=True))
        except Exception:
            return []

    def end(self, patience: float = 5.0) -> None:
        self.client.cancel([f for f in self.futures if not f.done()])

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.q.close()
        self.client.close()


def runner_for(scheduler: str | None, workers: int | None) -> type[Runner]:
    """The runner of a campaign: dask with a scheduler, in-process for ``workers=0``, else local processes."""
    return DaskRunner if scheduler else (InlineRunner if workers == 0 else LocalRunner)

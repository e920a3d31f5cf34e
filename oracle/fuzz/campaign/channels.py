"""How a slot and the parent talk: events out (JSON strings), stop requests and known signatures in.

One :class:`Channel` per transport: a thread of this process, a local worker process
(multiprocessing queue and event, known signatures in a file) or a dask task (dask Queue, Event,
Variable).
"""

from __future__ import annotations

import json
import os
import queue as _queue
import signal
import threading
from collections.abc import Callable, Mapping
from typing import Any


class Channel:
    """How a slot talks to the parent; events are JSON strings."""

    def send(self, event: Mapping[str, Any]) -> None:
        raise NotImplementedError

    def stop_requested(self) -> bool:
        raise NotImplementedError

    def known(self) -> list[list[str]]:
        return []


class ThreadChannel(Channel):
    """A slot running in a thread of the parent."""

    def __init__(self, q: _queue.Queue[str], stop: threading.Event, known: Callable[[], list[list[str]]]) -> None:
        self.q, self.stop, self._known = q, stop, known

    def send(self, event: Mapping[str, Any]) -> None:
        self.q.put(json.dumps(event))

    def stop_requested(self) -> bool:
        return self.stop.is_set()

    def known(self) -> list[list[str]]:
        return self._known()


class FileKnown:
    """Known signatures published by the parent in a JSON file (re-read when it changes)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._stamp: float | None = None
        self._value: list[list[str]] = []

    def __call__(self) -> list[list[str]]:
        try:
            stamp = os.stat(self.path).st_mtime_ns
        except OSError:
            return self._value
        if stamp != self._stamp:
            try:
                with open(self.path, encoding="utf-8") as f:
                    self._value = json.load(f)
                self._stamp = stamp
            except (OSError, ValueError):
                pass
        return self._value


_LOCAL: dict[str, Any] = {}


def init_local_slot(q: Any, stop: Any, known_path: str) -> None:
    """ProcessPoolExecutor initializer: Ctrl-C belongs to the parent; SIGTERM (say, to the whole process
    group) is a stop request, so the slot still reports what it found; keep the channel objects."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda signum, frame: _LOCAL.__setitem__("terminated", True))
    _LOCAL.update(q=q, stop=stop, known=FileKnown(known_path), terminated=False)


class ProcessChannel(Channel):
    """A slot in a local worker process (the objects :func:`init_local_slot` kept)."""

    def __init__(self) -> None:
        self.q, self.stop, self._known = _LOCAL["q"], _LOCAL["stop"], _LOCAL["known"]

    def send(self, event: Mapping[str, Any]) -> None:
        self.q.put(json.dumps(event))

    def stop_requested(self) -> bool:
        return bool(_LOCAL.get("terminated")) or bool(self.stop.is_set())

    def known(self) -> list[list[str]]:
        return self._known()


class DaskChannel(Channel):
    """A slot on a dask worker: named dask Queue, Event and Variable of the campaign."""

    def __init__(self, names: Mapping[str, str]) -> None:
        from distributed import Event, Queue, Variable

        self.q = Queue(names["queue"])
        self.stop = Event(names["stop"])
        self.var = Variable(names["known"])

    def send(self, event: Mapping[str, Any]) -> None:
        self.q.put(json.dumps(event))

    def stop_requested(self) -> bool:
        return bool(self.stop.is_set())

    def known(self) -> list[list[str]]:
        try:
            return json.loads(self.var.get(timeout=5))
        except Exception:  # a slow scheduler: keep what the slot knows
            return []

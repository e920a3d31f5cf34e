"""How a slot and the parent talk: events out (JSON strings), stop requests and known signatures in.

One :class:`Channel` per transport: a thread of this process, a local worker process (plain files:
:class:`SlotFiles`) or a dask task (dask Queue, Event, Variable).
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


def init_local_slot() -> dict[str, bool]:
    """Signals of a local worker process: Ctrl-C belongs to the parent; SIGTERM (say, to the whole
    process group) is a stop request, so the slot still reports what it found. Returns the flag
    SIGTERM sets."""
    terminated = {"terminated": False}
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda signum, frame: terminated.__setitem__("terminated", True))
    return terminated


class SlotFiles:
    """Where a local slot and the parent meet: a directory of plain files, so that no side ever
    blocks on the other (a worker killed mid-write leaves at most a torn last line, which the reader
    ignores; a pipe or a multiprocessing queue would leave its reader waiting for the rest forever).

    ``known.json`` (the parent publishes), ``stop`` (exists once the parent asks the slots to stop),
    and per slot ``events-<index>.jsonl`` (one JSON event a line, appended) and ``result-<index>.json``
    (its final statistics, written atomically as it ends)."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.known = os.path.join(directory, "known.json")
        self.stop = os.path.join(directory, "stop")

    def events(self, index: int) -> str:
        return os.path.join(self.directory, f"events-{index}.jsonl")

    def result(self, index: int) -> str:
        return os.path.join(self.directory, f"result-{index}.json")


class FileChannel(Channel):
    """A slot in a local worker process, talking through :class:`SlotFiles`."""

    def __init__(self, files: SlotFiles, index: int, terminated: Mapping[str, bool]) -> None:
        self.files, self._terminated = files, terminated
        self._fd = os.open(files.events(index), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._known = FileKnown(files.known)

    def send(self, event: Mapping[str, Any]) -> None:
        data = memoryview((json.dumps(event) + "\n").encode())
        while data:
            data = data[os.write(self._fd, data):]

    def stop_requested(self) -> bool:
        return self._terminated["terminated"] or os.path.exists(self.files.stop)

    def known(self) -> list[list[str]]:
        return self._known()

    def close(self) -> None:
        os.close(self._fd)


class EventReader:
    """The parent's side of the events files: the complete lines appended since the last read."""

    def __init__(self) -> None:
        self._offsets: dict[str, int] = {}
        self._partial: dict[str, bytes] = {}

    def read(self, path: str) -> list[str]:
        try:
            with open(path, "rb") as f:
                f.seek(self._offsets.get(path, 0))
                data = f.read()
        except OSError:
            return []
        self._offsets[path] = self._offsets.get(path, 0) + len(data)
        data = self._partial.pop(path, b"") + data
        *lines, rest = data.split(b"\n")
        if rest:
            self._partial[path] = rest
        return [line.decode("utf-8", "replace") for line in lines if line]


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

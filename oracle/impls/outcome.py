"""The result type shared by every BTF implementation in btfspec.

Every backend (libbpf through ctypes, the kernel's ``BPF_BTF_LOAD``, the Python reference model, ...)
reports one operation (parse, distill, relocate, load) as an :class:`Outcome`, so a differential
harness can compare them field by field:

* ``status`` says how the operation ended:

  - ``"ok"``      -- it succeeded; ``outputs`` holds the produced BTF blobs;
  - ``"error"``   -- it failed cleanly with a negative errno (``errno``), like libbpf's ``-EINVAL``;
  - ``"timeout"`` -- it did not finish in time (for example libbpf quirk Q5, a cyclic modifier chain);
  - ``"crash"``   -- the process running it died (for example on a signal; ``detail`` names it).

* ``outputs`` maps a role to raw BTF bytes: ``{"base": ..., "split": ...}`` for distill,
  ``{"split": ...}`` for relocate, ``{"raw": ...}`` for a parse round trip, ``{}`` otherwise.
* ``log`` is the implementation's own diagnostic text (libbpf's print callback, the kernel verifier
  log, a crashed worker's stderr tail); ``impl`` names the implementation (``"libbpf"``,
  ``"kernel"``, ...); ``detail`` is a short machine-friendly qualifier (a quirk id such as ``"Q5"``,
  a signal name such as ``"SIGSEGV"``, ``"parse failed: split"``).

Outcomes are immutable, hashable, and serialize to JSON with bytes rendered as hex.
"""

from __future__ import annotations

import errno as _errno
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from btfspec.spec.errors import BtfError, errno_text

OK = "ok"
ERROR = "error"
TIMEOUT = "timeout"
CRASH = "crash"
STATUSES: tuple[str, ...] = (OK, ERROR, TIMEOUT, CRASH)
# Seconds one call of a worker-hosted or external implementation may take unless told otherwise.
DEFAULT_TIMEOUT = 10.0


def _last_line(text: str) -> str:
    """The last non-blank line of ``text``, stripped ("" if there is none)."""
    for line in reversed(text.splitlines()):
        if line.strip():
            return line.strip()
    return ""


@dataclass(frozen=True)
class Outcome:
    """How one BTF operation of one implementation ended (see the module docstring)."""

    status: str
    errno: int = 0
    outputs: dict[str, bytes] = field(default_factory=dict)
    log: str = ""
    impl: str = ""
    detail: str = ""
    # Extra result of a successful distill/relocate, when the implementation knows it: id_map[old_id] is
    # the new id (what the kernel keeps as base_id_map to remap .BTF_ids). Not part of equality.
    id_map: tuple[int, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"Outcome.status must be one of {STATUSES}, not {self.status!r}")
        if not isinstance(self.errno, int):
            raise TypeError(f"Outcome.errno must be an int, not {type(self.errno).__name__}")
        if self.status == ERROR and self.errno >= 0:
            raise ValueError(f"an error Outcome needs a negative errno, got {self.errno}")
        if self.status != ERROR and self.errno != 0:
            raise ValueError(f"errno must be 0 unless status is 'error' (status {self.status!r})")
        outputs = {str(k): bytes(v) for k, v in dict(self.outputs).items()}
        object.__setattr__(self, "outputs", outputs)
        object.__setattr__(self, "id_map", tuple(int(x) for x in self.id_map))

    # --- convenience -------------------------------------------------------------------------------

    @property
    def ok(self) -> bool:
        """True when the operation succeeded."""
        return self.status == OK

    def __hash__(self) -> int:
        return hash((self.status, self.errno, tuple(sorted(self.outputs.items())), self.log,
                     self.impl, self.detail))

    def describe(self) -> str:
        """One human line, e.g. ``error -EINVAL (22): libbpf: ... not mapped to base BTF id``."""
        if self.status == OK:
            sizes = ", ".join(f"{k} {len(v)} B" for k, v in self.outputs.items())
            return f"ok ({sizes})" if sizes else "ok"
        if self.status == ERROR:
            head = f"error {errno_text(self.errno)}"
            reason = _last_line(self.log) or self.detail
        else:  # timeout / crash: the detail (signal, limit) belongs in the head
            head = f"{self.status} ({self.detail})" if self.detail else self.status
            reason = _last_line(self.log)
        return f"{head}: {reason}" if reason else head

    def __str__(self) -> str:
        return f"[{self.impl}] {self.describe()}" if self.impl else self.describe()

    # --- serialization -----------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A JSON-compatible dict; output bytes become hex strings (``id_map`` only when there is one)."""
        out: dict[str, Any] = {
            "status": self.status,
            "errno": self.errno,
            "outputs": {k: v.hex() for k, v in self.outputs.items()},
            "log": self.log,
            "impl": self.impl,
            "detail": self.detail,
        }
        if self.id_map:
            out["id_map"] = list(self.id_map)
        return out

    def renamed(self, impl: str) -> Outcome:
        """The same outcome attributed to ``impl``."""
        return Outcome(self.status, self.errno, self.outputs, self.log, impl, self.detail, self.id_map)

    def without_outputs(self, detail: str | None = None) -> Outcome:
        """The same verdict with no outputs (what ``accept`` returns), ``detail`` replaced when given."""
        return Outcome(self.status, self.errno, {}, self.log, self.impl, self.detail if detail is None else detail)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Outcome:
        """Inverse of :meth:`to_dict`."""
        return cls(
            status=data["status"],
            errno=int(data.get("errno", 0)),
            outputs={k: bytes.fromhex(v) for k, v in dict(data.get("outputs", {})).items()},
            log=data.get("log", ""),
            impl=data.get("impl", ""),
            detail=data.get("detail", ""),
            id_map=tuple(data.get("id_map", ())),
        )

    def to_json(self) -> str:
        """Serialize to a JSON string (bytes as hex)."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes | Mapping[str, Any]) -> Outcome:
        """Parse :meth:`to_json` output (a JSON string, or an already decoded dict)."""
        data = text if isinstance(text, Mapping) else json.loads(text)
        return cls.from_dict(data)


def error_outcome(exc: BtfError, impl: str, *, log: str | None = None, detail: str | None = None) -> Outcome:
    """A BtfError as an ``error`` Outcome (its errno, or -EINVAL when it carries none)."""
    return Outcome(ERROR, exc.errno if exc.errno < 0 else -_errno.EINVAL, log=f"{exc}\n" if log is None else log,
                   impl=impl, detail=(exc.rule or "") if detail is None else detail)


def call_outcome(impl: str, fn: Callable[[], Outcome]) -> Outcome:
    """Run an in-process call: the one place an exception becomes an :class:`Outcome`.

    An Outcome passes through (attributed to ``impl``), a BtfError becomes an ``error`` Outcome; any other
    exception is a bug in the implementation and becomes a ``crash`` so that it can never pass for a clean
    answer.
    """
    try:
        out = fn()
    except BtfError as exc:
        return error_outcome(exc, impl)
    except Exception as exc:  # RecursionError included: visible, never equal to a clean result
        return Outcome(CRASH, log=f"{type(exc).__name__}: {exc}\n", impl=impl, detail=type(exc).__name__)
    if not isinstance(out, Outcome):
        raise TypeError(f"{impl} returned {type(out).__name__}, not an Outcome")
    return out if out.impl == impl else out.renamed(impl)


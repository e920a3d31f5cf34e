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

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from btfspec.spec.errors import errno_text

OK = "ok"
ERROR = "error"
TIMEOUT = "timeout"
CRASH = "crash"
STATUSES: tuple[str, ...] = (OK, ERROR, TIMEOUT, CRASH)


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
        """A JSON-compatible dict; output bytes become hex strings."""
        return {
            "status": self.status,
            "errno": self.errno,
            "outputs": {k: v.hex() for k, v in self.outputs.items()},
            "log": self.log,
            "impl": self.impl,
            "detail": self.detail,
        }

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
        )

    def to_json(self) -> str:
        """Serialize to a JSON string (bytes as hex)."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes | Mapping[str, Any]) -> Outcome:
        """Parse :meth:`to_json` output (a JSON string, or an already decoded dict)."""
        data = text if isinstance(text, Mapping) else json.loads(text)
        return cls.from_dict(data)

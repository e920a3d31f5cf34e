"""Batches: the operations of one case as one request (one round trip to a worker-hosted implementation).

A batch is a list of :class:`Step`; an argument may be an :class:`Output` of an earlier step, so that
"distill, then relocate what the distill produced" needs no trip back in between. A step whose
:class:`Output` is missing (that step failed, or was not run itself) is not run: its outcome is None.
:func:`btfspec.oracle.impls.adapter.run_steps` runs a batch on any implementation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from btfspec.oracle.impls.outcome import Outcome


@dataclass(frozen=True)
class Output:
    """An argument taken from an earlier step of the batch: ``outcomes[step].outputs[role]``."""

    step: int
    role: str


Arg = bytes | Output | None


@dataclass(frozen=True)
class Step:
    """One operation of a batch: ``op`` (``distill``, ``relocate``, ``accept``) on ``args``, with the
    per-call ``timeout`` every operation takes (None: the implementation's own)."""

    op: str
    args: tuple[Arg, ...]
    timeout: float | None = None


def resolve(args: Sequence[Arg], outcomes: Sequence[Outcome | None]) -> tuple[bytes | None, ...] | None:
    """``args`` with each :class:`Output` replaced by its bytes; None when one of them is missing."""
    out: list[bytes | None] = []
    for arg in args:
        if isinstance(arg, Output):
            if not 0 <= arg.step < len(outcomes):
                raise ValueError(f"step input {arg} does not name an earlier step")
            source = outcomes[arg.step]
            if source is None or arg.role not in source.outputs:
                return None
            arg = source.outputs[arg.role]
        out.append(arg)
    return tuple(out)

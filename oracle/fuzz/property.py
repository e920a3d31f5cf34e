"""The property protocol shared by pytest and the campaign runner.

A :class:`Property` draws a case from a hypothesis strategy and checks it against the selected
implementations; a violation raises :class:`PropertyFailure` carrying a :class:`Finding` — what a
person needs to reproduce and understand it (the inputs as files, the outcomes, the first
difference, a quirk id where one is known). The campaign runner shrinks failures with hypothesis,
deduplicates findings by :attr:`Finding.signature` and writes each as a corpus entry.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hypothesis.strategies import SearchStrategy

from btfspec.oracle.impls.adapter import Implementation

# Property name -> module defining it (in its ``PROPERTIES`` mapping); imported on first use.
REGISTRY: dict[str, str] = {
    "P1": "btfspec.oracle.fuzz.relocation",
    "P2": "btfspec.oracle.fuzz.relocation",
    "P3": "btfspec.oracle.fuzz.differential",
    "P4": "btfspec.oracle.fuzz.differential",
    "P5": "btfspec.oracle.fuzz.differential",
}


@dataclass(frozen=True)
class Finding:
    """One violation of a property, with everything needed to reproduce it."""

    property: str  # "P1" .. "P5"
    impl: str  # the implementation at fault ("libbpf", "python", "cmd", ...)
    outcome: str  # short label of what happened ("error -EINVAL (22)", "timeout", "bytes differ", ...)
    first_difference: str  # one line a person can follow
    files: Mapping[str, bytes] = field(default_factory=dict)  # role file name -> bytes (base.btf, split.btf, ...)
    steps: Sequence[Mapping[str, Any]] = ()  # corpus-format steps that replay the case
    quirk: str | None = None  # catalogue id when python-strict recognises it
    description: str = ""  # how the case was built (perturbation, mutation, ...)

    @property
    def signature(self) -> tuple[str, str, str, str]:
        """Deduplication key: property, implementation, outcome, first difference."""
        return (self.property, self.impl, self.outcome, self.first_difference)


class PropertyFailure(AssertionError):
    """Raised by a property's check; hypothesis shrinks on it."""

    def __init__(self, finding: Finding) -> None:
        super().__init__(f"{finding.property} [{finding.impl}] {finding.outcome}: {finding.first_difference}")
        self.finding = finding


@dataclass
class Context:
    """What a check may use: the selected implementations, by name, and campaign options."""

    impls: Mapping[str, Implementation]
    profile: str = "kernel-valid"
    known: set[tuple[str, str, str, str]] = field(default_factory=set)  # signatures already reported

    def get(self, name: str) -> Implementation | None:
        return self.impls.get(name)


@dataclass(frozen=True)
class Property:
    """A named property: a strategy of cases and a check that raises :class:`PropertyFailure`."""

    name: str
    title: str
    strategy: Callable[[Context], SearchStrategy[Any]]
    check: Callable[[Any, Context], None]
    needs: frozenset[str] = frozenset()  # capabilities an implementation must have to take part

    def applies(self, ctx: Context) -> bool:
        """Whether any selected implementation can take part."""
        return any(self.needs <= impl.capabilities for impl in ctx.impls.values())


def get_property(name: str) -> Property:
    """The property called ``name`` (``P1`` .. ``P5``); ``KeyError`` for unknown names."""
    module = importlib.import_module(REGISTRY[name])
    props: Mapping[str, Property] = module.PROPERTIES
    return props[name]


def all_names() -> list[str]:
    """Every property name, in order."""
    return sorted(REGISTRY)

"""One finding per root cause: findings grouped by what tells bugs apart.

Two kinds of group (:func:`group_key`):

* a **quirk group** -- a finding that carries catalogued quirk ids (``Q1`` .. ``Q22``, as python-strict
  attributes them) has its root cause named: (implementation, quirk ids).  Every finding of that
  quirk is one group whatever property, outcome or operation it was seen in; the group lists those.
* a **bug group** -- any other finding is keyed by (property, implementation, outcome class,
  operation, perturbation/mutation operator when the finding records one).  The first difference (a
  record index, a type name) varies between examples of one bug and stays out of the key.

A campaign writes one corpus entry per group, named ``<what>-<impl>-<hash of the key>`` (``what``:
the quirk ids, joined by ``+``, or the property: ``Q6-libbpf-1a2b3c4d5e``, ``P3-serve-5e4d3c2b1a``),
holding the group's smallest example so far (by the size of its files).  Its report lists the groups
first, quirk groups before bug groups, each with how many distinct findings fell into it, and, when
another implementation violated the property exactly as libbpf does, "shared with libbpf (Qn)".
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from btfspec.oracle.fuzz.property import Finding
from btfspec.oracle.impls.quirks import catalogue_ids, catalogue_key, catalogue_order

QUIRK = "quirk"  # the first element of a quirk group's key, and its ``root``
BUG = "bug"


def operation(steps: Sequence[Mapping[str, Any]]) -> str:
    """The operation a finding's steps replay (a corpus manifest's ``operation``): ``distill``, ``relocate``,
    ``accept``, ``distill+relocate`` or ``mixed``."""
    ops = {s["op"] for s in steps}
    if len(ops) == 1:
        return next(iter(ops))
    return "distill+relocate" if ops == {"distill", "relocate"} else "mixed"


def catalogued_quirks(quirk: str | None) -> str:
    """The catalogue ids in a finding's ``quirk`` (comma-joined, in catalogue order), "" for none."""
    return ",".join(catalogue_order(catalogue_ids(quirk or "")))


def group_key(f: Finding) -> tuple[str, ...]:
    """``("quirk", impl, quirk ids)`` for a finding with catalogued quirks, else
    ``(property, impl, outcome, operation, operator)``."""
    quirks = catalogued_quirks(f.quirk)
    if quirks:
        return (QUIRK, f.impl, quirks)
    return (f.property, f.impl, f.outcome, operation(f.steps), f.operator)


def group_name(key: Sequence[str]) -> str:
    """The corpus entry name of a group: ``Q6-libbpf-1a2b3c4d5e`` or ``P3-serve-1a2b3c4d5e``."""
    what = key[2].replace(",", "+") if key[0] == QUIRK else key[0]
    impl = re.sub(r"[^A-Za-z0-9_.+-]", "_", key[1])
    return f"{what}-{impl}-{hashlib.sha256(json.dumps(list(key)).encode()).hexdigest()[:10]}"


def example_size(f: Finding) -> int:
    """How big a finding's example is: the bytes of its files."""
    return sum(len(v) for v in f.files.values())


def _add(values: list[str], value: str) -> None:
    if value and value not in values:
        values.append(value)


@dataclass
class FindingGroup:
    """A group as the campaign saw it: how many findings, where they were seen, the smallest example kept."""

    root: str  # QUIRK or BUG
    impl: str
    quirk: str  # catalogue ids ("" for a bug group)
    name: str
    path: str
    new: bool
    count: int = 0
    smallest: int = 0  # bytes of the kept example
    seconds: float = 0.0  # when its first finding was found (its shrinking came after)
    property: str = ""  # of the kept example
    outcome: str = ""  # of the kept example
    operation: str = ""  # of the kept example
    operator: str = ""  # of the kept example
    first_difference: str = ""  # of the kept example
    properties: list[str] = field(default_factory=list)  # every one it was seen in, in the order seen
    outcomes: list[str] = field(default_factory=list)
    operations: list[str] = field(default_factory=list)
    profiles: list[str] = field(default_factory=list)
    shared_with: list[str] = field(default_factory=list)  # implementations that did exactly as libbpf

    @classmethod
    def of(cls, key: Sequence[str], path: str, new: bool, seconds: float) -> FindingGroup:
        """A new, empty group for :func:`group_key` ``key``."""
        if key[0] == QUIRK:
            return cls(QUIRK, key[1], key[2], group_name(key), path, new, seconds=seconds)
        return cls(BUG, key[1], "", group_name(key), path, new, seconds=seconds)

    def add(self, f: Finding, profile: str = "") -> bool:
        """Count ``f`` in; True when it is the group's smallest example so far (then the group keeps it)."""
        self.count += 1
        _add(self.properties, f.property)
        _add(self.outcomes, f.outcome)
        _add(self.operations, operation(f.steps))
        _add(self.profiles, profile)
        for name in f.shared_with:
            _add(self.shared_with, name)
        size = example_size(f)
        if self.count > 1 and size >= self.smallest:
            return False
        self.smallest, self.property, self.outcome = size, f.property, f.outcome
        self.operation, self.operator, self.first_difference = operation(f.steps), f.operator, f.first_difference
        return True

    def tag(self) -> str:
        """``serve: shared with libbpf (Q6)`` when other implementations did exactly as libbpf, else ""."""
        if not self.shared_with:
            return ""
        return f"{', '.join(self.shared_with)}: shared with libbpf" + (f" ({self.quirk})" if self.quirk else "")

    def title(self) -> str:
        """One line naming the root cause: ``libbpf Q6`` or ``P3 [serve] relocate differs ... (op)``."""
        if self.root == QUIRK:
            return f"[{self.impl}] quirk {self.quirk}"
        return f"{self.property} [{self.impl}] {self.outcome}" + (f" ({self.operator})" if self.operator else "")

    def seen_in(self) -> str:
        """Where a group's findings were seen: properties, outcomes and operations (beyond the kept one's)."""
        parts = [f"properties {', '.join(self.properties)}", f"operations {', '.join(self.operations)}"]
        if self.root == QUIRK or len(self.outcomes) > 1:
            parts.insert(1, f"outcomes {'; '.join(self.outcomes)}")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["tag"] = self.tag()
        return d


def ordered(groups: Sequence[FindingGroup]) -> list[FindingGroup]:
    """Quirk groups (named root causes) first, then bug groups; new before already in the corpus."""
    return sorted(groups, key=lambda g: (g.root != QUIRK, not g.new, g.impl, catalogue_key(g.quirk), g.property,
                                         g.outcome))

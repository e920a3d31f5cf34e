"""One finding per root cause: findings grouped by what tells bugs apart.

A *group* is keyed by (property, implementation at fault, outcome class, quirk ids, operation):
the first difference (a record index, a type name) varies between examples of one bug and stays
out of the key.  A campaign writes one corpus entry per group -- named like a finding,
``<property>-<impl>-<hash of the key>`` -- holding the group's smallest example so far (by the size
of its files), and its report lists the groups first, each with how many distinct findings fell
into it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from btfspec.oracle.fuzz.property import Finding


def operation(steps: Sequence[Mapping[str, Any]]) -> str:
    """The operation a finding's steps replay (a corpus manifest's ``operation``): ``distill``, ``relocate``,
    ``accept``, ``distill+relocate`` or ``mixed``."""
    ops = {s["op"] for s in steps}
    if len(ops) == 1:
        return next(iter(ops))
    return "distill+relocate" if ops == {"distill", "relocate"} else "mixed"


def group_key(f: Finding) -> tuple[str, str, str, str, str]:
    """(property, impl, outcome, quirk ids, operation) of a finding."""
    return (f.property, f.impl, f.outcome, f.quirk or "", operation(f.steps))


def group_name(key: Sequence[str]) -> str:
    """The corpus entry name of a group: ``P3-serve-1a2b3c4d5e``."""
    impl = re.sub(r"[^A-Za-z0-9_.+-]", "_", key[1])
    return f"{key[0]}-{impl}-{hashlib.sha256(json.dumps(list(key)).encode()).hexdigest()[:10]}"


def example_size(f: Finding) -> int:
    """How big a finding's example is: the bytes of its files."""
    return sum(len(v) for v in f.files.values())


@dataclass
class FindingGroup:
    """A group as the campaign saw it: how many findings, the smallest example kept, where."""

    property: str
    impl: str
    outcome: str
    quirk: str
    operation: str
    name: str
    path: str
    new: bool
    count: int = 0
    smallest: int = 0  # bytes of the kept example
    seconds: float = 0.0  # when its first finding was recorded
    profiles: list[str] = field(default_factory=list)
    first_difference: str = ""  # of the kept example

    @classmethod
    def of(cls, key: Sequence[str], path: str, new: bool, smallest: int, seconds: float) -> FindingGroup:
        """A new group for :func:`group_key` ``key``."""
        return cls(*key, name=group_name(key), path=path, new=new, smallest=smallest, seconds=seconds)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def count_by(groups: Iterable[FindingGroup], what: str) -> dict[str, int]:
    """Groups per ``property``/``impl``/``quirk`` value."""
    out: dict[str, int] = {}
    for g in groups:
        value = getattr(g, what) or "none"
        out[value] = out.get(value, 0) + 1
    return dict(sorted(out.items()))

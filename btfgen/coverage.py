"""Process-wide coverage counters for generated BTF: kinds, shapes, perturbations, labels, errnos.

Strategies and properties call :func:`record` (``record("kind", "STRUCT")``); a run ends with
:func:`snapshot`, a plain ``{category: {value: count}}`` dict that pickles and serializes to JSON, so
worker processes can ship theirs to a parent that :func:`merge`\\ s them.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable, Mapping

_lock = threading.Lock()
_counts: dict[str, Counter[str]] = {}


def record(category: str, value: object, n: int = 1) -> None:
    """Count one occurrence (or ``n``) of ``value`` in ``category``."""
    with _lock:
        _counts.setdefault(category, Counter())[str(value)] += n


def record_all(items: Iterable[tuple[str, object]]) -> None:
    """Count each ``(category, value)`` pair once."""
    with _lock:
        for category, value in items:
            _counts.setdefault(category, Counter())[str(value)] += 1


def snapshot() -> dict[str, dict[str, int]]:
    """A copy of every counter, categories and values sorted."""
    with _lock:
        return {c: dict(sorted(v.items())) for c, v in sorted(_counts.items())}


def reset() -> None:
    """Forget everything recorded so far."""
    with _lock:
        _counts.clear()


def merge(other: Mapping[str, Mapping[str, int]]) -> None:
    """Add another process's :func:`snapshot` into this one."""
    with _lock:
        for category, values in other.items():
            c = _counts.setdefault(category, Counter())
            for value, n in values.items():
                c[str(value)] += int(n)


def missing(category: str, expected: Iterable[object]) -> list[str]:
    """The values of ``expected`` never recorded in ``category`` (for coverage assertions)."""
    with _lock:
        seen = _counts.get(category, Counter())
        return [str(v) for v in expected if not seen.get(str(v))]

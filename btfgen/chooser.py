"""One decision interface for the generator: seeded random (:class:`RandomChooser`) or drawn by
hypothesis (:class:`HypothesisChooser`, shrinkable), so both drivers produce the same kind of graphs."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

from hypothesis import strategies as st

from btfspec.btfgen.universe import (
    T,
)


class Chooser:
    """Source of decisions.  ``int`` shrinks towards ``lo``; ``chance`` towards False."""

    def int(self, lo: int, hi: int) -> int:
        raise NotImplementedError

    def chance(self, percent: int) -> bool:
        """True with about ``percent`` % probability."""
        return percent > 0 and (percent >= 100 or self.int(0, 99) >= 100 - percent)

    def more(self) -> bool:
        """Another construct before the target size?  (Always, unless the driver can shrink it away.)"""
        return True

    def begin(self, label: int) -> None:
        """The decisions from here to :meth:`end` make one construct (or one run of them): a shrinking
        driver can then delete or simplify it as a whole."""

    def end(self) -> None:
        """Close the innermost :meth:`begin`."""

    def pick(self, seq: Sequence[T]) -> T:
        return seq[self.int(0, len(seq) - 1)] if len(seq) > 1 else seq[0]

    def weighted(self, weights: Sequence[int]) -> int:
        """An index, with probability proportional to its weight (index 0 is the simplest)."""
        total = sum(weights)
        x = self.int(0, total - 1)
        for i, w in enumerate(weights):
            if x < w:
                return i
            x -= w
        return len(weights) - 1


class RandomChooser(Chooser):
    """Decisions from a seeded :class:`random.Random` (deterministic for a seed)."""

    def __init__(self, rng: Any) -> None:
        self.rng = rng

    def int(self, lo: int, hi: int) -> int:
        return self.rng.randint(lo, hi) if hi > lo else lo

    def chance(self, percent: int) -> bool:
        return self.rng.random() * 100 < percent


@functools.lru_cache(maxsize=4096)
def _ints(lo: int, hi: int) -> st.SearchStrategy[int]:
    return st.integers(lo, hi)


class HypothesisChooser(Chooser):
    """Decisions drawn from a hypothesis ``draw`` (shrinkable).

    Integers come straight from the ConjectureData behind ``draw`` (``draw_integer``, what bounded
    ``st.integers`` draws with), which skips the per-draw strategy bookkeeping and about doubles the
    generation rate; if that internal interface is missing, ``st.integers`` is drawn instead.
    """

    def __init__(self, draw: Callable[[st.SearchStrategy[Any]], Any]) -> None:
        self.draw = draw
        data = getattr(draw, "__self__", None)
        fast = getattr(data, "draw_integer", None)
        self._fast: Callable[[int, int], int] | None = fast if callable(fast) else None
        start, stop = getattr(data, "start_span", None), getattr(data, "stop_span", None)
        self._spans = (start, stop) if callable(start) and callable(stop) else None

    def begin(self, label: int) -> None:
        # a span of the ConjectureData: hypothesis's shrinker deletes and simplifies by spans (a
        # construct's dozen choices are otherwise too many for its runs-of-up-to-5 deletion)
        if self._spans is not None:
            self._spans[0](label)

    def end(self) -> None:
        if self._spans is not None:
            self._spans[1]()

    def int(self, lo: int, hi: int) -> int:
        if hi <= lo:
            return lo
        if self._fast is not None:
            return self._fast(lo, hi)
        return self.draw(_ints(lo, hi))  # type: ignore[no-any-return]

    def more(self) -> bool:
        # like st.lists: one "continue" choice per element, so shrinking can stop early or delete
        # a whole construct (its choices and this flag) from the middle
        return self.int(0, 99) != 0


# A recorded decision: ("int", value), ("chance", 0/1) or ("pick", index, key of the picked node or None).
Decision = tuple[Any, ...]


def _key_of(item: Any) -> Any:
    return getattr(item, "key", None)


class RecordingChooser(Chooser):
    """Passes every decision to ``inner`` unchanged (the same draws in the same order) and records it,
    picks with the key of the picked node, so that :class:`ReplayChooser` can make them again on a
    smaller universe."""

    def __init__(self, inner: Chooser) -> None:
        self.inner = inner
        self.decisions: list[Decision] = []

    def int(self, lo: int, hi: int) -> int:
        v = self.inner.int(lo, hi)
        self.decisions.append(("int", v))
        return v

    def chance(self, percent: int) -> bool:
        v = self.inner.chance(percent)
        self.decisions.append(("chance", int(v)))
        return v

    def pick(self, seq: Sequence[T]) -> T:
        i = self.inner.int(0, len(seq) - 1) if len(seq) > 1 else 0
        self.decisions.append(("pick", i, _key_of(seq[i])))
        return seq[i]

    def more(self) -> bool:
        return self.inner.more()

    def begin(self, label: int) -> None:
        self.inner.begin(label)

    def end(self) -> None:
        self.inner.end()


class ReplayChooser(Chooser):
    """Makes recorded decisions again: a pick takes the node with the recorded key when it is still among
    the candidates (else the recorded index, clamped), an integer its recorded value clamped to the new
    bounds; past the record every decision is the simplest one."""

    def __init__(self, decisions: Sequence[Decision]) -> None:
        self.decisions = list(decisions)
        self.pos = 0

    def _next(self) -> Decision | None:
        if self.pos >= len(self.decisions):
            return None
        self.pos += 1
        return self.decisions[self.pos - 1]

    def int(self, lo: int, hi: int) -> int:
        d = self._next()
        v = d[1] if d is not None else lo
        return min(max(v, lo), hi)

    def chance(self, percent: int) -> bool:
        d = self._next()
        return bool(d[1]) if d is not None else False

    def pick(self, seq: Sequence[T]) -> T:
        d = self._next()
        if d is None:
            return seq[0]
        if d[0] == "pick" and d[2] is not None:
            for item in seq:
                if _key_of(item) == d[2]:
                    return item
        return seq[min(max(d[1], 0), len(seq) - 1)]

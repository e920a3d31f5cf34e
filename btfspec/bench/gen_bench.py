"""``btfspec bench gen``: generated examples per second, beside a plain hypothesis strategy of the same size."""

from __future__ import annotations

import time
import warnings

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from btfspec.bench.timing import Row


def _rate(strategy: st.SearchStrategy[object], seconds: float) -> float:
    """Examples per second hypothesis draws from ``strategy`` in about ``seconds`` (generate phase only)."""
    count = 0
    deadline = time.perf_counter() + seconds

    @settings(max_examples=10**6, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def draw(_: object) -> None:
        nonlocal count
        count += 1
        if time.perf_counter() > deadline:
            raise _Stop

    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the stop exception makes hypothesis repr the (large) example
        try:
            draw()
        except _Stop:
            pass
    return count / (time.perf_counter() - t0)


class _Stop(Exception):
    pass


def plain_records(n: int) -> st.SearchStrategy[object]:
    """A plain strategy of ``n`` (kind, reference, bits) records: the hypothesis baseline."""
    rec = st.tuples(st.integers(1, 19), st.integers(0, n), st.integers(0, 2**32 - 1))
    return st.lists(rec, min_size=n, max_size=n)


def run(sizes: tuple[int, ...] = (50, 500), seconds: float = 5.0) -> list[Row]:
    """Rows of examples/s for btfgen's base/split pairs and universes vs the plain strategy."""
    from btfspec.btfgen.generate import base_split_pairs, universes

    rows: list[Row] = []
    for n in sizes:
        lo, hi = max(5, n * 9 // 10), n
        plain = _rate(plain_records(n), seconds)
        rows.append(Row(f"plain hypothesis, {n} records", 1 / plain))
        uni = _rate(universes(min_types=lo, max_types=hi), seconds)
        rows.append(Row(f"universe, ~{n} types", 1 / uni, "plain", 1 / plain))
        pairs = _rate(base_split_pairs(min_types=lo, max_types=hi), seconds)
        rows.append(Row(f"encoded base/split, ~{n} types", 1 / pairs, "plain", 1 / plain))
    return rows

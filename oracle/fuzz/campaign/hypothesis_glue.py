"""Everything the campaign asks of hypothesis beyond its public decorators, in one place.

Two private attributes of a ``@given`` test are set (no public API does either alone):

* :data:`SEED_HOOK` -- the seed of a run; ``hypothesis.seed()`` would also switch the example
  database off;
* :data:`DATABASE_KEY_HOOK` -- the example-database key, so every slot and machine running one
  property on one implementation set shares its saved failures.

``tests/test_campaign.py`` checks that hypothesis still honours both (a rename fails it).

The seeded fast path (:func:`seeded_example`) walks a strategy's composites and maps itself and
answers the integer draws of :class:`~btfspec.btfgen.chooser.HypothesisChooser` from a seeded
random generator, recording them; :func:`save_for_shrinking` stores such a record where hypothesis
replays it as a not-yet-shrunk failure (the ``.secondary`` key of the database layout).
``tests/test_seeded.py`` checks that the replay draws the same case and that a failure shrinks.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable
from typing import Any

from hypothesis.strategies import SearchStrategy

SEED_HOOK = "_hypothesis_internal_use_seed"
DATABASE_KEY_HOOK = "_hypothesis_internal_database_key"


def campaign_test(body: Callable[[Any], None], strategy: SearchStrategy[Any], *, max_examples: int, seed: int,
                  database: Any, database_key: bytes) -> Callable[[], None]:
    """``body`` as one hypothesis run over ``strategy``: quiet, no deadline, no health checks, every bug
    reported, ``seed`` and the shared ``database`` under ``database_key``."""
    from hypothesis import HealthCheck, Phase, Verbosity, given, settings

    test = given(strategy)(body)
    test = settings(database=database, max_examples=max_examples, derandomize=False, deadline=None,
                    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
                    suppress_health_check=list(HealthCheck), verbosity=Verbosity.quiet, print_blob=False,
                    report_multiple_bugs=True)(test)
    setattr(test, SEED_HOOK, seed)
    setattr(test, DATABASE_KEY_HOOK, database_key)
    return test


def quiet_hypothesis_warnings() -> None:
    """Silence hypothesis's warnings that are not the campaign's business: other threads of a dask worker
    use the global random module while a case is drawn (not the strategy's), and a failing example's
    repr is large because BTF cases are (the campaign reports by corpus entry, not by repr)."""
    import warnings

    from hypothesis.errors import HypothesisDeprecationWarning, HypothesisWarning

    warnings.filterwarnings("ignore", message="Do not use the `random` module inside strategies",
                            category=HypothesisDeprecationWarning)
    warnings.filterwarnings("ignore", message="Generating overly large repr", category=HypothesisWarning)


def keeping_database(inner: Any, keep: Callable[[], bool]) -> Any:
    """``inner`` whose ``delete`` is skipped while ``keep()`` says the example just replayed is a known finding.

    Hypothesis deletes a saved failure that no longer fails; a known finding passes only because the
    campaign excuses it, so its shrunk example stays in the shared database for every worker, machine
    and later campaign to replay.
    """
    from hypothesis.database import ExampleDatabase

    class _Keeping(ExampleDatabase):
        def save(self, key: bytes, value: bytes) -> None:
            inner.save(key, value)

        def fetch(self, key: bytes) -> Any:
            return inner.fetch(key)

        def delete(self, key: bytes, value: bytes) -> None:
            if not keep():
                inner.delete(key, value)

        def move(self, src: bytes, dest: bytes, value: bytes) -> None:
            inner.move(src, dest, value)

        def __repr__(self) -> str:
            return f"keeping({inner!r})"

    return _Keeping()


class NotSeedable(Exception):
    """The strategy draws something other than composites, maps and HypothesisChooser integers."""


class SeededDraw:
    """The ``draw`` of a composite strategy without hypothesis: integers from ``random.Random(seed)``.

    :class:`~btfspec.btfgen.chooser.HypothesisChooser` takes its integers from ``draw.__self__.draw_integer``,
    so the generator code runs unchanged; ``choices`` is what a hypothesis run must be given to draw the
    same value.
    """

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self._random = self.rng.random
        self.choices: list[int] = []

    def draw_integer(self, lo: int, hi: int) -> int:
        n = hi - lo + 1
        # a 53-bit float scaled: a tenth of randint's cost, its bias below 2**-21 for ranges up to 2**32
        value = lo + (int(self._random() * n) if n <= 1 << 32 else self.rng.randrange(n))
        self.choices.append(value)
        return value

    def draw(self, strategy: SearchStrategy[Any]) -> Any:
        strategy = getattr(strategy, "wrapped_strategy", strategy)  # a LazyStrategy: what it stands for
        definition = getattr(strategy, "definition", None)
        if definition is not None:  # st.composite
            return definition(self.draw, *strategy.args, **strategy.kwargs)
        if hasattr(strategy, "mapped_strategy"):  # .map(f)
            return strategy.pack(self.draw(strategy.mapped_strategy))
        raise NotSeedable(type(strategy).__name__)


def seeded_example(strategy: SearchStrategy[Any], seed: int) -> tuple[Any, list[int]]:
    """A value of ``strategy`` drawn from ``seed`` without hypothesis, and its choice sequence.

    Raises :class:`NotSeedable` for strategies this cannot draw (the campaign then uses hypothesis only).
    """
    data = SeededDraw(seed)
    return data.draw(strategy), data.choices


def shrinking_database(shared: Any) -> Any:
    """A database for shrinking the failures of one run: it replays only what is saved through it, and
    what hypothesis saves, moves or deletes goes to ``shared`` (when there is one) as well.

    A one-example replay of the shared database under a property's key would meet its saved examples
    first -- a known finding's shrunk one, which passes because the campaign excuses it -- and end
    before the new failure is reached: that failure would go unshrunk (every finding of a property after
    its first, in a campaign with a database)."""
    from hypothesis.database import InMemoryExampleDatabase

    if shared is None:
        return InMemoryExampleDatabase()
    return _shrinking_class()(shared)


@functools.cache
def _shrinking_class() -> type:
    """The class of :func:`shrinking_database`, made once on first use."""
    from hypothesis.database import ExampleDatabase, InMemoryExampleDatabase

    class _Shrinking(ExampleDatabase):
        def __init__(self, shared: Any) -> None:
            super().__init__()
            self.own, self.shared = InMemoryExampleDatabase(), shared

        def save(self, key: bytes, value: bytes) -> None:
            self.own.save(key, value)
            self.shared.save(key, value)

        def fetch(self, key: bytes) -> Any:
            return self.own.fetch(key)

        def delete(self, key: bytes, value: bytes) -> None:
            self.own.delete(key, value)
            self.shared.delete(key, value)

        def move(self, src: bytes, dest: bytes, value: bytes) -> None:
            self.own.move(src, dest, value)
            self.shared.move(src, dest, value)

        def __repr__(self) -> str:
            return f"shrinking({self.shared!r})"

    return _Shrinking


def save_for_shrinking(database: Any, database_key: bytes, choices: list[int]) -> None:
    """Store ``choices`` so that the next run under ``database_key`` replays them first and shrinks them."""
    from hypothesis.database import choices_to_bytes

    database.save(database_key + b".secondary", choices_to_bytes(choices))


def keep_for_replay(database: Any, database_key: bytes, choices: list[int]) -> None:
    """Store ``choices`` where hypothesis keeps a failure it shrank: every later run under ``database_key`` (on
    any worker or machine sharing ``database``) replays them first."""
    from hypothesis.database import choices_to_bytes

    database.save(database_key, choices_to_bytes(choices))


def requeue_for_shrinking(database: Any, database_key: bytes) -> None:
    """Move the failures saved under ``database_key`` to where the next run shrinks them: hypothesis
    replays its primary entries as already shrunk (a run stopped before shrinking left them there)."""
    for value in list(database.fetch(database_key)):
        database.move(database_key, database_key + b".secondary", value)

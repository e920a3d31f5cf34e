"""Everything the campaign asks of hypothesis beyond its public decorators, in one place.

Two private attributes of a ``@given`` test are set (no public API does either alone):

* :data:`SEED_HOOK` -- the seed of a run; ``hypothesis.seed()`` would also switch the example
  database off;
* :data:`DATABASE_KEY_HOOK` -- the example-database key, so every slot and machine running one
  property on one implementation set shares its saved failures.

``tests/test_campaign.py`` checks that hypothesis still honours both (a rename fails it).
"""

from __future__ import annotations

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


def quiet_random_module_warning() -> None:
    """Other threads of a dask worker use the global random module while a case is drawn: not the strategy's."""
    import warnings

    from hypothesis.errors import HypothesisDeprecationWarning

    warnings.filterwarnings("ignore", message="Do not use the `random` module inside strategies",
                            category=HypothesisDeprecationWarning)


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

"""The btfspec pytest plugin (entry point ``pytest11``): a port's own suite replays btfspec's corpus.

``pytest --btfspec-impl NAME[,NAME...]`` adds one test item per corpus entry x step (operation) x
implementation, named ``btfspec-corpus/<entry>::<step>[<impl>]``; a failing item's message starts
with the first difference and ends with the ``btfspec corpus run`` command that replays it.
``--btfspec-corpus DIR`` (repeatable) replays other directories in the corpus format instead of
the installed corpus.  The fixtures ``btfspec_impls`` (the opened implementations, session-wide)
and ``btfspec_context`` (a :class:`btfspec.oracle.fuzz.property.Context` over them) serve
``@given`` tests written with :mod:`btfspec.testing`.

Without ``--btfspec-impl`` the plugin adds nothing, and its fixtures skip with that reason.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from btfspec.oracle.fuzz.corpus import Entry, StepResult
    from btfspec.oracle.fuzz.property import Context
    from btfspec.oracle.impls.adapter import Implementation

ITEM_PREFIX = "btfspec-corpus"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("btfspec", "btfspec: check a BTF distill/relocate implementation")
    group.addoption("--btfspec-impl", metavar="NAME[,NAME...]",
                    help="Implementations to test (python, python-strict, libbpf, kernel, cmd, ...): adds the "
                         "corpus items and enables the btfspec_impls/btfspec_context fixtures.")
    group.addoption("--btfspec-corpus", metavar="DIR", action="append", default=[],
                    help="A corpus directory to replay (repeatable; default: the corpus installed with btfspec).")
    group.addoption("--btfspec-distill-cmd", metavar="TEMPLATE",
                    help="cmd implementation: '... {split} {base} {out_base} {out_split}'.")
    group.addoption("--btfspec-relocate-cmd", metavar="TEMPLATE",
                    help="cmd implementation: '... {split} {distilled_base} {base} {out}'.")
    group.addoption("--btfspec-serve-cmd", metavar="COMMAND",
                    help="serve implementation: a program answering requests on stdin/stdout.")
    group.addoption("--btfspec-timeout", metavar="SECONDS", type=float, default=None,
                    help="Seconds per call of a worker or external implementation before it counts as a timeout.")


class _Session:
    """The implementations of one pytest session, opened on first use and closed at its end."""

    def __init__(self, config: pytest.Config) -> None:
        self.names: list[str] = []
        value = config.getoption("--btfspec-impl")
        self.options: dict[str, Any] = {
            "distill_cmd": config.getoption("--btfspec-distill-cmd"),
            "relocate_cmd": config.getoption("--btfspec-relocate-cmd"),
            "serve_cmd": config.getoption("--btfspec-serve-cmd"),
            "timeout": config.getoption("--btfspec-timeout"),
        }
        if value:
            from btfspec.oracle.impls.adapter import parse_impl_list

            try:
                self.names = parse_impl_list(value)
            except ValueError as exc:
                raise pytest.UsageError(f"--btfspec-impl: {exc}") from None
        self.roots = [Path(p) for p in config.getoption("--btfspec-corpus")]
        self._impls: dict[str, Implementation] | None = None
        self.unusable: dict[str, str] = {}

    def impls(self) -> dict[str, Implementation]:
        if self._impls is None:
            from btfspec.testing import open_implementations

            opened, self.unusable = open_implementations(self.names, **self.options)
            self._impls = {i.name: i for i in opened}
        return self._impls

    def close(self) -> None:
        if self._impls:
            from btfspec.oracle.impls.adapter import close_impls

            close_impls(self._impls.values())
        self._impls = None

    def replay_command(self, entry: Entry, impl: str) -> str:
        from btfspec.testing import option_flags

        return shlex.join(["btfspec", "corpus", "run", str(entry.path), "--impl", impl,
                           *option_flags(impl, self.options)])


_KEY = pytest.StashKey[_Session]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "btfspec_corpus: a btfspec corpus step (added by --btfspec-impl)")
    config.stash[_KEY] = _Session(config)


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(_KEY, None)
    if state is not None:
        state.close()


class CorpusStepFailed(AssertionError):
    """A corpus step whose outcome differs from its recorded expectation."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


class CorpusStepItem(pytest.Item):
    """One step of one corpus entry on one implementation."""

    def __init__(self, *, entry: Entry, step: dict[str, Any], impl: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.entry, self.step, self.impl = entry, step, impl
        self.add_marker(pytest.mark.btfspec_corpus)

    def runtest(self) -> None:
        from btfspec.oracle.fuzz.corpus import FAIL, SKIP, run_step

        state = self.config.stash[_KEY]
        impl = state.impls().get(self.impl)
        if impl is None:
            pytest.skip(f"{self.impl} unavailable: {state.unusable.get(self.impl, 'not opened')}")
        result: StepResult = run_step(self.entry, self.step, impl)
        if result.status == SKIP:
            pytest.skip(result.reason)
        if result.status == FAIL:
            raise CorpusStepFailed(self._message(result, state))

    def _message(self, result: StepResult, state: _Session) -> str:
        lines = [f"first difference: {result.difference or result.reason}",
                 f"entry {self.entry.id} ({self.entry.manifest.get('summary', '')}), step {self.step['name']} "
                 f"({self.step['op']}) on {self.impl}"]
        if result.outcome is not None:
            lines.append(f"{self.impl} returned {result.outcome.describe()}")
        lines.append(f"replay: {state.replay_command(self.entry, self.impl)}")
        return "\n".join(lines)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, CorpusStepFailed):
            return excinfo.value.text
        return str(super().repr_failure(excinfo, style=style))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.entry.path, None, f"{ITEM_PREFIX}/{self.entry.id}::{self.step['name']}[{self.impl}]"


def _entries(roots: list[Path]) -> list[Entry]:
    from btfspec.locations import CORPUS_DIR
    from btfspec.oracle.fuzz.corpus import CorpusError, iter_entries

    out: list[Entry] = []
    for root in roots or [CORPUS_DIR]:
        try:
            out += list(iter_entries(root))
        except CorpusError as exc:
            raise pytest.UsageError(f"--btfspec-corpus: {exc}") from None
    return out


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Add the corpus items (before -k/-m selection sees the list)."""
    state = config.stash[_KEY]
    if not state.names:
        return
    for entry in _entries(state.roots):
        for step in entry.steps:
            for impl in state.names:
                name = f"{entry.id}::{step['name']}[{impl}]"
                items.append(CorpusStepItem.from_parent(session, name=name, nodeid=f"{ITEM_PREFIX}/{name}",
                                                        entry=entry, step=step, impl=impl))


@pytest.fixture(scope="session")
def btfspec_impls(pytestconfig: pytest.Config) -> list[Implementation]:
    """The implementations named by ``--btfspec-impl`` that are usable here (skips when none is)."""
    state = pytestconfig.stash[_KEY]
    if not state.names:
        pytest.skip("no --btfspec-impl given")
    impls = state.impls()
    if not impls:
        pytest.skip("no usable implementation: " + "; ".join(f"{n}: {why}" for n, why in state.unusable.items()))
    return list(impls.values())


@pytest.fixture(scope="session")
def btfspec_context(btfspec_impls: list[Implementation]) -> Context:
    """A property :class:`~btfspec.oracle.fuzz.property.Context` over ``btfspec_impls``."""
    from btfspec.testing import context

    return context(btfspec_impls)

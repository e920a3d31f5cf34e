"""The test suite's hypothesis set-up: a derandomized test draws the same cases whatever ran before it."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st


def _draws() -> list[int]:
    seen: list[int] = []

    @settings(max_examples=300, derandomize=True, database=None)
    @given(st.integers(0, 10**6))
    def run(x: int) -> None:
        seen.append(x)

    run()
    return seen


def test_draws_do_not_depend_on_the_modules_loaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Loading a first-party module full of constants (as a lazily imported CLI command does) changes
    no draw: hypothesis would otherwise mix its constants in (conftest turns that pool off)."""
    before = _draws()
    constants = [123_457 + 7 * i for i in range(60)]
    (tmp_path / "btfspec_probe_constants.py").write_text(f"VALUES = {tuple(constants)!r}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "btfspec_probe_constants", raising=False)
    importlib.import_module("btfspec_probe_constants")
    after = _draws()
    assert not set(after) & set(constants)
    assert after == before

"""Hypothesis settings profiles, chosen by ``BTFSPEC_PROFILE`` (dev, ci, campaign)."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest
from hypothesis import HealthCheck, settings

_COMMON = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large]}
settings.register_profile("dev", max_examples=50, **_COMMON)
settings.register_profile("ci", max_examples=100, derandomize=True, database=None, print_blob=True, **_COMMON)
settings.register_profile("campaign", max_examples=5000, **_COMMON)
settings.load_profile(os.environ.get("BTFSPEC_PROFILE", "dev"))


_RESULTS: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    """Commands a test runs without pointing their outputs somewhere write into a throw-away results
    directory, never the user's (``btfspec.locations.results_dir``)."""
    _RESULTS.append(tempfile.mkdtemp(prefix="btfspec-test-results-"))
    os.environ["BTFSPEC_RESULTS"] = _RESULTS[-1]


def pytest_unconfigure(config: pytest.Config) -> None:
    for path in _RESULTS:
        shutil.rmtree(path, ignore_errors=True)

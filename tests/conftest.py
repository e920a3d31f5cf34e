"""Hypothesis settings profiles, chosen by ``BTFSPEC_PROFILE`` (dev, ci, campaign)."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.internal.conjecture import providers as _providers

_COMMON = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large]}
settings.register_profile("dev", max_examples=50, **_COMMON)
settings.register_profile("ci", max_examples=100, derandomize=True, database=None, print_blob=True, **_COMMON)
settings.register_profile("campaign", max_examples=5000, **_COMMON)
settings.load_profile(os.environ.get("BTFSPEC_PROFILE", "dev"))

# Hypothesis mixes into its draws the constants it harvests from every first-party module loaded so
# far. Which modules are loaded depends on what ran before in the same process (the CLI imports its
# commands lazily), so a derandomized test found and shrank a different case depending on test order
# (test_p1_finds_libbpf_q2_kind_changed: 8 nodes in 20 s, or 28 nodes in 100 s after a CLI test).
# Tests draw without that pool, so each one draws the same cases in any order; campaigns keep it.
if hasattr(_providers, "_get_local_constants") and hasattr(_providers, "Constants"):
    _providers._get_local_constants = _providers.Constants


# Whatever a test's commands write without being pointed somewhere (btfspec.locations.results_dir) and
# hypothesis's own storage (its constants cache, ./.hypothesis by default) go to a throw-away directory,
# never the user's results or the source tree; a developer's HYPOTHESIS_STORAGE_DIRECTORY is kept.
_SCRATCH = tempfile.mkdtemp(prefix="btfspec-tests-")
os.environ["BTFSPEC_RESULTS"] = os.path.join(_SCRATCH, "results")
os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", os.path.join(_SCRATCH, "hypothesis"))


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_SCRATCH, ignore_errors=True)

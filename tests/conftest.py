"""Hypothesis settings profiles, chosen by ``BTFSPEC_PROFILE`` (dev, ci, campaign)."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_COMMON = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large]}
settings.register_profile("dev", max_examples=50, **_COMMON)
settings.register_profile("ci", max_examples=100, derandomize=True, database=None, print_blob=True, **_COMMON)
settings.register_profile("campaign", max_examples=5000, **_COMMON)
settings.load_profile(os.environ.get("BTFSPEC_PROFILE", "dev"))

"""Dashboard test fixtures: the read-through cache off (tests add data between renders)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _no_read_cache(settings):
    settings.TORII_DASHBOARD_CACHE_SECONDS = 0

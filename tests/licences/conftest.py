import pytest


@pytest.fixture(autouse=True)
def _no_read_cache(settings):
    """The read-through cache off: tests add data between renders."""
    settings.TORII_DASHBOARD_CACHE_SECONDS = 0
    settings.TORII_CURRENCY = "EUR"

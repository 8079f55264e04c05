import pytest


@pytest.fixture(autouse=True)
def _currency(settings):
    settings.TORII_CURRENCY = "EUR"

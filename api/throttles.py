"""REST API throttles. Rates come from REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], read when a
throttle is made (not once at import), so settings changes apply."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from rest_framework.settings import api_settings
from rest_framework.throttling import AnonRateThrottle, SimpleRateThrottle, UserRateThrottle


class _RatesFromSettings(SimpleRateThrottle):
    def get_rate(self) -> str | None:
        rates: dict[str, str | None] = api_settings.DEFAULT_THROTTLE_RATES  # type: ignore[assignment]
        try:
            return rates[str(self.scope)]
        except KeyError:
            raise ImproperlyConfigured(f"No throttle rate set for scope {self.scope!r}") from None


class AnonThrottle(_RatesFromSettings, AnonRateThrottle):
    """Anonymous callers, per client address (behind TRUSTED_PROXY_COUNT proxies)."""


class UserThrottle(_RatesFromSettings, UserRateThrottle):
    """Every call of a signed-in person (session or token)."""


class ActionsThrottle(_RatesFromSettings, UserRateThrottle):
    """Calls that act in JumpCloud or start work (user actions, syncs): tighter."""

    scope = "actions"


class ExportsThrottle(_RatesFromSettings, UserRateThrottle):
    """CSV exports (dashboard): tighter."""

    scope = "exports"


def throttled_response(request: HttpRequest, throttle_class: type[SimpleRateThrottle]) -> HttpResponse | None:
    """For a plain Django view: None when the request may go on, else a 429 page saying when to
    come back (the same counters and rates as the API)."""
    throttle = throttle_class()
    if throttle.allow_request(request, None):  # type: ignore[arg-type]
        return None
    wait = int(throttle.wait() or 60) + 1
    response = render(
        request,
        "errors/429.html",
        {"message": f"Too many requests of this kind. Try again in {wait} seconds.", "retry_after": wait},
        status=429,
    )
    response["Retry-After"] = str(wait)
    return response

"""Response headers every torii page and API answer needs."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils.cache import patch_cache_control, patch_vary_headers


class PrivateResponsesMiddleware:
    """Answers to a signed-in person (session or API token) are theirs alone: `Cache-Control:
    private, no-store`, so neither a shared proxy nor the browser's disk keeps people, e-mails or
    audit records. Pages that htmx may fetch as a fragment say `Vary: HX-Request`, so a cache never
    serves the fragment for the full page or the other way round."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        # DRF sets request.user to the token's user when a token authenticated the call.
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            patch_cache_control(response, private=True, no_store=True)
        content_type = response.get("Content-Type", "")
        if getattr(request, "htmx", False) or content_type.startswith("text/html"):
            patch_vary_headers(response, ("HX-Request",))
        return response

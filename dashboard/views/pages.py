"""Top-level pages. Each reads through integrations.selectors and changes nothing."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.views.generic import TemplateView

from accounts.permissions import ViewerRequiredMixin
from integrations.selectors import connections as conn_selectors


def is_htmx(request: HttpRequest) -> bool:
    """True for requests htmx made (django-htmx's middleware sets request.htmx)."""
    return bool(getattr(request, "htmx", False))


def htmx_target(request: HttpRequest) -> str | None:
    """The id of the element an htmx request will swap, if any."""
    details = getattr(request, "htmx", None)
    return details.target if details else None


class HomeView(ViewerRequiredMixin, TemplateView):
    """Overview: each account's status at a glance, or a call to connect the first one."""

    template_name = "dashboard/home.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        ctx = super().get_context_data(**kwargs)
        ctx["cards"] = conn_selectors.connection_cards()
        return ctx

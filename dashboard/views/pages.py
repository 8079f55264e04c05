"""Top-level pages. Each reads through integrations.selectors and changes nothing."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.views.generic import TemplateView

from accounts.permissions import ViewerRequiredMixin
from integrations.selectors import licences as licence_selectors
from integrations.selectors import overview as overview_selectors


def is_htmx(request: HttpRequest) -> bool:
    """True for requests htmx made (django-htmx's middleware sets request.htmx)."""
    return bool(getattr(request, "htmx", False))


def htmx_target(request: HttpRequest) -> str | None:
    """The id of the element an htmx request will swap, if any."""
    details = getattr(request, "htmx", None)
    return details.target if details else None


class HomeView(ViewerRequiredMixin, TemplateView):
    """Overview: what needs the admin, the numbers that matter and each account's health — or a
    call to connect the first account."""

    template_name = "dashboard/home.html"
    # The page's sections, in order: one template each, all reading `overview`. A new section is a
    # template here (and, if it needs more, a context entry in get_context_data).
    sections = (
        "dashboard/overview/_attention.html",
        "dashboard/overview/_kpis.html",
        "dashboard/overview/_licences.html",
        "dashboard/overview/_accounts.html",
    )

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        ctx = super().get_context_data(**kwargs)
        ctx["overview"] = overview_selectors.overview()
        ctx["sections"] = self.sections
        if ctx["overview"].accounts:
            ctx["licences"] = licence_selectors.licence_savings(
                connections=[a.connection for a in ctx["overview"].accounts]
            )
            ctx["currency"] = settings.TORII_CURRENCY
        return ctx

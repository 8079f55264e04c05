"""Insights: logins and active users over time, most and least used apps, inactive seats and
people (the licence-reclaim list), and administrator hygiene."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.utils import timezone
from django.views import View
from django.views.generic import TemplateView

from accounts.permissions import ViewerRequiredMixin
from dashboard.exports import limited_csv_response
from integrations.selectors import connections as conn_selectors
from integrations.selectors import licences as licence_selectors
from integrations.selectors import usage as usage_selectors
from integrations.selectors.common import usage_available

INACTIVE_PAGE = 50
# The reclaim list shows its first rows; the users page (linked) has them all, filtered.
INACTIVE_SHOWN = 10


def _choice(value: Any, choices: tuple[int, ...], default: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return default
    return number if number in choices else default


def _login_chart(days: list[usage_selectors.LoginDay]) -> dict[str, Any]:
    return {
        "type": "bar",
        "stacked": True,
        "labels": [d.day.isoformat() for d in days],
        "datasets": [
            {
                "label": "JumpCloud logins, succeeded",
                "data": [d.directory_success for d in days],
                "stack": "directory",
            },
            {
                "label": "JumpCloud logins, failed",
                "data": [d.directory_failure for d in days],
                "stack": "directory",
            },
            {"label": "SSO app logins, succeeded", "data": [d.sso_success for d in days], "stack": "sso"},
            {"label": "SSO app logins, failed", "data": [d.sso_failure for d in days], "stack": "sso"},
        ],
        "yTitle": "logins per day",
    }


def _active_chart(days: list[usage_selectors.LoginDay]) -> dict[str, Any]:
    return {
        "type": "line",
        "labels": [d.day.isoformat() for d in days],
        "datasets": [
            {"label": "People signed in to JumpCloud", "data": [d.directory_active for d in days]},
            {
                "label": "App users (distinct per app, summed over apps)",
                "data": [d.app_active_sum for d in days],
            },
        ],
        "yTitle": "people per day",
    }


class InsightsView(ViewerRequiredMixin, TemplateView):
    template_name = "dashboard/insights/index.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        ctx = super().get_context_data(**kwargs)
        g = self.request.GET
        period = _choice(g.get("days"), usage_selectors.PERIODS, 30)
        inactive_days = _choice(g.get("inactive_days"), usage_selectors.INACTIVE_WINDOWS, 30)
        admin_days = _choice(g.get("admin_days"), usage_selectors.INACTIVE_WINDOWS, 90)
        connections = conn_selectors.connection_choices()
        measured = [c for c in connections if usage_available(c)]
        unmeasured = [c for c in connections if not usage_available(c)]
        ctx.update(
            connections=connections,
            measured=measured,
            unmeasured=unmeasured,
            period=period,
            periods=usage_selectors.PERIODS,
            inactive_days=inactive_days,
            admin_days=admin_days,
            admin_days_text=f"{admin_days} days",
            inactive_shown=INACTIVE_SHOWN,
            windows=usage_selectors.INACTIVE_WINDOWS,
            hygiene=usage_selectors.admin_hygiene(days=admin_days),
            licences=licence_selectors.licence_savings(
                connections=connections, days=_choice(g.get("licence_days"), licence_selectors.WINDOWS, 90)
            ),
            licence_windows=licence_selectors.WINDOWS,
            currency=settings.TORII_CURRENCY,
        )
        if measured:
            days = usage_selectors.logins_per_day(connections=connections, days=period)
            ctx.update(
                login_days=days,
                login_chart=_login_chart(days),
                active_chart=_active_chart(days),
                rankings=usage_selectors.app_rankings(
                    connections=connections,
                    window=period if period in (7, 30, 90) else 30,
                    inactive_days=inactive_days,
                ),
                inactive_people=usage_selectors.inactive_people(
                    connections=connections, days=inactive_days, per_page=INACTIVE_PAGE
                ),
            )
        return ctx


class LicencesExportView(ViewerRequiredMixin, View):
    """Licence savings per application as CSV (formula-safe, within the export limits)."""

    def get(self, request: HttpRequest) -> HttpResponseBase:
        days = _choice(request.GET.get("licence_days"), licence_selectors.WINDOWS, 90)
        report = licence_selectors.licence_savings(connections=conn_selectors.connection_choices(), days=days)
        return limited_csv_response(
            request,
            f"torii-licence-savings-{days}d-{timezone.localdate():%Y-%m-%d}.csv",
            licence_selectors.EXPORT_HEADER,
            lambda: licence_selectors.licence_export_rows(report),
        )

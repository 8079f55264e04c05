"""Applications: per account, each app's assigned and active users and utilization; one app's
users and its daily usage chart."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views import View
from django.views.generic import TemplateView

from accounts.permissions import AdminRequiredMixin, ViewerRequiredMixin
from dashboard.forms import LicenceForm
from integrations.models import Application
from integrations.selectors import applications as app_selectors
from integrations.selectors import connections as conn_selectors
from integrations.selectors import licences as licence_selectors
from integrations.selectors.common import usage_available
from integrations.services.licences import LicenceInvalid, application_licence_set

APP_SORT_LABELS = {
    "name": "Application",
    "assigned": "Assigned",
    "active_7": "Active 7 d",
    "active_30": "Active 30 d",
    "active_90": "Active 90 d",
    "utilization": "Utilization",
    "last_used": "Last used",
}


APPS_PER_PAGE = 100


def _int_choice(value: Any, choices: tuple[int, ...], default: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return default
    return number if number in choices else default


class ApplicationsView(ViewerRequiredMixin, TemplateView):
    template_name = "dashboard/applications/list.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        ctx = super().get_context_data(**kwargs)
        g = self.request.GET
        connections = conn_selectors.connection_choices()
        try:
            connection_id = int(g.get("connection") or 0) or None
        except ValueError:
            connection_id = None
        window = _int_choice(g.get("window"), app_selectors.UTILIZATION_WINDOWS, 30)
        ordering = g.get("ordering") or ""
        if ordering.lstrip("-") not in APP_SORT_LABELS:
            ordering = ""
        rows = app_selectors.application_rows(
            connections=connections, connection_id=connection_id, q=(g.get("q") or "").strip(), window=window
        )
        rows = app_selectors.sort_app_rows(rows, ordering)
        # A page of rows (the rows themselves are cheap; rendering a thousand of them is not).
        page_obj = Paginator(rows, APPS_PER_PAGE).get_page(g.get("page") or 1)
        groups: dict[int, dict[str, Any]] = {}
        for row in page_obj.object_list:
            groups.setdefault(row.connection.pk, {"connection": row.connection, "rows": []})["rows"].append(
                row
            )
        ctx.update(
            groups=list(groups.values()),
            connections=connections,
            connection_id=connection_id,
            window=window,
            windows=app_selectors.UTILIZATION_WINDOWS,
            ordering=ordering,
            q=g.get("q") or "",
            sort_labels=APP_SORT_LABELS,
            page_obj=page_obj,
        )
        return ctx


class ApplicationDetailView(ViewerRequiredMixin, TemplateView):
    template_name = "dashboard/applications/detail.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        ctx = super().get_context_data(**kwargs)
        try:
            app = app_selectors.application_get(kwargs["pk"])
        except Application.DoesNotExist:
            raise Http404("No such application") from None
        # 30 days unless asked: a 90-day chart of a month of data is mostly empty.
        days = _int_choice(self.request.GET.get("days"), (30, 90), 30)
        daily = app_selectors.application_daily_usage(app, days=days)
        measured = usage_available(app.connection)
        chart = {
            "type": "line",
            "labels": [d.day.isoformat() for d in daily],
            "datasets": [
                {"label": "Active users", "data": [d.active_users for d in daily]},
                {"label": "Successful logins", "data": [d.successes for d in daily]},
                {"label": "Failed logins", "data": [d.failures for d in daily]},
            ],
            "yTitle": "per day",
        }
        stats = app_selectors.app_stats(app)
        licence = licence_selectors.application_licence_row(app, stats)
        ctx.update(
            app=app,
            connection=app.connection,
            stats=stats,
            licence=licence,
            licence_form=LicenceForm(
                initial={
                    "seats_purchased": licence.seats_purchased,
                    "price_per_seat_month": licence.price_per_seat_month,
                }
            ),
            currency=settings.TORII_CURRENCY,
            users=app_selectors.application_users(app, self.request.GET),
            unassigned=app_selectors.application_unassigned_users(app) if measured else [],
            usage_available=measured,
            daily=daily,
            chart=chart,
            days=days,
            period_choices=(30, 90),
            chart_caption=f"Daily active users and logins, last {days} days",
            inactive_choices=(30, 60, 90),
        )
        return ctx


class ApplicationLicenceView(AdminRequiredMixin, View):
    """Save an application's seats and price (Admins); errors come back with what was typed."""

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        try:
            app = app_selectors.application_get(pk)
        except Application.DoesNotExist:
            raise Http404("No such application") from None
        form = LicenceForm(request.POST)
        if form.is_valid():
            try:
                application_licence_set(
                    application=app,
                    actor=request.user,
                    seats_purchased=form.cleaned_data["seats_purchased"],
                    price_per_seat_month=form.cleaned_data["price_per_seat_month"],
                )
            except LicenceInvalid as exc:
                for field, message in exc.errors.items():
                    form.add_error(field if field in form.fields else None, message)
            else:
                messages.success(request, f"Licences of {app} saved.")
                return HttpResponseRedirect(
                    reverse("dashboard:application_detail", args=[app.pk]) + "#licence"
                )
        stats = app_selectors.app_stats(app)
        ctx = {
            "app": app,
            "licence": licence_selectors.application_licence_row(app, stats),
            "licence_form": form,
            "currency": settings.TORII_CURRENCY,
        }
        return render(request, "dashboard/applications/licence.html", ctx, status=400)

"""Users: every person of every connected account — search, filter, sort, paginate, export —
and one person's page."""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest
from django.http.response import HttpResponseBase
from django.utils import timezone
from django.views import View
from django.views.generic import TemplateView

from accounts.permissions import ViewerRequiredMixin
from dashboard.exports import limited_csv_response
from dashboard.views.pages import htmx_target
from integrations.filters import PeopleOrderingFilter
from integrations.models import AppUser
from integrations.selectors import connections as conn_selectors
from integrations.selectors import users as user_selectors
from integrations.selectors.common import usage_available

INACTIVE_CHOICES = (30, 60, 90, 180)


def _per_page(request: HttpRequest) -> int:
    try:
        return int(request.GET.get("per_page") or user_selectors.DEFAULT_PAGE_SIZE)
    except ValueError:
        return user_selectors.DEFAULT_PAGE_SIZE


class UsersView(ViewerRequiredMixin, TemplateView):
    template_name = "dashboard/users/list.html"

    def get_template_names(self) -> list[str]:
        # htmx filtering swaps only the results; a full navigation gets the whole page.
        if htmx_target(self.request) == "users-results":
            return ["dashboard/users/_results.html"]
        return [self.template_name]

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        ctx = super().get_context_data(**kwargs)
        request = self.request
        result = user_selectors.directory_user_search(
            request.GET, page=request.GET.get("page") or 1, per_page=_per_page(request)
        )
        connections = conn_selectors.connection_choices()
        ctx.update(
            result=result,
            filterset=result.filterset,
            page_obj=result.page,
            ordering=result.ordering,
            connections=connections,
            any_usage=any(usage_available(c) for c in connections),
            applications=user_selectors.application_choices(),
            connection_options=[(c.pk, c.name) for c in connections],
            role_options=[
                ("user", "User (not an administrator)"),
                ("admin", "Any administrator"),
                *[(r, f"Administrator: {r}") for r in user_selectors.admin_role_names()],
            ],
            statuses=AppUser.Status.choices,
            inactive_options=[(d, f"{d} days (or never)") for d in INACTIVE_CHOICES],
            per_page_choices=user_selectors.PAGE_SIZES,
            sort_labels=PeopleOrderingFilter.LABELS,
            export_query=request.GET.urlencode(),
            filters_active=any(
                request.GET.get(k) for k in ("q", "connection", "status", "role", "app", "inactive_days")
            ),
        )
        return ctx


class UsersExportView(ViewerRequiredMixin, View):
    """The filtered people as CSV, streamed (tens of thousands of rows), formula-safe."""

    def get(self, request: HttpRequest) -> HttpResponseBase:
        filename = f"torii-users-{timezone.localdate():%Y-%m-%d}.csv"
        return limited_csv_response(
            request,
            filename,
            user_selectors.EXPORT_HEADER,
            lambda: user_selectors.directory_user_export_rows(request.GET),
        )


class UserDetailView(ViewerRequiredMixin, TemplateView):
    template_name = "dashboard/users/detail.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        ctx = super().get_context_data(**kwargs)
        try:
            person = user_selectors.directory_user_get(kwargs["pk"])
        except AppUser.DoesNotExist:
            raise Http404("No such user") from None
        events = user_selectors.directory_user_events(person)
        names = user_selectors.application_names(
            person.connection_id, {e.application_external_id for e in events if e.application_external_id}
        )
        ctx.update(
            person=person,
            app_user=person,
            connection=person.connection,
            usage_available=usage_available(person.connection),
            memberships=user_selectors.directory_user_memberships(person),
            events=[(e, names.get(e.application_external_id, e.application_name)) for e in events],
        )
        return ctx

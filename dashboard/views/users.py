"""Users: every person of every connected account — search, filter, sort, paginate, export, choose
columns — and one person's page."""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views import View
from django.views.generic import TemplateView

from accounts.permissions import ViewerRequiredMixin
from dashboard.exports import limited_csv_response
from dashboard.tables import USER_COLUMNS, table_columns_get, table_columns_set, visible
from dashboard.views.pages import htmx_target, is_htmx
from integrations.filters import PeopleOrderingFilter
from integrations.models import AppUser
from integrations.providers import registry
from integrations.selectors import connections as conn_selectors
from integrations.selectors import users as user_selectors
from integrations.selectors.common import usage_available
from integrations.services.lookups import directory_user_live_profile

INACTIVE_CHOICES = (30, 60, 90, 180)
FILTER_KEYS = ("q", "connection", "status", "role", "app", "inactive_days", "admin_mfa")
DATE_SORTS = {"last_used", "last_login", "created"}
NUMBER_SORTS = {"apps"}


def _per_page(params: QueryDict) -> int:
    try:
        return int(params.get("per_page") or user_selectors.DEFAULT_PAGE_SIZE)
    except ValueError:
        return user_selectors.DEFAULT_PAGE_SIZE


def sort_description(ordering: str) -> str:
    """ "Name, A to Z" / "Last used, newest first": what the table's caption says."""
    key = ordering.lstrip("-")
    desc = ordering.startswith("-")
    label = PeopleOrderingFilter.LABELS.get(key, key)
    if key in DATE_SORTS:
        direction = "newest first" if desc else "oldest first (never first)"
    elif key in NUMBER_SORTS:
        direction = "most first" if desc else "fewest first"
    else:
        direction = "Z to A" if desc else "A to Z"
    return f"{label}, {direction}"


def users_context(request: HttpRequest, params: QueryDict) -> dict[str, Any]:
    """Everything the users page and its results partial render, for these filter parameters."""
    result = user_selectors.directory_user_search(
        params, page=params.get("page") or 1, per_page=_per_page(params)
    )
    connections = conn_selectors.connection_choices()
    columns = table_columns_get(user=request.user)
    count = result.page.paginator.count
    return {
        "params": params,
        # The filters as pairs (a template would read params.items as a parameter named "items").
        "param_pairs": [(k, v) for k in params for v in params.getlist(k)],
        "result": result,
        "filterset": result.filterset,
        "page_obj": result.page,
        "ordering": result.ordering,
        "sort_caption": sort_description(result.ordering),
        "connections": connections,
        "any_usage": any(usage_available(c) for c in connections),
        "applications": user_selectors.application_choices(),
        "connection_options": [(c.pk, c.name) for c in connections],
        "role_options": [
            ("user", "User (not an administrator)"),
            ("admin", "Any administrator"),
            *[(r, f"Administrator: {r}") for r in user_selectors.admin_role_names()],
        ],
        "statuses": AppUser.Status.choices,
        "inactive_options": [(d, f"{d} days (or never)") for d in INACTIVE_CHOICES],
        "admin_mfa_options": [
            ("off", "Administrators without MFA"),
            ("on", "Administrators with MFA"),
            ("unknown", "Administrators, MFA unknown"),
        ],
        "per_page_choices": user_selectors.PAGE_SIZES,
        "export_query": params.urlencode(),
        "filters_active": any(params.get(k) for k in FILTER_KEYS),
        "more_filters_active": sum(1 for k in FILTER_KEYS if k != "q" and params.get(k)),
        "count": count,
        "all_columns": USER_COLUMNS,
        "columns": visible(columns),
        "column_keys": set(columns),
    }


class UsersView(ViewerRequiredMixin, TemplateView):
    template_name = "dashboard/users/list.html"

    def get_template_names(self) -> list[str]:
        # htmx filtering swaps only the results; a full navigation gets the whole page.
        if htmx_target(self.request) == "users-results":
            return ["dashboard/users/_results.html"]
        return [self.template_name]

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        ctx = super().get_context_data(**kwargs)
        ctx.update(users_context(self.request, self.request.GET))
        return ctx


class UsersColumnsView(ViewerRequiredMixin, View):
    """The column chooser: remembers the user's columns (on the server, per user) and renders the
    table again with them, for the filters the form carried along."""

    http_method_names = ["post"]

    def post(self, request: HttpRequest) -> HttpResponse:
        table_columns_set(user=request.user, keys=request.POST.getlist("columns"))
        params = QueryDict(mutable=True)
        for key in (*FILTER_KEYS, "ordering", "per_page", "page"):
            if request.POST.get(key):
                params[key] = request.POST[key]
        if is_htmx(request):
            ctx = users_context(request, params)
            ctx["chooser_open"] = True  # the swap keeps the chooser open for the next click
            return render(request, "dashboard/users/_results.html", ctx)
        return HttpResponseRedirect(reverse("dashboard:users") + (f"?{params.urlencode()}" if params else ""))


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


def _person_or_404(pk: int) -> AppUser:
    try:
        return user_selectors.directory_user_get(pk)
    except AppUser.DoesNotExist:
        raise Http404("No such user") from None


class UserDetailView(ViewerRequiredMixin, TemplateView):
    template_name = "dashboard/users/detail.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        ctx = super().get_context_data(**kwargs)
        person = _person_or_404(kwargs["pk"])
        activity = user_selectors.directory_user_event_page(
            person, page=self.request.GET.get("activity_page") or 1
        )
        names = user_selectors.application_names(
            person.connection_id,
            {e.application_external_id for e in activity.events if e.application_external_id},
        )
        provider = person.connection.provider
        extra = person.extra if isinstance(person.extra, dict) else {}
        ctx.update(
            person=person,
            app_user=person,
            connection=person.connection,
            usage_available=usage_available(person.connection),
            memberships=user_selectors.directory_user_memberships(person),
            activity=activity,
            events=[
                (
                    e,
                    names.get(e.application_external_id, e.application_name),
                    user_selectors.event_label(provider, e.event_type),
                )
                for e in activity.events
            ],
            department=str(extra.get("department") or ""),
            job_title=str(extra.get("job_title") or ""),
            employee_type=str(extra.get("employee_type") or ""),
            console_url=registry.get(provider).console_user_url(person.connection, person.external_id)
            if person.kind == AppUser.Kind.USER and provider in dict(registry.choices())
            else "",
        )
        return ctx


class UserLiveView(ViewerRequiredMixin, View):
    """The details torii asks the account for when the page opens (manager, groups, MFA methods),
    loaded by htmx after the page so a slow answer never holds the page up."""

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        person = _person_or_404(pk)
        profile = directory_user_live_profile(person=person)
        return render(request, "dashboard/users/_live.html", {"person": person, "live": profile})

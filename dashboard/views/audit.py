"""The audit log page and its CSV export: read-only views over ActionRun (nothing here writes)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.utils import timezone
from django.views import View
from django.views.generic import ListView

from accounts.permissions import ViewerRequiredMixin
from dashboard.exports import limited_csv_response
from integrations.filters import AuditLogFilter
from integrations.models import ActionRun, AppUser
from integrations.selectors.audit import audit_log_queryset, audit_outcome, audit_parameters
from integrations.services.audit import action_label

CSV_HEADER = (
    "created_at",
    "finished_at",
    "category",
    "action",
    "action_label",
    "status",
    "account",
    "actor",
    "target_username",
    "target_id",
    "parameters",
    "outcome",
    "error_message",
    "jumpcloud_request_id",
)


def _filtered(request: HttpRequest) -> AuditLogFilter:
    return AuditLogFilter(request.GET or None, queryset=audit_log_queryset())


class AuditLogView(ViewerRequiredMixin, ListView):
    template_name = "dashboard/audit/list.html"
    context_object_name = "runs"
    paginate_by = 50

    def get_queryset(self) -> QuerySet[ActionRun]:
        self.filterset = _filtered(self.request)
        return self.filterset.qs.order_by("-created_at", "-id")

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        ctx = super().get_context_data(**kwargs)
        ctx["filter"] = self.filterset
        runs = list(ctx["runs"])
        # The targets' pages, in one query for the whole page of records.
        targets = {
            (r.connection_id, r.target_external_id) for r in runs if r.connection_id and r.target_external_id
        }
        people: dict[tuple[int, str], int] = {}
        if targets:
            rows = AppUser.objects.filter(
                connection_id__in={c for c, _ in targets},
                external_id__in={e for _, e in targets},
                directory_user__isnull=True,
                application__kind="directory",
            ).values_list("connection_id", "external_id", "pk")
            people = {(c, e): pk for c, e, pk in rows}
        for run in runs:
            run.action_label = action_label(run.action)
            run.readable_parameters = audit_parameters(run)
            run.outcome_text = audit_outcome(run)
            run.target_pk = people.get((run.connection_id, run.target_external_id))
        ctx["runs"] = runs
        return ctx


def audit_csv_row(run: ActionRun) -> list[Any]:
    return [
        run.created_at,
        run.finished_at,
        run.category,
        run.action,
        action_label(run.action),
        run.status,
        run.connection_name,
        run.actor_username,
        run.target_username,
        run.target_external_id,
        json.dumps(run.parameters, sort_keys=True, ensure_ascii=False),
        (run.result or {}).get("outcome", ""),
        run.error_message,
        run.request_id,
    ]


class AuditLogCsvView(ViewerRequiredMixin, View):
    """The filtered audit log as CSV, streamed (a row at a time, never the whole log in memory)."""

    http_method_names = ["get"]

    def get(self, request: HttpRequest) -> HttpResponseBase:
        def rows() -> Iterator[list[Any]]:
            queryset = _filtered(request).qs.order_by("-created_at", "-id")
            return (audit_csv_row(run) for run in queryset.iterator(chunk_size=2000))

        return limited_csv_response(
            request, f"torii-audit-{timezone.now():%Y%m%d-%H%M}.csv", CSV_HEADER, rows
        )

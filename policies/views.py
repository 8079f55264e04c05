"""Policy pages: list, create and edit with a dry run, the policy's page (today's dry run, CSV,
run now, history), and a run's page (each person's outcome, approve, reject, undo).

Thin: the form parses, policies.selectors reads, policies.services decides and acts. Every page
that changes something is POST-only, CSRF-protected and for Admins; the services check again.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views import View
from django.views.generic import TemplateView

from accounts.permissions import AdminRequiredMixin, ViewerRequiredMixin
from accounts.roles import is_admin
from dashboard.exports import limited_csv_response
from integrations.services.actions import ActionRefused
from policies.forms import PolicyForm
from policies.models import Policy, PolicyRun, PolicyRunItem
from policies.selectors import (
    Selection,
    policy_connections,
    policy_list,
    policy_run_items,
    policy_run_list,
    policy_selection,
)
from policies.services import (
    PolicyError,
    policy_run_approve,
    policy_run_create,
    policy_run_reject,
    policy_run_undo,
    policy_save,
    policy_validate,
)

DRY_RUN_HEADER = ("account", "username", "email", "last_used_at", "reason")
RUN_HEADER = (
    "account",
    "username",
    "email",
    "last_used_at",
    "reason",
    "outcome",
    "jumpcloud_answer",
    "jumpcloud_request_id",
    "undo",
    "undo_answer",
)


class PolicyListView(ViewerRequiredMixin, TemplateView):
    template_name = "dashboard/policies/list.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        ctx = super().get_context_data(**kwargs)
        ctx["policies"] = list(policy_list().order_by("name", "id"))
        ctx["waiting"] = list(policy_run_list().filter(status=PolicyRun.Status.AWAITING_APPROVAL)[:20])
        ctx["runs"] = list(policy_run_list()[:20])
        ctx["can_edit"] = is_admin(self.request.user)
        return ctx


class _PolicyFormView(AdminRequiredMixin, View):
    """Create or edit. "Dry run" re-renders the form with whom the policy as typed would touch
    today (htmx swaps in just that part); "Save" saves it and opens the policy's page."""

    template_name = "dashboard/policies/form.html"

    def get_policy(self) -> Policy | None:
        return None

    def render_form(self, form: PolicyForm, selection: Selection | None = None) -> HttpResponse:
        policy = self.get_policy()
        return render(
            self.request,
            self.template_name,
            {"form": form, "policy": policy, "selection": selection, "dry_run_done": selection is not None},
        )

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        policy = self.get_policy()
        form = PolicyForm(instance=policy)
        selection = policy_selection(policy=policy) if policy is not None else None
        return self.render_form(form, selection)

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        policy = self.get_policy()
        form = PolicyForm(request.POST, instance=policy)
        if not form.is_valid():
            return self.render_form(form)
        draft = form.policy()
        connections = form.chosen_connections()
        if "preview" in request.POST:
            problems = policy_validate(policy=draft, connections=connections)
            for name, errors in problems.items():
                for error in errors:
                    form.add_error(name if name in form.fields else None, error)
            if problems:
                return self.render_form(form)
            return self.render_form(form, policy_selection(policy=draft, connections=connections))
        try:
            saved = policy_save(policy=draft, connections=connections, actor=request.user)
        except PolicyError as exc:
            for name, errors in exc.errors.items():
                for error in errors:
                    form.add_error(name if name in form.fields else None, error)
            return self.render_form(form)
        messages.success(request, f"Policy “{saved.name}” saved.")
        return HttpResponseRedirect(reverse("dashboard:policy_detail", args=[saved.pk]))


class PolicyCreateView(_PolicyFormView):
    pass


class PolicyEditView(_PolicyFormView):
    def get_policy(self) -> Policy | None:
        return get_object_or_404(Policy, pk=self.kwargs["pk"])


class PolicyDetailView(ViewerRequiredMixin, TemplateView):
    template_name = "dashboard/policies/detail.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        ctx = super().get_context_data(**kwargs)
        policy = get_object_or_404(policy_list(), pk=self.kwargs["pk"])
        ctx.update(
            policy=policy,
            connections=policy_connections(policy=policy),
            selection=policy_selection(policy=policy),
            runs=list(policy_run_list(policy=policy)[:30]),
            can_edit=is_admin(self.request.user),
        )
        return ctx


class PolicyDryRunCsvView(ViewerRequiredMixin, View):
    def get(self, request: HttpRequest, pk: int) -> HttpResponseBase:
        policy = get_object_or_404(Policy, pk=pk)

        def rows() -> Iterator[list[Any]]:
            for c in policy_selection(policy=policy).candidates:
                yield [c.connection.name, c.app_user.username, c.app_user.email, c.last_used_at, c.reason]

        return limited_csv_response(request, f"policy-{policy.pk}-dry-run.csv", DRY_RUN_HEADER, rows)


class PolicyRunNowView(AdminRequiredMixin, View):
    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        policy = get_object_or_404(Policy, pk=pk)
        try:
            run = policy_run_create(policy=policy, actor=request.user)
        except ActionRefused as exc:
            messages.error(request, exc.message)
            return HttpResponseRedirect(reverse("dashboard:policy_detail", args=[pk]))
        return HttpResponseRedirect(reverse("dashboard:policy_run", args=[run.pk]))


class PolicyRunDetailView(ViewerRequiredMixin, TemplateView):
    template_name = "dashboard/policies/run.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        ctx = super().get_context_data(**kwargs)
        run = get_object_or_404(policy_run_list(), pk=self.kwargs["run_id"])
        items = list(policy_run_items(run=run))
        ctx.update(
            run=run,
            items=items,
            can_edit=is_admin(self.request.user),
            can_undo=run.is_finished
            and any(
                i.outcome == PolicyRunItem.Outcome.SUSPENDED and i.undo != PolicyRunItem.Undo.UNSUSPENDED
                for i in items
            ),
            counts=_outcome_counts(items),
        )
        return ctx


def _outcome_counts(items: list[PolicyRunItem]) -> list[tuple[str, int]]:
    labels = dict(PolicyRunItem.Outcome.choices)
    counts: dict[str, int] = {}
    for item in items:
        counts[item.outcome] = counts.get(item.outcome, 0) + 1
    return [(labels.get(k, k), n) for k, n in sorted(counts.items())]


class PolicyRunCsvView(ViewerRequiredMixin, View):
    def get(self, request: HttpRequest, run_id: int) -> HttpResponseBase:
        run = get_object_or_404(PolicyRun, pk=run_id)

        def rows() -> Iterator[list[Any]]:
            for i in policy_run_items(run=run):
                yield [
                    i.connection.name if i.connection else "",
                    i.username,
                    i.email,
                    i.last_used_at,
                    i.reason,
                    i.get_outcome_display(),
                    i.message,
                    i.action_run.request_id if i.action_run else "",
                    i.get_undo_display() if i.undo else "",
                    i.undo_message,
                ]

        return limited_csv_response(request, f"policy-run-{run.pk}.csv", RUN_HEADER, rows)


class _RunChangeView(AdminRequiredMixin, View):
    service: Any = None
    done = ""

    def post(self, request: HttpRequest, run_id: int) -> HttpResponse:
        run = get_object_or_404(PolicyRun, pk=run_id)
        try:
            type(self).service(run=run, actor=request.user)
        except (ActionRefused, PolicyError) as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, self.done)
        return HttpResponseRedirect(reverse("dashboard:policy_run", args=[run_id]))


class PolicyRunApproveView(_RunChangeView):
    service = staticmethod(policy_run_approve)
    done = "Run approved."


class PolicyRunRejectView(_RunChangeView):
    service = staticmethod(policy_run_reject)
    done = "Run rejected; nobody was touched."


class PolicyRunUndoView(_RunChangeView):
    service = staticmethod(policy_run_undo)
    done = "Undo done: everyone this run suspended was unsuspended (see each person's outcome)."

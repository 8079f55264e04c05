"""User actions in the dashboard: confirmation pages (GET) and the POST-only endpoints that act.

Thin: the forms parse, integrations.services.actions decides and acts, the templates render. Every
acting endpoint is POST-only (405 on GET), CSRF-protected, Admin-only, and the service refuses
read-only accounts before anything is sent. After acting, the browser is redirected to the run's
page (post/redirect/get), so reloading never re-posts; a re-posted form carries the same
idempotency key and replays the first outcome anyway.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views import View
from django.views.generic import DetailView, TemplateView

from accounts.permissions import AdminRequiredMixin, ViewerRequiredMixin
from accounts.roles import is_admin
from api.throttles import ActionsThrottle, throttled_response
from dashboard.forms_actions import ActionForm, BulkSuspendForm, CreateUserForm, DeleteUserForm
from dashboard.params import parse_id
from integrations.models import ActionRun, Application, AppUser, Connection
from integrations.providers import registry
from integrations.selectors.audit import audit_outcome, audit_parameters
from integrations.services import actions as services
from integrations.services.audit import action_label

# The actions these pages offer, by the key the provider declares them under (a provider without
# one of them says so on the page: services.connection_action_unavailable_reason).
CREATE_USER = "create_user"
SUSPEND_USER = "suspend_user"
UNSUSPEND_USER = "unsuspend_user"
DELETE_USER = "delete_user"
CREATE_FIELDS = ("first_name", "last_name", "email", "username", "state")


def _directory_users() -> QuerySet[AppUser]:
    return AppUser.objects.filter(application__kind=Application.Kind.DIRECTORY).select_related(
        "connection", "application"
    )


def _actionable_connections() -> QuerySet[Connection]:
    return (
        Connection.objects.filter(permission=Connection.Permission.READ_WRITE)
        .exclude(status=Connection.Status.DISCONNECTED)
        .order_by("name", "id")
    )


def _create_form(data: Any = None, **kwargs: Any) -> CreateUserForm:
    live = Connection.objects.exclude(status=Connection.Status.DISCONNECTED)
    return CreateUserForm(data, connections=live, offered=_actionable_connections(), **kwargs)


def _run_url(run: ActionRun) -> str:
    return reverse("dashboard:action_run", args=[run.pk])


# --- suspend / unsuspend / delete ------------------------------------------------------------
class UserActionMixin(AdminRequiredMixin):
    """One action on one directory user: `action` names it, the subclass supplies texts and form."""

    action = ""
    template_name = ""
    kwargs: dict[str, Any]  # set by View.setup()

    def get_app_user(self) -> AppUser:
        return get_object_or_404(_directory_users(), pk=self.kwargs["pk"])

    def get_form(self, app_user: AppUser, data: Any = None) -> ActionForm:
        return ActionForm(data)

    def context(self, app_user: AppUser, form: ActionForm, error: str = "") -> dict[str, Any]:
        connection = app_user.connection
        unavailable = services.connection_action_unavailable_reason(connection=connection, action=self.action)
        if app_user.removed_at is not None or app_user.status == AppUser.Status.REMOVED:
            unavailable = f"{app_user.username} was removed from {connection.name}; there is nothing to do."
        elif app_user.kind != AppUser.Kind.USER:
            console = registry.get(connection.provider).name
            unavailable = (
                f"This is an administrator without a user account; manage administrators in {console}."
            )
        return {
            "app_user": app_user,
            "connection": connection,
            "form": form,
            "error": error,
            "action": self.action,
            "action_label": action_label(self.action),
            "unavailable": unavailable,
            "submit_url": reverse(f"dashboard:user_{self.action.removesuffix('_user')}", args=[app_user.pk]),
        }


class UserActionConfirmView(UserActionMixin, View):
    http_method_names = ["get"]

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        app_user = self.get_app_user()
        ctx = self.context(app_user, self.get_form(app_user))
        ctx.update(self.extra_context_for(app_user))
        return render(request, self.template_name, ctx)

    def extra_context_for(self, app_user: AppUser) -> dict[str, Any]:
        return {}


class UserActionSubmitView(UserActionMixin, View):
    http_method_names = ["post"]

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if refused := throttled_response(request, ActionsThrottle):
            return refused
        app_user = self.get_app_user()
        form = self.get_form(app_user, request.POST)
        if not form.is_valid():
            return self.invalid(app_user, form, "")
        try:
            result = services.app_user_act(
                app_user=app_user,
                action=self.action,
                actor=request.user,
                idempotency_key=form.cleaned_data["idempotency_key"],
            )
        except services.ActionForbidden as exc:
            raise PermissionDenied(exc.message) from None
        except services.ActionRefused as exc:
            return self.invalid(app_user, form, exc.message)
        return HttpResponseRedirect(_run_url(result.run))

    def invalid(self, app_user: AppUser, form: ActionForm, error: str) -> HttpResponse:
        ctx = self.context(app_user, form, error)
        ctx.update(self.extra_context_for(app_user))
        return render(self.request, self.template_name, ctx, status=400)

    def extra_context_for(self, app_user: AppUser) -> dict[str, Any]:
        return {}


class SuspendMixin:
    action = SUSPEND_USER
    template_name = "dashboard/actions/confirm_suspend.html"


class UnsuspendMixin:
    action = UNSUSPEND_USER
    template_name = "dashboard/actions/confirm_suspend.html"


class DeleteMixin:
    action = DELETE_USER
    template_name = "dashboard/actions/confirm_delete.html"

    def get_form(self, app_user: AppUser, data: Any = None) -> ActionForm:
        return DeleteUserForm(data, expected_username=app_user.username)

    def extra_context_for(self, app_user: AppUser) -> dict[str, Any]:
        apps = (
            AppUser.objects.filter(directory_user=app_user, removed_at__isnull=True)
            .select_related("application")
            .order_by("application__label", "application__name", "id")
        )
        return {"memberships": apps}


class UserSuspendConfirmView(SuspendMixin, UserActionConfirmView):
    pass


class UserSuspendView(SuspendMixin, UserActionSubmitView):
    pass


class UserUnsuspendConfirmView(UnsuspendMixin, UserActionConfirmView):
    pass


class UserUnsuspendView(UnsuspendMixin, UserActionSubmitView):
    pass


class UserDeleteConfirmView(DeleteMixin, UserActionConfirmView):
    pass


class UserDeleteView(DeleteMixin, UserActionSubmitView):
    pass


# --- create ----------------------------------------------------------------------------------
class UserCreateMixin(AdminRequiredMixin):
    template_name = "dashboard/actions/create_user.html"

    def render_form(
        self, form: CreateUserForm, *, error: str = "", failed_run: ActionRun | None = None, status: int = 200
    ) -> HttpResponse:
        connections = _actionable_connections()
        read_only = Connection.objects.filter(permission=Connection.Permission.READ_ONLY).exclude(
            status=Connection.Status.DISCONNECTED
        )
        ctx = {
            "form": form,
            "error": error,
            "failed_run": failed_run,
            "has_connections": connections.exists(),
            "read_only_connections": read_only,
            "read_only_note": services.READ_ONLY_NOTE,
        }
        return render(self.request, self.template_name, ctx, status=status)  # type: ignore[attr-defined]


class UserCreateView(UserCreateMixin, View):
    http_method_names = ["get"]

    def get(self, request: HttpRequest) -> HttpResponse:
        initial = {}
        connection = parse_id(request.GET.get("connection"))
        if connection is not None:
            initial["connection"] = connection
        return self.render_form(_create_form(initial=initial))


class UserCreateSubmitView(UserCreateMixin, View):
    http_method_names = ["post"]

    def post(self, request: HttpRequest) -> HttpResponse:
        if refused := throttled_response(request, ActionsThrottle):
            return refused
        form = _create_form(request.POST)
        if not form.is_valid():
            return self.render_form(form, status=400)
        data = form.cleaned_data
        try:
            result = services.action_run_request(
                connection=data["connection"],
                action=CREATE_USER,
                actor=request.user,
                idempotency_key=data["idempotency_key"],
                params={name: data[name] for name in CREATE_FIELDS},
            )
        except services.ActionForbidden as exc:
            raise PermissionDenied(exc.message) from None
        except services.ActionRefused as exc:
            for name, messages in exc.errors.items():
                for message in messages:
                    form.add_error(name if name in form.fields else None, message)
            if not exc.errors:
                form.add_error(None, exc.message)
            return self.render_form(form, status=409 if isinstance(exc, services.ActionConflict) else 400)
        if result.run.status == ActionRun.Status.FAILED:
            # JumpCloud refused: show why, keep the input, and give the form a new key so a
            # corrected attempt is a new action (the failed one stays in the audit log).
            fresh = _create_form(initial={k: v for k, v in data.items() if k != "idempotency_key"})
            return self.render_form(fresh, error=result.run.error_message, failed_run=result.run)
        return HttpResponseRedirect(_run_url(result.run))


class UserCreatePreviewView(AdminRequiredMixin, View):
    """htmx partial: the username JumpCloud will receive, and every reason it would be refused."""

    http_method_names = ["get"]

    def get(self, request: HttpRequest) -> HttpResponse:
        connections = _actionable_connections()
        pk = parse_id(request.GET.get("connection"))
        connection = connections.filter(pk=pk).first() if pk is not None else None
        connection = connection or connections.first()
        check = None
        if connection is not None:
            # NUL characters cannot be stored or searched for (PostgreSQL refuses them in text);
            # the submit form refuses them with a message, the preview just leaves them out.
            params = {k: request.GET.get(k, "").replace("\x00", "")[:400] for k in CREATE_FIELDS}
            check = services.action_input_check(connection=connection, action=CREATE_USER, params=params)
            # A preview speaks about what was typed, not about fields still empty.
            check.errors = {k: v for k, v in check.errors.items() if params.get(k)}
        return render(
            request, "dashboard/actions/_username_preview.html", {"check": check, "connection": connection}
        )


# --- bulk suspend ----------------------------------------------------------------------------
def _selected_ids(data: Any) -> list[int]:
    ids: list[int] = []
    for value in data.getlist("app_user_ids"):
        pk = parse_id(value)
        if pk is not None and pk not in ids:
            ids.append(pk)
    return ids[: services.BULK_LIMIT + 1]


def _bulk_targets(ids: list[int]) -> list[AppUser]:
    """The directory users selected (SSO rows resolve to their directory user), in the given order."""
    rows = {
        u.pk: u
        for u in AppUser.objects.filter(pk__in=ids).select_related(
            "connection", "application", "directory_user__connection", "directory_user__application"
        )
    }
    out: list[AppUser] = []
    seen: set[int] = set()
    for pk in ids:
        row = rows.get(pk)
        if row is None:
            continue
        if row.application.kind != Application.Kind.DIRECTORY:
            row = row.directory_user  # type: ignore[assignment]
        if row is not None and row.pk not in seen:
            seen.add(row.pk)
            out.append(row)
    return out


class BulkSuspendConfirmView(AdminRequiredMixin, TemplateView):
    """One confirmation for every selected user. Accepts GET or POST (the selection form may use
    either); it only renders, nothing changes until the confirmation is posted."""

    template_name = "dashboard/actions/bulk_suspend_confirm.html"
    http_method_names = ["get", "post"]

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return self.get(request, *args, **kwargs)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        ctx = super().get_context_data(**kwargs)
        data = self.request.POST if self.request.method == "POST" else self.request.GET
        targets = _bulk_targets(_selected_ids(data))
        rows = [
            {
                "app_user": u,
                "unavailable": services.connection_action_unavailable_reason(
                    connection=u.connection, action=SUSPEND_USER
                ),
            }
            for u in targets
        ]
        form = BulkSuspendForm(
            initial={"app_user_ids": [u.pk for u in targets]}, choices=[(u.pk, u.username) for u in targets]
        )
        ctx.update(
            rows=rows,
            form=form,
            too_many=len(targets) > services.BULK_LIMIT,
            limit=services.BULK_LIMIT,
            actionable=sum(1 for r in rows if not r["unavailable"]),
        )
        return ctx


class BulkSuspendView(AdminRequiredMixin, View):
    http_method_names = ["post"]

    def post(self, request: HttpRequest) -> HttpResponse:
        if refused := throttled_response(request, ActionsThrottle):
            return refused
        targets = _bulk_targets(_selected_ids(request.POST))
        form = BulkSuspendForm(request.POST, choices=[(u.pk, u.username) for u in targets])
        if not form.is_valid():
            return render(
                request, "dashboard/actions/bulk_suspend_result.html", {"form": form, "items": []}, status=400
            )
        try:
            items = services.app_users_bulk_act(
                action=SUSPEND_USER,
                app_users=targets,
                actor=request.user,
                idempotency_key=form.cleaned_data["idempotency_key"],
            )
        except services.ActionForbidden as exc:
            raise PermissionDenied(exc.message) from None
        except services.ActionRefused as exc:
            return render(
                request,
                "dashboard/actions/bulk_suspend_result.html",
                {"error": exc.message, "items": []},
                status=400,
            )
        summary = {
            "succeeded": sum(1 for i in items if i.succeeded),
            "failed": sum(1 for i in items if not i.succeeded),
        }
        return render(
            request, "dashboard/actions/bulk_suspend_result.html", {"items": items, "summary": summary}
        )


# --- the outcome of one run ------------------------------------------------------------------
class ActionRunView(ViewerRequiredMixin, DetailView):
    """What happened: status, JumpCloud's message and request id. Polls (htmx) while pending."""

    model = ActionRun
    context_object_name = "run"

    def get_queryset(self) -> QuerySet[ActionRun]:
        return ActionRun.objects.select_related("connection")

    def get_template_names(self) -> list[str]:
        if getattr(self.request, "htmx", False):
            return ["dashboard/actions/_run_status.html"]
        return ["dashboard/actions/run_detail.html"]

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        ctx = super().get_context_data(**kwargs)
        run: ActionRun = self.object
        target = None
        if run.connection_id and run.target_external_id:
            target = (
                _directory_users()
                .filter(connection_id=run.connection_id, external_id=run.target_external_id)
                .first()
            )
        # The kept record holds a person's whole JumpCloud profile (phones, addresses, SSH keys):
        # Admins only.
        snapshot_json = (
            json.dumps(run.snapshot, indent=2, sort_keys=True, ensure_ascii=False)
            if run.snapshot and is_admin(self.request.user)
            else ""
        )
        ctx.update(
            action_label=action_label(run.action),
            target=target,
            snapshot_json=snapshot_json,
            parameters=audit_parameters(run),
            outcome_text=audit_outcome(run),
        )
        return ctx

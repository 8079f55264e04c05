"""Integrations: connected accounts, connect / edit / rotate key / disconnect, sync now with live
progress, sync history, and the capabilities table.

Reads go through integrations.selectors, changes through integrations.services. Every change is
Admin-only on the server (AdminRequiredMixin → 403 for Viewers) and happens only on POST.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_POST
from django.views.generic import TemplateView

from accounts.permissions import AdminRequiredMixin, ViewerRequiredMixin
from dashboard.forms import (
    PERMISSION_HELP,
    ConnectForm,
    ConnectionEditForm,
    DisconnectForm,
    RotateKeyForm,
    SyncNowForm,
    add_credentials_error,
)
from dashboard.views.pages import htmx_target, is_htmx
from integrations.models import Connection, SyncRun
from integrations.providers import CredentialsError, registry
from integrations.selectors import connections as conn_selectors
from integrations.services import connections as conn_services
from integrations.services.pending_connect import (
    PendingConnect,
    pending_connect_forget,
    pending_connect_get,
    pending_connect_store,
)
from integrations.services.sync import SyncAlreadyRunning, SyncNotAllowed, sync_run_request


def _connection_or_404(pk: int) -> Connection:
    try:
        return conn_selectors.connection_get(pk)
    except Connection.DoesNotExist:
        raise Http404("No such connection") from None


def _progress_context(connection: Connection, run: SyncRun | None, notice: str = "") -> dict[str, Any]:
    streams = conn_selectors.sync_run_progress(run, provider_key=connection.provider) if run else []
    return {
        "connection": connection,
        "run": run,
        "streams": streams,
        # A partial or failed run's message repeats its streams' errors: show each once.
        "run_errors_in_streams": any(s.error and s.status == "failed" for s in streams),
        "notice": notice,
    }


def _card_or_404(pk: int) -> conn_selectors.ConnectionCard:
    cards = conn_selectors.connection_cards(pk=pk)
    if not cards:
        raise Http404("No such connection")
    return cards[0]


def _live_context(card: conn_selectors.ConnectionCard, notice: str = "") -> dict[str, Any]:
    """Everything a connection's page shows below the breadcrumb (the region that polls)."""
    run = card.active_run or card.last_run
    # Each cause is written out once: in the problems above, else in the first row that has it.
    shown = {p.cause for p in card.health.problems} if card.health else set()
    history = conn_selectors.sync_run_history(connection=card.connection)
    ctx: dict[str, Any] = {
        "card": card,
        "shown_causes": shown,
        "history": conn_selectors.sync_history_rows(history, shown=shown),
    }
    ctx.update(_progress_context(card.connection, run, notice))
    return ctx


class IntegrationsView(ViewerRequiredMixin, TemplateView):
    template_name = "dashboard/integrations/list.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        ctx = super().get_context_data(**kwargs)
        ctx["cards"] = conn_selectors.connection_cards()
        ctx["providers"] = registry.all()
        return ctx


class ConnectionDetailView(ViewerRequiredMixin, TemplateView):
    template_name = "dashboard/integrations/detail.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        ctx = super().get_context_data(**kwargs)
        ctx.update(_live_context(_card_or_404(kwargs["pk"])))
        return ctx


class ConnectionLiveView(ViewerRequiredMixin, View):
    """The body of a connection's page (status, facts, progress, history), polled by htmx every 2 s
    while a sync runs; once the run is over it comes back without its trigger and polling stops."""

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        return render(request, "dashboard/integrations/_live.html", _live_context(_card_or_404(pk)))


class ConnectionCardView(ViewerRequiredMixin, View):
    """One card of the integrations page, polled the same way while its sync runs."""

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        return render(request, "dashboard/integrations/_card.html", {"card": _card_or_404(pk)})


class SyncProgressView(ViewerRequiredMixin, View):
    """The progress partial, polled by htmx every 2 s while the run is active; once it is finished
    the partial comes back without its hx-trigger, so polling stops by itself."""

    def get(self, request: HttpRequest, pk: int, run_pk: int) -> HttpResponse:
        connection = _connection_or_404(pk)
        try:
            run = conn_selectors.sync_run_get(connection=connection, pk=run_pk)
        except SyncRun.DoesNotExist:
            raise Http404("No such sync run") from None
        return render(request, "dashboard/integrations/_progress.html", _progress_context(connection, run))


@method_decorator(require_POST, name="dispatch")
class SyncNowView(AdminRequiredMixin, View):
    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        connection = _connection_or_404(pk)
        form = SyncNowForm(request.POST)
        kind = (form.cleaned_data.get("kind") if form.is_valid() else "") or SyncRun.Kind.FULL
        run: SyncRun | None
        try:
            run = sync_run_request(
                connection=connection, kind=kind, trigger=SyncRun.Trigger.MANUAL, requested_by=request.user
            )
            notice = "Sync started."
        except SyncAlreadyRunning as exc:
            run = exc.run or conn_selectors.sync_run_active(connection=connection)
            notice = "A sync is already running; its progress is shown below."
        except SyncNotAllowed as exc:
            run = conn_selectors.sync_run_latest(connection=connection)
            notice = str(exc) or "This connection cannot sync now."
        connection.refresh_from_db()
        target = htmx_target(request) or ""
        if target == "connection-live":
            return render(
                request, "dashboard/integrations/_live.html", _live_context(_card_or_404(pk), notice)
            )
        if target == f"connection-{pk}":
            return render(
                request, "dashboard/integrations/_card.html", {"card": _card_or_404(pk), "notice": notice}
            )
        if is_htmx(request):
            return render(
                request, "dashboard/integrations/_progress.html", _progress_context(connection, run, notice)
            )
        messages.info(request, notice)
        return HttpResponseRedirect(
            reverse("dashboard:connection_detail", args=[connection.pk]) + "#progress"
        )


def _hide_secrets(request: HttpRequest, provider: Any) -> None:
    """Error reports leave out the posted credentials the provider marks secret. Until the
    provider is known every posted value is hidden (sensitive_post_parameters() without names)."""
    request.sensitive_post_parameters = provider.secret_fields()  # type: ignore[attr-defined]


@method_decorator(sensitive_post_parameters(), name="dispatch")
class ConnectView(AdminRequiredMixin, View):
    """Connect an account. A key that manages several organizations gets a second step: the admin
    picks one (already connected ones are marked) and the key of the first step is kept on the
    server (services.pending_connect), so it is neither pasted again nor sent back to the page."""

    template_name = "dashboard/integrations/connect.html"

    def _provider(self, key: str) -> Any:
        try:
            return registry.get(key)
        except LookupError:
            raise Http404("No such provider") from None

    def _form(self, data: Any, provider: Any, pending: PendingConnect | None) -> ConnectForm:
        return ConnectForm(
            data,
            provider=provider,
            allowed_base_urls=conn_services.allowed_base_urls(provider_key=provider.key),
            org_choices=pending.choices if pending else None,
            connected=conn_selectors.connected_orgs(provider_key=provider.key),
            key_hint=pending.hint if pending else "",
        )

    def _render(
        self, request: HttpRequest, form: ConnectForm, status: int = 200, question: str = ""
    ) -> HttpResponse:
        return render(
            request,
            self.template_name,
            {
                "form": form,
                "provider": form.provider,
                "permission_help": PERMISSION_HELP,
                "org_question": question,
            },
            status=status,
        )

    def get(self, request: HttpRequest, provider: str) -> HttpResponse:
        return self._render(request, self._form(None, self._provider(provider), None))

    # `data` and `credentials` hold secrets: error reports must not show them (they list locals).
    @sensitive_variables("data", "credentials")
    def post(self, request: HttpRequest, provider: str) -> HttpResponse:
        prov = self._provider(provider)
        _hide_secrets(request, prov)
        pending = pending_connect_get(user=request.user, token=request.POST.get("pending", ""))
        form = self._form(request.POST, prov, pending)
        if not form.is_valid():
            return self._render(request, form, status=400)
        data = form.cleaned_data
        kept = pending.credentials if pending else {}
        # A field left empty in the second step keeps what the first step sent.
        credentials = {name: data.get(name) or kept.get(name, "") for name in form.credential_names}
        try:
            connection = conn_services.connection_create(
                name=data["name"],
                credentials=credentials,
                permission=data["permission"],
                created_by=request.user,
                provider_key=prov.key,
                region=data.get("region") or "",
                base_url=data.get("base_url") or "",
                org_id=data.get("org_id") or "",
            )
        except CredentialsError as exc:
            if not exc.choices:
                add_credentials_error(form, exc)
                return self._render(request, form, status=400)
            # Which organization? Keep the key here, offer the organizations, ask.
            if pending:
                pending_connect_forget(user=request.user, token=pending.token)
            hint = conn_services.credentials_hint(provider_key=prov.key, values=credentials)
            token = pending_connect_store(
                user=request.user, credentials=credentials, choices=exc.choices, hint=hint
            )
            bound = request.POST.copy()
            bound["pending"] = token
            for name in prov.secret_fields():
                bound.pop(name, None)
            asked = exc.code == "org_required"
            if asked:
                bound.pop("org_id", None)
            form = self._form(
                bound, prov, PendingConnect(token=token, credentials={}, choices=exc.choices, hint=hint)
            )
            form.full_clean()
            form.errors.clear()  # a question, not a mistake: nothing is marked invalid
            if not asked:
                form.add_error("org_id", exc.message)
            question = (
                f"This key manages {len(exc.choices)} organizations. Choose the one to connect."
                if asked
                else ""
            )
            return self._render(request, form, status=200 if asked else 400, question=question)
        except conn_services.ConnectRateLimited as exc:
            form.add_error(None, str(exc))
            return self._render(request, form, status=429)
        if pending:
            pending_connect_forget(user=request.user, token=pending.token)
        messages.success(request, f"Connected “{connection.name}”. The first sync has started.")
        for notice in (connection.capabilities or {}).get("notices", []):
            messages.warning(request, notice)
        return HttpResponseRedirect(
            reverse("dashboard:connection_detail", args=[connection.pk]) + "#progress"
        )


class ConnectionEditView(AdminRequiredMixin, View):
    template_name = "dashboard/integrations/edit.html"

    def _render(
        self, request: HttpRequest, connection: Connection, form: Any, status: int = 200
    ) -> HttpResponse:
        return render(
            request,
            self.template_name,
            {"connection": connection, "form": form, "permission_help": PERMISSION_HELP},
            status=status,
        )

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        connection = _connection_or_404(pk)
        return self._render(request, connection, ConnectionEditForm.for_connection(connection))

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        connection = _connection_or_404(pk)
        form = ConnectionEditForm.for_connection(connection, request.POST)
        if not form.is_valid():
            return self._render(request, connection, form, status=400)
        try:
            conn_services.connection_update(connection=connection, actor=request.user, **form.cleaned_data)
        except CredentialsError as exc:
            add_credentials_error(form, exc)
            return self._render(request, connection, form, status=400)
        except conn_services.ConnectRateLimited as exc:
            form.add_error(None, str(exc))
            return self._render(request, connection, form, status=429)
        messages.success(request, f"Saved “{connection.name}”.")
        return HttpResponseRedirect(reverse("dashboard:connection_detail", args=[connection.pk]))


@method_decorator(sensitive_post_parameters(), name="dispatch")
class ConnectionRotateKeyView(AdminRequiredMixin, View):
    template_name = "dashboard/integrations/rotate.html"

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        connection = _connection_or_404(pk)
        form = RotateKeyForm(provider=registry.get(connection.provider))
        return render(request, self.template_name, {"connection": connection, "form": form})

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        connection = _connection_or_404(pk)
        _hide_secrets(request, registry.get(connection.provider))
        form = RotateKeyForm(request.POST, provider=registry.get(connection.provider))
        status = 400
        if form.is_valid():
            try:
                conn_services.connection_update(
                    connection=connection, actor=request.user, credentials=form.credentials
                )
                messages.success(request, f"The API key of “{connection.name}” was replaced.")
                return HttpResponseRedirect(reverse("dashboard:connection_detail", args=[connection.pk]))
            except CredentialsError as exc:
                add_credentials_error(form, exc)
            except conn_services.ConnectRateLimited as exc:
                form.add_error(None, str(exc))
                status = 429
        return render(request, self.template_name, {"connection": connection, "form": form}, status=status)


class ConnectionDisconnectView(AdminRequiredMixin, View):
    """GET: a confirmation page naming what would be deleted. POST: disconnect."""

    template_name = "dashboard/integrations/disconnect.html"

    def _render(
        self, request: HttpRequest, connection: Connection, form: DisconnectForm, status: int = 200
    ) -> HttpResponse:
        counts = conn_selectors.connection_data_counts(connection)
        return render(
            request,
            self.template_name,
            {"connection": connection, "form": form, "counts": counts},
            status=status,
        )

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        connection = _connection_or_404(pk)
        if not connection.is_live:
            messages.info(request, f"“{connection.name}” is already disconnected.")
            return HttpResponseRedirect(reverse("dashboard:integrations"))
        return self._render(request, connection, DisconnectForm())

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        connection = _connection_or_404(pk)
        form = DisconnectForm(request.POST)
        if not form.is_valid():
            return self._render(request, connection, form, status=400)
        name = connection.name
        conn_services.connection_disconnect(
            connection=connection, actor=request.user, delete_data=form.delete_data
        )
        if form.delete_data:
            messages.success(
                request, f"Disconnected “{name}”. It is gone from torii; its synced data is being deleted."
            )
        else:
            messages.success(
                request, f"Disconnected “{name}”. The API key was destroyed; the synced data is kept."
            )
        return HttpResponseRedirect(reverse("dashboard:integrations"))


class CapabilitiesView(ViewerRequiredMixin, TemplateView):
    """The capabilities table: a full page, or just the table when htmx loads it into a dialog."""

    def get_template_names(self) -> list[str]:
        if is_htmx(self.request):
            return ["dashboard/integrations/_capabilities.html"]
        return ["dashboard/integrations/capabilities.html"]

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        ctx = super().get_context_data(**kwargs)
        ctx["tables"] = conn_selectors.capability_tables()
        return ctx

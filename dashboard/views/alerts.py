"""Alerts (Admins only): channels with their subscriptions, a test send, and the delivery log.

Reads go through alerts.selectors, changes through alerts.services.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.debug import sensitive_post_parameters
from django.views.generic import TemplateView

from accounts.permissions import AdminRequiredMixin
from alerts import selectors, services
from alerts.kinds import SUBSCRIBABLE
from alerts.models import Channel, Delivery
from dashboard.forms_alerts import ChannelForm
from dashboard.params import parse_id


def _channel_or_404(pk: int) -> Channel:
    try:
        return selectors.channel_get(pk=pk)
    except Channel.DoesNotExist:
        raise Http404("No such channel") from None


def _form_errors(form: ChannelForm, exc: services.ChannelInvalid) -> None:
    for field, message in exc.errors.items():
        form.add_error(field if field in form.fields else None, message)


class AlertsView(AdminRequiredMixin, TemplateView):
    template_name = "dashboard/alerts/list.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        ctx = super().get_context_data(**kwargs)
        ctx["channels"] = selectors.channel_rows()
        ctx["recent"] = selectors.delivery_rows()[:10]
        ctx["new_secret"] = self.request.session.pop("alerts_new_secret", None)
        return ctx


@method_decorator(sensitive_post_parameters("secret"), name="dispatch")
class ChannelCreateView(AdminRequiredMixin, View):
    template = "dashboard/alerts/channel_form.html"

    def get(self, request: HttpRequest) -> HttpResponse:
        return render(request, self.template, {"form": ChannelForm(), "channel": None})

    def post(self, request: HttpRequest) -> HttpResponse:
        form = ChannelForm(request.POST)
        if form.is_valid():
            d = form.cleaned_data
            try:
                channel, secret = services.channel_create(
                    actor=request.user,
                    name=d["name"],
                    kind=d["kind"],
                    recipients=d["recipients"],
                    url=d["url"],
                    body_format=d["body_format"],
                    event_kinds=d["event_kinds"],
                    active=d["active"],
                    secret=d["secret"],
                )
            except services.ChannelInvalid as exc:
                _form_errors(form, exc)
            else:
                # Shown once on the next page, then gone from the session.
                request.session["alerts_new_secret"] = {"channel": channel.name, "secret": secret}
                messages.success(request, f"Channel {channel.name} created.")
                return HttpResponseRedirect(reverse("dashboard:alerts"))
        return render(request, self.template, {"form": form, "channel": None}, status=400)


@method_decorator(sensitive_post_parameters("secret"), name="dispatch")
class ChannelEditView(AdminRequiredMixin, View):
    template = "dashboard/alerts/channel_form.html"

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        channel = _channel_or_404(pk)
        form = ChannelForm(
            editing=True,
            initial={
                "name": channel.name,
                "kind": channel.kind,
                "recipients": channel.recipients,
                "url": channel.url,
                "body_format": channel.body_format,
                "event_kinds": channel.event_kinds,
                "active": channel.active,
            },
        )
        return render(request, self.template, {"form": form, "channel": channel})

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        channel = _channel_or_404(pk)
        form = ChannelForm(request.POST, editing=True, initial={"kind": channel.kind})
        if form.is_valid():
            d = form.cleaned_data
            try:
                services.channel_update(
                    channel=channel,
                    actor=request.user,
                    name=d["name"],
                    recipients=d["recipients"],
                    url=d["url"],
                    body_format=d["body_format"],
                    event_kinds=d["event_kinds"],
                    active=d["active"],
                    secret=d["secret"],
                )
            except services.ChannelInvalid as exc:
                _form_errors(form, exc)
            else:
                messages.success(request, f"Channel {channel.name} saved.")
                return HttpResponseRedirect(reverse("dashboard:alerts"))
        return render(request, self.template, {"form": form, "channel": channel}, status=400)


class ChannelDeleteView(AdminRequiredMixin, View):
    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        channel = _channel_or_404(pk)
        name = channel.name
        services.channel_delete(channel=channel, actor=request.user)
        messages.success(request, f"Channel {name} deleted.")
        return HttpResponseRedirect(reverse("dashboard:alerts"))


class ChannelTestView(AdminRequiredMixin, View):
    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        channel = _channel_or_404(pk)
        event = services.channel_test_send(channel=channel, actor=request.user)
        messages.info(
            request, f"Test message queued to {channel.name}; its attempts are in the delivery log."
        )
        return HttpResponseRedirect(reverse("dashboard:alert_deliveries") + f"?event={event.pk}")


class SubscriptionsView(AdminRequiredMixin, View):
    """Every channel against every event kind, one checkbox each, saved at once."""

    template = "dashboard/alerts/subscriptions.html"

    def _render(self, request: HttpRequest, error: str = "", status: int = 200) -> HttpResponse:
        channels = list(selectors.channels())
        grid = [
            {"kind": kind, "cells": [(c, kind.value in (c.event_kinds or [])) for c in channels]}
            for kind in SUBSCRIBABLE
        ]
        return render(
            request, self.template, {"channels": channels, "grid": grid, "error": error}, status=status
        )

    def get(self, request: HttpRequest) -> HttpResponse:
        return self._render(request)

    def post(self, request: HttpRequest) -> HttpResponse:
        subscriptions: dict[int, list[str]] = {}
        for pk in selectors.channels().values_list("pk", flat=True):
            subscriptions[pk] = request.POST.getlist(f"channel-{pk}")
        try:
            changed = services.channel_subscriptions_set(actor=request.user, subscriptions=subscriptions)
        except services.ChannelInvalid as exc:
            return self._render(request, error=str(exc.errors.get("event_kinds", exc)), status=400)
        messages.success(
            request, f"Subscriptions saved ({changed} channel{'s' if changed != 1 else ''} changed)."
        )
        return HttpResponseRedirect(reverse("dashboard:alert_subscriptions"))


class DeliveriesView(AdminRequiredMixin, TemplateView):
    template_name = "dashboard/alerts/deliveries.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        ctx = super().get_context_data(**kwargs)
        g = self.request.GET
        status = g.get("status") or ""
        if status not in Delivery.Status.values:
            status = ""
        channel_id = parse_id(g.get("channel"))
        event_id = parse_id(g.get("event"))
        rows = selectors.delivery_rows(status=status, channel_id=channel_id, event_id=event_id)
        page = Paginator(rows, 50).get_page(g.get("page"))
        ctx.update(
            page=page,
            deliveries=selectors.deliveries_with_attempts(list(page.object_list)),
            status=status,
            statuses=Delivery.Status.choices,
            channels=selectors.channels(),
            channel_id=channel_id,
        )
        return ctx

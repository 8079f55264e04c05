"""People and roles (Admins): who may use torii, with which role; lifting login lockouts.

Thin: accounts.people reads and writes (and audits); these views parse and render.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views import View

from accounts import people as services
from accounts.permissions import AdminRequiredMixin
from accounts.roles import role_of
from dashboard.forms_people import PersonCreateForm, RoleForm


def _page(
    request: HttpRequest, *, form: PersonCreateForm | None = None, created: Any = None, status: int = 200
) -> HttpResponse:
    rows = [{"person": p, "role": role_of(p) or ""} for p in services.person_list()]
    ctx = {
        "rows": rows,
        "form": form or PersonCreateForm(),
        "role_choices": services.ROLE_CHOICES,
        "lockouts": services.lockout_list(),
        "created": created,
        "lockout_limit": settings.AXES_FAILURE_LIMIT,
    }
    return render(request, "dashboard/people/list.html", ctx, status=status)


def _person(pk: int) -> Any:
    try:
        return services.person_get(pk)
    except Exception:  # the user model's DoesNotExist
        raise Http404("No such person") from None


class PeopleView(AdminRequiredMixin, View):
    http_method_names = ["get"]

    def get(self, request: HttpRequest) -> HttpResponse:
        return _page(request)


class PersonCreateView(AdminRequiredMixin, View):
    """Adds a person; their generated password is on this response only (never stored in clear)."""

    http_method_names = ["post"]

    def post(self, request: HttpRequest) -> HttpResponse:
        form = PersonCreateForm(request.POST)
        if not form.is_valid():
            return _page(request, form=form, status=400)
        try:
            user, password = services.person_create(actor=request.user, **form.cleaned_data)
        except services.PersonRefused as exc:
            form.add_error(None, exc.message)
            return _page(request, form=form, status=400)
        return _page(request, created={"user": user, "password": password})


class PersonRoleView(AdminRequiredMixin, View):
    http_method_names = ["post"]

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        person = _person(pk)
        form = RoleForm(request.POST)
        if not form.is_valid():
            messages.error(request, "Choose Admin, Viewer or no role.")
            return HttpResponseRedirect(reverse("dashboard:people"), status=303)
        try:
            services.person_set_role(actor=request.user, person=person, role=form.cleaned_data["role"] or "")
        except services.PersonRefused as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"{person.get_username()}: {form.cleaned_data['role'] or 'no role'}.")
        return HttpResponseRedirect(reverse("dashboard:people"), status=303)


class PersonActiveView(AdminRequiredMixin, View):
    http_method_names = ["post"]
    active = True

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        person = _person(pk)
        try:
            services.person_set_active(actor=request.user, person=person, active=self.active)
        except services.PersonRefused as exc:
            messages.error(request, exc.message)
        else:
            state = "reactivated" if self.active else "deactivated"
            messages.success(request, f"{person.get_username()} was {state}.")
        return HttpResponseRedirect(reverse("dashboard:people"), status=303)


class PersonDeactivateView(PersonActiveView):
    active = False


class LockoutResetView(AdminRequiredMixin, View):
    http_method_names = ["post"]

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        lockout = services.lockout_reset(actor=request.user, pk=pk)
        if lockout is None:
            messages.info(request, "That lockout had already ended.")
        else:
            messages.success(
                request, f"{lockout.username or 'The address'} can log in again from {lockout.ip_address}."
            )
        return HttpResponseRedirect(reverse("dashboard:people"), status=303)

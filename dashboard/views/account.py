"""Your own account: API tokens (made, rotated, revoked; a new token is shown once) and password."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse, reverse_lazy
from django.views import View

from accounts import tokens as services
from accounts.models import ApiToken
from accounts.permissions import ViewerRequiredMixin
from dashboard.forms_people import TokenCreateForm


def _page(
    request: HttpRequest,
    *,
    form: TokenCreateForm | None = None,
    new: services.NewToken | None = None,
    error: str = "",
    status: int = 200,
) -> HttpResponse:
    ctx = {
        "tokens": services.api_token_list(user=request.user),
        "form": form or TokenCreateForm(),
        "new": new,
        "error": error,
        "max_days": settings.API_TOKEN_MAX_DAYS,
    }
    return render(request, "dashboard/account/tokens.html", ctx, status=status)


def _own_token(request: HttpRequest, key: str) -> ApiToken:
    token = ApiToken.objects.filter(user=request.user, token_key=key).first()  # type: ignore[misc]
    if token is None:
        raise Http404("No such token")
    return token


class TokensView(ViewerRequiredMixin, View):
    http_method_names = ["get"]

    def get(self, request: HttpRequest) -> HttpResponse:
        return _page(request)


class TokenCreateView(ViewerRequiredMixin, View):
    http_method_names = ["post"]

    def post(self, request: HttpRequest) -> HttpResponse:
        form = TokenCreateForm(request.POST)
        if not form.is_valid():
            return _page(request, form=form, status=400)
        try:
            new = services.api_token_create(
                user=request.user,
                name=form.cleaned_data["name"],
                days=form.cleaned_data["days"],
                form_key=form.cleaned_data["form_key"],
            )
        except services.TokenRefused as exc:
            return _page(request, error=exc.message, status=400)
        return _page(request, new=new)


class TokenRotateView(ViewerRequiredMixin, View):
    http_method_names = ["post"]

    def post(self, request: HttpRequest, key: str) -> HttpResponse:
        new = services.api_token_rotate(token=_own_token(request, key), actor=request.user)
        return _page(request, new=new)


class TokenRevokeView(ViewerRequiredMixin, View):
    http_method_names = ["post"]

    def post(self, request: HttpRequest, key: str) -> HttpResponse:
        token = _own_token(request, key)
        services.api_token_revoke(token=token, actor=request.user)
        messages.success(request, f"Token {token.token_key}… revoked; it no longer works.")
        return HttpResponseRedirect(reverse("dashboard:api_tokens"), status=303)


class PasswordChangeView(auth_views.PasswordChangeView):
    """Changing the password also revokes every API token (accounts.signals)."""

    template_name = "registration/password_change_form.html"
    success_url = reverse_lazy("dashboard:password_change_done")


class PasswordChangeDoneView(auth_views.PasswordChangeDoneView):
    template_name = "registration/password_change_done.html"

"""Role checks for views and the REST API, enforced on the server."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.mixins import AccessMixin
from django.core.exceptions import PermissionDenied
from rest_framework.permissions import SAFE_METHODS, BasePermission

from accounts.roles import is_admin, is_viewer


class ViewerRequiredMixin(AccessMixin):
    """Any torii role may read. Authenticated users without a role get 403."""

    def dispatch(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        if not is_viewer(request.user):
            raise PermissionDenied("Your account has no torii role. Ask an administrator for one.")
        return super().dispatch(request, *args, **kwargs)  # type: ignore[misc]


class AdminRequiredMixin(AccessMixin):
    """Only Admins may change things."""

    def dispatch(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        if not is_admin(request.user):
            raise PermissionDenied("Only torii Admins can do this.")
        return super().dispatch(request, *args, **kwargs)  # type: ignore[misc]


class IsViewerOrAdminReadAdminWrite(BasePermission):
    """Viewers and Admins read; only Admins use unsafe methods."""

    message = "Only torii Admins can change things; Viewers can read."

    def has_permission(self, request: Any, view: Any) -> bool:
        if request.method in SAFE_METHODS:
            return is_viewer(request.user)
        return is_admin(request.user)


class IsToriiAdmin(BasePermission):
    message = "Only torii Admins can do this."

    def has_permission(self, request: Any, view: Any) -> bool:
        return is_admin(request.user)

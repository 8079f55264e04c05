"""The two torii roles.

*Admin* may connect accounts and run actions; *Viewer* reads. A role is a Django group, so it can be
granted in the admin site, from the command line, or by the first-admin command. Superusers count
as Admins. The check lives here, once, and every view, API permission and service calls it.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, Group

ADMIN = "Admin"
VIEWER = "Viewer"
ROLES = (ADMIN, VIEWER)


def ensure_role_groups() -> None:
    for name in ROLES:
        Group.objects.get_or_create(name=name)


def _groups(user: Any) -> set[str]:
    cache = getattr(user, "_torii_groups", None)
    if cache is None:
        cache = set(user.groups.values_list("name", flat=True))
        user._torii_groups = cache
    return cache


def is_admin(user: AbstractBaseUser | AnonymousUser | None) -> bool:
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    if getattr(user, "is_superuser", False):
        return True
    return ADMIN in _groups(user)


def is_viewer(user: AbstractBaseUser | AnonymousUser | None) -> bool:
    """True for anyone who may read torii: Viewers and Admins."""
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    return is_admin(user) or VIEWER in _groups(user)


def role_of(user: AbstractBaseUser | AnonymousUser | None) -> str | None:
    if is_admin(user):
        return ADMIN
    if is_viewer(user):
        return VIEWER
    return None


def grant_role(user: Any, role: str) -> None:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
    ensure_role_groups()
    user.groups.remove(*Group.objects.filter(name__in=ROLES).exclude(name=role))
    user.groups.add(Group.objects.get(name=role))
    if hasattr(user, "_torii_groups"):
        del user._torii_groups

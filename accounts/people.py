"""Who may use torii: people, their roles, and lifting login lockouts. Every change is audited.

Reads (`person_list`, `lockout_list`) and writes (`person_create`, `person_set_role`,
`person_set_active`, `lockout_reset`) for the people page; views stay thin. An Admin can never
take the last active Admin away (their own role included): torii must keep someone who can give
roles without the Django admin site.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts.roles import ADMIN, ROLES, VIEWER, ensure_role_groups, grant_role, is_admin, role_of

NO_ROLE = ""
ROLE_CHOICES = ((ADMIN, "Admin"), (VIEWER, "Viewer"), (NO_ROLE, "No role"))


class PersonRefused(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def audit_access_event(
    *, actor: Any, action: str, target: Any, parameters: dict[str, Any] | None = None
) -> None:
    from integrations.services.audit import audit_access_event as record

    username = target.get_username() if hasattr(target, "get_username") else str(target)
    record(action=action, actor=actor, target_username=username, parameters=parameters)


# --- reads -----------------------------------------------------------------------------------
def person_list() -> QuerySet[Any]:
    return get_user_model().objects.prefetch_related("groups").order_by("username", "pk")


def person_get(pk: int) -> Any:
    return get_user_model().objects.get(pk=pk)


def _active_admins() -> QuerySet[Any]:
    return (
        get_user_model()
        .objects.filter(is_active=True)
        .filter(Q(is_superuser=True) | Q(groups__name=ADMIN))
        .distinct()
    )


@dataclass(frozen=True)
class Lockout:
    pk: int
    username: str
    ip_address: str
    failures: int
    last_attempt: Any


def lockout_list() -> list[Lockout]:
    """Sign-ins locked now: (username, address) pairs at the failure limit within the cool-off."""
    from axes.models import AccessAttempt

    since = timezone.now() - settings.AXES_COOLOFF_TIME
    rows = AccessAttempt.objects.filter(
        failures_since_start__gte=settings.AXES_FAILURE_LIMIT, attempt_time__gte=since
    ).order_by("-attempt_time")
    return [
        Lockout(
            pk=r.pk,
            username=r.username or "",
            ip_address=r.ip_address or "",
            failures=r.failures_since_start,
            last_attempt=r.attempt_time,
        )
        for r in rows[:200]
    ]


# --- writes ----------------------------------------------------------------------------------
def person_create(*, actor: Any, username: str, email: str, role: str) -> tuple[Any, str]:
    """A new torii user with a generated password, returned once to show once."""
    if role not in (*ROLES, NO_ROLE):
        raise PersonRefused("Choose Admin, Viewer or no role.")
    User = get_user_model()
    username = username.strip()
    field = User._meta.get_field(User.USERNAME_FIELD)
    try:
        field.clean(username, None)  # type: ignore[union-attr]
    except ValidationError as exc:
        raise PersonRefused(" ".join(exc.messages)) from None
    if User.objects.filter(**{f"{User.USERNAME_FIELD}__iexact": username}).exists():
        raise PersonRefused(f"“{username}” is already a torii user.")
    password = secrets.token_urlsafe(18)
    user = User(username=username, email=email.strip())
    try:
        validate_password(password, user)
    except ValidationError:  # pragma: no cover - a random 24-character password passes
        password = secrets.token_urlsafe(24)
    user.set_password(password)
    with transaction.atomic():
        user.save()
        if role:
            grant_role(user, role)
        audit_access_event(
            actor=actor, action="person.created", target=user, parameters={"role": role or "none"}
        )
    return user, password


def person_set_role(*, actor: Any, person: Any, role: str) -> None:
    """Give Admin, Viewer or no role. A superuser given a lesser role stops being a superuser (the
    people page is where roles are decided)."""
    if role not in (*ROLES, NO_ROLE):
        raise PersonRefused("Choose Admin, Viewer or no role.")
    if not is_admin(actor):
        raise PersonRefused("Only torii Admins can give roles.")
    before = role_of(person) or NO_ROLE
    with transaction.atomic():
        # Serialise role changes so two Admins demoting each other cannot leave none.
        list(Group.objects.select_for_update().filter(name__in=ROLES))
        if before == ADMIN and role != ADMIN and not _active_admins().exclude(pk=person.pk).exists():
            raise PersonRefused("torii needs at least one active Admin: give someone else Admin first.")
        if role:
            grant_role(person, role)
        else:
            ensure_role_groups()
            person.groups.remove(*Group.objects.filter(name__in=ROLES))
            if hasattr(person, "_torii_groups"):
                del person._torii_groups
        if role != ADMIN and (person.is_superuser or person.is_staff):
            person.is_superuser = person.is_staff = False
            person.save(update_fields=["is_superuser", "is_staff"])
        if before != role:
            audit_access_event(
                actor=actor,
                action="person.role_changed",
                target=person,
                parameters={"from": before or "none", "to": role or "none"},
            )


def person_set_active(*, actor: Any, person: Any, active: bool) -> None:
    """Deactivate (they can no longer log in; their sessions and API tokens stop working) or
    reactivate a person."""
    from accounts.tokens import api_tokens_revoke_all

    if not is_admin(actor):
        raise PersonRefused("Only torii Admins can deactivate people.")
    if not active and person.pk == actor.pk:
        raise PersonRefused("You cannot deactivate yourself.")
    if person.is_active == active:
        return
    with transaction.atomic():
        list(Group.objects.select_for_update().filter(name__in=ROLES))
        if not active and is_admin(person) and not _active_admins().exclude(pk=person.pk).exists():
            raise PersonRefused("torii needs at least one active Admin.")
        person.is_active = active
        person.save(update_fields=["is_active"])
        if not active:
            api_tokens_revoke_all(user=person)
        audit_access_event(
            actor=actor, action="person.reactivated" if active else "person.deactivated", target=person
        )


def lockout_reset(*, actor: Any, pk: int) -> Lockout | None:
    """Lift one lockout (a username at an address): the next login attempt is judged afresh."""
    from axes.models import AccessAttempt

    if not is_admin(actor):
        raise PersonRefused("Only torii Admins can lift lockouts.")
    with transaction.atomic():
        row = AccessAttempt.objects.select_for_update().filter(pk=pk).first()
        if row is None:
            return None
        lockout = Lockout(
            pk=row.pk,
            username=row.username or "",
            ip_address=row.ip_address or "",
            failures=row.failures_since_start,
            last_attempt=row.attempt_time,
        )
        row.delete()
        audit_access_event(
            actor=actor,
            action="login.unlocked",
            target=lockout.username or "(no username)",
            parameters={"address": lockout.ip_address},
        )
    return lockout

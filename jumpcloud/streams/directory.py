"""The directory: the organization's details, its users and its administrators.

Rows of the directory application (jumpcloud.streams.common.directory_app) are the directory's
users (kind=user) and the administrators who have no user account (kind=admin).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from django.db import connection as db
from django.db import transaction
from django.db.models.functions import Lower
from django.utils import timezone

from integrations import bulk
from integrations.exceptions import FeatureUnavailable
from integrations.models import Application, AppUser, Connection
from integrations.sync.context import StreamContext
from jumpcloud import errors
from jumpcloud.parsing import Administrator, SystemUser
from jumpcloud.streams.common import APPUSER_TABLE, BIG_BATCH, analyze, clip, directory_app


# --- organization -------------------------------------------------------------------------------
def sync_organization(ctx: StreamContext) -> None:
    """The organization's name and the default state of new users. A detail: when JumpCloud will
    not give it, the stream is skipped with the reason and the run goes on."""
    try:
        org = ctx.client.get_organization(ctx.connection.org_id)
    except (
        errors.InvalidApiKey,
        errors.OrganizationRequired,
        errors.PermissionDenied,
        errors.NotFound,
    ) as exc:
        raise FeatureUnavailable(
            f"JumpCloud did not give this organization's details: {exc.message} The users, "
            "applications and usage are synced without them."
        ) from exc
    ctx.add(fetched=1)
    name = str(org.get("displayName") or org.get("name") or "").replace("\x00", "\ufffd")[:200]
    if name and name != ctx.connection.org_name:
        Connection.objects.filter(pk=ctx.connection.pk).update(org_name=name)
        ctx.connection.org_name = name
        ctx.add(updated=1)
    org_settings = org.get("settings") if isinstance(org.get("settings"), dict) else {}
    defaults = org_settings.get("newSystemUserStateDefaults")
    defaults = defaults if isinstance(defaults, dict) else {}
    if defaults.get("manualEntry"):
        ctx.detect(new_user_default_state=str(defaults["manualEntry"]))


# --- users --------------------------------------------------------------------------------------
def user_status(user: SystemUser) -> str:
    if user.suspended or user.state == "SUSPENDED":
        return AppUser.Status.SUSPENDED
    if user.account_locked:
        return AppUser.Status.LOCKED
    if user.state == "STAGED":
        return AppUser.Status.INVITED
    return AppUser.Status.ACTIVE


USER_COLUMNS = (
    "connection_id",
    "application_id",
    "external_id",
    "kind",
    "username",
    "email",
    "first_name",
    "last_name",
    "display_name",
    "status",
    "password_expired",
    "mfa_enabled",
    "upstream_created_at",
    "removed_at",
    "extra",
    "is_admin",
    "role",
    "admin_external_id",
    "assignment",
)
USER_UPDATE = (
    "username",
    "email",
    "first_name",
    "last_name",
    "display_name",
    "status",
    "password_expired",
    "mfa_enabled",
    "upstream_created_at",
    "removed_at",
    "extra",
)


def _user_values(u: SystemUser) -> tuple[Any, ...]:
    """A listed user as a directory row holds it in USER_UPDATE's columns (`extra` as a dict)."""
    extra = {
        k: v
        for k, v in (
            ("department", u.department),
            ("job_title", u.job_title),
            ("employee_type", u.employee_type),
            ("state", u.state),
        )
        if v
    }
    display = u.displayname or " ".join(p for p in (u.firstname, u.lastname) if p)
    return (
        clip(u.username, 255),
        clip(u.email, 320),
        clip(u.firstname, 255),
        clip(u.lastname, 255),
        clip(display, 1024),
        user_status(u),
        bool(u.password_expired),
        u.mfa_enabled,
        u.created,
        None,
        extra,
    )


def user_row(connection_id: int, app_id: int, u: SystemUser) -> tuple[Any, ...]:
    *values, extra = _user_values(u)
    return (connection_id, app_id, u.id, AppUser.Kind.USER, *values, json.dumps(extra), False, "User", "", "")


def upsert_directory_users(
    connection: Connection, app: Application, users: Iterable[SystemUser]
) -> tuple[int, int]:
    """Write these users' directory rows (an action mirrors its result this way too)."""
    return _upsert_user_rows([user_row(connection.pk, app.pk, u) for u in users])


def _upsert_user_rows(rows: list[tuple[Any, ...]]) -> tuple[int, int]:
    return bulk.upsert(
        table=APPUSER_TABLE,
        columns=USER_COLUMNS,
        rows=rows,
        conflict=("application_id", "external_id"),
        update=USER_UPDATE,
    )


def _comparable(values: tuple[Any, ...] | list[Any]) -> tuple[Any, ...]:
    """USER_UPDATE's values in a form equal between a listed user and its stored row: `extra`
    (the last) as sorted items. Choices equal their strings and datetimes compare as instants."""
    *plain, extra = values
    return (*plain, tuple(sorted(extra.items())) if isinstance(extra, dict) else extra)


def _stored_user_states(app: Application) -> dict[str, tuple[Any, ...]]:
    """Every stored directory user of `app`, by external id, in _comparable form."""
    rows = AppUser.objects.filter(application=app, kind=AppUser.Kind.USER).values_list(
        "external_id", *USER_UPDATE
    )
    return {row[0]: _comparable(row[1:]) for row in rows.iterator(chunk_size=5000)}


def mark_removed(*, app: Application, kind: str, keep: set[str]) -> int:
    """Soft-delete rows of `app` absent from a complete listing (never after a partial one)."""
    with db.cursor() as cursor:
        cursor.execute(
            f'UPDATE "{APPUSER_TABLE}" SET status = %s, removed_at = %s '
            "WHERE application_id = %s AND kind = %s AND removed_at IS NULL AND NOT (external_id = ANY(%s))",
            [AppUser.Status.REMOVED, timezone.now(), app.pk, kind, list(keep)],
        )
        return cursor.rowcount


USER_BATCH = 1_000  # listed users written at once: ten pages a transaction, not one


def sync_users(ctx: StreamContext) -> None:
    """Every user of the directory. Each listed user is compared with what is stored (read once,
    up front) and only new or changed ones are written, a batch of pages at a time; a first sync
    COPYs them straight in."""
    app = directory_app(ctx.connection)
    stored = _stored_user_states(app)
    seen: set[str] = set()
    batch: dict[str, SystemUser] = {}  # by id: a user listed on two pages is written once
    for page in ctx.client.iter_system_user_pages():
        batch.update((u.id, u) for u in page.items if stored.get(u.id) != _comparable(_user_values(u)))
        seen.update(u.id for u in page.items)
        ctx.add(fetched=len(page.items), skipped=page.skipped, pages=1)
        if len(batch) >= USER_BATCH:
            _write_users(ctx, app, stored, list(batch.values()))
            batch = {}
        ctx.progress()
    _write_users(ctx, app, stored, list(batch.values()))
    removed_at = USER_UPDATE.index("removed_at")
    if any(ext not in seen for ext, state in stored.items() if state[removed_at] is None):
        # Someone stored as present was not listed.
        with transaction.atomic():
            ctx.add(removed=mark_removed(app=app, kind=AppUser.Kind.USER, keep=seen))
    if ctx.counters.get("created", 0) >= BIG_BATCH:
        analyze(APPUSER_TABLE)


def _write_users(
    ctx: StreamContext, app: Application, stored: dict[str, tuple[Any, ...]], changed: list[SystemUser]
) -> None:
    if not changed:
        return
    rows = [user_row(ctx.connection.pk, app.pk, u) for u in changed]
    with transaction.atomic():
        ctx.hold_connection()
        copied = bulk.copy_new(table=APPUSER_TABLE, columns=USER_COLUMNS, rows=rows) if not stored else None
        if copied is not None:
            created, updated = copied, 0
        else:
            created, updated = _upsert_user_rows(rows)
    ctx.add(created=created, updated=updated)


# --- administrators -------------------------------------------------------------------------------
ADMIN_ONLY_COLUMNS = (*USER_COLUMNS, "admin_mfa_enabled")
ADMIN_ONLY_UPDATE = (
    "username",
    "email",
    "first_name",
    "last_name",
    "display_name",
    "status",
    "upstream_created_at",
    "removed_at",
    "is_admin",
    "role",
    "admin_external_id",
    "admin_mfa_enabled",
)


def _admin_only_row(connection_id: int, app_id: int, a: Administrator) -> tuple[Any, ...]:
    return (
        connection_id,
        app_id,
        a.id,
        AppUser.Kind.ADMIN_ONLY,
        clip(a.email, 255),
        clip(a.email, 320),
        clip(a.firstname, 255),
        clip(a.lastname, 255),
        clip(" ".join(p for p in (a.firstname, a.lastname) if p), 1024),
        AppUser.Status.SUSPENDED if a.suspended else AppUser.Status.ACTIVE,
        False,
        None,
        a.created,
        None,
        "{}",
        True,
        a.role_name or "Administrator",
        a.id,
        "",
        a.mfa_enabled,
    )


def sync_administrators(ctx: StreamContext) -> None:
    """Admins are matched to users by email (case-insensitive) so a person is counted once; an
    admin with no user account gets a row of its own (kind=admin)."""
    app = directory_app(ctx.connection)
    admins: dict[str, Administrator] = {}
    try:
        for page in ctx.client.iter_administrator_pages():
            for a in page.items:
                admins[a.id] = a
            ctx.add(fetched=len(page.items), skipped=page.skipped, pages=1)
    except errors.PermissionDenied as exc:
        ctx.detect(administrators=False)
        raise FeatureUnavailable("The administrator of this key cannot list administrators.") from exc
    except errors.ListUnavailable:
        ctx.detect(administrators=False)
        raise
    ctx.detect(administrators=True)
    by_email = {a.email.lower(): a for a in admins.values() if a.email}
    users = {
        row["le"]: row
        for row in AppUser.objects.filter(application=app, kind=AppUser.Kind.USER)
        .annotate(le=Lower("email"))
        .filter(le__in=list(by_email))
        .values("pk", "le", "is_admin", "role", "admin_external_id", "admin_mfa_enabled")
    }
    changed: list[AppUser] = []
    admin_only: list[Administrator] = []
    for email, a in by_email.items():
        role = a.role_name or "Administrator"
        user = users.get(email)
        if user is None:
            admin_only.append(a)
            continue
        want = (True, role, a.id, a.mfa_enabled)
        have = (user["is_admin"], user["role"], user["admin_external_id"], user["admin_mfa_enabled"])
        if want != have:
            changed.append(
                AppUser(
                    pk=user["pk"],
                    is_admin=True,
                    role=role,
                    admin_external_id=a.id,
                    admin_mfa_enabled=a.mfa_enabled,
                )
            )
    admin_only += [a for a in admins.values() if not a.email]
    with transaction.atomic():
        ctx.hold_connection()
        if changed:
            AppUser.objects.bulk_update(
                changed, ["is_admin", "role", "admin_external_id", "admin_mfa_enabled"]
            )
        created, updated = bulk.upsert(
            table=APPUSER_TABLE,
            columns=ADMIN_ONLY_COLUMNS,
            rows=[_admin_only_row(ctx.connection.pk, app.pk, a) for a in admin_only],
            conflict=("application_id", "external_id"),
            update=ADMIN_ONLY_UPDATE,
        )
        # Users who are no longer administrators (role revoked or admin deleted).
        demoted = (
            AppUser.objects.filter(application=app, kind=AppUser.Kind.USER, is_admin=True)
            .exclude(admin_external_id__in=[a.id for a in admins.values() if a.email.lower() in users])
            .update(is_admin=False, role="User", admin_external_id="", admin_mfa_enabled=None)
        )
        removed = mark_removed(app=app, kind=AppUser.Kind.ADMIN_ONLY, keep={a.id for a in admin_only})
    ctx.add(created=created, updated=updated + len(changed) + demoted, removed=removed)

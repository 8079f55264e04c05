"""JumpCloud streams: turn API data into core rows, in bulk.

Each function takes a SyncContext (integrations.services.sync) and writes through
integrations.bulk. Inventory streams restart from the beginning when resumed (their upserts write
nothing for rows already current); event streams resume mid-window from their checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import logging
import queue
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection as db
from django.db import connections, transaction
from django.db.models import Count
from django.db.models.functions import Lower
from django.utils import timezone

from integrations import bulk
from integrations.csvtext import csv_field
from integrations.models import Application, AppUser, Connection, SyncCheckpoint
from integrations.prefetch import Prefetch, prefetch
from integrations.services.connections import connection_credentials
from integrations.services.sync import StreamSkipped, SyncContext, concurrency_enabled
from jumpcloud import errors
from jumpcloud.assignment_reader import AppAnswer, AssignmentReader, read_app, read_group
from jumpcloud.event_pipeline import event_span, prepared_event_pages
from jumpcloud.last_use import (
    SSO_FINAL_APPS,
    SsoLastUse,
    alongside,
    daily_usage,
    note_sso_page,
    rollup_admin_last_login,
    rollup_last_used,
)
from jumpcloud.parsing import Administrator, AppBinding, Page, SystemUser
from jumpcloud.parsing import Application as JcApplication
from jumpcloud.rows import DIRECTORY_APP_ID, EVENT_COLUMNS, event_row

# Directory Insights: events arrive late (indexing), start_time is inclusive. Re-read the last
# half hour on every run and stay a few minutes behind now; duplicates are ignored by the unique key.
EVENT_OVERLAP = timedelta(minutes=30)
EVENT_LAG = timedelta(minutes=3)
EVENT_BACKFILL = timedelta(days=90)  # what JumpCloud retains
PROCESS_WINDOW = timedelta(days=1)
EVENT_PAGE_SIZE = 10_000  # Directory Insights' maximum; settings.JUMPCLOUD_EVENT_PAGE_SIZE overrides (tests)
# Services listed newest first. SSO: the assignment rows written while the SSO events are stored
# take their last use from the events stored so far (SsoLastUse). Newest first, a person's latest
# login to an app is stored early, and older ones never change it; oldest first, it comes last,
# and every row written before it has to be moved again by the finish step.
NEWEST_FIRST = frozenset({"sso"})

logger = logging.getLogger(__name__)

APPUSER_TABLE = AppUser._meta.db_table
APPLICATION_TABLE = Application._meta.db_table
EVENT_TABLE = "integrations_usageevent"


# After this many new rows the planner's statistics are stale enough to pick nested loops over
# hundreds of thousands of rows (seconds instead of milliseconds): refresh them first.
BIG_BATCH = 20_000
# Connections writing the app assignments of a first sync at once (see sync_app_assignments).
ASSIGNMENT_WRITERS = 2


def analyze(table: str) -> None:
    if bulk.is_postgres():
        with db.cursor() as cursor:
            cursor.execute(f'ANALYZE "{table}"')


def estimated_rows(table: str) -> int:
    """The planner's row count of `table` (PostgreSQL; 0 elsewhere or before any statistics)."""
    if not bulk.is_postgres():
        return 0
    with db.cursor() as cursor:
        cursor.execute(
            "SELECT GREATEST(reltuples, 0)::bigint FROM pg_class WHERE oid = %s::regclass", [table]
        )
        row = cursor.fetchone()
        return int(row[0]) if row else 0


def directory_app(connection: Connection) -> Application:
    app, _ = Application.objects.get_or_create(
        connection=connection,
        external_id=DIRECTORY_APP_ID,
        defaults={"kind": Application.Kind.DIRECTORY, "name": "jumpcloud", "label": "JumpCloud"},
    )
    return app


def _clip(value: str, size: int) -> str:
    return value[:size] if value else ""


# --- organization -------------------------------------------------------------------------------
def sync_organization(ctx: SyncContext) -> None:
    org = ctx.client.get_organization(ctx.connection.org_id)
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
    directory_app(ctx.connection)


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
        _clip(u.username, 255),
        _clip(u.email, 320),
        _clip(u.firstname, 255),
        _clip(u.lastname, 255),
        _clip(display, 1024),
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


def _changed_users(users: Iterable[SystemUser], stored: dict[str, tuple[Any, ...]]) -> list[SystemUser]:
    """The listed users that would change something: new ones, or ones whose stored values differ."""
    return [u for u in users if stored.get(u.id) != _comparable(_user_values(u))]


def mark_removed(*, app: Application, kind: str, keep: set[str]) -> int:
    """Soft-delete rows of `app` absent from a complete listing (never after a partial one)."""
    now = timezone.now()
    live = AppUser.objects.filter(application=app, kind=kind, removed_at__isnull=True)
    if bulk.is_postgres():
        with db.cursor() as cursor:
            cursor.execute(
                f'UPDATE "{APPUSER_TABLE}" SET status = %s, removed_at = %s '
                "WHERE application_id = %s AND kind = %s AND removed_at IS NULL AND NOT (external_id = ANY(%s))",
                [AppUser.Status.REMOVED, now, app.pk, kind, list(keep)],
            )
            return cursor.rowcount
    gone = [pk for pk, ext in live.values_list("pk", "external_id") if ext not in keep]
    return AppUser.objects.filter(pk__in=gone).update(status=AppUser.Status.REMOVED, removed_at=now)


def sync_users(ctx: SyncContext) -> None:
    """Users of the directory. A resync compares each listed user with what is stored (one read
    of the stored rows up front) and writes only new or changed ones; a first sync on PostgreSQL
    COPYs the rows straight in."""
    app = directory_app(ctx.connection)
    seen: set[str] = set()
    # The first pages are on their way while the stored users are read.
    with Prefetch(ctx.client.iter_system_user_pages()) as pages:
        stored = _stored_user_states(app)
        _sync_user_pages(ctx, app, stored, seen, pages)
    removed_at = USER_UPDATE.index("removed_at")
    if any(ext not in seen for ext, state in stored.items() if state[removed_at] is None):
        # Someone stored as present was not listed (a resync that lists everyone skips this).
        with transaction.atomic():
            ctx.add(removed=mark_removed(app=app, kind=AppUser.Kind.USER, keep=seen))
    if ctx.counters.get("created", 0) >= BIG_BATCH:
        analyze(APPUSER_TABLE)


def _sync_user_pages(
    ctx: SyncContext,
    app: Application,
    stored: dict[str, tuple[Any, ...]],
    seen: set[str],
    pages: Iterable[Page[SystemUser]],
) -> None:
    for page in pages:
        rows = [user_row(ctx.connection.pk, app.pk, u) for u in _changed_users(page.items, stored)]
        created = updated = 0
        if rows:
            with transaction.atomic():
                ctx.hold_connection()
                copied = (
                    bulk.copy_new(table=APPUSER_TABLE, columns=USER_COLUMNS, rows=rows)
                    if not stored and bulk.is_postgres()
                    else None
                )
                if copied is not None:
                    created = copied
                else:
                    created, updated = _upsert_user_rows(rows)
        seen.update(u.id for u in page.items)
        ctx.add(fetched=len(page.items), skipped=page.skipped, created=created, updated=updated, pages=1)
        ctx.progress()


# --- administrators -------------------------------------------------------------------------------
ADMIN_ONLY_COLUMNS = USER_COLUMNS + ("admin_mfa_enabled",)
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


def sync_administrators(ctx: SyncContext) -> None:
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
        raise StreamSkipped("The administrator of this key cannot list administrators.") from exc
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
        rows = [
            (
                ctx.connection.pk,
                app.pk,
                a.id,
                AppUser.Kind.ADMIN_ONLY,
                _clip(a.email, 255),
                _clip(a.email, 320),
                _clip(a.firstname, 255),
                _clip(a.lastname, 255),
                _clip(" ".join(p for p in (a.firstname, a.lastname) if p), 1024),
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
            for a in admin_only
        ]
        created, updated = bulk.upsert(
            table=APPUSER_TABLE,
            columns=ADMIN_ONLY_COLUMNS,
            rows=rows,
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


# --- applications ---------------------------------------------------------------------------------
APP_COLUMNS = (
    "connection_id",
    "external_id",
    "kind",
    "name",
    "label",
    "sso_url",
    "active",
    "upstream_created_at",
    "removed_at",
    "first_seen_at",
)
APP_UPDATE = ("name", "label", "sso_url", "active", "upstream_created_at", "removed_at")


def app_row(connection_id: int, a: JcApplication, now: datetime) -> tuple[Any, ...]:
    return (
        connection_id,
        a.id,
        Application.Kind.SSO,
        _clip(a.name, 255),
        _clip(a.display_label, 1024),
        _clip(a.sso_url, 2048),
        bool(a.active),
        a.created,
        None,
        now,
    )


def sync_applications(ctx: SyncContext) -> None:
    directory_app(ctx.connection)
    now = timezone.now()
    seen: set[str] = set()
    for page in ctx.client.iter_application_pages():
        with transaction.atomic():
            created, updated = bulk.upsert(
                table=APPLICATION_TABLE,
                columns=APP_COLUMNS,
                rows=[app_row(ctx.connection.pk, a, now) for a in page.items],
                conflict=("connection_id", "external_id"),
                update=APP_UPDATE,
            )
        seen.update(a.id for a in page.items)
        ctx.add(fetched=len(page.items), skipped=page.skipped, created=created, updated=updated, pages=1)
        ctx.progress()
    removed = (
        Application.objects.filter(
            connection=ctx.connection, kind=Application.Kind.SSO, removed_at__isnull=True
        )
        .exclude(external_id__in=seen)
        .update(removed_at=now, active=False)
    )
    ctx.add(removed=removed)
    if ctx.counters.get("created", 0):
        analyze(APPLICATION_TABLE)
    _start_assignment_reader(ctx)


ASSIGNMENT_READER = "jumpcloud.assignment_reader"


def _start_assignment_reader(ctx: SyncContext) -> None:
    """Read app assignments beside the users stream (jumpcloud.assignment_reader), when this run
    will sync them and may use threads."""
    pending = ctx.run.streams.get("app_assignments", {}).get("status") not in (None, "succeeded", "skipped")
    if not pending or not concurrency_enabled() or ASSIGNMENT_READER in ctx.shared:
        return
    app_ids = list(
        Application.objects.filter(
            connection=ctx.connection, kind=Application.Kind.SSO, removed_at__isnull=True
        )
        .order_by("pk")
        .values_list("external_id", flat=True)
    )
    ctx.shared[ASSIGNMENT_READER] = AssignmentReader(*_client_for_child(ctx), app_ids, ctx.stop)


def _client_for_child(ctx: SyncContext) -> tuple[str, dict[str, Any]]:
    """The API key and client options for a child process's own client (jumpcloud.child)."""
    client = ctx.client
    return (
        connection_credentials(ctx.connection).api_key,
        {"region": client.region, "base_url": client.base_url, "org_id": client.org_id},
    )


# --- app assignments ------------------------------------------------------------------------------
ASSIGN_COLUMNS = USER_COLUMNS + ("directory_user_id", "last_used_at")
ASSIGN_UPDATE = (
    "username",
    "email",
    "first_name",
    "last_name",
    "display_name",
    "status",
    "assignment",
    "removed_at",
    "directory_user_id",
)


def sync_app_assignments(ctx: SyncContext) -> None:
    """Who can use each SSO app, directly or through user groups (nested groups resolved).

    Per app: its direct user associations and its group associations; per group, once per run,
    its resolved membership. Apps share big groups (All Staff, departments), so this reads each
    group once instead of re-reading the same people under every app (/applications/{id}/users).
    """
    directory = directory_app(ctx.connection)
    people = {
        ext: (pk, username, email, first, last, display)
        for pk, ext, username, email, first, last, display in AppUser.objects.filter(
            application=directory, kind=AppUser.Kind.USER
        ).values_list("pk", "external_id", "username", "email", "first_name", "last_name", "display_name")
    }
    # In primary-key order (the reader reads in the same order): each new app's rows then land at
    # the right end of the indexes that lead with the application, instead of splitting pages in
    # their middle (COPY ~0.4 s faster, the unique index 77 MB instead of 143), unless the SSO
    # events are still being stored (below).
    apps = list(
        Application.objects.filter(
            connection=ctx.connection, kind=Application.Kind.SSO, removed_at__isnull=True
        )
        .order_by("pk")
        .values_list("pk", "external_id", "assignments_digest")
    )
    live = dict(
        AppUser.objects.filter(
            application_id__in=[pk for pk, _, digest in apps if digest], removed_at__isnull=True
        )
        .values("application_id")
        .annotate(n=Count("id"))
        .values_list("application_id", "n")
    )
    stream = _AssignmentStream(ctx, people, live)
    try:
        if ctx.beside_done("events_sso"):
            for app in apps:
                stream.sync_app(app)
        else:
            # The SSO events are still being stored beside this stream, and a row written before
            # its person's latest login is in must be rewritten by the finish step: a new row
            # version and an entry in each of the table's five indexes, ten times its COPY. So
            # every app is read first, then the stream waits for the SSO events and writes each
            # row once, with its final last use, on two connections (biggest apps first, so that
            # both end together): the finish step has nothing left to move.
            answered = []
            for app in apps:
                answer = stream.answer(app)
                if answer is not None:
                    answered.append((app, answer))
                ctx.progress()  # the heartbeat, while the answers come in
            # Meanwhile the last-use table takes in the SSO pages as they are committed, so that
            # little is left to aggregate when the writing starts.
            ctx.wait_beside("events_sso", tick=stream.last_used.catch_up)
            answered.sort(key=lambda item: -stream.size(item[1]))
            stream.write_all(answered, writers=ASSIGNMENT_WRITERS if concurrency_enabled() else 1)
    finally:
        stream.last_used.close()
    if ctx.counters.get("created", 0) >= BIG_BATCH:
        analyze(APPUSER_TABLE)


class _AssignmentStream:
    """The app-assignment stream's state for one run: memberships and their digests, read once."""

    def __init__(self, ctx: SyncContext, people: dict[str, tuple[Any, ...]], live: dict[int, int]):
        self.ctx = ctx
        self.people = people
        self.live = live
        self.reader: AssignmentReader | None = ctx.shared.get(ASSIGNMENT_READER)
        self.memberships: dict[str, frozenset[str]] = {}
        self.digests = AssignmentDigests(people)
        self.last_used = SsoLastUse(ctx)
        self.formatter = AssignmentCsv(ctx.connection.pk, people)

    def _answer(self, app_ext: str) -> AppAnswer:
        reader = self.reader
        answer = reader.take(app_ext) if reader is not None and reader.covers(app_ext) else None
        if answer is None:
            answer = read_app(self.ctx.client, app_ext, self.memberships)
        elif answer.error is not None:
            raise answer.error
        self.memberships.update(answer.memberships)
        self.ctx.add(pages=answer.pages, skipped=answer.skipped)
        for group_id in answer.groups:
            if group_id not in self.memberships:  # first read by the reader for an app not synced here
                self.memberships[group_id], pages, skipped = read_group(self.ctx.client, group_id)
                self.ctx.add(pages=pages, skipped=skipped)
        return answer

    def answer(self, app: tuple[int, str, str]) -> AppAnswer | None:
        """Who can use the app; None when it was deleted upstream since the listing (the next
        full sync removes it)."""
        try:
            return self._answer(app[1])
        except errors.NotFound:
            return None

    def size(self, answer: AppAnswer) -> int:
        """About how many people can use the app (people in several of its groups count twice)."""
        return len(answer.direct) + sum(len(self.memberships[g]) for g in answer.groups)

    def sync_app(self, app: tuple[int, str, str]) -> None:
        answer = self.answer(app)
        if answer is not None:
            self.write(app, answer)

    def write_all(self, answered: list[tuple[tuple[int, str, str], AppAnswer]], writers: int) -> None:
        """Write the apps in this order; with `writers` > 1, store them on that many threads with
        a database connection each. This thread prepares each app's rows (its last uses are
        looked up on this thread's connection, where the last-use table is, and its COPY text is
        formatted here, so the writers' Python time does not contend for the GIL) one app ahead."""
        if writers < 2 or len(answered) < 2:
            for app, answer in answered:
                self.write(app, answer)
            return
        # One app waiting beside those being stored: each holds up to 7 MB of COPY text.
        work: queue.Queue[_AppRows | None] = queue.Queue(1)
        errors_seen: list[BaseException] = []

        def writer() -> None:
            # Drains the queue to the end whatever happens, so that this thread never waits on it.
            try:
                while (item := work.get()) is not None:
                    if errors_seen:
                        continue
                    try:
                        self.store(item)
                    except BaseException as exc:  # handed to this thread, which stops feeding
                        errors_seen.append(exc)
            finally:
                connections.close_all()  # this thread's connection only

        threads = [
            threading.Thread(target=writer, name=f"sync-{self.ctx.run.pk}-assignments-{n}", daemon=True)
            for n in range(writers)
        ]
        for thread in threads:
            thread.start()
        try:
            for app, answer in answered:
                if errors_seen:
                    break
                rows = self.prepare(app, answer)
                while rows is not None and not errors_seen:
                    try:
                        work.put(rows, timeout=0.5)
                        break
                    except queue.Full:
                        self.ctx.progress()
        finally:
            for _ in threads:
                work.put(None)  # the writers drain what is queued, skipping it after an error
            for thread in threads:
                thread.join()
        if errors_seen:
            raise errors_seen[0]

    def write(self, app: tuple[int, str, str], answer: AppAnswer) -> None:
        rows = self.prepare(app, answer)
        if rows is not None:
            self.store(rows)

    def prepare(self, app: tuple[int, str, str], answer: AppAnswer) -> _AppRows | None:
        """What to store for one app, or None when what the last sync stored is still all there."""
        ctx = self.ctx
        app_pk, app_ext, digest_before = app
        direct = answer.direct
        groups = {g: self.memberships[g] for g in answer.groups}
        users = set(direct).union(*groups.values())
        digest = self.digests.of(direct, groups)
        ctx.add(fetched=len(users))
        if digest == digest_before and self.live.get(app_pk, 0) == len(users):
            ctx.progress()  # what the last sync wrote, and still all there: nothing to write
            return None
        ordered = sorted(users)
        used = self.last_used.of(app_ext)
        new_app = bulk.is_postgres() and not AppUser.objects.filter(application_id=app_pk).exists()
        return _AppRows(
            app_pk=app_pk,
            digest=digest,
            users=users,
            ordered=ordered,
            direct=direct,
            used=used,
            csv=self.formatter.csv(app_pk, ordered, direct, used) if new_app else None,
            final=self.last_used.complete,
        )

    def store(self, rows: _AppRows) -> None:
        """Store one app's rows in one transaction (on the calling thread's connection)."""
        ctx = self.ctx
        with transaction.atomic():
            # First, and as the application's row lock: an app deleted meanwhile gets no rows.
            if not Application.objects.filter(pk=rows.app_pk).update(assignments_digest=rows.digest):
                return
            ctx.hold_connection()
            copied = None
            if rows.csv is not None:
                copied = bulk.copy_new(table=APPUSER_TABLE, columns=ASSIGN_COLUMNS, rows=rows.csv)
            if copied is not None:
                created, updated, removed = copied, 0, 0
            else:
                table = [
                    assignment_row(
                        ctx.connection.pk,
                        rows.app_pk,
                        AppBinding(user_id=uid, direct=uid in rows.direct),
                        self.people.get(uid),
                        rows.used.get(uid),
                    )
                    for uid in rows.ordered
                ]
                created, updated = bulk.upsert(
                    table=APPUSER_TABLE,
                    columns=ASSIGN_COLUMNS,
                    rows=table,
                    conflict=("application_id", "external_id"),
                    update=ASSIGN_UPDATE,
                )
                removed = mark_removed(
                    app=Application(pk=rows.app_pk), kind=AppUser.Kind.USER, keep=rows.users
                )
        if copied is not None and rows.final:
            with ctx.lock:
                ctx.shared.setdefault(SSO_FINAL_APPS, set()).add(rows.app_pk)
        ctx.add(created=created, updated=updated, removed=removed)
        ctx.progress()


@dataclass
class _AppRows:
    """One app's rows, ready to store (_AssignmentStream.prepare)."""

    app_pk: int
    digest: str
    users: set[str]
    ordered: list[str]
    direct: set[str]
    used: dict[str, Any]  # last uses by person
    csv: str | None  # their COPY text, when the app has no rows yet (PostgreSQL)
    final: bool  # the last uses hold every SSO event of the run


# Part of every digest: change it when assignment_row() or the digest's layout changes.
ASSIGNMENT_ROW_VERSION = b"assignment-row-2\n"


class AssignmentDigests:
    """Digests of the rows assignment_row() would write for an app: equal digests, equal rows.

    An app's rows follow from its direct users, its groups' members and what each of those people
    contributes to a row (their directory fields), so its digest is taken over exactly that: each
    direct user's fields, and each group's id with a digest of its members' fields. A group's
    digest is computed once per run and shared by every app it is bound to, so a resync hashes
    the tenant's memberships once instead of each app's every row (1.4 million for 300 apps).
    """

    def __init__(self, people: dict[str, tuple[Any, ...]]):
        self.tokens = {
            ext: "\t".join(map(str, (ext, *person))).encode() + b"\n" for ext, person in people.items()
        }
        self.groups: dict[str, bytes] = {}

    def _tokens(self, ids: Iterable[str]) -> bytes:
        tokens = self.tokens
        return b"".join(tokens.get(uid) or uid.encode() + b"\t?\n" for uid in sorted(ids))

    def _group(self, group_id: str, members: frozenset[str]) -> bytes:
        digest = self.groups.get(group_id)
        if digest is None:
            digest = self.groups[group_id] = hashlib.blake2b(self._tokens(members), digest_size=16).digest()
        return digest

    def of(self, direct: set[str], groups: dict[str, frozenset[str]]) -> str:
        h = hashlib.blake2b(ASSIGNMENT_ROW_VERSION, digest_size=16)
        h.update(b"%d\n" % len(direct))
        h.update(self._tokens(direct))
        for group_id in sorted(groups):
            h.update(b"g" + group_id.encode() + b"\t" + self._group(group_id, groups[group_id]))
        return h.hexdigest()


def assignment_row(
    connection_id: int,
    app_id: int,
    b: AppBinding,
    person: tuple[Any, ...] | None,
    last_used: datetime | str | None = None,
) -> tuple[Any, ...]:
    """An assignment row in ASSIGN_COLUMNS order. `last_used` (a datetime, or PostgreSQL's text of
    one) is only written when the row is new: an existing row's last use is the SSO rollup's to move."""
    pk, username, email, first, last, display = person or (None, "", "", "", "", "")
    return (
        connection_id,
        app_id,
        b.user_id,
        AppUser.Kind.USER,
        username,
        email,
        first,
        last,
        display,
        AppUser.Status.ACTIVE,
        False,
        None,
        None,
        None,
        "{}",
        False,
        "",
        "",
        "direct" if b.direct else "group",
        pk,
        last_used,
    )


class AssignmentCsv:
    """COPY text of a new app's assignment rows, equal to csv-formatting assignment_row() tuples
    (tests/jumpcloud/test_assignment_csv.py holds the two together) at a fraction of the CPU: the
    row is the same for everyone but a person's id, five text fields and directory row, so each
    person's part of the line is formatted (and quoted where a value needs it) once per run, at
    their first app, and reused in each of their other apps (28 on average in the benchmark)."""

    def __init__(self, connection_id: int, people: dict[str, tuple[Any, ...]]):
        self.connection_id = connection_id
        self.people = people
        self._cells: dict[str, tuple[str, str]] = {}

    def _cell(self, uid: str) -> tuple[str, str]:
        """The person's part of a line before the assignment type, and the part after it."""
        pk, username, email, first, last, display = self.people.get(uid) or ("", "", "", "", "", "")
        q = csv_field
        cell = self._cells[uid] = (
            f"{q(uid)},user,{q(username)},{q(email)},{q(first)},{q(last)},{q(display)},active,False,,,,{{}},False,,,",
            f",{pk},",
        )
        return cell

    def csv(self, app_id: int, ordered: list[str], direct: set[str], used: dict[str, Any]) -> str:
        head = f"{self.connection_id},{app_id},"
        cells = self._cells
        lines = []
        for uid in ordered:
            before, after = cells.get(uid) or self._cell(uid)
            when = used.get(uid)
            lines.append(
                f"{head}{before}{'direct' if uid in direct else 'group'}{after}{'' if when is None else when}\n"
            )
        return "".join(lines)


# --- usage events ---------------------------------------------------------------------------------


def _parse_iso(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _sync_events(ctx: SyncContext, service: str) -> None:
    state = ctx.checkpoint()
    window = state.get("window")
    if window:
        start, end = _parse_iso(window[0]), _parse_iso(window[1])
        search_after = state.get("search_after")
    else:
        now = timezone.now()
        until = state.get("until")
        start = _parse_iso(until) - EVENT_OVERLAP if until else now - EVENT_BACKFILL
        end = now - EVENT_LAG
        search_after = None
        if start >= end:  # nothing new yet; never send start >= end
            ctx.note(window=[start.isoformat(), end.isoformat()])
            return
        rollup_from = min(_parse_iso(state["rollup_from"]), start) if state.get("rollup_from") else start
        state = {
            **state,
            "window": [start.isoformat(), end.isoformat()],
            "search_after": None,
            "rollup_from": rollup_from.isoformat(),
            "newest_first": service in NEWEST_FIRST,
        }
        with transaction.atomic():
            ctx.save_checkpoint(state)
    ctx.note(window=[start.isoformat(), end.isoformat()])
    app_by_url = {
        url: ext
        for ext, url in Application.objects.filter(connection=ctx.connection, kind=Application.Kind.SSO)
        .exclude(sso_url="")
        .values_list("external_id", "sso_url")
    }
    page_size = getattr(settings, "JUMPCLOUD_EVENT_PAGE_SIZE", EVENT_PAGE_SIZE)
    # A cursor continues the listing in the order it was started in (windows of older code: ASC).
    newest_first = bool(state.get("newest_first"))
    batches = _event_batches(ctx, service, start, end, page_size, search_after, app_by_url, newest_first)
    # Where the time goes (kept in the run's counters): waiting for JumpCloud vs writing here.
    timing = {"wait_s": 0.0, "write_s": 0.0}
    clock = time.monotonic()
    try:
        for batch in batches:
            fetched_at = time.monotonic()
            timing["wait_s"] += fetched_at - clock
            if batch.oldest:
                state["oldest"] = min(state.get("oldest") or batch.oldest, batch.oldest)
            with transaction.atomic():
                ctx.hold_connection()
                inserted = batch.write(new_after=state.get("until"))
                state["search_after"] = batch.search_after
                ctx.save_checkpoint(state)
            if service == "sso" and inserted and batch.oldest and batch.newest:
                # For the assignment rows written meanwhile (SsoLastUse).
                note_sso_page(ctx, _parse_iso(batch.oldest), _parse_iso(batch.newest))
            ctx.add(fetched=batch.count, created=inserted, skipped=batch.skipped, pages=1)
            clock = time.monotonic()
            timing["write_s"] += clock - fetched_at
            ctx.progress()
    except errors.DirectoryInsightsUnavailable as exc:
        ctx.detect(usage_events=False)
        with transaction.atomic():
            ctx.save_checkpoint(
                {k: v for k, v in state.items() if k not in ("window", "search_after", "newest_first")}
            )
        raise StreamSkipped("No Directory Insights for this organization: usage is unavailable.") from exc
    ctx.detect(usage_events=True)
    big = ctx.counters.get("created", 0) >= BIG_BATCH
    done = {
        "until": end.isoformat(),
        "rollup_from": state["rollup_from"],
        **({"oldest": state["oldest"]} if state.get("oldest") else {}),
    }
    clock = time.monotonic()
    if big and concurrency_enabled():
        # After a backfill, the statistics and the daily rollup take a second or two of
        # PostgreSQL: on a connection of their own, while this thread goes on with the next
        # stream. The window is done; daily_from stays in the checkpoint until they are (see
        # _DailyBeside), and the stream's finish step waits for them.
        with transaction.atomic():
            ctx.save_checkpoint({**done, "daily_from": state["rollup_from"]})
        with ctx.lock:
            ctx.shared[_DAILY_BESIDE + ctx.stream_key] = _DailyBeside(ctx, service)
        timing["daily_beside"] = True
    else:
        if big:
            analyze(EVENT_TABLE)
        with transaction.atomic():
            # The window is done. Daily usage needs only the apps, synced before any event
            # stream; last used lands on people and assignments, so it is left to the stream's
            # finish step (rollup_from stays in the checkpoint until that has run).
            days = daily_usage(
                connection=ctx.connection, kind=service, since=_parse_iso(state["rollup_from"])
            )
            ctx.save_checkpoint(done)
        timing["daily_s"] = time.monotonic() - clock
        ctx.add(updated=days)  # day rows written (a resync that changes nothing writes none)
    ctx.note(**{k: round(v, 2) if isinstance(v, float) else v for k, v in timing.items()})


_DAILY_BESIDE = "jumpcloud.daily_beside:"  # ctx.shared key, + the stream's key


class _DailyBeside:
    """ANALYZE of the events and the daily rollup of an event stream's finished window, run in a
    thread with its own database connection. Commits the day rows with the checkpoint's
    daily_from removed, and counts them on the stream. A failure leaves daily_from in place: the
    stream's finish step (or, if that never runs, the next window, from rollup_from) computes
    them again. close() waits for it (the run's end closes what is left in ctx.shared)."""

    def __init__(self, ctx: SyncContext, service: str):
        self.ctx, self.service, self.key = ctx, service, ctx.stream_key
        self.error: BaseException | None = None
        self.analyzed = threading.Event()  # set once the statistics are fresh (or it failed)
        self._thread = threading.Thread(
            target=self._run, name=f"sync-{ctx.run.pk}-daily-{service}", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        try:
            try:
                analyze(EVENT_TABLE)
            finally:
                self.analyzed.set()
            _daily_pending(self.ctx, self.service, self.key)
        except BaseException as exc:  # left to the finish step; never lost
            self.error = exc
        finally:
            connections.close_all()  # this thread's connection only

    def close(self) -> None:
        self._thread.join()


def _daily_pending(ctx: SyncContext, service: str, key: str) -> None:
    """The daily rollup a finished window left to do (checkpoint daily_from), if any."""
    with transaction.atomic():
        row = SyncCheckpoint.objects.select_for_update().filter(connection=ctx.connection, stream=key).first()
        state = dict(row.state) if row else {}
        if not state.get("daily_from"):
            return
        days = daily_usage(connection=ctx.connection, kind=service, since=_parse_iso(state.pop("daily_from")))
        ctx.save_checkpoint(state, stream=key)
    ctx.add(stream=key, updated=days)


def _rollup_events(ctx: SyncContext, service: str) -> None:
    """Finish step of an event stream: runs once the inventory streams have written the people
    and assignments that last used lands on. Idempotent: rollup_from is cleared with the result.
    A daily rollup left beside (_DailyBeside) runs on while last use is moved; it is waited for
    before the checkpoint is written, and done here if it failed."""
    with ctx.lock:
        daily = ctx.shared.pop(_DAILY_BESIDE + ctx.stream_key, None)
    try:
        if daily is not None:
            daily.analyzed.wait()  # fresh statistics for the statements below
        _move_last_used(ctx, service, daily)
    finally:
        if daily is not None:
            daily.close()
    if daily is not None and daily.error is not None:
        logger.warning(
            "sync run %s: the %s daily usage beside failed (%s); computing it here",
            ctx.run.pk,
            service,
            type(daily.error).__name__,
        )
    _daily_pending(ctx, service, ctx.stream_key)


def _move_last_used(ctx: SyncContext, service: str, daily: _DailyBeside | None) -> None:
    state = ctx.checkpoint()
    if not state.get("rollup_from"):
        return
    clock = time.monotonic()
    since = _parse_iso(state["rollup_from"])
    # After a big window (a backfill), the statement updates tens or hundreds of thousands of rows:
    # split it (SSO by app, directory by person) across two connections so PostgreSQL uses both
    # cores. Each part is idempotent, so a part committed before a failure is simply recomputed on
    # the retry.
    parts = 2 if ctx.counters.get("created", 0) >= BIG_BATCH and concurrency_enabled() else 1
    # Apps whose rows this run wrote with every SSO event of the run already stored: nothing to move.
    with ctx.lock:
        skip = sorted(ctx.shared.get(SSO_FINAL_APPS, ())) if service == "sso" else []
    if skip and not _rows_beyond(ctx.connection, skip):
        parts = 0  # every SSO app's rows are final (a first sync): not even the aggregate to run
    with transaction.atomic():
        with alongside(
            parts > 1,
            rollup_last_used,
            connection=ctx.connection,
            kind=service,
            since=since,
            part=(1, parts),
            skip_apps=skip,
        ) as other_part:
            moved = (
                rollup_last_used(
                    connection=ctx.connection, kind=service, since=since, part=(0, parts), skip_apps=skip
                )
                if parts
                else 0
            )
        if service == "directory" and parts > 1:
            moved += rollup_admin_last_login(connection=ctx.connection, since=since)
        if daily is not None:
            daily.close()  # it commits the same checkpoint: read it again once it has
            state = ctx.checkpoint()
        ctx.save_checkpoint({k: v for k, v in state.items() if k != "rollup_from"})
    moved += sum(other_part)
    ctx.add(updated=moved)
    if service == "sso" and moved >= BIG_BATCH and moved * 10 >= estimated_rows(APPUSER_TABLE):
        # The SSO rollup may just have moved last_used_at on hundreds of thousands of assignment
        # rows; the directory one moves at most one row per person. Less than a tenth of the
        # table is left to autovacuum, whose own threshold that is (a first sync's rows were
        # written with most of their last uses: the statistics taken then still hold).
        analyze(APPUSER_TABLE)
    ctx.note(rollup_s=round(time.monotonic() - clock, 2))


def _rows_beyond(connection: Connection, apps: list[int]) -> bool:
    """Does any SSO app of the connection but `apps` have assignment rows?"""
    others = list(
        Application.objects.filter(connection=connection, kind=Application.Kind.SSO)
        .exclude(pk__in=apps)
        .values_list("pk", flat=True)
    )
    return bool(others) and AppUser.objects.filter(application_id__in=others).exists()


@dataclass
class _Batch:
    count: int
    skipped: int
    search_after: list[Any] | None
    oldest: str | None
    newest: str | None
    rows: list[tuple[Any, ...]] | None = None
    csv_text: str | None = None

    def write(self, new_after: str | None) -> int:
        """Insert the page's events, ignoring those already stored. `new_after`: the end of the
        previous window (ISO), after which nothing can be stored yet; None on a first sync."""
        conflict = ("connection_id", "external_id")
        if (
            bulk.is_postgres()
            and self.oldest
            and (new_after is None or _parse_iso(self.oldest) > _parse_iso(new_after))
        ):
            # A page wholly past the last window (all of a backfill, all but the overlap of a
            # catch-up) cannot hold a stored event: COPY it straight in.
            written = bulk.copy_new(
                table=EVENT_TABLE,
                columns=EVENT_COLUMNS,
                rows=self.csv_text if self.csv_text is not None else self.rows or [],
            )
            if written is not None:
                return written
        if self.csv_text is not None:
            return bulk.insert_ignore_csv(
                table=EVENT_TABLE, columns=EVENT_COLUMNS, csv_text=self.csv_text, conflict=conflict
            )
        return bulk.insert_ignore(
            table=EVENT_TABLE, columns=EVENT_COLUMNS, rows=self.rows or [], conflict=conflict
        )


def _event_batches(
    ctx: SyncContext,
    service: str,
    start: datetime,
    end: datetime,
    page_size: int,
    search_after: list[Any] | None,
    app_by_url: dict[str, str],
    newest_first: bool = False,
) -> Iterator[_Batch]:
    """Pages of events ready to write. Long windows (backfills, catch-ups) on PostgreSQL are
    fetched and formatted in a separate process (jumpcloud.event_pipeline); short ones, and
    SQLite, in a thread of this one — starting a process costs more than an hour of events."""
    connection_id = ctx.connection.pk
    if bulk.is_postgres() and settings.JUMPCLOUD_EVENT_FETCH_PROCESS and end - start > PROCESS_WINDOW:
        api_key, client_options = _client_for_child(ctx)
        for page in prepared_event_pages(
            api_key=api_key,
            client_options=client_options,
            service=service,
            start=start,
            end=end,
            limit=page_size,
            search_after=search_after,
            connection_id=connection_id,
            app_by_url=app_by_url,
            newest_first=newest_first,
        ):
            yield _Batch(
                page.count, page.skipped, page.search_after, page.oldest, page.newest, csv_text=page.csv
            )
        return
    pages = ctx.client.iter_event_pages(
        service, start, end, limit=page_size, search_after=search_after, newest_first=newest_first
    )
    for page in prefetch(pages):
        rows = [event_row(connection_id, e, app_by_url) for e in page.events]
        yield _Batch(
            len(rows),
            page.skipped,
            page.search_after,
            *event_span([e.timestamp for e in page.events]),
            rows=rows,
        )


def sync_directory_events(ctx: SyncContext) -> None:
    _sync_events(ctx, "directory")


def sync_sso_events(ctx: SyncContext) -> None:
    _sync_events(ctx, "sso")


def rollup_directory_usage(ctx: SyncContext) -> None:
    _rollup_events(ctx, "directory")


def rollup_sso_usage(ctx: SyncContext) -> None:
    _rollup_events(ctx, "sso")

"""Directory Insights events (docs/directory-insights.md): fetched in time slices, exactly once.

Each event stream reads a window of time: [until − 30 min, now − 3 min] (events arrive late and
start_time is inclusive; duplicates are ignored by the unique key), or on a first sync the 90 days
JumpCloud keeps. `plan` cuts a long window into slices of whole UTC days; each slice is its own
task with its own `search_after` cursor, committed with every page it writes, so a slice resumes
where it stopped. A slice whose events are all stored folds them into LastUse and the daily
usage of its days. The stream's finish step, once every slice is in (and every other task of the
run), applies what moved in LastUse to the rows the dashboard reads and moves `until` to the
window's end.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from integrations import bulk
from integrations.csvtext import csv_field
from integrations.models import Application, LastUse, SyncCheckpoint
from integrations.sync.context import StreamContext
from jumpcloud import errors
from jumpcloud.parsing import Event
from jumpcloud.streams.common import (
    APPUSER_TABLE,
    BIG_BATCH,
    DIRECTORY_APP_ID,
    EVENT_TABLE,
    analyze,
    directory_app,
)
from jumpcloud.streams.usage import apply_directory_last_use, apply_sso_last_use, daily_usage, fold_last_use

EVENT_OVERLAP = timedelta(minutes=30)
EVENT_LAG = timedelta(minutes=3)
EVENT_BACKFILL = timedelta(days=90)  # what JumpCloud retains
# A window longer than a day is cut at UTC midnights into slices of at least this many days (a
# slice's last page is usually short: more slices cost more requests), at most MAX_SLICES.
SLICE_DAYS = 21
MAX_SLICES = 8
EVENT_PAGE_SIZE = 10_000  # Directory Insights' maximum; settings.JUMPCLOUD_EVENT_PAGE_SIZE overrides (tests)

# Logins that count as use of the directory itself (User Portal, Admin Console).
LOGIN_EVENT_TYPES = {"user_login_attempt": DIRECTORY_APP_ID, "admin_login_attempt": DIRECTORY_APP_ID}
EVENT_COLUMNS = (
    "connection_id",
    "external_id",
    "kind",
    "event_type",
    "occurred_at",
    "success",
    "actor_external_id",
    "actor_type",
    "actor_username",
    "actor_email",
    "application_external_id",
    "application_name",
    "client_ip",
    "error_message",
)

# The events' unique key: the table is partitioned by occurred_at, which a unique key must hold.
EVENT_KEY = ("connection_id", "external_id", "occurred_at")


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value)


STAMP = "%Y%m%dT%H%M%SZ"


def slice_key(start: datetime, end: datetime) -> str:
    """A slice as a task's part key, "20260908T043200Z-20261001T000000Z" (whole seconds: what
    Directory Insights is asked for anyway)."""
    return f"{start.astimezone(UTC):{STAMP}}-{end.astimezone(UTC):{STAMP}}"


def slice_bounds(key: str) -> tuple[datetime, datetime]:
    start, end = key.split("-")
    return (
        datetime.strptime(start, STAMP).replace(tzinfo=UTC),
        datetime.strptime(end, STAMP).replace(tzinfo=UTC),
    )


def slices(start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """[start, end) cut at UTC midnights into slices of at least SLICE_DAYS whole days."""
    first_midnight = (start + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    days = max(0, (end - first_midnight).days)
    count = min(MAX_SLICES, max(1, days // SLICE_DAYS))
    cuts = [first_midnight + timedelta(days=round(days * k / count)) for k in range(1, count)]
    bounds = [start, *cuts, end]
    return list(zip(bounds, bounds[1:], strict=False))


def plan(service: str) -> Callable[[StreamContext], list[str]]:
    def plan_events(ctx: StreamContext) -> list[str]:
        """The slices of this stream's window: the one in progress, or a new one from `until`."""
        state = ctx.checkpoint()
        if state.get("window") and state.get("slices"):
            return list(state["slices"])
        if state.get("window"):  # a window begun as one piece (older code): read it in slices
            start, end = _parse(state["window"][0]), _parse(state["window"][1])
        else:
            now = timezone.now().replace(microsecond=0)
            start = _parse(state["until"]) - EVENT_OVERLAP if state.get("until") else now - EVENT_BACKFILL
            start = start.replace(microsecond=0)
            end = now - EVENT_LAG
            if start >= end:  # nothing new yet; never send start >= end
                return [""]
        # Newest first: a person's latest login lands in LastUse early, and the older slices
        # rarely move anything after it.
        parts = [slice_key(s, e) for s, e in reversed(slices(start, end))]
        kept = {k: v for k, v in state.items() if k == "until"}
        ctx.save_checkpoint({**kept, "window": [start.isoformat(), end.isoformat()], "slices": parts})
        return parts

    return plan_events


def fetch(service: str) -> Callable[[StreamContext], None]:
    def sync_events(ctx: StreamContext) -> None:
        """One slice: its pages, each committed with the cursor past it; then its rollups."""
        if not ctx.part:
            return  # the window is empty: nothing new yet
        start, end = slice_bounds(ctx.part)
        ctx.note(window=[start.isoformat(), end.isoformat()])
        state = ctx.checkpoint()
        if state.get("done"):
            return
        until = ctx.checkpoint(ctx.stream.key).get("until")
        app_by_url = dict(
            Application.objects.filter(connection=ctx.connection, kind=Application.Kind.SSO)
            .exclude(sso_url="")
            .values_list("sso_url", "external_id")
        )
        page_size = getattr(settings, "JUMPCLOUD_EVENT_PAGE_SIZE", EVENT_PAGE_SIZE)
        wait_s = write_s = 0.0
        try:
            pages = ctx.client.iter_event_pages(
                service, start, end, limit=page_size, search_after=state.get("search_after")
            )
            clock = time.monotonic()
            for page in pages:
                fetched = time.monotonic()
                wait_s += fetched - clock
                inserted = 0
                with transaction.atomic():
                    ctx.hold_connection()
                    if page.events:
                        inserted = _write_page(ctx.connection.pk, page.events, app_by_url, until)
                    ctx.save_checkpoint({"search_after": page.search_after})
                ctx.add(fetched=len(page.events), created=inserted, skipped=page.skipped, pages=1)
                ctx.progress()
                clock = time.monotonic()
                write_s += clock - fetched
        except errors.DirectoryInsightsUnavailable:
            ctx.detect(usage_events=False)
            raise
        ctx.detect(usage_events=True)
        if service == "directory":
            directory_app(ctx.connection)  # what the directory's logins are attributed to
        clock = time.monotonic()
        with transaction.atomic():
            folded = fold_last_use(connection=ctx.connection, kind=service, start=start, end=end)
            days = daily_usage(connection=ctx.connection, kind=service, start=start, end=end)
            ctx.save_checkpoint({"done": True})
        ctx.add(updated=folded + days)
        # Where the time went: waiting for JumpCloud, writing pages, the slice's rollups.
        ctx.note(
            wait_s=round(wait_s, 1), write_s=round(write_s, 1), rollup_s=round(time.monotonic() - clock, 1)
        )

    return sync_events


def _write_page(
    connection_id: int, events: list[Event], app_by_url: dict[str, str], until: str | None
) -> int:
    """Insert a page's events, ignoring those already stored. A page wholly after the previous
    window's end cannot hold a stored event (but one at a slice's edge): COPY it straight in."""
    text = events_csv(connection_id, events, app_by_url)
    oldest = min(e.timestamp for e in events)
    if until is None or oldest > _parse(until):
        written = bulk.copy_new(table=EVENT_TABLE, columns=EVENT_COLUMNS, rows=text)
        if written is not None:
            return written
    return bulk.insert_ignore_csv(table=EVENT_TABLE, columns=EVENT_COLUMNS, csv_text=text, conflict=EVENT_KEY)


def finish(service: str) -> Callable[[StreamContext], None]:
    def finish_events(ctx: StreamContext) -> None:
        """Every slice is in: move the dashboard's last uses, then `until` to the window's end."""
        state = ctx.checkpoint()
        window = state.get("window")
        if not window:
            return
        since = _parse(window[0])
        if ctx.run.streams.get(ctx.stream.key, {}).get("created", 0) >= BIG_BATCH:
            # After a backfill the planner's statistics of the events and last uses are stale.
            analyze(EVENT_TABLE, unless_since=ctx.run.started_at)
            analyze(LastUse._meta.db_table, unless_since=ctx.run.started_at)
        apply = apply_sso_last_use if service == "sso" else apply_directory_last_use
        with transaction.atomic():
            rows, apps = apply(connection=ctx.connection, since=since)
            ctx.save_checkpoint({"until": window[1]})
            SyncCheckpoint.objects.filter(
                connection=ctx.connection, stream__startswith=f"{ctx.stream.key}@"
            ).delete()
        # Rows whose last use moved: after an events sync, those of the new logins; after a full
        # sync, not the assignments' (written once the SSO slices ended), but the directory's.
        ctx.note(rows_caught_up=rows)
        ctx.add(updated=rows + apps)
        if rows >= BIG_BATCH:
            analyze(APPUSER_TABLE)  # the dashboard's plans over last use depend on it

    return finish_events


# --- rows -----------------------------------------------------------------------------------------
def event_row(connection_id: int, e: Event, app_by_url: dict[str, str]) -> tuple[Any, ...]:
    """One usage event in EVENT_COLUMNS order. An sso_auth whose application object is empty but
    for its sso_url is attributed through that URL (docs/directory-insights.md)."""
    if e.event_type == "sso_auth":
        app_id = e.app_id or app_by_url.get(e.app_sso_url, "")
    else:
        app_id = LOGIN_EVENT_TYPES.get(e.event_type, "")
    return (
        connection_id,
        e.id[:64],
        e.service[:16],
        e.event_type[:64],
        e.timestamp,
        e.success,
        e.actor_id[:64],
        e.actor_type[:32],
        e.actor_username[:255],
        e.actor_email[:320],
        app_id[:64],
        (e.app_label or e.app_name)[:255],
        e.client_ip[:64],
        e.error_message[:512],
    )


def events_csv(connection_id: int, events: Iterable[Event], app_by_url: dict[str, str]) -> str:
    """COPY text of these events' event_row() tuples: what csv_text() makes of them, field for
    field (tests/jumpcloud/test_event_csv.py), in about two thirds of the CPU. Each line is
    formatted plainly, then checked as a whole: only the rare one with a comma, a quote or a line
    break in a value is formatted again with its text values quoted."""
    lines: list[str] = []
    append = lines.append
    for e in events:
        cid, ident, service, kind, when, ok, *texts = event_row(connection_id, e, app_by_url)
        success = "" if ok is None else ok
        line = f"{cid},{ident},{service},{kind},{when},{success},{','.join(texts)}\n"
        if line.count(",") != 13 or line.count("\n") != 1 or '"' in line or "\r" in line:
            q = csv_field
            line = f"{cid},{q(ident)},{q(service)},{q(kind)},{when},{success},{','.join(map(q, texts))}\n"
        append(line)
    return "".join(lines)

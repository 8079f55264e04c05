"""JumpCloud records as core-table rows. Pure functions, no Django: the event-fetching process
(jumpcloud.event_pipeline) builds rows without loading Django."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from integrations.csvtext import csv_field
from jumpcloud.parsing import Event

DIRECTORY_APP_ID = "directory"
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


def event_row(connection_id: int, e: Event, app_by_url: dict[str, str]) -> tuple[Any, ...]:
    """One usage event in EVENT_COLUMNS order. An sso_auth whose application object is empty but
    for its sso_url is attributed through that URL (docs/directory-insights.md §2)."""
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
    """COPY text of these events' event_row() tuples: what csv_text() makes of them, field for field
    (tests/jumpcloud/test_event_csv.py), in about two thirds of the CPU. A million-event backfill spends
    that time in the fetching process, which is what the event streams wait on. Each line is
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

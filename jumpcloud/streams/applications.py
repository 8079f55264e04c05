"""The SSO (SAML) applications configured in JumpCloud, and the directory itself as an app."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from integrations import bulk
from integrations.models import Application
from integrations.sync.context import StreamContext
from jumpcloud.parsing import Application as JcApplication
from jumpcloud.streams.common import APPLICATION_TABLE, analyze, clip, directory_app

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
        clip(a.name, 255),
        clip(a.display_label, 1024),
        clip(a.sso_url, 2048),
        bool(a.active),
        a.created,
        None,
        now,
    )


def sync_applications(ctx: StreamContext) -> None:
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

"""The SSO last uses the assignment stream writes with new rows, kept current while the SSO events
stream beside it commits pages (jumpcloud.sync.SsoLastUse): after any sequence of pages it
answers what an aggregate over every stored event answers, whatever order the pages came in."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection as db

from integrations.models import SyncRun, UsageEvent
from integrations.services.sync import _BESIDE, SyncContext, _Progress
from jumpcloud.last_use import SsoLastUse, note_sso_page, rollup_last_used
from tests.factories import ApplicationFactory, AppUserFactory, ConnectionFactory, DirectoryAppFactory

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        db.vendor != "postgresql", reason="the aggregate is kept in a PostgreSQL temporary table"
    ),
]

T0 = datetime(2026, 9, 1, tzinfo=UTC)
APPS = ("app-a", "app-b", "app-c")
PEOPLE = tuple(f"person-{i}" for i in range(12))


def _context(connection) -> tuple[SyncContext, _Progress]:
    run = SyncRun.objects.create(
        connection=connection,
        kind=SyncRun.Kind.FULL,
        trigger=SyncRun.Trigger.MANUAL,
        status=SyncRun.Status.RUNNING,
        streams={},
    )
    ctx = SyncContext(run=run, connection=connection, provider=None, client=None, lease="x")  # type: ignore[arg-type]
    progress = _Progress({"events_sso"})
    ctx.shared[_BESIDE] = progress  # the SSO events stream is still running beside
    return ctx, progress


def _page(connection, rng: random.Random, number: int, start: datetime, size: int = 40) -> list[UsageEvent]:
    events = [
        UsageEvent(
            connection=connection,
            external_id=f"e{number}-{i}",
            kind="sso",
            event_type="sso_auth",
            occurred_at=start + timedelta(minutes=rng.randrange(0, 600)),
            success=rng.random() < 0.7,
            actor_external_id=rng.choice(PEOPLE),
            application_external_id=rng.choice(APPS),
        )
        for i in range(size)
    ]
    UsageEvent.objects.bulk_create(events)
    return events


def _note(ctx: SyncContext, events: list[UsageEvent]) -> None:
    """What the SSO events stream does once a page is committed."""
    note_sso_page(ctx, min(e.occurred_at for e in events), max(e.occurred_at for e in events))


def _expected(connection) -> dict[str, dict[str, datetime]]:
    out: dict[str, dict[str, datetime]] = {app: {} for app in APPS}
    for e in UsageEvent.objects.filter(connection=connection, kind="sso", success=True):
        seen = out[e.application_external_id].get(e.actor_external_id)
        if seen is None or e.occurred_at > seen:
            out[e.application_external_id][e.actor_external_id] = e.occurred_at
    return out


def _answers(last_use: SsoLastUse) -> dict[str, dict[str, datetime]]:
    return {
        app: {actor: datetime.fromisoformat(ts) for actor, ts in last_use.of(app).items()} for app in APPS
    }


@pytest.mark.parametrize("order", ["oldest first", "newest first", "shuffled"])
def test_folded_pages_answer_what_a_full_aggregate_answers(order):
    connection = ConnectionFactory()
    ctx, progress = _context(connection)
    rng = random.Random(order)
    starts = [T0 + timedelta(days=d) for d in range(8)]
    if order == "newest first":
        starts.reverse()
    elif order == "shuffled":
        rng.shuffle(starts)
    last_use = SsoLastUse(ctx)
    try:
        _note(ctx, _page(connection, rng, 0, starts[0]))
        assert _answers(last_use) == _expected(connection)  # built from what is stored
        for number, start in enumerate(starts[1:], start=1):
            _note(ctx, _page(connection, rng, number, start))
            assert _answers(last_use) == _expected(connection), f"after page {number}"
        # A page whose events are all older than what is known moves nothing backwards.
        _note(ctx, _page(connection, rng, 99, T0 - timedelta(days=30)))
        assert _answers(last_use) == _expected(connection)
    finally:
        last_use.close()


def test_no_page_noted_no_refresh_and_once_complete_no_more_statements(django_assert_num_queries):
    connection = ConnectionFactory()
    ctx, progress = _context(connection)
    rng = random.Random(3)
    _page(connection, rng, 0, T0)
    last_use = SsoLastUse(ctx)
    try:
        last_use.of(APPS[0])  # built
        with django_assert_num_queries(1):  # nothing new committed: only the lookup
            last_use.of(APPS[1])
        _page(connection, rng, 1, T0 + timedelta(days=1))  # stored, but its page not noted yet
        progress.done("events_sso")  # ... and the stream is done: the last refresh folds it in
        _note(ctx, list(UsageEvent.objects.filter(external_id__startswith="e1-")))
        assert _answers(last_use) == _expected(connection)
        assert last_use.complete
        note_sso_page(ctx, T0, T0)  # nothing can come after the stream is done: no more refreshes
        with django_assert_num_queries(1):
            last_use.of(APPS[2])
    finally:
        last_use.close()


def test_the_finish_step_leaves_apps_it_is_told_are_current_and_moves_the_others():
    connection = ConnectionFactory()
    DirectoryAppFactory(connection=connection)
    current, stale = ApplicationFactory(connection=connection), ApplicationFactory(connection=connection)
    rows = {
        app.pk: AppUserFactory(application=app, external_id=PEOPLE[0], last_used_at=None)
        for app in (current, stale)
    }
    login = T0 + timedelta(days=3)
    UsageEvent.objects.bulk_create(
        [
            UsageEvent(
                connection=connection,
                external_id=f"x{app.pk}",
                kind="sso",
                event_type="sso_auth",
                occurred_at=login,
                success=True,
                actor_external_id=PEOPLE[0],
                application_external_id=app.external_id,
            )
            for app in (current, stale)
        ]
    )
    moved = rollup_last_used(connection=connection, kind="sso", since=T0, skip_apps=[current.pk])
    assert moved == 1
    for row in rows.values():
        row.refresh_from_db()
    assert rows[current.pk].last_used_at is None and rows[stale.pk].last_used_at == login
    assert rollup_last_used(connection=connection, kind="sso", since=T0) == 1  # nothing skipped: moved now

"""Directory Insights windows cut into time slices, each a task with its own cursor and checkpoint."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from integrations.models import SyncCheckpoint, SyncRun, SyncTask, UsageEvent
from integrations.services.sync import sync_run_execute, sync_run_request
from jumpcloud.streams import events
from jumpcloud.streams.events import MAX_SLICES, SLICE_DAYS, slice_bounds, slice_key, slices

pytestmark = [pytest.mark.django_db(transaction=True)]


def test_a_backfill_is_cut_at_utc_midnights_into_slices_of_whole_days():
    start = datetime(2026, 9, 8, 4, 32, 17, tzinfo=UTC)
    end = datetime(2026, 12, 7, 4, 29, 17, tzinfo=UTC)
    cut = slices(start, end)
    assert 1 < len(cut) <= MAX_SLICES
    assert cut[0][0] == start and cut[-1][1] == end
    for (_, a_end), (b_start, _) in zip(cut, cut[1:], strict=False):
        assert a_end == b_start and (a_end.hour, a_end.minute, a_end.second) == (0, 0, 0)
    assert all(e - s >= timedelta(days=SLICE_DAYS) for s, e in cut[1:-1])


def test_a_short_window_is_one_slice():
    end = datetime(2026, 12, 7, 4, 29, tzinfo=UTC)
    assert slices(end - timedelta(hours=1), end) == [(end - timedelta(hours=1), end)]
    assert len(slices(end - timedelta(days=SLICE_DAYS + 3), end)) == 1


def test_a_slice_key_fits_a_checkpoint_and_reads_back():
    start, end = datetime(2026, 9, 8, 4, 32, 17, tzinfo=UTC), datetime(2026, 10, 1, tzinfo=UTC)
    key = slice_key(start, end)
    assert slice_bounds(key) == (start, end)
    assert len(f"events_directory@{key}") <= SyncCheckpoint._meta.get_field("stream").max_length


def test_slices_sync_exactly_once_and_the_window_moves_only_when_all_are_in(connect, sim, monkeypatch):
    connection = connect()
    run = sync_run_request(connection=connection, kind="events", trigger="manual", enqueue=False)
    # One slice of the SSO events fails for good (e.g. a bad answer): the others are stored and
    # folded, the window stays where it is.
    real = events._write_page
    monkeypatch.setattr(events, "SLICE_DAYS", 3)  # this tenant's 10 days: several slices a stream

    def failing(connection_id, page_events, app_by_url, until):
        if page_events and page_events[0].service == "sso" and page_events[0].timestamp.day % 2:
            raise ValueError("a broken page")
        return real(connection_id, page_events, app_by_url, until)

    monkeypatch.setattr(events, "_write_page", failing)
    done = sync_run_execute(run_id=run.pk)
    assert done.status == SyncRun.Status.PARTIAL, done.error_message
    sso = SyncTask.objects.filter(run=done, stream="events_sso")
    assert (
        sso.count() > 1 and sso.filter(status="failed").exists() and sso.filter(status="succeeded").exists()
    )
    window = SyncCheckpoint.objects.get(connection=connection, stream="events_sso").state
    assert "until" not in window and window["window"] and window["slices"]
    stored = UsageEvent.objects.filter(connection=connection, kind="sso").count()

    # The next run resumes the same window: finished slices are not read again.
    monkeypatch.setattr(events, "_write_page", real)
    sim.clear_requests()
    again = sync_run_execute(
        run_id=sync_run_request(connection=connection, kind="events", trigger="manual", enqueue=False).pk
    )
    assert again.status == SyncRun.Status.SUCCEEDED, again.error_message
    assert set(again.tasks.filter(stream="events_sso").values_list("part", flat=True)) == set(
        window["slices"]
    )
    reread = [r for r in sim.requests if r.path.endswith("/events") and r.json_body["service"] == ["sso"]]
    failed_parts = set(sso.filter(status="failed").values_list("part", flat=True))
    assert {(r.json_body["start_time"], r.json_body["end_time"]) for r in reread} == {
        (f"{slice_bounds(p)[0]:%Y-%m-%dT%H:%M:%SZ}", f"{slice_bounds(p)[1]:%Y-%m-%dT%H:%M:%SZ}")
        for p in failed_parts
    }
    assert UsageEvent.objects.filter(connection=connection, kind="sso").count() > stored
    state = SyncCheckpoint.objects.get(connection=connection, stream="events_sso").state
    assert set(state) == {"until"} and state["until"] == window["window"][1]
    assert not SyncCheckpoint.objects.filter(connection=connection, stream__startswith="events_sso@").exists()
    ids = UsageEvent.objects.filter(connection=connection).values_list("external_id", flat=True)
    assert len(ids) == len(set(ids))

"""A join (a stream waiting for streams that run side by side) is sent by the last of them to end,
once (integrations.services.sync.joins). Real workers run joins in test_sync_reliability."""

from __future__ import annotations

import pytest
from celery.canvas import Signature

from integrations.models import SyncTask
from integrations.providers import registry
from integrations.services.sync import joins as joins_module
from integrations.services.sync import streams_for, sync_run_request, sync_run_start
from integrations.services.sync.joins import QUEUED, send_ready_joins

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
def sent(monkeypatch) -> list[Signature]:
    """What send_ready_joins sends (instead of sending it to a broker nobody reads here)."""
    signatures: list[Signature] = []
    monkeypatch.setattr(joins_module, "send_on_commit", signatures.append)
    return signatures


@pytest.fixture
def run(connect):
    connection = connect()
    requested = sync_run_request(connection=connection, kind="full", trigger="manual", enqueue=False)
    return sync_run_start(run_id=requested.pk, dispatch=False)


def _end(run, *streams: str) -> None:
    SyncTask.objects.filter(run=run, stream__in=streams).update(status=SyncTask.Status.SUCCEEDED)


def test_the_last_dependency_to_end_sends_the_join_once(run, sent):
    streams = streams_for(registry.get("jumpcloud"), run.kind)
    _end(run, "organization", "applications", "users", "administrators", "events_sso")
    assert send_ready_joins(run.pk, streams) == 0, "JumpCloud's bindings are still being read"
    assert sent == []

    _end(run, "assignment_graph")
    assert send_ready_joins(run.pk, streams) == 1
    # Its parts (the rows are written by two tasks at once), side by side.
    assert [[t.args[1:] for t in s.tasks] for s in sent] == [
        [("app_assignments", "1of2"), ("app_assignments", "2of2")]
    ]
    assert all(t.task == "integrations.tasks.run_stream" for t in sent[0].tasks)
    leases = SyncTask.objects.filter(run=run, stream="app_assignments").values_list("lease", flat=True)
    assert set(leases) == {QUEUED}

    # Another task that ended at the same moment sees the same: it does not send it again.
    assert send_ready_joins(run.pk, streams) == 0 and len(sent) == 1
    # A resumed run sends it again (its message may have been lost with a worker).
    assert send_ready_joins(run.pk, streams, resend=True) == 1 and len(sent) == 2


def test_a_join_waits_for_every_part_of_a_split_stream_it_follows(run, sent):
    streams = streams_for(registry.get("jumpcloud"), run.kind)
    _end(run, "organization", "applications", "users", "administrators", "assignment_graph")
    slices = list(SyncTask.objects.filter(run=run, stream="events_sso").order_by("pk"))
    assert len(slices) > 1
    SyncTask.objects.filter(pk__in=[t.pk for t in slices[:-1]]).update(status=SyncTask.Status.SUCCEEDED)
    assert send_ready_joins(run.pk, streams) == 0, "one slice of the SSO events is still running"
    # However the last slice ends, the join is due: the assignments only wait for the logins.
    SyncTask.objects.filter(pk=slices[-1].pk).update(status=SyncTask.Status.FAILED)
    assert send_ready_joins(run.pk, streams) == 1


def test_an_ended_join_is_not_sent_again(run, sent):
    streams = streams_for(registry.get("jumpcloud"), run.kind)
    SyncTask.objects.filter(run=run).update(status=SyncTask.Status.SUCCEEDED)
    assert send_ready_joins(run.pk, streams, resend=True) == 0 and sent == []

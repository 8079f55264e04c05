"""Retry rules, over a real socket so urllib3's Retry (and its sleeps) run for real.

`responses` replaces the adapter's transport and never sleeps, so waits are asserted here through
the scripted server with jumpcloud.retry._sleep recorded (the `sleeps` fixture).
"""

from __future__ import annotations

import email.utils
import time
import traceback
from datetime import UTC, datetime, timedelta

import pytest

from jumpcloud.client import JumpCloudClient
from jumpcloud.errors import (
    BadRequest,
    Conflict,
    InvalidApiKey,
    NotFound,
    PermissionDenied,
    RateLimited,
    RequestTimedOut,
    UpstreamError,
)

from .conftest import API_KEY, Reply, ScriptedServer

EMPTY_USERS = {"totalCount": 0, "results": []}
USER = {"_id": "u1", "username": "jane.doe", "email": "jane@example.com", "state": "ACTIVATED"}
START = datetime(2024, 5, 1, tzinfo=UTC)
END = START + timedelta(days=1)


def make(server: ScriptedServer, **kwargs) -> JumpCloudClient:
    kwargs.setdefault("max_retries", 3)
    kwargs.setdefault("timeout", (2.0, 5.0))
    return JumpCloudClient(API_KEY, base_url=server.base_url, **kwargs)


def test_429_without_retry_after_backs_off_then_succeeds(server, sleeps):
    server.script(Reply(429, {"message": "Too Many Requests"}), Reply(200, EMPTY_USERS))
    with make(server, backoff_factor=0.5) as client:
        assert list(client.iter_system_users()) == []
    assert len(server.seen) == 2
    # first retry already waits backoff_factor (plus up to backoff_factor of jitter)
    assert len(sleeps) == 1 and 0.5 <= sleeps[0] <= 1.0


def test_backoff_grows_exponentially_and_is_capped(server, sleeps):
    server.script(*[Reply(503, {"message": "unavailable"})] * 4, Reply(200, EMPTY_USERS))
    with make(server, max_retries=5, backoff_factor=1.0, backoff_max=3.0) as client:
        list(client.iter_system_users())
    assert len(sleeps) == 4
    assert 1.0 <= sleeps[0] <= 2.0
    assert 2.0 <= sleeps[1] <= 3.0
    assert sleeps[2] == sleeps[3] == 3.0


def test_retry_after_seconds_is_honoured(server, sleeps):
    server.script(Reply(429, {"message": "slow down"}, {"Retry-After": "7"}), Reply(200, EMPTY_USERS))
    with make(server) as client:
        list(client.iter_system_users())
    assert sleeps == [7.0]


def test_retry_after_http_date_is_honoured(server, sleeps):
    began = time.time()
    when = email.utils.formatdate(began + 20, usegmt=True)  # whole seconds
    server.script(Reply(429, {"message": "slow down"}, {"Retry-After": when}), Reply(200, EMPTY_USERS))
    with make(server) as client:
        list(client.iter_system_users())
    # The wait is the date minus the time it was read, however long getting there took.
    spent = time.time() - began
    assert len(sleeps) == 1 and 19.0 - spent <= sleeps[0] <= 20.0


def test_unparsable_retry_after_falls_back_to_backoff(server, sleeps):
    server.script(Reply(429, {}, {"Retry-After": "soon-ish"}), Reply(200, EMPTY_USERS))
    with make(server, backoff_factor=0.5) as client:
        list(client.iter_system_users())
    assert len(sleeps) == 1 and 0.5 <= sleeps[0] <= 1.0


def test_retry_after_above_the_cap_raises_without_sleeping(server, sleeps):
    server.script(Reply(429, {"message": "slow down"}, {"Retry-After": "300"}), Reply(200, EMPTY_USERS))
    with make(server, retry_after_max=60) as client, pytest.raises(RateLimited) as caught:
        list(client.iter_system_users())
    assert caught.value.retry_after == 300.0
    assert sleeps == []
    assert len(server.seen) == 1


def test_429_that_never_ends_raises_rate_limited(server, sleeps):
    server.script(*[Reply(429, {"message": "slow down"}, {"Retry-After": "1"})] * 4)
    with make(server, max_retries=3) as client, pytest.raises(RateLimited) as caught:
        list(client.iter_system_users())
    assert len(server.seen) == 4
    assert sleeps == [1.0, 1.0, 1.0]
    assert caught.value.retry_after == 1.0


@pytest.mark.parametrize("status", [502, 503, 504])
def test_gateway_errors_are_retried_then_give_up(server, sleeps, status):
    server.script(*[Reply(status, {"message": "upstream"})] * 3)
    with make(server, max_retries=2) as client, pytest.raises(UpstreamError) as caught:
        list(client.iter_system_users())
    assert len(server.seen) == 3
    assert caught.value.status == status and caught.value.retryable


@pytest.mark.parametrize(
    ("status", "error_type"),
    [
        (400, BadRequest),
        (401, InvalidApiKey),
        (403, PermissionDenied),
        (404, NotFound),
        (409, Conflict),
        (500, UpstreamError),
    ],
)
def test_client_errors_are_never_retried(server, sleeps, status, error_type):
    server.script(Reply(status, {"message": "no"}), Reply(200, EMPTY_USERS))
    with make(server) as client, pytest.raises(error_type):
        list(client.iter_system_users())
    assert len(server.seen) == 1
    assert sleeps == []


def test_create_is_not_retried_on_503(server, sleeps):
    server.script(Reply(503, {"message": "unavailable"}), Reply(200, USER))
    with make(server) as client, pytest.raises(UpstreamError) as caught:
        client.create_system_user(username="jane.doe", email="jane@example.com")
    assert len(server.seen) == 1
    assert caught.value.request_sent is True
    assert "may or may not have applied" in caught.value.message


def test_create_is_retried_on_429(server, sleeps):
    server.script(Reply(429, {"message": "slow"}, {"Retry-After": "2"}), Reply(200, USER))
    with make(server) as client:
        user = client.create_system_user(username="jane.doe", email="jane@example.com")
    assert user.username == "jane.doe"
    assert [s.method for s in server.seen] == ["POST", "POST"]
    assert sleeps == [2.0]


def test_create_read_timeout_raises_request_timed_out_without_retry(server, sleeps):
    server.script(Reply(200, USER, delay=1.0), Reply(200, USER))
    with make(server, timeout=(2.0, 0.2)) as client, pytest.raises(RequestTimedOut) as caught:
        client.create_system_user(username="jane.doe", email="jane@example.com")
    assert caught.value.request_sent is True
    assert "may or may not" in caught.value.message
    assert len(server.seen) == 1


def test_create_truncated_answer_is_not_reissued(server, sleeps):
    server.script(Reply(200, USER, truncate=True), Reply(200, USER))
    with make(server) as client, pytest.raises(UpstreamError) as caught:
        client.create_system_user(username="jane.doe", email="jane@example.com")
    assert caught.value.request_sent is True
    assert len(server.seen) == 1


@pytest.mark.parametrize("status", [502, 503, 504])
def test_delete_and_activate_are_not_retried_on_5xx(server, sleeps, status):
    server.script(Reply(status, {}), Reply(status, {}), Reply(200, USER))
    with make(server) as client:
        with pytest.raises(UpstreamError):
            client.delete_system_user("u1")
        with pytest.raises(UpstreamError):
            client.activate_system_user("u1")
    assert [s.method for s in server.seen] == ["DELETE", "POST"]


def test_put_is_idempotent_and_retried(server, sleeps):
    server.script(Reply(503, {}), Reply(200, {**USER, "state": "SUSPENDED", "suspended": True}))
    with make(server) as client:
        assert client.suspend_system_user("u1").suspended is True
    assert [s.method for s in server.seen] == ["PUT", "PUT"]


def test_get_read_timeout_is_retried_then_raises(server, sleeps):
    server.script(*[Reply(200, EMPTY_USERS, delay=0.6)] * 3)
    with make(server, timeout=(2.0, 0.1), max_retries=5) as client, pytest.raises(RequestTimedOut):
        list(client.iter_system_users())
    # read retries are capped at 2 whatever max_retries is
    assert len(server.seen) == 3


def test_directory_insights_post_is_retried_like_a_read(server, sleeps):
    server.script(
        Reply(503, {"message": "busy"}),
        Reply(200, [], {"X-Result-Count": "0", "X-Limit": "10000", "X-Search_after": '[1,"a"]'}),
    )
    with make(server) as client:
        pages = list(client.iter_event_pages("sso", START, END))
    assert len(pages) == 1 and pages[0].is_last
    assert [s.method for s in server.seen] == ["POST", "POST"]
    assert server.seen[0].body == server.seen[1].body


def test_truncated_read_is_reissued(server, sleeps):
    server.script(
        Reply(200, {"totalCount": 1, "results": [USER]}, truncate=True),
        Reply(200, {"totalCount": 1, "results": [USER]}),
    )
    with make(server) as client:
        assert [u.id for u in client.iter_system_users()] == ["u1"]
    assert len(server.seen) == 2


def test_truncated_reads_give_up_after_bounded_attempts(server, sleeps):
    server.script(*[Reply(200, {"totalCount": 1, "results": [USER]}, truncate=True)] * 5)
    with make(server) as client, pytest.raises(UpstreamError) as caught:
        list(client.iter_system_users())
    assert len(server.seen) == 3
    assert caught.value.retryable


def test_connection_refused_is_retried_then_upstream_error(closed_port, sleeps):
    base_url = f"http://127.0.0.1:{closed_port}"
    with (
        JumpCloudClient(API_KEY, base_url=base_url, max_retries=2) as client,
        pytest.raises(UpstreamError) as caught,
    ):
        client.create_system_user(username="jane.doe", email="jane@example.com")
    # connect errors are safe to retry even for a create: nothing reached JumpCloud
    assert len(sleeps) == 2
    assert caught.value.request_sent is False
    assert "Could not connect" in caught.value.message
    assert API_KEY not in "".join(traceback.format_exception(caught.value))


def test_key_and_org_header_are_sent_on_the_wire(server, sleeps):
    server.script(Reply(200, EMPTY_USERS))
    with make(server, org_id="org-1") as client:
        list(client.iter_system_users())
    headers = {k.lower(): v for k, v in server.seen[0].headers.items()}
    assert headers["x-api-key"] == API_KEY
    assert headers["x-org-id"] == "org-1"
    assert headers["accept"] == "application/json"


def test_max_retries_zero_sends_exactly_once(server, sleeps):
    server.script(
        Reply(200, {"totalCount": 1, "results": [USER]}, truncate=True), Reply(503, {}), Reply(429, {})
    )
    with make(server, max_retries=0) as client:
        with pytest.raises(UpstreamError):
            list(client.iter_system_users())
        with pytest.raises(UpstreamError) as caught:
            client.suspend_system_user("u1")
        assert caught.value.request_sent is True  # a PUT that got a 5xx may have been applied
        with pytest.raises(RateLimited):
            client.create_system_user(username="jane.doe", email="jane@example.com")
    assert [s.method for s in server.seen] == ["GET", "PUT", "POST"]
    assert sleeps == []

"""The Retry subclass on its own: which failures it repeats and how long it waits."""

from __future__ import annotations

import email.utils
import time

import pytest
from urllib3.exceptions import MaxRetryError
from urllib3.response import HTTPResponse

from jumpcloud.retry import IDEMPOTENT_METHODS, QUERY_METHODS, JumpCloudRetry, build_retry, parse_retry_after


def _retry(methods=IDEMPOTENT_METHODS, **kw) -> JumpCloudRetry:
    params = {"max_retries": 5, "backoff_factor": 0.5, "backoff_max": 30.0, "retry_after_max": 60.0}
    params.update(kw)
    return build_retry(allowed_methods=methods, **params)


def _response(status: int, retry_after: str | None = None) -> HTTPResponse:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    return HTTPResponse(body=b"", status=status, headers=headers, preload_content=False)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0", 0.0),
        ("5", 5.0),
        (" 12 ", 12.0),
        ("1.5", 1.5),
        ("-3", None),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after(value, expected):
    assert parse_retry_after(value) == expected


def test_parse_retry_after_http_date():
    future = email.utils.formatdate(time.time() + 30, usegmt=True)
    past = email.utils.formatdate(time.time() - 30, usegmt=True)
    assert 28 <= parse_retry_after(future) <= 30.5
    assert parse_retry_after(past) == 0.0


def test_which_methods_retry_which_statuses():
    console, insights = _retry(), _retry(QUERY_METHODS)
    for status in (429, 502, 503, 504):
        assert console.is_retry("GET", status) and console.is_retry("PUT", status)
        assert insights.is_retry("POST", status)
    # writes that may have been applied are only repeated when JumpCloud certainly refused them
    assert console.is_retry("POST", 429) and console.is_retry("DELETE", 429)
    for status in (500, 502, 503, 504):
        assert not console.is_retry("POST", status) and not console.is_retry("DELETE", status)
    for status in (400, 401, 403, 404, 409, 500):
        assert not console.is_retry("GET", status) and not insights.is_retry("POST", status)


def test_backoff_starts_at_the_first_retry_and_grows():
    retry = _retry(backoff_factor=1.0, backoff_max=10.0)
    retry.backoff_jitter = 0.0
    waits = []
    for _ in range(5):
        retry = retry.increment("GET", "/x", response=_response(503))
        waits.append(retry.get_backoff_time())
    assert waits == [1.0, 2.0, 4.0, 8.0, 10.0]


def test_jitter_is_bounded():
    retry = _retry(backoff_factor=0.5).increment("GET", "/x", response=_response(503))
    samples = {retry.get_backoff_time() for _ in range(200)}
    assert min(samples) >= 0.5 and max(samples) <= 1.0 and len(samples) > 1


def test_retry_after_beyond_the_limit_gives_up_immediately():
    retry = _retry(retry_after_max=60.0)
    with pytest.raises(MaxRetryError):
        retry.increment("GET", "/x", response=_response(429, "61"))
    assert retry.increment("GET", "/x", response=_response(429, "60")).retry_after_limit == 60.0


def test_exhaustion():
    retry = _retry(max_retries=2)
    retry = retry.increment("GET", "/x", response=_response(503))
    retry = retry.increment("GET", "/x", response=_response(503))
    with pytest.raises(MaxRetryError):
        retry.increment("GET", "/x", response=_response(503))


def test_sleep_uses_retry_after_then_backoff(sleeps):
    retry = _retry(backoff_factor=0.5).increment("GET", "/x", response=_response(429, "3"))
    retry.sleep(_response(429, "3"))
    retry.sleep(_response(429))
    assert sleeps[0] == 3.0 and 0.5 <= sleeps[1] <= 1.0


def test_invalid_retry_after_does_not_raise():
    retry = _retry()
    assert retry.get_retry_after(_response(429, "Wed, 99 Foo 2024")) is None

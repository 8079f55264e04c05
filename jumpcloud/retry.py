"""Retry policy for JumpCloud calls, as a urllib3 Retry subclass (mounted on the client's adapters).

What urllib3's stock Retry does not do, and this adds:
- 429 is retried for every method, POST included: a rate-limited request was not processed.
  Everything else that is status- or read-based stays limited to `allowed_methods`, so a create
  (POST) or delete is never repeated after a 5xx or a read timeout, when JumpCloud may have acted.
- A Retry-After longer than `retry_after_limit` is not slept through: the retry gives up at once and
  the 429 reaches the client, which raises RateLimited(retry_after=…) so Celery can come back later
  instead of holding a worker. (urllib3's own `retry_after_max` only clamps the sleep.)
- Exponential backoff from the first retry (urllib3 waits 0 s before the first one), plus jitter so
  several workers hitting one org spread out.
- An unparsable Retry-After is ignored instead of raising InvalidHeader from deep inside urlopen.
- Sleeping goes through `_sleep`, so tests can observe waits without patching time.sleep globally.
"""

from __future__ import annotations

import email.utils
import random
import re
import time
from collections.abc import Callable
from itertools import takewhile
from typing import TYPE_CHECKING, Any

from urllib3.exceptions import MaxRetryError, ResponseError
from urllib3.util.retry import Retry

if TYPE_CHECKING:
    from typing import Self

    from urllib3.connectionpool import ConnectionPool
    from urllib3.response import BaseHTTPResponse

RETRY_STATUSES = frozenset({429, 502, 503, 504})
# Methods whose repetition cannot do harm. The Directory Insights adapter adds POST (its POSTs are
# queries); on the console host POST creates and DELETE deletes, so those only retry on 429/connect.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT"})
QUERY_METHODS = IDEMPOTENT_METHODS | {"POST"}

_DIGITS = re.compile(r"\s*\d+(?:\.\d+)?\s*", re.ASCII)


def _sleep(seconds: float) -> None:
    time.sleep(seconds)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date); None if unusable."""
    if value is None:
        return None
    if _DIGITS.fullmatch(value):
        return max(float(value), 0.0)
    parsed = email.utils.parsedate_tz(value)
    if parsed is None:
        return None
    try:
        return max(email.utils.mktime_tz(parsed) - time.time(), 0.0)
    except (OverflowError, ValueError):
        return None


class JumpCloudRetry(Retry):
    def __init__(
        self,
        *args: Any,
        retry_after_limit: float = 60.0,
        on_rate_limited: Callable[[float | None], Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.retry_after_limit = retry_after_limit
        # Told of every 429 (with its Retry-After): the account's request budget slows down.
        self.on_rate_limited = on_rate_limited

    def new(self, **kw: Any) -> Self:
        kw.setdefault("retry_after_limit", self.retry_after_limit)
        kw.setdefault("on_rate_limited", self.on_rate_limited)
        return super().new(**kw)

    def get_retry_after(self, response: BaseHTTPResponse) -> float | None:
        return parse_retry_after(response.headers.get("Retry-After"))

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        if status_code == 429 and self.total:
            return True
        return super().is_retry(method, status_code, has_retry_after)

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: BaseHTTPResponse | None = None,
        error: Exception | None = None,
        _pool: ConnectionPool | None = None,
        _stacktrace: Any = None,
    ) -> Self:
        if response is not None and response.status == 429 and self.on_rate_limited is not None:
            self.on_rate_limited(self.get_retry_after(response))
        if response is not None and error is None and self.respect_retry_after_header:
            wait = self.get_retry_after(response)
            if wait is not None and wait > self.retry_after_limit:
                # Giving up here hands the response back (raise_on_status=False): the client turns
                # it into RateLimited/UpstreamError carrying the server's wait.
                raise MaxRetryError(_pool, url, ResponseError(f"Retry-After {wait:.0f}s exceeds limit"))  # type: ignore[arg-type]
        return super().increment(method, url, response, error, _pool, _stacktrace)

    def get_backoff_time(self) -> float:
        consecutive = sum(1 for _ in takewhile(lambda h: h.redirect_location is None, reversed(self.history)))
        if consecutive == 0 or self.backoff_factor <= 0:
            return 0.0
        delay = self.backoff_factor * (2 ** (consecutive - 1))
        if self.backoff_jitter:
            delay += random.random() * self.backoff_jitter
        return float(max(0.0, min(self.backoff_max, delay)))

    def sleep_for_retry(self, response: BaseHTTPResponse) -> bool:
        wait = self.get_retry_after(response)
        if wait:
            _sleep(wait)
            return True
        return False

    def _sleep_backoff(self) -> None:
        backoff = self.get_backoff_time()
        if backoff > 0:
            _sleep(backoff)


def build_retry(
    *,
    max_retries: int,
    backoff_factor: float,
    backoff_max: float,
    retry_after_max: float,
    allowed_methods: frozenset[str],
    on_rate_limited: Callable[[float | None], Any] | None = None,
) -> JumpCloudRetry:
    return JumpCloudRetry(
        total=max_retries,
        # A read timeout already cost a full read timeout; two more are plenty for an idempotent call.
        read=min(2, max_retries),
        redirect=False,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=allowed_methods,
        backoff_factor=backoff_factor,
        backoff_max=backoff_max,
        backoff_jitter=backoff_factor,
        # The final 429/5xx response is handed back so the client can map it to a typed error.
        raise_on_status=False,
        respect_retry_after_header=True,
        retry_after_limit=retry_after_max,
        on_rate_limited=on_rate_limited,
        # Never forward the key if anything ever follows a redirect.
        remove_headers_on_redirect=Retry.DEFAULT_REMOVE_HEADERS_ON_REDIRECT | {"x-api-key"},
    )

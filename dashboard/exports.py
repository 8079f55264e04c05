"""CSV exports may not hold the web workers: a rate per person (the API's "exports" throttle) and
a cap on downloads streaming at once, per person and in all (TORII_EXPORTS_PER_USER,
TORII_EXPORTS_TOTAL, below the number of web workers). A refused export is a 429 with Retry-After
and a message saying why; nothing waits inside a worker for a slot. The slots live in the database
(accounts.limits), so they hold across gunicorn's worker processes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render

from accounts.limits import Slot, concurrency_slot_acquire
from api.throttles import ExportsThrottle, throttled_response
from dashboard.csv import csv_response

RETRY_AFTER_SECONDS = 30


def _busy(request: HttpRequest, message: str) -> HttpResponse:
    response = render(
        request, "errors/429.html", {"message": message, "retry_after": RETRY_AFTER_SECONDS}, status=429
    )
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def export_slots_acquire(request: HttpRequest) -> list[Slot] | HttpResponse:
    """The slots an export needs (the person's and one of all), or the 429 response to send."""
    lease = settings.TORII_EXPORT_LEASE_SECONDS
    mine = concurrency_slot_acquire(
        scope=f"export:user:{request.user.pk}", limit=settings.TORII_EXPORTS_PER_USER, lease_seconds=lease
    )
    if mine is None:
        return _busy(request, "Your previous export is still downloading. When it has finished, try again.")
    shared = concurrency_slot_acquire(
        scope="export:all", limit=settings.TORII_EXPORTS_TOTAL, lease_seconds=lease
    )
    if shared is None:
        mine.release()
        return _busy(request, "torii is busy with other exports right now. Try again in half a minute.")
    return [mine, shared]


def limited_csv_response(
    request: HttpRequest,
    filename: str,
    header: Sequence[str],
    rows: Callable[[], Iterable[Iterable[Any]]],
) -> HttpResponse | StreamingHttpResponse:
    """A streamed CSV download within the limits; `rows` makes the (lazy) rows once allowed."""
    refused = throttled_response(request, ExportsThrottle)
    if refused is not None:
        return refused
    slots = export_slots_acquire(request)
    if isinstance(slots, HttpResponse):
        return slots
    try:
        return csv_response(filename, header, rows(), on_close=[slot.release for slot in slots])
    except BaseException:
        for slot in slots:
            slot.release()
        raise

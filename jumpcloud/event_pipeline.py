"""Directory Insights pages fetched and turned into COPY text in a separate process.

A million-event backfill spends its Python time decoding JSON and building rows, and its database
time in PostgreSQL; in one process the two fight over the GIL (json.loads holds it for a whole
6 MB page), so the writer waits on the fetcher even with a prefetch thread. Here a spawned
process fetches, parses and formats each page as CSV while this process writes the previous one:
two cores, both busy. In the child, a thread requests and decodes the next page while the last
is formatted and sent, so JumpCloud's time to answer overlaps the child's work (on loopback the
simulator's 80 ms a page; more over the internet). The pipe holds one page: the fetcher stays
at most two pages ahead of the writer.

The child is a `python -m jumpcloud.event_pipeline` subprocess run through jumpcloud.child (API
key on stdin, frames on stdout, JumpCloud errors raised here as the same typed errors).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jumpcloud.child import Send, frames, serve


@dataclass(frozen=True)
class PreparedPage:
    csv: str  # rows in jumpcloud.rows.EVENT_COLUMNS order, as COPY CSV
    count: int
    skipped: int
    search_after: list[Any] | None
    oldest: str | None  # ISO time of the page's oldest event
    newest: str | None  # ... and of its newest


def _produce(
    send: Send,
    api_key: str,
    client_options: dict[str, Any],
    service: str,
    start: datetime,
    end: datetime,
    limit: int,
    search_after: list[Any] | None,
    connection_id: int,
    app_by_url: dict[str, str],
    newest_first: bool = False,
) -> None:
    from integrations.prefetch import prefetch
    from jumpcloud.client import JumpCloudClient
    from jumpcloud.rows import events_csv

    with JumpCloudClient(api_key, **client_options) as client:
        # The next page is requested (and decoded) by a thread while this one formats and sends the
        # last: JumpCloud's time to answer overlaps this process's work instead of adding to it.
        pages = client.iter_event_pages(
            service, start, end, limit=limit, search_after=search_after, newest_first=newest_first
        )
        for page in prefetch(pages, depth=1):
            events = page.events
            oldest, newest = event_span([e.timestamp for e in events])
            # Plain tuples on the wire: this module runs as __main__ in the child.
            send(
                (
                    "page",
                    (
                        events_csv(connection_id, events, app_by_url),
                        len(events),
                        page.skipped,
                        page.search_after,
                        oldest,
                        newest,
                    ),
                )
            )


def event_span(times: list[datetime]) -> tuple[str | None, str | None]:
    """ISO times of the oldest and the newest of these event times (None, None for none)."""
    if not times:
        return None, None
    return min(times).isoformat(), max(times).isoformat()


def prepared_event_pages(
    *,
    api_key: str,
    client_options: dict[str, Any],
    service: str,
    start: datetime,
    end: datetime,
    limit: int,
    search_after: list[Any] | None,
    connection_id: int,
    app_by_url: dict[str, str],
    newest_first: bool = False,
) -> Iterator[PreparedPage]:
    """Pages of one service's events in [start, end], each ready for COPY. Raises the client's
    typed errors. Leaving the loop early stops the fetching process."""
    params = {
        "api_key": api_key,
        "client_options": client_options,
        "service": service,
        "start": start,
        "end": end,
        "limit": limit,
        "search_after": search_after,
        "connection_id": connection_id,
        "app_by_url": app_by_url,
        "newest_first": newest_first,
    }
    for _kind, payload in frames("jumpcloud.event_pipeline", params, "Directory Insights fetcher"):
        yield PreparedPage(*payload)


if __name__ == "__main__":
    serve(_produce)

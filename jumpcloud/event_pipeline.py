"""Directory Insights pages fetched and turned into COPY text in a separate process.

A million-event backfill spends its Python time decoding JSON and building rows, and its database
time in PostgreSQL; in one process the two fight over the GIL (json.loads holds it for a whole
6 MB page), so the writer waits on the fetcher even with a prefetch thread. Here a spawned
process fetches, parses and formats each page as CSV while this process writes the previous one:
two cores, both busy. The pipe holds one page, so the fetcher stays at most a page ahead.

The child is a plain `python -m jumpcloud.event_pipeline` subprocess (Celery's pool workers are
daemonic processes, which multiprocessing forbids to have children). It reads its parameters,
API key included, as one pickled message on stdin (never argv or the environment), writes
length-prefixed pickled frames to stdout, and reports JumpCloud errors back by type, message and
status: the caller sees the same typed errors as from the client itself.
"""

from __future__ import annotations

import pickle
import struct
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jumpcloud import errors


@dataclass(frozen=True)
class PreparedPage:
    csv: str  # rows in jumpcloud.rows.EVENT_COLUMNS order, as COPY CSV
    count: int
    skipped: int
    search_after: list[Any] | None
    oldest: str | None  # ISO time of the page's oldest event


def _produce(send: Callable[[tuple[str, Any]], None], api_key: str, client_options: dict[str, Any], service: str,
             start: datetime, end: datetime, limit: int, search_after: list[Any] | None, connection_id: int,
             app_by_url: dict[str, str]) -> None:
    from integrations.csvtext import csv_text
    from jumpcloud.client import JumpCloudClient
    from jumpcloud.rows import event_row

    try:
        with JumpCloudClient(api_key, **client_options) as client:
            for page in client.iter_event_pages(service, start, end, limit=limit, search_after=search_after):
                rows = [event_row(connection_id, e, app_by_url) for e in page.events]
                oldest = min(r[4] for r in rows).isoformat() if rows else None
                # Plain tuples on the wire: this module runs as __main__ in the child.
                send(("page", (csv_text(rows), len(rows), page.skipped, page.search_after, oldest)))
        send(("done", None))
    except errors.JumpCloudError as exc:
        send(("error", (type(exc).__name__, exc.message, exc.status, exc.request_id, getattr(exc, "retry_after", None))))
    except BaseException as exc:  # reported to the parent, which raises it as an upstream failure
        send(("crash", type(exc).__name__))


_FRAME = struct.Struct("!I")


def _main() -> None:
    """Child side: parameters from stdin, frames to stdout."""
    params = pickle.load(sys.stdin.buffer)  # noqa: S301 - written by our own parent process
    out = sys.stdout.buffer

    def send(message: tuple[str, Any]) -> None:
        data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        out.write(_FRAME.pack(len(data)) + data)
        out.flush()

    _produce(send, **params)


def _rebuild(name: str, message: str, status: int | None, request_id: str, retry_after: float | None) -> Exception:
    cls = getattr(errors, name, errors.UpstreamError)
    if not (isinstance(cls, type) and issubclass(cls, errors.JumpCloudError)):
        cls = errors.UpstreamError
    if cls is errors.RateLimited:
        return errors.RateLimited(message, retry_after=retry_after, status=status, request_id=request_id)
    return cls(message, status=status, request_id=request_id)


def prepared_event_pages(*, api_key: str, client_options: dict[str, Any], service: str, start: datetime,
                         end: datetime, limit: int, search_after: list[Any] | None, connection_id: int,
                         app_by_url: dict[str, str]) -> Iterator[PreparedPage]:
    """Pages of one service's events in [start, end], each ready for COPY. Raises the client's
    typed errors. Leaving the loop early stops the fetching process."""
    process = subprocess.Popen(  # noqa: S603 - our own module, no shell, no user input in argv
        [sys.executable, "-m", "jumpcloud.event_pipeline"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    )
    assert process.stdin is not None and process.stdout is not None
    params = {"api_key": api_key, "client_options": client_options, "service": service, "start": start, "end": end,
              "limit": limit, "search_after": search_after, "connection_id": connection_id, "app_by_url": app_by_url}
    try:
        process.stdin.write(pickle.dumps(params, protocol=pickle.HIGHEST_PROTOCOL))
        process.stdin.close()
        while True:
            header = process.stdout.read(_FRAME.size)
            if len(header) < _FRAME.size:
                raise errors.UpstreamError("The Directory Insights fetcher stopped unexpectedly.")
            (size,) = _FRAME.unpack(header)
            kind, payload = pickle.loads(process.stdout.read(size))  # noqa: S301 - our own child's frames
            if kind == "page":
                yield PreparedPage(*payload)
            elif kind == "done":
                return
            elif kind == "error":
                raise _rebuild(*payload)
            else:
                raise errors.UpstreamError(f"The Directory Insights fetcher failed ({payload}).")
    finally:
        process.stdout.close()
        if process.poll() is None:
            process.terminate()
        process.wait(timeout=10)


if __name__ == "__main__":
    _main()

"""Read who can use each SSO app ahead of the assignment stream, in a thread of its own.

The app-assignment stream reads two association lists per app and the resolved membership of each
group once per run: about 2,000 pages for a 300-app, 50,000-user tenant, one request at a time.
None of that needs the database, only the list of apps, so a full sync starts this reader as soon
as the applications are stored; it reads beside the users stream (its own client, so its own
connection pool), and the assignment stream takes the answers in app order. The simulator, this
process and PostgreSQL then keep two cores busy instead of waiting on each other in turn.

The reader never touches the database. An error for one app is handed to the stream with that
app's answer and raised there, so the run's error policy (retry later, reconnect, skip a deleted
app) is the same as when the stream reads for itself; after any error other than a deleted app the
reader stops reading.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from jumpcloud import errors
from jumpcloud.client import PAGES_AHEAD


@dataclass
class AppAnswer:
    """One app's associations, and the memberships of the groups first seen with it."""

    direct: set[str] = field(default_factory=set)
    groups: set[str] = field(default_factory=set)
    pages: int = 0
    skipped: int = 0
    memberships: dict[str, frozenset[str]] = field(default_factory=dict)
    error: BaseException | None = None


def association_targets(records: Iterable[dict[str, Any]], kind: str) -> tuple[set[str], int]:
    """Ids of the associated objects of one type; malformed records are counted, not fatal."""
    ids: set[str] = set()
    skipped = 0
    for record in records:
        target = record.get("to") if isinstance(record, dict) else None
        target_id = target.get("id") if isinstance(target, dict) else None
        if not isinstance(target, dict) or not isinstance(target_id, str) or not target_id \
                or target.get("type") not in (None, kind):
            skipped += 1
            continue
        ids.add(target_id[:64])
    return ids, skipped


class Stopped(Exception):
    """The reader was closed before it answered for an app."""


def read_app(client: Any, app_id: str, known_groups: set[str] | dict[str, Any],
             stop: threading.Event | None = None, pool: ThreadPoolExecutor | None = None) -> AppAnswer:
    """Everything the assignment stream needs for one app; groups in `known_groups` are not re-read."""
    answer = AppAnswer()
    answer.direct, skipped_direct = association_targets(client.iter_application_associations(app_id, "user"), "user")
    answer.groups, skipped_groups = association_targets(
        client.iter_application_associations(app_id, "user_group"), "user_group")
    answer.pages, answer.skipped = 2, skipped_direct + skipped_groups
    for group_id in sorted(answer.groups):
        if group_id in known_groups or group_id in answer.memberships:
            continue
        members, pages, skipped = read_group(client, group_id, stop, pool)
        answer.memberships[group_id] = members
        answer.pages += pages
        answer.skipped += skipped
    return answer


def read_group(client: Any, group_id: str, stop: threading.Event | None = None,
               pool: ThreadPoolExecutor | None = None) -> tuple[frozenset[str], int, int]:
    """A group's resolved membership (nested groups included): (user ids, pages, malformed records).
    With a `pool`, several of its pages are requested at once: a big group is hundreds of pages."""
    members: set[str] = set()
    pages = skipped = 0
    page_iter = client.iter_user_group_membership_pages(group_id, pool)
    try:
        for page in page_iter:
            if stop is not None and stop.is_set():
                raise Stopped()
            members.update(b.user_id for b in page.items)
            pages += 1
            skipped += page.skipped
    finally:
        close = getattr(page_iter, "close", None)
        if close:
            close()  # drops the requests asked ahead
    return frozenset(members), pages, skipped


class AssignmentReader:
    """Reads AppAnswers for `app_ids`, in order, in a daemon thread; `take(app_id)` waits for one."""

    def __init__(self, client: Any, app_ids: list[str], run_stop: threading.Event):
        self._client = client
        self._order = list(app_ids)
        self._answers: dict[str, AppAnswer] = {}
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._run_stop = run_stop
        self._done = False
        self._pool = ThreadPoolExecutor(max_workers=PAGES_AHEAD, thread_name_prefix="assignment-pages")
        self._thread = threading.Thread(target=self._read, name="assignment-reader", daemon=True)
        self._thread.start()

    def _stopping(self) -> bool:
        return self._stop.is_set() or self._run_stop.is_set()

    def _read(self) -> None:
        seen: set[str] = set()
        try:
            for app_id in self._order:
                if self._stopping():
                    return
                try:
                    answer = read_app(self._client, app_id, seen, self._stop, self._pool)
                except Stopped:
                    return
                except BaseException as exc:  # handed to the stream with this app's answer
                    answer = AppAnswer(error=exc)
                seen.update(answer.memberships)
                with self._cond:
                    self._answers[app_id] = answer
                    self._cond.notify_all()
                if answer.error is not None and not isinstance(answer.error, errors.NotFound):
                    return  # the stream raises it; reading on would only repeat it
        finally:
            with self._cond:
                self._done = True
                self._cond.notify_all()
            self._pool.shutdown(wait=True, cancel_futures=True)
            close = getattr(self._client, "close", None)
            if close:
                close()

    def covers(self, app_id: str) -> bool:
        return app_id in self._order

    def take(self, app_id: str) -> AppAnswer | None:
        """This app's answer once read; None if the reader stopped before reading it."""
        with self._cond:
            while app_id not in self._answers and not self._done:
                self._cond.wait(timeout=0.5)
                if self._run_stop.is_set():
                    break
            return self._answers.pop(app_id, None)

    def close(self) -> None:
        """Stop reading. Waits for the request in flight (bounded: a retry may be sleeping); the
        thread touches no database, so one left behind ends harmlessly at its next page."""
        self._stop.set()
        self._thread.join(timeout=60)

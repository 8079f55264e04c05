"""Read who can use each SSO app ahead of the assignment stream, in a process of its own.

The app-assignment stream reads two association lists per app and the resolved membership of each
group once per run: about 2,000 pages for a 300-app, 50,000-user tenant, one request at a time.
None of that needs the database, only the list of apps, so a full sync starts this reader as soon
as the applications are stored; it reads beside the users stream (in a child process with its own
client), and the assignment stream takes the answers in app order. The simulator, this process
and PostgreSQL then keep two cores busy instead of waiting on each other in turn.

The reader never touches the database. An error for one app is handed to the stream with that
app's answer and raised there, so the run's error policy (retry later, reconnect, skip a deleted
app) is the same as when the stream reads for itself; after any error other than a deleted app the
reader stops reading.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any

from jumpcloud import errors
from jumpcloud.child import Child, Send, error_frame, rebuild_error, serve
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
        if (
            not isinstance(target, dict)
            or not isinstance(target_id, str)
            or not target_id
            or target.get("type") not in (None, kind)
        ):
            skipped += 1
            continue
        ids.add(target_id[:64])
    return ids, skipped


def read_app(
    client: Any, app_id: str, known_groups: set[str] | dict[str, Any], pool: ThreadPoolExecutor | None = None
) -> AppAnswer:
    """Everything the assignment stream needs for one app; groups in `known_groups` are not re-read."""
    answer = AppAnswer()
    answer.direct, skipped_direct = association_targets(
        client.iter_application_associations(app_id, "user"), "user"
    )
    answer.groups, skipped_groups = association_targets(
        client.iter_application_associations(app_id, "user_group"), "user_group"
    )
    answer.pages, answer.skipped = 2, skipped_direct + skipped_groups
    for group_id in sorted(answer.groups):
        if group_id in known_groups or group_id in answer.memberships:
            continue
        members, pages, skipped = read_group(client, group_id, pool)
        answer.memberships[group_id] = members
        answer.pages += pages
        answer.skipped += skipped
    return answer


def read_group(
    client: Any, group_id: str, pool: ThreadPoolExecutor | None = None
) -> tuple[frozenset[str], int, int]:
    """A group's resolved membership (nested groups included): (user ids, pages, malformed records).
    With a `pool`, several of its pages are requested at once: a big group is hundreds of pages."""
    members: set[str] = set()
    pages = skipped = 0
    # Closing the listing drops the requests asked ahead.
    with closing(client.iter_user_group_membership_pages(group_id, pool)) as page_iter:
        for page in page_iter:
            members.update(b.user_id for b in page.items)
            pages += 1
            skipped += page.skipped
    return frozenset(members), pages, skipped


def _produce(send: Send, api_key: str, client_options: dict[str, Any], app_ids: list[str]) -> None:
    """Child side: one ("app", (app_id, answer, error)) frame per app, in order. A deleted app is
    reported with its frame and reading goes on; any other error ends the child (jumpcloud.child
    reports it, and the parent hands it to the first app without an answer)."""
    from jumpcloud.client import JumpCloudClient

    seen: set[str] = set()
    with JumpCloudClient(api_key, **client_options) as client, ThreadPoolExecutor(PAGES_AHEAD) as pool:
        for app_id in app_ids:
            try:
                answer = read_app(client, app_id, seen, pool)
            except errors.NotFound as exc:
                send(("app", (app_id, None, error_frame(exc))))
                continue
            seen.update(answer.memberships)
            memberships = {g: list(m) for g, m in answer.memberships.items()}
            send(
                (
                    "app",
                    (
                        app_id,
                        (list(answer.direct), list(answer.groups), answer.pages, answer.skipped, memberships),
                        None,
                    ),
                )
            )


def _answer(values: tuple[Any, ...] | None, error: tuple[Any, ...] | None) -> AppAnswer:
    if error is not None or values is None:
        return AppAnswer(
            error=rebuild_error(*error) if error else errors.UpstreamError("No answer for an app.")
        )
    direct, groups, pages, skipped, memberships = values
    return AppAnswer(
        direct=set(direct),
        groups=set(groups),
        pages=pages,
        skipped=skipped,
        memberships={g: frozenset(m) for g, m in memberships.items()},
    )


class AssignmentReader:
    """Reads AppAnswers for `app_ids`, in order, in a child process (jumpcloud.child: the key on
    its stdin, never argv), collected by a daemon thread; `take(app_id)` waits for one.

    A process rather than a thread of this one: on a resync the sync is this process's Python
    work (2,500 pages decoded and compared), and a thread would share the GIL with the users
    stream; the child reads on the other core."""

    def __init__(
        self, api_key: str, client_options: dict[str, Any], app_ids: list[str], run_stop: threading.Event
    ):
        self._order = list(app_ids)
        self._answers: dict[str, AppAnswer] = {}
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._run_stop = run_stop
        self._done = False
        self._child = Child(
            "jumpcloud.assignment_reader",
            {"api_key": api_key, "client_options": client_options, "app_ids": self._order},
            "app-assignment reader",
        )
        self._thread = threading.Thread(target=self._read, name="assignment-reader", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        answered = 0
        try:
            for _kind, (app_id, values, error) in self._child.frames():
                answer = _answer(values, error)
                with self._cond:
                    self._answers[app_id] = answer
                    answered += 1
                    self._cond.notify_all()
        except BaseException as exc:  # handed to the stream with the next app's answer
            if not self._stop.is_set() and answered < len(self._order):
                with self._cond:
                    self._answers[self._order[answered]] = AppAnswer(error=exc)
        finally:
            self._child.stop()
            with self._cond:
                self._done = True
                self._cond.notify_all()

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
        """Stop reading: ends the child (its requests in flight with it) and the collecting thread."""
        self._stop.set()
        self._child.stop()
        self._thread.join(timeout=60)


if __name__ == "__main__":
    serve(_produce)

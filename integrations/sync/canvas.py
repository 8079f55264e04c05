"""A sync run as a Celery canvas: the provider's streams, ordered by what they depend on.

Each stream follows the last stream it depends on (`Stream.depends_on`); streams that follow the
same one run side by side (a group), and what follows a stream is chained after it. A stream split
into parts (`Stream.plan`) becomes part tasks in the group it is in, in the order planned (the
newest slice of a backfill first). For JumpCloud:

    group(
        organization,
        chain(applications, group(
            chain(users, group(administrators, app_assignments)),
            events_sso part 1, …, events_sso part n,
            events_directory part 1, …, events_directory part n,
        )),
    )

No step of it needs a task's result, so the canvas needs no result backend. The run's finish step
(the callback: rollups, status, caches) is started by whichever task ends last, which it finds in
the database (integrations.services.sync): a Celery chord would need a result backend, and counts a
redelivered task twice.

The slices of a backfill (`Stream.backfill`) go to their own queue (SLICES_QUEUE; workers consume
every queue in CELERY_TASK_QUEUES in turn), so that a backlog of event slices never holds up the
next inventory stream of the chain.
"""

from __future__ import annotations

from collections.abc import Sequence

from celery import chain, current_app, group
from celery.canvas import Signature

from integrations.providers import Stream

STREAM_TASK = "integrations.tasks.run_stream"
SLICES_QUEUE = "sync_slices"


class CanvasError(Exception):
    """The declared dependencies cannot be run as chains and groups."""


def follows(stream: Stream, streams: Sequence[Stream]) -> str | None:
    """The stream this one runs after: the last it waits for that is in the run."""
    present = {s.key for s in streams}
    deps = [key for key in stream.waits_for if key in present]
    return deps[-1] if deps else None


def joins(streams: Sequence[Stream]) -> set[str]:
    """The streams that join others: each depends on streams in the run that are neither the one it
    would follow nor before it (users and a graph read beside them, say). A join is not in the
    canvas: the task that ends last of those it depends on sends it (`join_canvas`)."""
    by_key = {s.key: s for s in streams}
    found: set[str] = set()
    for stream in streams:
        parent = follows(stream, streams)
        before = _ancestors(parent, by_key)
        if any(key in by_key and key not in before for key in stream.waits_for):
            found.add(stream.key)
    return found


def check_streams(streams: Sequence[Stream]) -> None:
    """Raise CanvasError unless the dependencies can run as chains, groups and joins: only a join
    depends on a stream split into parts (a chain would follow each part, not all of them)."""
    by_key = {s.key: s for s in streams}
    joined = joins(streams)
    for stream in streams:
        if stream.key in joined:
            continue
        for key in stream.waits_for:
            if key in by_key and by_key[key].plan is not None:  # absent: not of this kind of run
                raise CanvasError(f"{stream.key} depends on {key}, which is split into parts")


def _ancestors(key: str | None, by_key: dict[str, Stream]) -> set[str]:
    seen: set[str] = set()
    while key is not None and key not in seen:
        seen.add(key)
        key = follows(by_key[key], list(by_key.values()))
    return seen


def stream_task(run_id: int, stream: Stream, part: str) -> Signature:
    signature = current_app.signature(STREAM_TASK, args=(run_id, stream.key, part), immutable=True)
    if stream.backfill:
        signature.set(queue=SLICES_QUEUE)
    return signature


class _Canvas:
    """Builds the chains and groups below a stream; a join and what follows it are left out."""

    def __init__(
        self, run_id: int, streams: Sequence[Stream], parts: dict[str, list[str]], done: set[tuple[str, str]]
    ):
        check_streams(streams)
        self.run_id, self.parts, self.done = run_id, parts, done
        joined = joins(streams)
        self.followers: dict[str | None, list[Stream]] = {}
        for stream in streams:
            if stream.key not in joined:
                self.followers.setdefault(follows(stream, streams), []).append(stream)

    def below(self, stream: Stream | None) -> Signature | None:
        """What follows `stream` (None: the run's start), side by side."""
        key = None if stream is None else stream.key
        return _together([s for s in map(self.subtree, self.followers.get(key, [])) if s is not None])

    def subtree(self, stream: Stream) -> Signature | None:
        tasks = [
            stream_task(self.run_id, stream, p)
            for p in self.parts.get(stream.key, [""])
            if (stream.key, p) not in self.done
        ]
        head, after = _together(tasks), self.below(stream)
        if head is None or after is None:
            return head or after
        return chain(head, after)


def sync_canvas(
    run_id: int, streams: Sequence[Stream], parts: dict[str, list[str]], done: set[tuple[str, str]]
) -> Signature | None:
    """The canvas of the tasks of a run that are not done yet (None when nothing is left), but
    for the joins (`join_canvas`).

    `parts`: each stream's part keys ([""] for a stream in one piece); `done`: (stream, part)
    pairs already finished, left out (a resumed run runs the rest)."""
    return _Canvas(run_id, streams, parts, done).below(None)


def join_canvas(
    run_id: int,
    join: Stream,
    streams: Sequence[Stream],
    parts: dict[str, list[str]],
    done: set[tuple[str, str]],
) -> Signature | None:
    """A join's tasks not done yet and what follows it: sent once all it depends on have ended."""
    return _Canvas(run_id, streams, parts, done).subtree(join)


def _together(signatures: list[Signature]) -> Signature | None:
    """One group of these (a group's members taken in, in order: nested groups mean the same,
    but Celery sends a group nested in a group that follows a chain's step in reverse order,
    and a split stream's parts are planned in the order they should run)."""
    flat: list[Signature] = []
    for signature in signatures:
        flat.extend(signature.tasks if isinstance(signature, group) else [signature])
    if not flat:
        return None
    return flat[0] if len(flat) == 1 else group(flat)

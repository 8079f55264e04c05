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

Tasks of parted streams go to their own queue (SLICES_QUEUE; workers consume every queue in
CELERY_TASK_QUEUES in turn), so that a backlog of event slices never holds up the next inventory
stream of the chain.
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
    """The stream this one runs after: the last of its dependencies that is in the run."""
    present = {s.key for s in streams}
    deps = [key for key in stream.depends_on if key in present]
    return deps[-1] if deps else None


def check_streams(streams: Sequence[Stream]) -> None:
    """Raise CanvasError unless each stream's dependencies in the run can be met by following the
    last one (the others come before it), and no stream depends on a stream split into parts."""
    by_key = {s.key: s for s in streams}
    for stream in streams:
        for key in stream.depends_on:
            if key not in by_key:
                continue  # not part of this kind of run (an events sync has no applications stream)
            if by_key[key].plan is not None:
                raise CanvasError(f"{stream.key} depends on {key}, which is split into parts")
        parent = follows(stream, streams)
        ancestors = _ancestors(parent, by_key)
        missing = [
            key for key in stream.depends_on if key in by_key and key != parent and key not in ancestors
        ]
        if missing:
            raise CanvasError(
                f"{stream.key} follows {parent}, which does not depend on {', '.join(missing)}: "
                f"list {parent} last and make it depend on the others"
            )


def _ancestors(key: str | None, by_key: dict[str, Stream]) -> set[str]:
    seen: set[str] = set()
    while key is not None and key not in seen:
        seen.add(key)
        key = follows(by_key[key], list(by_key.values()))
    return seen


def stream_task(run_id: int, stream: Stream, part: str) -> Signature:
    signature = current_app.signature(STREAM_TASK, args=(run_id, stream.key, part), immutable=True)
    if stream.plan is not None:
        signature.set(queue=SLICES_QUEUE)
    return signature


def sync_canvas(
    run_id: int, streams: Sequence[Stream], parts: dict[str, list[str]], done: set[tuple[str, str]]
) -> Signature | None:
    """The canvas of the tasks of a run that are not done yet (None when nothing is left).

    `parts`: each stream's part keys ([""] for a stream in one piece); `done`: (stream, part)
    pairs already finished, left out (a resumed run runs the rest)."""
    check_streams(streams)
    followers: dict[str | None, list[Stream]] = {}
    for stream in streams:
        followers.setdefault(follows(stream, streams), []).append(stream)

    def subtree(stream: Stream) -> Signature | None:
        tasks = [
            stream_task(run_id, stream, p) for p in parts.get(stream.key, [""]) if (stream.key, p) not in done
        ]
        head = _together(tasks)
        after = _together([s for s in map(subtree, followers.get(stream.key, [])) if s is not None])
        if head is None or after is None:
            return head or after
        return chain(head, after)

    return _together([s for s in map(subtree, followers.get(None, [])) if s is not None])


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

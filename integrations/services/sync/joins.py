"""Joins: a stream that depends on streams running side by side is started by the last of them
to end (integrations.sync.canvas.joins), the way the run's finish step is.

Every task that ends looks for joins whose dependencies have all ended and sends them. Two tasks
ending at once may both see it: the first to mark the join's tasks queued sends it. A resumed run
sends its ready joins again (their messages may have been lost with a worker); a second message
for one task is harmless, only one claims it.
"""

from __future__ import annotations

from django.db import transaction

from integrations.models import SyncTask
from integrations.providers import Stream
from integrations.services.sync.common import send_on_commit
from integrations.sync.canvas import join_canvas, joins

QUEUED = "queued"  # the lease of a join's pending task once a message for it was sent


def send_ready_joins(run_id: int, streams: list[Stream], *, resend: bool = False) -> int:
    """Send each join of the run whose dependencies have all ended and whose tasks are pending;
    returns how many were sent. `resend`: also those already sent (a resumed run)."""
    joined = joins(streams)
    if not joined:
        return 0
    rows = list(SyncTask.objects.filter(run_id=run_id).order_by("pk").values_list("stream", "part", "status"))
    parts: dict[str, list[str]] = {}
    ended: dict[str, bool] = {}
    for key, part, status in rows:
        parts.setdefault(key, []).append(part)
        ended[key] = ended.get(key, True) and status in SyncTask.DONE
    done = {(key, part) for key, part, status in rows if status in SyncTask.DONE}
    keys = {s.key for s in streams}
    sent = 0
    for stream in streams:
        if stream.key not in joined or ended.get(stream.key, True):
            continue
        if not all(ended.get(dep, True) for dep in stream.waits_for if dep in keys):
            continue
        with transaction.atomic():
            pending = SyncTask.objects.filter(
                run_id=run_id, stream=stream.key, status=SyncTask.Status.PENDING
            )
            if not resend:
                pending = pending.filter(lease="")
            if not pending.update(lease=QUEUED):
                continue  # sent by another task that ended at the same time
            canvas = join_canvas(run_id, stream, streams, parts, done)
            if canvas is not None:
                send_on_commit(canvas)
                sent += 1
    return sent

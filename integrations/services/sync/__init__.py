"""Syncs: request one, start it as a canvas, run its tasks, finish it; schedule and recover runs.

A run's life (docs/sync.md has the picture):

1. `sync_run_request` writes a queued SyncRun (at most one queued or running per connection: a
   partial unique constraint) and queues `start_sync`.
2. `sync_run_start` marks it running, asks each parted stream for its parts, writes one SyncTask
   row per stream or part, and sends the run's canvas (integrations.sync.canvas).
3. `sync_task_execute` runs one task: it takes the task's lease, runs the stream function with a
   StreamContext, and records the outcome. Upstream trouble parks the task for a retry
   (RetryLater: the Celery task retries it, never before a Retry-After); a rejected key stops the
   whole run; any other error fails the stream, and the streams that depend on it are skipped.
   A task that ends sends the joins it was the last to wait for (joins.py).
4. The task that ends last claims the run's finish (an atomic UPDATE) and queues `finish_sync`:
   `sync_run_finish` runs the streams' finish steps (rollups), sets the run's and the
   connection's status, warms the dashboard cache and sends `sync_run_finished`.

Modules: runs.py (request, start, the foreground runner, dispatch, recovery), task.py (one
task), joins.py (sending a join), finish.py (the callback), common.py (what they share).

Recovery: a task whose heartbeat is older than SYNC_STALE_AFTER lost its worker; beat's
`sync_recover_stale` puts it back and sends the run's remaining canvas again. Redelivered or
duplicated messages find their task done or held, and do nothing.
"""

from integrations.services.sync.common import RetryLater, SyncAlreadyRunning, SyncNotAllowed, streams_for
from integrations.services.sync.finish import sync_run_finish
from integrations.services.sync.runs import (
    sync_dispatch_due,
    sync_prune_history,
    sync_recover_stale,
    sync_run_execute,
    sync_run_request,
    sync_run_start,
)
from integrations.services.sync.task import sync_task_execute

__all__ = [
    "RetryLater",
    "SyncAlreadyRunning",
    "SyncNotAllowed",
    "streams_for",
    "sync_dispatch_due",
    "sync_prune_history",
    "sync_recover_stale",
    "sync_run_execute",
    "sync_run_finish",
    "sync_run_request",
    "sync_run_start",
    "sync_task_execute",
]

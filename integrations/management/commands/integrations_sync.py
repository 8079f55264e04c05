"""Sync one connection or all of them: queue it for the workers, or run it here with --wait.

--wait runs the whole sync in this process, task after task in the canvas's order. A sync that is
queued but that no worker has started (e.g. the first sync `jumpcloud_connect` queued with no
worker running) is taken over and run here too.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from integrations.models import Connection, SyncRun
from integrations.services.sync import (
    SyncAlreadyRunning,
    SyncNotAllowed,
    sync_run_execute,
    sync_run_request,
)


class Command(BaseCommand):
    help = "Sync connections. Without --wait the sync is queued for the Celery workers."

    def add_arguments(self, parser: CommandParser) -> None:
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument("--connection", type=int, help="Connection id")
        target.add_argument("--all", action="store_true", help="Every live connection")
        parser.add_argument("--kind", default="full", choices=[k for k, _ in SyncRun.Kind.choices])
        parser.add_argument("--wait", action="store_true", help="Run in the foreground with a progress bar")

    def handle(self, *args: Any, **opts: Any) -> None:
        qs = Connection.objects.exclude(status=Connection.Status.DISCONNECTED)
        if opts["connection"]:
            qs = qs.filter(pk=opts["connection"])
            if not qs.exists():
                raise CommandError(f"No live connection with id {opts['connection']}.")
        failures = 0
        for connection in qs:
            try:
                run = sync_run_request(
                    connection=connection,
                    kind=opts["kind"],
                    trigger=SyncRun.Trigger.MANUAL,
                    enqueue=not opts["wait"],
                )
            except SyncAlreadyRunning as exc:
                if not (opts["wait"] and exc.run is not None):
                    number = exc.run.pk if exc.run else "?"
                    self.stderr.write(
                        f"{connection.name}: a sync is already queued or running (run {number})."
                    )
                    failures += 1
                    continue
                run = exc.run  # run here unless a worker is running it (see _run_with_progress)
            except SyncNotAllowed as exc:
                self.stderr.write(f"{connection.name}: {exc}")
                failures += 1
                continue
            if not opts["wait"]:
                self.stdout.write(f"{connection.name}: queued sync run {run.pk}.")
                continue
            done = self._run_with_progress(run)
            if done is None:
                self.stderr.write(
                    f"{connection.name}: sync run {run.pk} is running on a worker; follow it in the dashboard."
                )
                failures += 1
                continue
            run = done
            self._summary(connection, run)
            failures += run.status not in (SyncRun.Status.SUCCEEDED, SyncRun.Status.PARTIAL)
        if failures:
            raise CommandError(f"{failures} sync(s) did not succeed.")

    def _run_with_progress(self, run: SyncRun) -> SyncRun | None:
        done = threading.Event()
        bar = tqdm(total=len(run.streams), unit="stream", desc=run.connection.name, file=self.stderr._out)

        def watch() -> None:
            from django.db import connection as db

            try:
                while not done.wait(0.5):
                    current = SyncRun.objects.filter(pk=run.pk).values("streams", "current_stream").first()
                    if not current:
                        continue
                    finished = sum(
                        s.get("status") in ("succeeded", "skipped", "failed")
                        for s in current["streams"].values()
                    )
                    stream = current["streams"].get(current["current_stream"], {})
                    bar.n = finished
                    bar.set_postfix_str(f"{stream.get('label', '')}: {stream.get('fetched', 0)} fetched")
            finally:
                db.close()

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()

        def wait(countdown: float) -> None:
            self.stderr.write(f"\nThe provider asked us to wait: trying again in {countdown:.0f} s")
            time.sleep(countdown)

        try:
            result = sync_run_execute(run_id=run.pk, on_retry=wait)
        finally:
            done.set()
            watcher.join()
            bar.n = bar.total
            bar.close()
        return result

    def _summary(self, connection: Connection, run: SyncRun) -> None:
        self.stdout.write(f"\n{connection.name}: {run.get_status_display()} in {run.duration or 0:.1f} s")
        self.stdout.write(
            f"  {'stream':<28}{'fetched':>10}{'created':>10}{'updated':>10}{'removed':>10}{'skipped':>10}"
        )
        for s in run.streams.values():
            self.stdout.write(
                f"  {s.get('label', ''):<28}{s.get('fetched', 0):>10}{s.get('created', 0):>10}"
                f"{s.get('updated', 0):>10}{s.get('removed', 0):>10}{s.get('skipped', 0):>10}  {s.get('status')}"
                + (f" — {s['error']}" if s.get("error") else "")
            )
        if run.error_message:
            self.stdout.write(f"  {run.error_message}")

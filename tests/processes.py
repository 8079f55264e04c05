"""Real processes for integration tests: a Celery worker and beat on the test database and Redis."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def database_url() -> str:
    """The URL of the database the tests are using right now (pytest-django's test_ database)."""
    db = {**settings.DATABASES["default"], **connection.settings_dict}
    user = db.get("USER") or "postgres"
    host = db.get("HOST") or db.get("OPTIONS", {}).get("host") or "127.0.0.1"
    port = db.get("PORT") or db.get("OPTIONS", {}).get("port") or 5432
    auth = user + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    if str(host).startswith("/"):  # a Unix socket directory (the embedded server)
        return f"postgres://{auth}@/{db['NAME']}?host={host}&port={port}"
    return f"postgres://{auth}@{host}:{port}/{db['NAME']}"


def child_env(**extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "TORII_ENV": "test",
        "DATABASE_URL": database_url(),
        "PYTHONUNBUFFERED": "1",
        # The worker builds clients only for allowed origins (the SSRF guard): the test's simulator.
        "JUMPCLOUD_ALLOWED_BASE_URLS": ",".join(settings.JUMPCLOUD_ALLOWED_BASE_URLS),
    }
    env.update(extra)
    return env


class CeleryProcess:
    """A `celery -A torii worker|beat` child in its own process group (so SIGKILL takes all of it)."""

    def __init__(
        self,
        kind: str = "worker",
        *args: str,
        log: Path,
        env: dict[str, str] | None = None,
        name: str = "",
        concurrency: int = 1,
    ):
        self.kind = kind
        self.log_path = log
        # The worker's node name: as two machines would be, two workers differ by it.
        self.name = f"{name or f'test-{os.getpid()}-{time.monotonic_ns()}'}@{socket.gethostname()}"
        cmd = [sys.executable, "-m", "celery", "-A", "torii", kind, "--loglevel=INFO", *args]
        if kind == "worker":
            cmd += [
                "--pool=prefork",
                f"--concurrency={concurrency}",
                "--without-gossip",
                "--without-mingle",
                f"--hostname={self.name}",
            ]
        self._log = open(log, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=env or child_env(),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log():
                return
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"celery {self.kind} exited ({self.proc.returncode}):\n{self.log()[-4000:]}"
                )
            time.sleep(0.2)
        raise AssertionError(
            f"celery {self.kind} did not log {text!r} within {timeout}s:\n{self.log()[-4000:]}"
        )

    def pause(self, paused: bool) -> None:
        """SIGSTOP (or SIGCONT) the whole process group: frozen, it changes nothing more."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGSTOP if paused else signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL the whole process group: the worker gets no chance to clean up."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        self._log.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        if not self._log.closed:
            self._log.close()

"""Run torii's test suite against real PostgreSQL and Redis when they are reachable.

Addresses come from DATABASE_URL / REDIS_URL, else the default local ones. When a service cannot be
reached the suite falls back (SQLite, no Redis) and says so loudly — unless TORII_REQUIRE_SERVICES=1
(CI), where an unreachable service is a failure, not a fallback.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/torii"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/15"
CHROMIUM = os.environ.get("TORII_CHROMIUM", "/usr/bin/chromium")


def reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection(
            (parsed.hostname or "127.0.0.1", parsed.port or default_port), timeout=2
        ):
            return True
    except OSError:
        return False


def say(message: str) -> None:
    print(f"[make test] {message}", flush=True)


def ensure_chromium() -> None:
    if os.path.exists(CHROMIUM):
        return
    if os.geteuid() == 0 and shutil.which("apt-get"):
        say("installing Debian's chromium for the browser tests (apt-get)...")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=True, env=env)
    else:
        say(
            f"WARNING: {CHROMIUM} is missing and cannot be installed here; browser tests will fail. "
            "Install Debian's chromium (sudo apt-get install chromium)."
        )


def main(argv: list[str]) -> int:
    require = os.environ.get("TORII_REQUIRE_SERVICES") == "1"
    env = {**os.environ, "TORII_ENV": "test"}
    database_url = os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)
    redis_url = os.environ.get("REDIS_URL", DEFAULT_REDIS_URL)

    if database_url.startswith("postgres") and reachable(database_url, 5432):
        env["DATABASE_URL"] = database_url
        say(f"PostgreSQL: {urlparse(database_url).hostname}:{urlparse(database_url).port or 5432}")
    elif require:
        say(f"FAIL: PostgreSQL is not reachable at {database_url} (TORII_REQUIRE_SERVICES=1)")
        return 2
    else:
        env.pop("DATABASE_URL", None)
        say("!!! PostgreSQL is NOT reachable: FALLING BACK TO SQLite. PostgreSQL-only tests will fail. !!!")

    if reachable(redis_url, 6379):
        env["REDIS_URL"] = redis_url
        say(f"Redis: {urlparse(redis_url).hostname}:{urlparse(redis_url).port or 6379}")
    elif require:
        say(f"FAIL: Redis is not reachable at {redis_url} (TORII_REQUIRE_SERVICES=1)")
        return 2
    else:
        env.pop("REDIS_URL", None)
        say("!!! Redis is NOT reachable: falling back to the filesystem broker; Redis tests will fail. !!!")

    ensure_chromium()
    cmd = [sys.executable, "-m", "pytest", *argv]
    say("running: " + " ".join(cmd[2:]))
    result = subprocess.run(cmd, cwd=ROOT, env=env)
    if result.returncode == 5:
        say("FAIL: pytest collected no tests")
        return 1
    return result.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

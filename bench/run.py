"""`make bench`: the sync benchmark on a 50k-user / 300-app / 1M-event tenant, then the dashboard
page benchmark on the database that sync filled. Extra arguments go to bench/sync.py.

`make bench ARGS=--large` (and e.g. `ARGS="--large --scale 0.01"`): the large-tenant benchmark
instead, bench/large_tenant.py (200,000 people, 20 connections, 10M events over 400 days)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DB = "torii_bench"


def main() -> int:
    if sys.argv[1:2] == ["--large"]:
        return subprocess.run([sys.executable, "bench/large_tenant.py", *sys.argv[2:]], cwd=ROOT).returncode
    sync = subprocess.run([sys.executable, "bench/sync.py", "--db", DB, "--keep", *sys.argv[1:]], cwd=ROOT)
    if sync.returncode:
        return sync.returncode
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DB}",
        "DEBUG": "false",
        "TORII_ENV": "development",
        "LOG_LEVEL": "WARNING",
    }
    return subprocess.run(
        [sys.executable, "bench/dashboard_pages.py", "-n", "20"], cwd=ROOT, env=env
    ).returncode


if __name__ == "__main__":
    sys.exit(main())

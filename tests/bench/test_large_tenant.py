"""bench/large_tenant.py runs end to end at a hundredth of its size (figures are the bench's job)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent.parent

pytestmark = [pytest.mark.integration]


def test_the_large_tenant_bench_runs_at_a_small_scale(tmp_path):
    out = tmp_path / "large.json"
    db = f"{settings.DATABASES['default']['NAME']}_large"
    env = {**os.environ, "REDIS_URL": settings.REDIS_URL or os.environ.get("REDIS_URL", "")}
    done = subprocess.run(
        [
            sys.executable,
            "bench/large_tenant.py",
            "--scale",
            "0.01",
            "--db",
            db,
            "--out",
            str(out),
            "--pages",
            "1",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(out.read_text())
    tenant = result["tenant"]
    assert tenant["connections"] == 20 and tenant["directory_people"] == 2_000
    assert tenant["events"] >= 100_000
    retention = result["retention"]
    assert retention["events_dropped"] > 0 and retention["rollups_unchanged"] is True
    assert result["incremental_sync"]["events_stored"] >= result["incremental_sync"]["events_added"]
    assert "ratio to goal" in done.stdout
    pages = result["pages"]["results"]
    assert len(pages) >= 14 and all(p["status"] == 200 for p in pages), pages
    csv = result["pages"]["csv"]
    # Every listed person of the 20 connections (the directory's people, administrators included).
    assert csv["status"] == 200 and csv["rows"] >= tenant["directory_people"]

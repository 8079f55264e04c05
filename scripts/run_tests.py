"""`make test`: torii's test suite on real PostgreSQL and Redis, with nothing installed beforehand.

DATABASE_URL / REDIS_URL, when set, select existing servers. When one is unset, this script starts
a private one for the run and stops it afterwards: an embedded PostgreSQL (torii/embedded_db.py)
with its data in a temporary directory, and Debian's `redis-server` on a free port with a temporary
directory (installed with apt-get when missing and run as root). It never uses whatever happens to
listen on the default ports. With TORII_REQUIRE_SERVICES=1 (CI's run against the machine's own
servers), both URLs must be set and reachable: anything else fails the run before any test.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CHROMIUM = os.environ.get("TORII_CHROMIUM", "/usr/bin/chromium")


def say(message: str) -> None:
    print(f"[make test] {message}", flush=True)


def reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    socket_dir = parse_qs(parsed.query).get("host", [""])[0]
    try:
        if socket_dir.startswith("/"):
            port = parse_qs(parsed.query).get("port", [str(default_port)])[0]
            with socket.socket(socket.AF_UNIX) as sock:
                sock.settimeout(2)
                sock.connect(f"{socket_dir}/.s.PGSQL.{port}")
            return True
        with socket.create_connection(
            (parsed.hostname or "127.0.0.1", parsed.port or default_port), timeout=2
        ):
            return True
    except OSError:
        return False


def apt_install(package: str, why: str) -> bool:
    """Install a Debian package when running as root with apt-get; False when that is not possible."""
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return False
    say(f"installing Debian's {package} {why} (apt-get)...")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", package], check=True, env=env)
    return True


def ensure_chromium() -> None:
    if not os.path.exists(CHROMIUM) and not apt_install("chromium", "for the browser tests"):
        say(
            f"WARNING: {CHROMIUM} is missing and cannot be installed here; browser tests will fail. "
            "Install Debian's chromium (sudo apt-get install chromium)."
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def private_postgres(workdir: Path) -> Iterator[str]:
    from torii import embedded_db

    server = embedded_db.Server(workdir / "postgres", ephemeral=True)
    began = time.monotonic()
    server.start()
    try:
        server.ensure_database("torii")
        say(f"PostgreSQL: a private embedded server for this run ({time.monotonic() - began:.1f} s to start)")
        yield embedded_db.url(server.data_dir, "torii")
    finally:
        server.stop()


@contextlib.contextmanager
def private_redis(workdir: Path) -> Iterator[str]:
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not os.path.exists(binary) and not apt_install("redis-server", "for a private Redis"):
        raise SystemExit(
            "[make test] FAIL: redis-server is missing and cannot be installed here. Install Debian's "
            "redis-server, or set REDIS_URL to a Redis server of your own."
        )
    directory = workdir / "redis"
    directory.mkdir()
    for _attempt in range(5):
        port = free_port()
        proc = subprocess.Popen(
            [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"]
            + ["--dir", str(directory), "--daemonize", "no", "--logfile", str(directory / "redis.log")],
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        url = f"redis://127.0.0.1:{port}/0"
        for _ in range(100):
            if proc.poll() is not None:
                break
            if _pong(port):
                say(f"Redis: a private redis-server for this run (port {port})")
                try:
                    yield url
                finally:
                    proc.terminate()
                    try:
                        proc.wait(timeout=15)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait()
                return
            time.sleep(0.1)
        proc.kill()
        proc.wait()
    log = (directory / "redis.log").read_text(errors="replace")[-2000:]
    raise SystemExit(f"[make test] FAIL: the private redis-server did not start:\n{log}")


def _pong(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def main(argv: list[str]) -> int:
    require = os.environ.get("TORII_REQUIRE_SERVICES") == "1"
    env = {**os.environ, "TORII_ENV": "test"}
    database_url = os.environ.get("DATABASE_URL", "")
    redis_url = os.environ.get("REDIS_URL", "")
    for name, url, port in (("DATABASE_URL", database_url, 5432), ("REDIS_URL", redis_url, 6379)):
        if require and not (url and reachable(url, port)):
            say(f"FAIL: {name}={url or '(unset)'} is not a reachable server (TORII_REQUIRE_SERVICES=1)")
            return 2
        if url and not reachable(url, port):
            say(f"FAIL: {name} is set but nothing answers at {url}; unset it to use a private server")
            return 2

    def stop(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)  # unwinds through the cleanups below

    signal.signal(signal.SIGTERM, stop)
    ensure_chromium()
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="torii-test-services-")))
        workdir.chmod(0o711)  # as root, the database server runs as an unprivileged user
        if database_url:
            say(f"PostgreSQL: {urlparse(database_url).hostname}:{urlparse(database_url).port or 5432}")
        else:
            env["DATABASE_URL"] = stack.enter_context(private_postgres(workdir))
        if redis_url:
            say(f"Redis: {urlparse(redis_url).hostname}:{urlparse(redis_url).port or 6379}")
        else:
            env["REDIS_URL"] = stack.enter_context(private_redis(workdir))
        cmd = [sys.executable, "-m", "pytest", *argv]
        say("running: " + " ".join(cmd[2:]))
        result = subprocess.run(cmd, cwd=ROOT, env=env, check=False)
    if result.returncode == 5:
        say("FAIL: pytest collected no tests")
        return 1
    return result.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

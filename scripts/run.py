"""`make run`: the whole product on this machine, with nothing installed beside it.

Starts torii's embedded PostgreSQL (unless DATABASE_URL names a server), migrates, makes the first
Admin, then runs the web server, a Celery worker, Celery beat and the JumpCloud simulator
(Procfile.dev, through honcho). Ctrl-C (SIGINT) or SIGTERM stops all of them, then the database
server this script started.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def say(message: str) -> None:
    print(f"[make run] {message}", flush=True)


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "torii.settings")
    from django.conf import settings

    from torii import embedded_db

    data_dir = settings.EMBEDDED_DATABASE_DIR  # loads the settings, and with them .env into os.environ
    port = os.environ.get("PORT", "8000")
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PORT": port, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    server = embedded_db.Server(data_dir) if data_dir else None
    started = False
    honcho: subprocess.Popen[bytes] | None = None

    def forward(signum: int, _frame: object) -> None:
        # Ctrl-C reaches honcho too (same process group); a signal sent to this script alone is
        # passed on. Either way honcho stops its processes and returns, and cleanup follows.
        if honcho is not None and honcho.poll() is None:
            honcho.send_signal(signum)
        else:
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    try:
        if server is not None:
            try:
                started = server.start()
                server.ensure_database()
            except embedded_db.EmbeddedDatabaseError as exc:
                say(f"cannot start the embedded PostgreSQL: {exc}")
                return 1
            say(
                f"PostgreSQL: embedded, data in {server.data_dir}" + ("" if started else " (already running)")
            )
        manage = [sys.executable, str(ROOT / "manage.py")]
        subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
        subprocess.run([*manage, "create_first_admin"], cwd=ROOT, env=env, check=True)
        print(
            f"\n  torii:               http://127.0.0.1:{port}/   (log in with the admin above)\n"
            f"  JumpCloud simulator: {settings.JUMPCLOUD_SIMULATOR_URL}/   (connected as the demo account)\n"
            "  Stop with Ctrl-C.\n",
            flush=True,
        )
        honcho = subprocess.Popen([str(bin_dir / "honcho"), "-f", "Procfile.dev", "start"], cwd=ROOT, env=env)
        return honcho.wait()
    except KeyboardInterrupt:
        return 130
    except subprocess.CalledProcessError as exc:
        return exc.returncode or 1
    finally:
        if honcho is not None and honcho.poll() is None:
            honcho.terminate()
            honcho.wait()
        if started and server is not None:
            say("stopping the embedded PostgreSQL")
            server.stop()


if __name__ == "__main__":
    sys.exit(main())

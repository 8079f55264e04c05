"""Sync benchmark: one JumpCloud tenant, synced by this code's Celery workers, with the limit and
(optionally) the baseline code measured in the same run, on the same simulator.

    .venv/bin/python bench/sync.py                      # loopback: 50,000 users, 300 apps, 1M events
    .venv/bin/python bench/sync.py --latency-ms 150 --users 10000 --apps 60 --events 200000
    .venv/bin/python bench/sync.py --baseline 454e2cd   # and a git revision's code beside it

The simulator runs in its own process; each code version gets a fresh PostgreSQL database.

This code runs as in production: `integrations_sync` queues the run and real Celery workers
(`celery -A torii worker`, default concurrency: one process per core) execute its canvas, with
Redis as the broker (REDIS_URL, default redis://127.0.0.1:6379/13: a database of its own, flushed).
Measured:
- the *limit*: every page this sync reads, fetched through the client one request at a time,
  plus a raw COPY of the event rows into a bare table (loopback's yardstick: goal ≤ 1.5×);
- the *latency bound*: (requests the sync made × the simulator's latency) ÷ the per-organization
  request limit (SYNC_MAX_REQUESTS_PER_ACCOUNT) (goal ≤ 1.3× with --latency-ms);
- the initial full sync (the run's own duration, started_at → finished_at), its requests per
  stream, peak memory per worker process, CPU; an unchanged second full sync (rows written, from
  PostgreSQL's own counters); an unchanged events sync; an events sync after 10,000 new events.
- with --baseline REV: that revision's code (a temporary git worktree sharing this .venv), run the
  way it ran in production then: `integrations_sync --wait` in one process; its initial sync's own
  duration and requests, and the ratio of this code to it (goal ≤ 1.10×).

Prints a table and writes bench/results/sync.json.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg2
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from jumpcloud.client import JumpCloudClient  # noqa: E402

EVENT_LAG = timedelta(minutes=3)  # the sync's window ends this far back (jumpcloud/streams/events.py)
EVENT_BACKFILL = timedelta(days=90)
DATA_TABLES = (
    "integrations_appuser",
    "integrations_application",
    "integrations_usageevent",
    "integrations_dailyusage",
    "integrations_lastuse",
)
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# --- processes and databases -----------------------------------------------------------------------
def pg(db: str, *, autocommit: bool = True):  # type: ignore[no-untyped-def]
    conn = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname=db)
    conn.autocommit = autocommit
    return conn


def recreate_database(name: str) -> None:
    with closing(pg("postgres")) as conn, conn.cursor() as cur:
        cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [name])
        cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
        cur.execute(f'CREATE DATABASE "{name}"')


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of one process (all its threads), or 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def tree(pid: int) -> list[int]:
    pids, stack = [], [pid]
    while stack:
        current = stack.pop()
        pids.append(current)
        try:
            for task in Path(f"/proc/{current}/task").iterdir():
                stack += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
    return pids


def postgres_cpu() -> dict[int, float]:
    """CPU seconds of every PostgreSQL process now, by pid (backends come and go during a run)."""
    found: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    found[int(entry.name)] = cpu_s(int(entry.name))
            except OSError:
                continue
    return found


def rows_written(db: str) -> int:
    """Rows inserted, updated or deleted in the data tables, from PostgreSQL's own counters (read
    until they settle: a backend publishes them shortly after its transactions)."""
    query = (
        "SELECT COALESCE(SUM(n_tup_ins + n_tup_upd + n_tup_del), 0) FROM pg_stat_user_tables "
        "WHERE relname = ANY(%s)"
    )
    with closing(pg(db)) as conn, conn.cursor() as cur:
        value = -1
        for _ in range(20):
            cur.execute("SELECT pg_stat_clear_snapshot()")
            cur.execute(query, [list(DATA_TABLES)])
            again = int(cur.fetchone()[0])
            if again == value:
                break
            value = again
            time.sleep(0.5)
        return value


def last_run(db: str) -> dict[str, Any]:
    with closing(pg(db)) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT id, status, streams, error_message, EXTRACT(EPOCH FROM finished_at - started_at), "
            "started_at, finished_at FROM integrations_syncrun ORDER BY id DESC LIMIT 1"
        )
        run_id, status, streams, error, seconds, started, finished = cur.fetchone()
    return {
        "id": run_id,
        "status": status,
        "streams": streams,
        "error": error,
        "seconds": float(seconds or 0),
        "started_at": started,
        "finished_at": finished,
    }


def require_complete(run: dict[str, Any]) -> None:
    """A figure from a run that failed part-way would look fast: stop instead."""
    bad = {k: s.get("status") for k, s in run["streams"].items() if s.get("status") != "succeeded"}
    if run["status"] != "succeeded" or bad:
        raise SystemExit(f"the sync did not complete: {run['status']} {bad} {run['error']}")


class Simulator:
    def __init__(self, args: argparse.Namespace, workdir: Path):
        keys_file = workdir / "keys.json"
        # The history ends two lag-widths ago, so the sync's window [now-90d, now-lag] holds every
        # generated event and nothing arrives late during the run.
        anchor = (datetime.now(UTC) - 2 * EVENT_LAG).replace(microsecond=0)
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jumpcloud.simulator",
                "--port",
                "0",
                "--seed",
                str(args.seed),
                "--users",
                str(args.users),
                "--apps",
                str(args.apps),
                "--events",
                str(args.events),
                "--days",
                str(args.days),
                "--anchor",
                anchor.isoformat(),
                "--keys-file",
                str(keys_file),
                "--latency-ms",
                str(args.latency_ms),
            ],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        while not keys_file.exists() or not keys_file.read_text().strip():
            if self.proc.poll() is not None:
                raise SystemExit("the simulator exited early")
            time.sleep(0.2)
        info = json.loads(keys_file.read_text())
        self.base_url, self.key = info["base_url"], info["keys"]["admin"]

    def control(self, method: str, path: str, **kwargs: Any) -> Any:
        response = requests.request(method, f"{self.base_url}/__simulator__{path}", timeout=600, **kwargs)
        response.raise_for_status()
        return response.json()

    def clear(self) -> None:
        self.control("POST", "/requests/clear")

    def requests_by_stream(self) -> Counter[str]:
        counts: Counter[str] = Counter()
        for r in self.control("GET", "/requests"):
            counts[stream_of(r)] += 1
        return counts

    def timeline(self, latency_s: float) -> dict[str, dict[str, float]]:
        """Each stream's requests over time, from their arrivals at the simulator: the first and
        last arrival (seconds after the run's first request) and how many were in flight on
        average between them (each counted for the latency it waited)."""
        arrivals: dict[str, list[float]] = {}
        answered: dict[str, list[float]] = {}
        records = self.control("GET", "/requests")
        origin = min((r["at"] for r in records), default=0.0)
        for r in records:
            stream = stream_of(r)
            if stream == "assignment_graph":  # its steps: an app's users, the groups, their members
                route = re.sub(r"/[0-9a-f]{24}", "/{id}", r["path"]).removeprefix("/api/v2")
                stream = f"{stream} {route}"
            arrivals.setdefault(stream, []).append(r["at"] - origin)
            answered.setdefault(stream, []).append(r.get("seconds", 0.0))
        spans = {}
        for stream, times in sorted(arrivals.items()):
            first, last = min(times), max(times)
            spans[stream] = {
                "first_s": round(first, 2),
                "last_s": round(last, 2),
                "in_flight": round(len(times) * latency_s / (last - first + latency_s), 1),
                "answer_ms": round(1000 * sum(answered[stream]) / len(times)),
            }
        return spans

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def stream_of(record: dict[str, Any]) -> str:
    """Which stream made a request, from its path (the simulator's request log)."""
    path = record["path"]
    if path.startswith("/api/organizations"):
        return "organization"
    if path.startswith("/api/applications"):
        return "applications"
    if path.startswith("/api/systemusers"):
        return "users"
    if path.startswith("/api/users"):
        return "administrators"
    if path.startswith(("/api/v2/applications", "/api/v2/usergroups")):
        return "assignment_graph"
    if path.endswith("/events"):
        return f"events_{(record.get('json_body') or {}).get('service', ['?'])[0]}"
    return re.sub(r"/[0-9a-f]{24}", "/{id}", path)


# --- the limit ---------------------------------------------------------------------------------------
def fetch_everything(
    client: JumpCloudClient, start: datetime, end: datetime, buf: io.StringIO
) -> dict[str, int]:
    """Every page this sync reads, one request at a time; the event rows go to `buf` as CSV."""
    users = sum(len(p.items) for p in client.iter_system_user_pages())
    admins = sum(len(p.items) for p in client.iter_administrator_pages())
    apps = [a.id for p in client.iter_application_pages() for a in p.items]
    direct = sum(1 for a in apps for _ in client.iter_application_associations(a, "user"))
    bound = {
        g: {e["to"]["id"] for e in client.iter_user_group_associations(g, "application")}
        for g in client.iter_user_group_ids()
    }
    members = {
        g: sum(len(p.items) for p in client.iter_user_group_membership_pages(g))
        for g, a in bound.items()
        if a
    }
    writer = csv.writer(buf, lineterminator="\n")
    events = 0
    for service in ("directory", "sso"):
        for page in client.iter_event_pages(service, start, end, limit=10_000):
            events += len(page.events)
            writer.writerows(
                (
                    e.id,
                    e.service,
                    e.event_type,
                    e.timestamp.isoformat(),
                    "t" if e.success else "f" if e.success is False else r"\N",
                    e.actor_id,
                    e.actor_type,
                    e.actor_username,
                    e.actor_email,
                    e.app_id,
                    e.app_label or e.app_name,
                    e.client_ip,
                    e.error_message,
                )
                for e in page.events
            )
    bindings = direct + sum(members[g] for g, a in bound.items() if a for _ in a)
    return {"users": users, "admins": admins, "apps": len(apps), "bindings": bindings, "events": events}


def measure_limit(sim: Simulator, db: str) -> dict[str, Any]:
    now = datetime.now(UTC)
    with JumpCloudClient(sim.key, base_url=sim.base_url) as client:
        # One untimed pass first: the simulator renders a list's records at its first request and
        # keeps them, so the limit and the syncs meet it in the same state.
        fetch_everything(client, now - EVENT_BACKFILL, now - EVENT_LAG, io.StringIO())
        buf = io.StringIO()
        t0 = time.perf_counter()
        counts = fetch_everything(client, now - EVENT_BACKFILL, now - EVENT_LAG, buf)
        fetch_s = time.perf_counter() - t0
    buf.seek(0)
    with closing(pg(db, autocommit=False)) as conn, conn.cursor() as cur:
        cur.execute(
            "CREATE TABLE scratch_events (external_id text, kind text, event_type text, occurred_at timestamptz, "
            "success boolean, actor_external_id text, actor_type text, actor_username text, actor_email text, "
            "application_external_id text, application_name text, client_ip text, error_message text)"
        )
        conn.commit()
        t1 = time.perf_counter()
        cur.copy_expert(r"COPY scratch_events FROM STDIN WITH (FORMAT csv, NULL '\N')", buf)
        conn.commit()
        copy_s = time.perf_counter() - t1
        cur.execute("DROP TABLE scratch_events")
        conn.commit()
    return {"fetch_s": fetch_s, "copy_s": copy_s, "limit_s": fetch_s + copy_s, **counts}


# --- this code: Celery workers -------------------------------------------------------------------------
class Workers:
    """`celery -A torii worker` with its default concurrency, sampled for memory and CPU."""

    def __init__(self, env: dict[str, str], log: Path, concurrency: int | None):
        cmd = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "torii",
            "worker",
            "--loglevel=WARNING",
            "--without-gossip",
            "--without-mingle",
            "--hostname=bench@%h",
        ]
        if concurrency:
            cmd.append(f"--concurrency={concurrency}")
        self._log = open(log, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )
        time.sleep(3)

    def processes(self) -> list[int]:
        return tree(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
        self._log.close()


def manage(env: dict[str, str], *args: str, cwd: Path = ROOT, python: Path | str = sys.executable) -> str:
    done = subprocess.run([str(python), "manage.py", *args], cwd=cwd, env=env, text=True, capture_output=True)
    if done.returncode:
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def sync_with_workers(
    env: dict[str, str], db: str, workers: Workers, connection: str, kind: str
) -> dict[str, Any]:
    """Queue a sync and wait for the workers to finish it, sampling memory and CPU meanwhile."""
    busy0, pg0 = machine_busy_s(), postgres_cpu()
    pg_seen = dict(pg0)
    cpu0 = {p: cpu_s(p) for p in workers.processes()}
    manage(env, "integrations_sync", "--connection", connection, "--kind", kind)
    peak: dict[int, float] = {}
    ticks = 0
    with closing(pg(db)) as conn, conn.cursor() as cur:
        while True:
            cur.execute("SELECT status FROM integrations_syncrun ORDER BY id DESC LIMIT 1")
            if cur.fetchone()[0] not in ("queued", "running"):
                break
            for p in workers.processes():
                peak[p] = max(peak.get(p, 0.0), rss_mb(p))
            ticks += 1
            if ticks % 10 == 0:  # scanning /proc costs CPU itself: twice a second
                pg_seen.update(postgres_cpu())
            time.sleep(0.05)
    pg_seen.update(postgres_cpu())
    run = last_run(db)
    worker_cpu = sum(max(0.0, cpu_s(p) - cpu0.get(p, 0.0)) for p in workers.processes())
    run.update(
        peak_rss_mb_per_process=max(peak.values(), default=0.0),
        cpu={
            "machine_busy_s": machine_busy_s() - busy0,
            "workers_s": worker_cpu,
            "postgres_s": sum(v - pg0.get(pid, 0.0) for pid, v in pg_seen.items()),
        },
    )
    return run


def machine_busy_s() -> float:
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(values) - values[3] - values[4]) / CLOCK_TICKS


# --- the baseline: an older revision, as it ran then ----------------------------------------------------
def baseline(rev: str, sim: Simulator, db: str, workdir: Path) -> dict[str, Any]:
    tree_dir = workdir / "baseline"
    subprocess.run(
        ["git", "worktree", "add", "--detach", str(tree_dir), rev], cwd=ROOT, check=True, capture_output=True
    )
    try:
        # Its own virtualenv with its own pinned packages: this one's editable install would
        # import this code's modules wherever the baseline lacks one.
        python = tree_dir / ".venv" / "bin" / "python"
        subprocess.run([sys.executable, "-m", "venv", str(tree_dir / ".venv")], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "-c", "requirements.lock", "-e", "."],
            cwd=tree_dir,
            check=True,
            capture_output=True,
        )
        recreate_database(db)
        env = bench_env(db, sim)
        env.pop("REDIS_URL", None)
        env.pop("VIRTUAL_ENV", None)
        manage(env, "migrate", "--noinput", "-v0", cwd=tree_dir, python=python)
        connection = manage(
            env,
            "jumpcloud_connect",
            "--base-url",
            sim.base_url,
            "--name",
            "bench",
            "--no-sync",
            cwd=tree_dir,
            python=python,
        ).strip()
        sim.clear()
        manage(env, "integrations_sync", "--connection", connection, "--wait", cwd=tree_dir, python=python)
        run = last_run(db)
        require_complete(run)
        return {"revision": rev, "seconds": run["seconds"], "requests": dict(sim.requests_by_stream())}
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(tree_dir)], cwd=ROOT, capture_output=True)


def bench_env(db: str, sim: Simulator) -> dict[str, str]:
    return {
        **os.environ,
        "TORII_ENV": "development",
        "DEBUG": "false",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{db}",
        "JUMPCLOUD_ALLOWED_BASE_URLS": sim.base_url,
        "JUMPCLOUD_API_KEY": sim.key,
        "LOG_LEVEL": "WARNING",
    }


# --- main ----------------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--apps", type=int, default=300)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--latency-ms", type=float, default=0.0, help="the simulator's delay on every request"
    )
    parser.add_argument("--concurrency", type=int, default=None, help="worker processes (default: Celery's)")
    parser.add_argument("--baseline", help="also measure this git revision's code (e.g. a commit of main)")
    parser.add_argument("--db", default="torii_bench")
    parser.add_argument("--incremental", type=int, default=10_000)
    parser.add_argument("--skip-resync", action="store_true", help="only the initial sync (and the baseline)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "sync.json")
    parser.add_argument(
        "--keep", action="store_true", help="keep the database (e.g. for bench/dashboard_pages.py)"
    )
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="torii-bench-"))
    redis_url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/13"
    requests_limit = int(os.environ.get("SYNC_MAX_REQUESTS_PER_ACCOUNT", "8"))
    sim = Simulator(args, workdir)
    result: dict[str, Any] = {
        "at": datetime.now(UTC).isoformat(),
        "tenant": {k: getattr(args, k) for k in ("users", "apps", "events", "days", "seed", "latency_ms")},
    }
    workers = None
    try:
        print(f"simulator at {sim.base_url} ({args.latency_ms:g} ms a request)", flush=True)
        recreate_database(args.db)
        env = {**bench_env(args.db, sim), "REDIS_URL": redis_url}
        import redis as redis_lib

        redis_lib.Redis.from_url(redis_url).flushdb()
        manage(env, "migrate", "--noinput", "-v0")
        if not args.latency_ms:
            result["limit"] = measure_limit(sim, args.db)
            print(
                f"limit: fetch {result['limit']['fetch_s']:.1f} s + COPY {result['limit']['copy_s']:.1f} s",
                flush=True,
            )

        if args.baseline:
            result["baseline"] = baseline(args.baseline, sim, f"{args.db}_baseline", workdir)
            print(f"baseline {args.baseline}: initial sync {result['baseline']['seconds']:.1f} s", flush=True)

        connection = manage(
            env, "jumpcloud_connect", "--base-url", sim.base_url, "--name", "bench", "--no-sync"
        ).strip()
        workers = Workers(env, workdir / "worker.log", args.concurrency)
        sim.clear()
        before = rows_written(args.db)
        initial = sync_with_workers(env, args.db, workers, connection, "full")
        require_complete(initial)
        initial["requests"] = dict(sim.requests_by_stream())
        if args.latency_ms:
            initial["timeline"] = sim.timeline(args.latency_ms / 1000)
        initial["rows_written"] = rows_written(args.db) - before
        result["initial"] = initial
        total_requests = sum(initial["requests"].values())
        print(f"initial sync: {initial['seconds']:.1f} s, {total_requests} requests", flush=True)
        if args.latency_ms:
            bound = total_requests * args.latency_ms / 1000 / requests_limit
            result["latency_bound_s"] = bound
            initial["ratio_to_bound"] = initial["seconds"] / bound
        else:
            initial["ratio_to_limit"] = initial["seconds"] / result["limit"]["limit_s"]
            initial["events_per_s"] = result["limit"]["events"] / initial["seconds"]
        if args.baseline:
            initial["ratio_to_baseline"] = initial["seconds"] / result["baseline"]["seconds"]

        if not args.skip_resync:
            for name, kind in (("second_full", "full"), ("second_events", "events")):
                before = rows_written(args.db)
                again = sync_with_workers(env, args.db, workers, connection, kind)
                require_complete(again)
                again["rows_written"] = rows_written(args.db) - before
                again["share_of_initial"] = again["seconds"] / initial["seconds"]
                result[name] = again
            sim.control(
                "POST",
                "/events",
                json={"count": args.incremental, "service": "all", "spread_seconds": 300, "seconds_ago": 600},
            )
            incremental = sync_with_workers(env, args.db, workers, connection, "events")
            require_complete(incremental)
            result["incremental"] = incremental
    finally:
        if workers is not None:
            workers.stop()
        sim.stop()
        if not args.keep:
            for db in (args.db, f"{args.db}_baseline"):
                with closing(pg("postgres")) as conn, conn.cursor() as cur:
                    cur.execute(f'DROP DATABASE IF EXISTS "{db}"')
    report(result, requests_limit)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str))


def report(r: dict[str, Any], requests_limit: int) -> None:
    t = r["tenant"]
    print(
        f"\nTenant: {t['users']:,} users, {t['apps']} apps, {t['events']:,} events over {t['days']} days; "
        f"simulator latency {t['latency_ms']:g} ms; per-organization request limit {requests_limit}"
    )
    i = r["initial"]
    rows = []
    if "limit" in r:
        rows.append(("limit: fetch + raw COPY", f"{r['limit']['limit_s']:.1f} s", ""))
        rows.append(
            (
                "initial full sync (the run)",
                f"{i['seconds']:.1f} s = {i['ratio_to_limit']:.2f}× the limit",
                "≤ 1.5×",
            )
        )
        rows.append(("events per second", f"{i['events_per_s']:,.0f}", ""))
    if "latency_bound_s" in r:
        rows.append(("latency bound", f"{r['latency_bound_s']:.1f} s", ""))
        rows.append(
            (
                "initial full sync (the run)",
                f"{i['seconds']:.1f} s = {i['ratio_to_bound']:.2f}× the bound",
                "≤ 1.3×",
            )
        )
    if "baseline" in r:
        b = r["baseline"]
        rows.append(
            (
                f"baseline {b['revision']}: initial sync",
                f"{b['seconds']:.1f} s; this code {i['ratio_to_baseline']:.2f}× it",
                "≤ 1.10×",
            )
        )
        rows.append(
            (
                "requests: baseline / this code",
                f"{sum(b['requests'].values())} / {sum(i['requests'].values())}",
                "not more",
            )
        )
    rows.append(("peak memory per worker process", f"{i['peak_rss_mb_per_process']:.0f} MB", "≤ 400 MB"))
    rows.append(
        (
            "CPU: machine busy (workers, PostgreSQL)",
            f"{i['cpu']['machine_busy_s']:.1f} CPU-s ({i['cpu']['workers_s']:.1f}, {i['cpu']['postgres_s']:.1f})",
            "",
        )
    )
    if "second_full" in r:
        s = r["second_full"]
        rows.append(
            (
                "second full sync, no change",
                f"{s['seconds']:.2f} s = {s['share_of_initial']:.1%}, {s['rows_written']} rows",
                "0 rows, ≤ 10%",
            )
        )
        rows.append(("second events sync", f"{r['second_events']['seconds']:.2f} s", ""))
        rows.append(("incremental: 10,000 new events", f"{r['incremental']['seconds']:.2f} s", "≤ 5 s"))
    width = max(len(a) for a, _, _ in rows)
    for label, value, goal in rows:
        print(f"  {label:<{width}}  {value:<44} {goal}")
    print("  requests per stream (this code" + (", baseline" if "baseline" in r else "") + "):")
    for stream, n in sorted(i["requests"].items()):
        base = f", {r['baseline']['requests'].get(stream, 0)}" if "baseline" in r else ""
        print(f"    {stream:<24} {n}{base}")
    if "timeline" in i:
        print(
            "  requests over time (this code; seconds after the first request, mean in flight, "
            "mean time the simulator took to answer):"
        )
        for stream, t in i["timeline"].items():
            print(
                f"    {stream:<50} {t['first_s']:5.1f} s to {t['last_s']:5.1f} s, {t['in_flight']:.1f} in flight"
                f", {t.get('answer_ms', 0)} ms"
            )


if __name__ == "__main__":
    main()

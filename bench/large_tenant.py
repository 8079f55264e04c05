"""Large-tenant benchmark: years of history at ten times the size (issue 21).

    .venv/bin/python bench/large_tenant.py               # 200,000 people, 20 connections, 1,000 apps, 10M events
    .venv/bin/python bench/large_tenant.py --scale 0.01  # the same shape, a hundredth of it (a smoke run)
    make bench ARGS=--large                              # the same, through bench/run.py

The tenant: 20 connections of 10,000 people and 50 applications each (one directory application
beside them), 10,000,000 usage events over the last 400 days, and their rollups (DailyUsage,
LastUse). One connection is real: it is connected to the simulator and fully synced by this
code's Celery workers; the other 19 are copies of its people and applications. The events are
seeded straight into PostgreSQL (generate_series, with the events' indexes built after the load),
spread evenly over 400 days, attributed to the connections' own people and apps.

Measured (goals from issue 21):
- **retention**: the beat step that drops raw events past EVENT_RETENTION_DAYS, timed while it
  drops the oldest whole month of the 10M events (goal ≤ 2 s); the rollups are counted before and
  after (they must not change).
- **incremental events sync**: 10,000 new events added to the simulator, then an events sync of
  the real connection by Celery workers on this large database (the run's own duration; goal ≤ 5 s).
- **pages**: every page of the navigation timed by bench/dashboard_pages.py on this database (there
  is no page cache: the pages read the read models), N renders each (`--pages N`, default 10; 0
  skips them): median ≤ 150 ms and p95 ≤ 300 ms, the users table sorted by last use and filtered
  by app among them; and the CSV of all 200,000 people streamed (≤ 20 s, flat memory).

Prints a table with the ratios to the goals and writes bench/results/large_tenant.json.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import sync as sync_bench  # noqa: E402  (bench/sync.py: the simulator, workers and database helpers)

CONNECTIONS = 20
PEOPLE_PER_CONNECTION = 10_000
APPS_PER_CONNECTION = 50
EVENTS = 10_000_000
DAYS = 400
INCREMENTAL = 10_000
GOALS = {"retention_s": 2.0, "incremental_sync_s": 5.0}
PARTITIONS = importlib.import_module("integrations.migrations.0008_usageevent_partitioned")


def say(message: str) -> None:
    print(message, flush=True)


def columns(cur: Any, table: str, *, without: tuple[str, ...]) -> list[str]:
    cur.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = %s ORDER BY ordinal_position",
        [table],
    )
    return [name for (name,) in cur.fetchall() if name not in without]


# --- the tenant ----------------------------------------------------------------------------------
def clone_connections(cur: Any, real: int, count: int) -> list[int]:
    """count − 1 more connections with the real one's applications and people (and assignments)."""
    cur.execute(
        "INSERT INTO integrations_connection (provider, name, region, base_url, org_id, org_name, credentials, "
        "secret_hint, permission, status, status_message, capabilities, events_interval_minutes, "
        "full_sync_interval_hours, created_at, updated_at) "
        "SELECT provider, 'Large ' || g, 'us', '', 'large' || lpad(g::text, 20, '0'), 'Large ' || g, '', '', "
        "permission, 'connected', '', capabilities, events_interval_minutes, full_sync_interval_hours, now(), now() "
        "FROM integrations_connection, generate_series(2, %s) AS g WHERE id = %s RETURNING id",
        [count, real],
    )
    clones = [row[0] for row in cur.fetchall()]
    app_cols = columns(cur, "integrations_application", without=("id", "connection_id"))
    cur.execute(
        f"INSERT INTO integrations_application (connection_id, {', '.join(app_cols)}) "
        f"SELECT c.id, {', '.join('a.' + c for c in app_cols)} FROM integrations_application a "
        "CROSS JOIN unnest(%s::bigint[]) AS c(id) WHERE a.connection_id = %s",
        [clones, real],
    )
    user_cols = columns(
        cur, "integrations_appuser", without=("id", "connection_id", "application_id", "directory_user_id")
    )
    copy = (
        f"INSERT INTO integrations_appuser (connection_id, application_id, directory_user_id, {', '.join(user_cols)}) "
        f"SELECT c.id, b.id, {{directory_user}}, {', '.join('u.' + c for c in user_cols)} FROM integrations_appuser u "
        "JOIN integrations_application a ON a.id = u.application_id "
        "CROSS JOIN unnest(%s::bigint[]) AS c(id) "
        "JOIN integrations_application b ON b.connection_id = c.id AND b.external_id = a.external_id "
        "{join} WHERE u.connection_id = %s AND a.kind {kind} 'directory'"
    )
    # The people (the directory's rows) first; then the assignment rows, each pointing at its
    # person's row within its own connection.
    cur.execute(copy.format(directory_user="NULL", join="", kind="="), [clones, real])
    cur.execute("ANALYZE integrations_appuser, integrations_application")
    cur.execute(
        copy.format(
            directory_user="d.id",
            join="JOIN integrations_application bd ON bd.connection_id = c.id AND bd.kind = 'directory' "
            "LEFT JOIN integrations_appuser d ON d.application_id = bd.id AND d.external_id = u.external_id "
            "AND u.directory_user_id IS NOT NULL",
            kind="<>",
        ),
        [clones, real],
    )
    cur.execute("ANALYZE integrations_appuser")
    return clones


def seed_events(cur: Any, connection_ids: list[int], total: int, newest: datetime) -> int:
    """`total` events evenly over DAYS days before `newest`, 60% SSO logins, the rest directory
    logins, by each connection's own people to its own apps; the events' indexes built after.
    Person and app come from the high bits of two multiplicative hashes of the event's number, so
    that who uses what is spread (every person several apps, every app every day), not a pattern of
    the low bits."""
    cur.execute(
        "ALTER TABLE integrations_usageevent DROP CONSTRAINT integrations_usageevent_pkey, "
        "DROP CONSTRAINT uniq_event_per_connection_time"
    )
    cur.execute("DROP INDEX usageevent_kind_time, usageevent_actor_time")
    per = total // len(connection_ids)
    for n, connection_id in enumerate(connection_ids, 1):
        cur.execute(
            """
            WITH p AS (SELECT array_agg(u.external_id ORDER BY u.id) AS ids FROM integrations_appuser u
                       JOIN integrations_application a ON a.id = u.application_id
                       WHERE a.connection_id = %(c)s AND a.kind = 'directory' AND u.kind = 'user'),
                 s AS (SELECT array_agg(external_id ORDER BY id) AS ids FROM integrations_application
                       WHERE connection_id = %(c)s AND kind = 'sso')
            INSERT INTO integrations_usageevent (connection_id, external_id, kind, event_type, occurred_at, success,
              actor_external_id, actor_type, actor_username, actor_email, application_external_id,
              application_name, client_ip, error_message)
            SELECT %(c)s, 'seed' || lpad(to_hex(g), 20, '0'),
              CASE WHEN g %% 5 < 3 THEN 'sso' ELSE 'directory' END,
              CASE WHEN g %% 5 < 3 THEN 'sso_auth' ELSE 'user_login_attempt' END,
              %(newest)s - (g::float8 / %(per)s) * make_interval(days => %(days)s),
              g %% 17 <> 0, p.ids[1 + (g * 2246822519 %% 4294967296 / 4096) %% cardinality(p.ids)], 'user', '', '',
              CASE WHEN g %% 5 < 3 THEN s.ids[1 + (g * 2654435761 %% 4294967296 / 65536) %% cardinality(s.ids)]
                   ELSE 'directory' END,
              '', '198.51.100.' || (g %% 250), ''
            FROM p, s, generate_series(1::bigint, %(per)s::bigint) AS g
            """,
            {"c": connection_id, "per": per, "newest": newest, "days": DAYS},
        )
        if n % 5 == 0:
            say(f"  events: {n}/{len(connection_ids)} connections")
    cur.execute(
        "ALTER TABLE integrations_usageevent ADD CONSTRAINT integrations_usageevent_pkey PRIMARY KEY (id, occurred_at), "
        "ADD CONSTRAINT uniq_event_per_connection_time UNIQUE (connection_id, external_id, occurred_at)"
    )
    for statement in PARTITIONS.INDEXES.strip().split(";"):
        if statement.strip():
            cur.execute(statement)
    return per * len(connection_ids)


def seed_rollups(cur: Any) -> None:
    """Last uses and daily usage of every seeded event, as the sync's rollups make them."""
    cur.execute(
        """
        INSERT INTO integrations_dailyusage (connection_id, application_id, day, successes, failures, active_users)
        SELECT a.connection_id, a.id, agg.day, agg.s, agg.f, agg.u
        FROM (SELECT connection_id, application_external_id AS app, (occurred_at AT TIME ZONE 'UTC')::date AS day,
                     COUNT(*) FILTER (WHERE success) AS s, COUNT(*) FILTER (WHERE success = false) AS f,
                     COUNT(DISTINCT actor_external_id) FILTER (WHERE success) AS u
              FROM integrations_usageevent WHERE external_id LIKE 'seed%%' GROUP BY 1, 2, 3) AS agg
        JOIN integrations_application a ON a.connection_id = agg.connection_id AND a.external_id = agg.app
        ON CONFLICT (application_id, day) DO UPDATE SET successes = EXCLUDED.successes,
          failures = EXCLUDED.failures, active_users = EXCLUDED.active_users
        """
    )
    cur.execute(
        """
        INSERT INTO integrations_lastuse AS lu (connection_id, application_id, person_external_id, last_used_at)
        SELECT a.connection_id, a.id, m.actor, m.ts
        FROM (SELECT connection_id, application_external_id AS app, actor_external_id AS actor, MAX(occurred_at) AS ts
              FROM integrations_usageevent WHERE success AND external_id LIKE 'seed%%' GROUP BY 1, 2, 3) AS m
        JOIN integrations_application a ON a.connection_id = m.connection_id AND a.external_id = m.app
        ON CONFLICT (application_id, person_external_id) DO UPDATE SET last_used_at = EXCLUDED.last_used_at
        WHERE lu.last_used_at < EXCLUDED.last_used_at
        """
    )


def counts(cur: Any) -> dict[str, int]:
    found = {}
    for name, table in (
        ("connections", "integrations_connection"),
        ("applications", "integrations_application"),
        ("people", "integrations_appuser"),
        ("events", "integrations_usageevent"),
        ("daily_usage", "integrations_dailyusage"),
        ("last_uses", "integrations_lastuse"),
    ):
        cur.execute(f"SELECT COUNT(*) FROM {table}")
        found[name] = int(cur.fetchone()[0])
    cur.execute(
        "SELECT COUNT(*) FROM integrations_appuser u JOIN integrations_application a ON a.id = u.application_id "
        "WHERE a.kind = 'directory' AND u.kind = 'user'"
    )
    found["directory_people"] = int(cur.fetchone()[0])
    return found


# --- the measures --------------------------------------------------------------------------------
def measure_retention(db: str) -> dict[str, Any]:
    """Beat's retention step (integrations.services.partitions), in this process against the
    bench database, timed while it drops the oldest whole month of events."""
    import django

    django.setup()
    from django.conf import settings

    from integrations.services.partitions import usage_partitions, usage_partitions_drop_expired

    retention = timedelta(days=settings.EVENT_RETENTION_DAYS)
    with closing(sync_bench.pg(db)) as conn, conn.cursor() as cur:
        cur.execute("SELECT MIN(occurred_at) FROM integrations_usageevent")
        oldest_event = cur.fetchone()[0]
        partitions = [p for p in usage_partitions() if p.end > oldest_event]
        partial, full = partitions[0], partitions[1]
        # First the month the history starts in (partly filled), untimed; then a whole month.
        usage_partitions_drop_expired(now=partial.end + retention + timedelta(seconds=1))
        cur.execute(f'SELECT COUNT(*) FROM "{full.name}"')
        rows = int(cur.fetchone()[0])
        rollups_before = counts(cur)
        started = time.perf_counter()
        dropped = usage_partitions_drop_expired(now=full.end + retention + timedelta(seconds=1))
        seconds = time.perf_counter() - started
        rollups_after = counts(cur)
    if dropped != [full.name]:
        raise SystemExit(f"retention dropped {dropped}, expected only {full.name}")
    unchanged = all(rollups_before[k] == rollups_after[k] for k in ("daily_usage", "last_uses"))
    if not unchanged or rollups_before["events"] - rollups_after["events"] != rows:
        raise SystemExit(
            f"retention changed more than one month of events: {rollups_before} → {rollups_after}"
        )
    return {
        "seconds": seconds,
        "partition": full.name,
        "events_dropped": rows,
        "rollups_unchanged": unchanged,
    }


def task_times(db: str, run: dict[str, Any]) -> list[dict[str, Any]]:
    """Where a run's time went: each task's span and its own timings (waiting for the API,
    writing pages, the slice's rollups), then the finish step (what is left after the last task)."""
    with closing(sync_bench.pg(db)) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT stream, EXTRACT(EPOCH FROM finished_at - started_at), counters, finished_at "
            "FROM integrations_synctask WHERE run_id = %s ORDER BY started_at",
            [run["id"]],
        )
        rows = cur.fetchall()
    tasks = [
        {"stream": stream, "seconds": float(seconds or 0)}
        | {k: counters[k] for k in ("wait_s", "write_s", "rollup_s") if k in counters}
        for stream, seconds, counters, _ in rows
    ]
    last = max((finished for *_, finished in rows if finished), default=None)
    if last is not None and run.get("finished_at"):
        tasks.append({"stream": "finish step", "seconds": (run["finished_at"] - last).total_seconds()})
    return tasks


def measure_pages(env: dict[str, str], renders: int, workdir: Path) -> dict[str, Any]:
    """The page goals of issue 21: every page of the navigation, median ≤ 150 ms and p95 ≤ 300 ms
    (the users table sorted by last use and filtered by app among them), and the CSV of all
    200,000 people ≤ 20 s with flat memory, by bench/dashboard_pages.py on this database."""
    if not renders:
        return {}
    out = workdir / "pages.json"
    page_env = {**env, "TORII_ENV": "development", "DEBUG": "false", "LOG_LEVEL": "WARNING"}
    done = subprocess.run(
        [
            sys.executable,
            "bench/dashboard_pages.py",
            "-n",
            str(renders),
            "--warmup",
            "1",
            "--csv",
            "--out",
            str(out),
        ],
        cwd=ROOT,
        env=page_env,
    )
    if not out.exists():
        raise SystemExit(f"bench/dashboard_pages.py failed ({done.returncode})")
    found = json.loads(out.read_text())
    return {"n": renders, "results": found["results"], "csv": found["csv"], "machine": found["machine"]}


# --- main ----------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--scale", type=float, default=1.0, help="share of the full size (e.g. 0.01 for a smoke run)"
    )
    parser.add_argument("--db", default="torii_bench_large")
    parser.add_argument("--concurrency", type=int, default=None, help="worker processes (default: Celery's)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "large_tenant.json")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument(
        "--pages",
        type=int,
        default=10,
        metavar="N",
        help="renders of each page (default 10; 0: the pages are not timed)",
    )
    args = parser.parse_args()
    if not 0 < args.scale <= 1:
        parser.error("--scale must be more than 0 and at most 1")

    people = max(20, round(PEOPLE_PER_CONNECTION * args.scale))
    apps = max(3, round(APPS_PER_CONNECTION * args.scale))
    events = max(10_000, round(EVENTS * args.scale))
    incremental = max(500, round(INCREMENTAL * args.scale))
    workdir = Path(tempfile.mkdtemp(prefix="torii-large-"))
    redis_url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/13"
    # The simulator is one of the 20 organizations; its own history is short (the bench seeds 400 days).
    sim = sync_bench.Simulator(
        SimpleNamespace(seed=21, users=people, apps=apps, events=2_000, days=2, latency_ms=0.0), workdir
    )
    result: dict[str, Any] = {
        "at": datetime.now(UTC).isoformat(),
        "scale": args.scale,
        "shape": {"connections": CONNECTIONS, "people_per_connection": people, "apps_per_connection": apps},
    }
    workers = None
    try:
        sync_bench.recreate_database(args.db)
        env = {**sync_bench.bench_env(args.db, sim), "REDIS_URL": redis_url}
        os.environ.update({k: env[k] for k in ("DATABASE_URL", "JUMPCLOUD_ALLOWED_BASE_URLS", "REDIS_URL")})
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "torii.settings")
        import redis as redis_lib

        redis_lib.Redis.from_url(redis_url).flushdb()
        sync_bench.manage(env, "migrate", "--noinput", "-v0")
        connection = sync_bench.manage(
            env, "jumpcloud_connect", "--base-url", sim.base_url, "--name", "large", "--no-sync"
        ).strip()
        workers = sync_bench.Workers(env, workdir / "worker.log", args.concurrency)
        started = time.perf_counter()
        full = sync_bench.sync_with_workers(env, args.db, workers, connection, "full")
        sync_bench.require_complete(full)
        say(f"the real connection's full sync: {full['seconds']:.1f} s")
        seed_started = time.perf_counter()
        with closing(sync_bench.pg(args.db)) as conn, conn.cursor() as cur:
            clones = clone_connections(cur, int(connection), CONNECTIONS)
            say(f"seeded {len(clones)} more connections ({time.perf_counter() - seed_started:.0f} s)")
            newest = datetime.now(UTC) - timedelta(hours=1)
            seeded = seed_events(cur, [int(connection), *clones], events, newest)
            say(f"seeded {seeded:,} events ({time.perf_counter() - seed_started:.0f} s)")
            seed_rollups(cur)
        # The read models, as each connection's next sync (or the daily refresh) would write them.
        refresh_started = time.perf_counter()
        sync_bench.manage(env, "refresh_read_models")
        result["read_models_refresh_s"] = time.perf_counter() - refresh_started
        say(f"read models of {CONNECTIONS} connections refreshed in {result['read_models_refresh_s']:.1f} s")
        with closing(sync_bench.pg(args.db)) as conn, conn.cursor() as cur:
            cur.execute("VACUUM ANALYZE")
            result["tenant"] = counts(cur)
        result["seed_s"] = time.perf_counter() - seed_started
        say(f"tenant ready in {time.perf_counter() - started:.0f} s: {result['tenant']}")

        result["retention"] = measure_retention(args.db)
        say(f"retention: {result['retention']['seconds']:.3f} s")

        sim.control(
            "POST",
            "/events",
            json={"count": incremental, "service": "all", "spread_seconds": 300, "seconds_ago": 600},
        )
        incremental_run = sync_bench.sync_with_workers(env, args.db, workers, connection, "events")
        sync_bench.require_complete(incremental_run)
        created = sum(s.get("created", 0) for s in incremental_run["streams"].values())
        if created < incremental:
            raise SystemExit(f"the events sync stored {created} events, fewer than the {incremental} added")
        result["incremental_sync"] = {
            "seconds": incremental_run["seconds"],
            "events_added": incremental,
            "events_stored": created,
            "peak_rss_mb_per_process": incremental_run["peak_rss_mb_per_process"],
            "tasks": task_times(args.db, incremental_run),
        }
        result["pages"] = measure_pages(env, args.pages, workdir)
    finally:
        if workers is not None:
            workers.stop()
        sim.stop()
        if not args.keep:
            with closing(sync_bench.pg("postgres")) as conn, conn.cursor() as cur:
                cur.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [args.db]
                )
                cur.execute(f'DROP DATABASE IF EXISTS "{args.db}"')
    report(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str))


def report(r: dict[str, Any]) -> None:
    t = r["tenant"]
    say("")
    say(
        f"large tenant (scale {r['scale']:g}): {t['connections']} connections, {t['directory_people']:,} people, "
        f"{t['applications']:,} applications, {t['events']:,} events (before retention)"
    )
    rows = [
        (
            "retention: one month dropped",
            f"{r['retention']['seconds']:.3f} s",
            f"{r['retention']['events_dropped']:,} events; rollups unchanged: {r['retention']['rollups_unchanged']}",
            r["retention"]["seconds"] / GOALS["retention_s"],
            GOALS["retention_s"],
        ),
        (
            "incremental events sync",
            f"{r['incremental_sync']['seconds']:.2f} s",
            f"{r['incremental_sync']['events_stored']:,} new events",
            r["incremental_sync"]["seconds"] / GOALS["incremental_sync_s"],
            GOALS["incremental_sync_s"],
        ),
    ]
    say(f"{'measure':34} {'time':>10}  {'ratio to goal':>14}  detail")
    for name, value, detail, ratio, goal in rows:
        say(f"{name:34} {value:>10}  {ratio:>8.2f}× ≤{goal:g}s  {detail}")
    say(
        "incremental sync, where the time went: "
        + "; ".join(
            f"{t['stream']} {t['seconds']:.2f} s"
            + "".join(f", {k} {t[k]}" for k in ("wait_s", "write_s", "rollup_s") if k in t)
            for t in r["incremental_sync"]["tasks"]
        )
    )
    say(f"read models of every connection refreshed in {r['read_models_refresh_s']:.1f} s (a worker's job)")
    if not r["pages"]:
        say("pages: not measured (--pages 0)")
        return
    say(f"pages, {r['pages']['n']} renders each (no page cache; goal: median ≤ 150 ms, p95 ≤ 300 ms):")
    for page in r["pages"]["results"]:
        say(
            f"  {page['page']:32} median {page['median_ms']:8.1f} ms ({page['median_ms'] / page['budget_ms']:5.2f}×)  "
            f"p95 {page['p95_ms']:8.1f} ms ({page['p95_ms'] / page['budget_p95_ms']:5.2f}×)  {page['queries']} queries"
        )
    csv = r["pages"].get("csv")
    if csv:
        say(
            f"  CSV of every person: {csv['rows']:,} rows in {csv['seconds']:.1f} s ({csv['seconds'] / 20:.2f}× ≤20s), "
            f"peak memory +{csv['peak_rss_growth_mb']:.0f} MB"
        )


if __name__ == "__main__":
    main()

"""Seed a synthetic big tenant for the dashboard benchmark, straight into a database with COPY.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/torii_dash_bench \
        .venv/bin/python bench/seed_dashboard.py --users 50000 --apps 300 --events 1000000

The shape mimics a synced JumpCloud organization: one directory application (JumpCloud itself)
whose rows are the people, a few administrators, SSO applications assigned to people with a skewed
popularity, usage events over the last --days days, then last_used_at and DailyUsage derived from
those events in SQL (as the sync does), the read models the pages read, and VACUUM ANALYZE so
plans are realistic. A second, small
connection has no Directory Insights, so "usage unavailable" paths are exercised too.

It writes with COPY (no ORM per row), so 1M events take seconds, not minutes. --reset deletes the
connections it made before (matched by org_id prefix) first.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import sys
import time
import zlib
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "torii.settings")

import django  # noqa: E402

django.setup()

from django.db import connection as db  # noqa: E402
from django.db import models, transaction  # noqa: E402

from integrations.models import (  # noqa: E402
    Application,
    ApplicationStats,
    AppUser,
    Connection,
    ConnectionStats,
    DailyUsage,
    UsageEvent,
)
from integrations.services.read_models import read_models_refresh_all  # noqa: E402

ORG_PREFIX = "bench0"
ADMIN_ROLES = ["Administrator With Billing", "Administrator", "Manager", "Help Desk", "Read Only"]
FIRST = [
    "Ada",
    "Grace",
    "Alan",
    "Linus",
    "Barbara",
    "Ken",
    "Margaret",
    "Dennis",
    "Radia",
    "Edsger",
    "Frances",
    "John",
    "Katherine",
    "Tim",
    "Hedy",
    "Guido",
    "Sophie",
    "Donald",
    "Shafi",
    "Leslie",
]
LAST = [
    "Lovelace",
    "Hopper",
    "Turing",
    "Torvalds",
    "Liskov",
    "Thompson",
    "Hamilton",
    "Ritchie",
    "Perlman",
    "Dijkstra",
    "Allen",
    "Backus",
    "Johnson",
    "Berners-Lee",
    "Lamarr",
    "van Rossum",
    "Wilson",
    "Knuth",
    "Goldwasser",
    "Lamport",
]
APP_WORDS = [
    "Slack",
    "Zoom",
    "GitHub",
    "Jira",
    "Figma",
    "Notion",
    "Salesforce",
    "HubSpot",
    "Asana",
    "Miro",
    "Dropbox",
    "Box",
    "Okta",
    "Datadog",
    "Sentry",
    "PagerDuty",
    "Workday",
    "Greenhouse",
    "Lattice",
    "Gusto",
    "Zendesk",
    "Intercom",
    "Airtable",
    "Canva",
    "DocuSign",
    "Loom",
    "Linear",
    "Vercel",
]


# --- COPY plumbing: one writer driven by the model's own field list -----------------------------------
def _db_value(field: models.Field, value: Any) -> str:
    if value is None:
        return "\\N"
    if isinstance(field, models.JSONField):
        value = json.dumps(value)
    elif isinstance(value, bool):
        value = "t" if value else "f"
    elif isinstance(value, datetime):
        value = value.isoformat()
    return str(value).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def copy_rows(model: type[models.Model], rows: Iterable[dict[str, Any]], *, chunk: int = 50_000) -> int:
    """COPY dicts (keyed by attname) into the model's table; unspecified fields take their default
    (columns with a database default, like the read models', are left to the database)."""
    fields = [
        f for f in model._meta.concrete_fields if not f.primary_key and f.db_default is models.NOT_PROVIDED
    ]
    defaults: dict[str, Any] = {}
    for f in fields:
        if f.has_default():
            defaults[f.attname] = f.get_default()
        elif getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
            defaults[f.attname] = datetime.now(UTC)
        else:
            defaults[f.attname] = (
                "" if (not f.null and isinstance(f, models.CharField | models.TextField)) else None
            )
    columns = ", ".join(f'"{f.column}"' for f in fields)
    sql = f'COPY "{model._meta.db_table}" ({columns}) FROM STDIN'
    total = 0
    buf = io.StringIO()
    raw = db.connection
    assert raw is not None

    def flush() -> None:
        buf.seek(0)
        with raw.cursor() as cur:
            cur.copy_expert(sql, buf)
        buf.seek(0)
        buf.truncate()

    for row in rows:
        buf.write("\t".join(_db_value(f, row.get(f.attname, defaults[f.attname])) for f in fields))
        buf.write("\n")
        total += 1
        if total % chunk == 0:
            flush()
    flush()
    return total


# --- the tenant ---------------------------------------------------------------------------------------
def reset() -> None:
    with transaction.atomic():
        n = Connection.objects.filter(org_id__startswith=ORG_PREFIX).count()
        # Delete children explicitly in bulk: the ORM cascade would load a million events.
        ids = list(Connection.objects.filter(org_id__startswith=ORG_PREFIX).values_list("id", flat=True))
        if ids:
            with db.cursor() as cur:
                for table in ("integrations_usageevent", "integrations_dailyusage", "integrations_syncrun"):
                    cur.execute(f"DELETE FROM {table} WHERE connection_id = ANY(%s)", [ids])  # noqa: S608
                cur.execute(
                    "UPDATE integrations_appuser SET directory_user_id = NULL WHERE connection_id = ANY(%s)",
                    [ids],
                )
                cur.execute("DELETE FROM integrations_appuser WHERE connection_id = ANY(%s)", [ids])
                cur.execute("DELETE FROM integrations_application WHERE connection_id = ANY(%s)", [ids])
                cur.execute("DELETE FROM integrations_actionrun WHERE connection_id = ANY(%s)", [ids])
                cur.execute("DELETE FROM integrations_connection WHERE id = ANY(%s)", [ids])
    print(f"reset: removed {n} bench connection(s)")


def seed_connection(
    *,
    name: str,
    org_suffix: str,
    users: int,
    apps: int,
    events: int,
    days: int,
    usage: bool,
    rng: random.Random,
) -> Connection:
    now = datetime.now(UTC).replace(microsecond=0)
    conn = Connection.objects.create(
        provider="jumpcloud",
        name=name,
        org_id=f"{ORG_PREFIX}{org_suffix}",
        org_name=f"{name} Inc.",
        credentials="",
        secret_hint="••••beef",  # noqa: S106 - a masked hint, not a secret
        permission=Connection.Permission.READ_WRITE,
        status=Connection.Status.CONNECTED,
        capabilities={"usage_events": usage, "administrators": True, "multi_tenant": False},
        last_sync_at=now,
        last_success_at=now - timedelta(minutes=12),
        next_events_sync_at=now + timedelta(minutes=48),
        next_full_sync_at=now + timedelta(hours=20),
    )
    directory = Application.objects.create(
        connection=conn,
        external_id="directory",
        kind=Application.Kind.DIRECTORY,
        name="jumpcloud",
        label="JumpCloud",
    )
    app_rows = [
        Application(
            connection=conn,
            external_id=f"{org_suffix}app{i:020d}",
            kind=Application.Kind.SSO,
            name=f"{APP_WORDS[i % len(APP_WORDS)].lower()}{i}",
            label=f"{APP_WORDS[i % len(APP_WORDS)]} {i}",
            sso_url=f"https://sso.jumpcloud.com/saml2/{APP_WORDS[i % len(APP_WORDS)].lower()}{i}",
            upstream_created_at=now - timedelta(days=rng.randint(30, 900)),
        )
        for i in range(apps)
    ]
    Application.objects.bulk_create(app_rows, batch_size=1000)
    sso_apps = list(
        Application.objects.filter(connection=conn, kind="sso")
        .order_by("id")
        .values_list("id", "external_id")
    )

    # People. 1 in 40 is suspended, a few staged/locked, ~0.1% removed.
    def people() -> Iterator[dict[str, Any]]:
        for i in range(users):
            first, last = FIRST[i % len(FIRST)], LAST[(i // len(FIRST)) % len(LAST)]
            r = rng.random()
            status = (
                "suspended"
                if r < 0.025
                else "invited"
                if r < 0.035
                else "locked"
                if r < 0.04
                else "removed"
                if r < 0.041
                else "active"
            )
            is_admin = i < 20
            yield {
                "connection_id": conn.pk,
                "application_id": directory.pk,
                "external_id": f"{org_suffix}u{i:022d}",
                "kind": "user",
                "username": f"{first.lower()}.{last.lower().replace(' ', '')}{i}",
                "email": f"{first.lower()}.{i}@{org_suffix}.example.test",
                "first_name": first,
                "last_name": f"{last}{i}",
                "display_name": f"{first} {last}{i}",
                "status": status,
                "mfa_enabled": rng.random() < 0.8,
                "is_admin": is_admin,
                "role": ADMIN_ROLES[i % len(ADMIN_ROLES)] if is_admin else "User",
                "admin_external_id": f"{org_suffix}a{i:022d}" if is_admin else "",
                "admin_mfa_enabled": (i % 3 != 0) if is_admin else None,
                "admin_last_login_at": now - timedelta(days=rng.randint(0, 200)) if is_admin else None,
                "upstream_created_at": now - timedelta(days=rng.randint(1, 1500)),
                "removed_at": now - timedelta(days=3) if status == "removed" else None,
                "extra": {},
            }
        for j in range(5):  # administrators with no user account
            yield {
                "connection_id": conn.pk,
                "application_id": directory.pk,
                "external_id": f"{org_suffix}x{j:022d}",
                "kind": "admin",
                "username": f"admin{j}@{org_suffix}.example.test",
                "email": f"admin{j}@{org_suffix}.example.test",
                "display_name": f"Console Admin {j}",
                "status": "active",
                "mfa_enabled": None,
                "admin_mfa_enabled": j % 2 == 0,
                "is_admin": True,
                "role": ADMIN_ROLES[j % len(ADMIN_ROLES)],
                "admin_external_id": f"{org_suffix}x{j:022d}",
                "admin_last_login_at": None if j == 4 else now - timedelta(days=j * 40),
                "extra": {},
            }

    copy_rows(AppUser, people())
    dir_rows = list(
        AppUser.objects.filter(application=directory, kind="user")
        .order_by("id")
        .values_list("id", "external_id")
    )

    # Assignments: app popularity follows a power law; each person gets ~8 apps on average.
    weights = [1.0 / (k + 1) ** 0.9 for k in range(len(sso_apps))]
    scale = 8.0 * len(sso_apps) / sum(weights) / len(sso_apps)
    probs = [min(0.95, w * scale) for w in weights]
    assignments: list[tuple[int, str, int, str]] = []  # (dir_id, dir_ext, app_id, app_ext)

    def memberships() -> Iterator[dict[str, Any]]:
        for dir_id, dir_ext in dir_rows:
            for (app_id, app_ext), p in zip(sso_apps, probs, strict=True):
                if rng.random() < p:
                    assignments.append((dir_id, dir_ext, app_id, app_ext))
                    yield {
                        "connection_id": conn.pk,
                        "application_id": app_id,
                        "external_id": dir_ext,
                        "directory_user_id": dir_id,
                        "kind": "user",
                        "username": "",
                        "email": "",
                        "status": "active",
                        "assignment": "direct" if rng.random() < 0.4 else "group",
                        "extra": {},
                        "role": "User",
                    }

    n_members = copy_rows(AppUser, memberships())
    # Copy identity onto the SSO rows, as the sync does.
    with db.cursor() as cur:
        cur.execute(
            """UPDATE integrations_appuser m SET username = d.username, email = d.email, first_name = d.first_name,
                   last_name = d.last_name, display_name = d.display_name, status = d.status
               FROM integrations_appuser d WHERE m.directory_user_id = d.id AND m.connection_id = %s""",
            [conn.pk],
        )

    n_events = 0
    if usage and events:
        # 30% of people never log in: the reclaim list. Others log in with a skew towards some people.
        active = [a for a in assignments if zlib.crc32(a[1].encode()) % 10 >= 3]
        active_people = [d for d in dir_rows if zlib.crc32(d[1].encode()) % 10 >= 3]
        start = now - timedelta(days=days)
        span = int((now - start).total_seconds())

        def evs() -> Iterator[dict[str, Any]]:
            for k in range(events):
                r = rng.random()
                at = start + timedelta(seconds=int(span * (rng.random() ** 0.7)))
                ok = rng.random() > 0.04
                if r < 0.6 and active:
                    _dir_id, dir_ext, _app_id, app_ext = active[int(len(active) * rng.random() ** 1.5)]
                    yield {
                        "connection_id": conn.pk,
                        "external_id": f"{org_suffix}e{k:021d}",
                        "kind": "sso",
                        "event_type": "sso_auth",
                        "occurred_at": at,
                        "success": ok,
                        "actor_external_id": dir_ext,
                        "actor_type": "user",
                        "actor_username": dir_ext,
                        "application_external_id": app_ext,
                        "application_name": app_ext,
                        "client_ip": "203.0.113.7",
                        "error_message": "" if ok else "invalid credentials",
                    }
                else:
                    _dir_id, dir_ext = active_people[int(len(active_people) * rng.random() ** 1.5)]
                    login = r < 0.9
                    yield {
                        "connection_id": conn.pk,
                        "external_id": f"{org_suffix}e{k:021d}",
                        "kind": "directory",
                        "event_type": "user_login_attempt" if login else "user_update",
                        "occurred_at": at,
                        "success": ok if login else None,
                        "actor_external_id": dir_ext,
                        "actor_type": "user",
                        "actor_username": dir_ext,
                        "application_external_id": "directory" if login else "",
                        "client_ip": "198.51.100.9",
                        "error_message": "" if ok or not login else "bad password",
                    }

        n_events = copy_rows(UsageEvent, evs())
        with db.cursor() as cur:
            # last_used_at and DailyUsage from the events, in SQL, as the sync maintains them.
            cur.execute(
                """UPDATE integrations_appuser u SET last_used_at = x.at FROM (
                       SELECT a.id AS app_id, e.actor_external_id AS ext, max(e.occurred_at) AS at
                       FROM integrations_usageevent e JOIN integrations_application a
                         ON a.connection_id = e.connection_id AND a.external_id = e.application_external_id
                       WHERE e.connection_id = %s AND e.success GROUP BY 1, 2) x
                   WHERE u.application_id = x.app_id AND u.external_id = x.ext""",
                [conn.pk],
            )
            cur.execute(
                """INSERT INTO integrations_dailyusage (connection_id, application_id, day, successes, failures, active_users)
                   SELECT e.connection_id, a.id, (e.occurred_at AT TIME ZONE 'UTC')::date,
                          count(*) FILTER (WHERE e.success), count(*) FILTER (WHERE NOT e.success),
                          count(DISTINCT e.actor_external_id) FILTER (WHERE e.success)
                   FROM integrations_usageevent e JOIN integrations_application a
                     ON a.connection_id = e.connection_id AND a.external_id = e.application_external_id
                   WHERE e.connection_id = %s GROUP BY 1, 2, 3""",
                [conn.pk],
            )
    print(
        f"  {name}: {len(dir_rows)} people, {len(sso_apps)} SSO apps, {n_members} assignments, {n_events} events"
    )
    return conn


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--users", type=int, default=50_000)
    p.add_argument("--apps", type=int, default=300)
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--days", type=int, default=90)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--reset", action="store_true", help="delete previously seeded bench connections first")
    p.add_argument("--no-small", action="store_true", help="skip the small connection without usage events")
    args = p.parse_args(argv)
    if db.vendor != "postgresql":
        sys.exit("seed_dashboard needs PostgreSQL (it uses COPY); set DATABASE_URL.")
    rng = random.Random(args.seed)
    t0 = time.perf_counter()
    if args.reset:
        reset()
    suffix = f"{args.seed:x}{int(time.time()) % 100000:x}"
    with transaction.atomic():
        seed_connection(
            name="Bench Corp",
            org_suffix=f"b{suffix}",
            users=args.users,
            apps=args.apps,
            events=args.events,
            days=args.days,
            usage=True,
            rng=rng,
        )
        if not args.no_small:
            seed_connection(
                name="Bench Subsidiary (no Directory Insights)",
                org_suffix=f"s{suffix}",
                users=max(1, args.users // 100),
                apps=max(1, args.apps // 30),
                events=0,
                days=args.days,
                usage=False,
                rng=rng,
            )
    # The read models, as a sync's finish step writes them (the pages read nothing else).
    t1 = time.perf_counter()
    read_models_refresh_all()
    print(f"read models refreshed in {time.perf_counter() - t1:.1f} s")
    db.close()
    with db.cursor() as cur:  # outside a transaction: VACUUM cannot run inside one
        for model in (
            Connection,
            Application,
            AppUser,
            UsageEvent,
            DailyUsage,
            ApplicationStats,
            ConnectionStats,
        ):
            cur.execute(f'VACUUM ANALYZE "{model._meta.db_table}"')
    print(f"seeded in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()

"""Server time and query count of the dashboard's pages on a big tenant.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/torii_dash_bench \
        .venv/bin/python bench/dashboard_pages.py -n 20

Renders each page N times with Django's test Client as a logged-in torii Admin (created as
`bench.admin` if missing) against whatever database DATABASE_URL names — one the sync benchmark
left behind, or one filled by bench/seed_dashboard.py — and prints median / p95 milliseconds and
the number of SQL queries per page. There is no page cache: the pages read the read models the
sync maintains (docs/read-models.md). --csv also streams the CSV of every person and reports its
time and the process's peak memory growth. Results go to bench/results/dashboard.json.

The budget (issue 21): every page of the navigation ≤ 150 ms median and ≤ 300 ms p95, including
the users table sorted by last use and filtered by app; the CSV of 200,000 people ≤ 20 s with flat
memory. Exit status 1 when a page answers other than 200 (not when over budget: machines differ).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "torii.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection as db  # noqa: E402
from django.db.models import Count  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from accounts.roles import ADMIN, grant_role  # noqa: E402
from integrations.models import Application, AppUser, Connection, UsageEvent  # noqa: E402

BUDGET_MS = 150
BUDGET_P95_MS = 300
CSV_BUDGET_S = 20


def _admin_client() -> Client:
    user_model = get_user_model()
    user, created = user_model.objects.get_or_create(username="bench.admin", defaults={"is_active": True})
    if created:
        user.set_unusable_password()
        user.save()
    grant_role(user, ADMIN)
    client = Client()
    client.force_login(user)
    return client


def _pick_ids() -> dict[str, int]:
    """A busy person, a big SSO app and the biggest connection of the tenant."""
    conn = (
        Connection.objects.annotate(n=Count("app_users")).order_by("-n").values_list("pk", flat=True).first()
    )
    if conn is None:
        sys.exit("No connection in this database: seed one (bench/seed_dashboard.py) or run a sync first.")
    app = (
        Application.objects.filter(connection_id=conn, kind="sso")
        .order_by("id")
        .values_list("pk", flat=True)
        .first()
    )
    person = (
        AppUser.objects.filter(connection_id=conn, application__kind="directory", kind="user")
        .order_by("-last_used_at")
        .values_list("pk", flat=True)
        .first()
    )
    return {"connection": conn, "app": app or 0, "person": person or 0}


def _pages(ids: dict[str, int]) -> list[tuple[str, str]]:
    """Every page of the navigation (read from the menu itself, so a new entry is measured too),
    then the heavier variants: the users table sorted, filtered and searched, one person, one app."""
    from dashboard.nav import nav_links

    pages = [(link.label.lower(), link.url) for link in nav_links("/", is_admin=True)]
    pages += [
        ("connection page", f"/integrations/{ids['connection']}/"),
        ("capabilities", "/integrations/capabilities/"),
        ("users: last used + filter", "/users/?ordering=-last_used&status=active"),
        (
            "users: last used + account",
            f"/users/?ordering=-last_used&connection={ids['connection']}&status=active",
        ),
        ("users: search", "/users/?q=ada+love&ordering=-last_used"),
        ("users: inactive 30 d", "/users/?inactive_days=30&ordering=last_used"),
        ("users: last used + app", f"/users/?app={ids['app']}&ordering=-last_used"),
        ("user page", f"/users/{ids['person']}/"),
        ("application page", f"/applications/{ids['app']}/"),
    ]
    return [(name, url) for name, url in pages if "/0/" not in url and "app=0" not in url]


def _measure(client: Client, url: str, n: int, warmup: int) -> dict[str, Any]:
    for _ in range(warmup):
        client.get(url)
    times: list[float] = []
    queries: list[int] = []
    status = 0
    for _ in range(n):
        with CaptureQueriesContext(db) as ctx:
            t0 = time.perf_counter()
            response = client.get(url)
            if getattr(response, "streaming", False):
                b"".join(response.streaming_content)
            times.append((time.perf_counter() - t0) * 1000)
        status = response.status_code
        queries.append(len(ctx.captured_queries))
    times.sort()
    return {
        "status": status,
        "median_ms": round(statistics.median(times), 1),
        "p95_ms": round(times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))], 1),
        "min_ms": round(times[0], 1),
        "queries": max(queries),
    }


def _measure_csv(client: Client) -> dict[str, Any]:
    """Stream /users/export.csv to nowhere; time it and watch the process's peak RSS (ru_maxrss),
    which would grow with the row count if the export were built in memory."""
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    response = client.get("/users/export.csv")
    size = rows = 0
    for chunk in response.streaming_content:
        size += len(chunk)
        rows += chunk.count(b"\n")
    seconds = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "status": response.status_code,
        "rows": max(0, rows - 1),
        "mb": size / 1e6,
        "seconds": round(seconds, 2),
        "peak_rss_growth_mb": round((after - before) / 1024, 1),
    }


def _missing_indexes() -> list[str]:
    if db.vendor != "postgresql":
        return []
    with db.cursor() as cur:
        cur.execute("SELECT indexname FROM pg_indexes WHERE indexname LIKE 'dash_appuser_%%'")
        present = {row[0] for row in cur.fetchall()}
    wanted = {
        "dash_appuser_diruser_lastused",
        "dash_appuser_member_last_used",
        "dash_appuser_live_app_lastused",
        "dash_appuser_admin_roles",
    }
    return sorted(wanted - present)


def _tenant_size() -> dict[str, int]:
    return {
        "connections": Connection.objects.count(),
        "people": AppUser.objects.filter(application__kind="directory").count(),
        "app_users": AppUser.objects.count(),
        "applications": Application.objects.count(),
        "events": UsageEvent.objects.count(),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-n", type=int, default=20, help="renders per page (default 20)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--only", default="", help="comma-separated page names to measure")
    p.add_argument("--csv", action="store_true", help="also stream the CSV of every person")
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "dashboard.json"))
    args = p.parse_args(argv)

    # Production-like: no debug, and the test Client's host allowed without setup_test_environment(),
    # whose instrumented template rendering copies every context (test-only overhead, ~30% here).
    settings.DEBUG = False
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    client = _admin_client()
    ids = _pick_ids()
    pages = _pages(ids)
    if args.only:
        wanted = {w.strip() for w in args.only.split(",")}
        pages = [pg for pg in pages if pg[0] in wanted]
    size = _tenant_size()
    print(f"database: {db.vendor} {db.settings_dict.get('NAME')} · tenant: {size}")
    missing = _missing_indexes()
    if missing:
        print(
            f"WARNING: the dashboard's indexes are missing ({', '.join(missing)}): run `manage.py migrate`."
        )
    load_before = os.getloadavg()

    results: list[dict[str, Any]] = []
    for name, url in pages:
        r = _measure(client, url, args.n, args.warmup)
        r.update(page=name, url=url, budget_ms=BUDGET_MS, budget_p95_ms=BUDGET_P95_MS)
        r["within_budget"] = r["median_ms"] <= BUDGET_MS and r["p95_ms"] <= BUDGET_P95_MS
        results.append(r)

    width = max(len(r["page"]) for r in results)
    print(
        f"\n{'page':<{width}}  {'median':>8}  {'p95':>8}  {'queries':>7}  status  median÷150 ms  p95÷300 ms"
    )
    for r in results:
        flag = "✔" if r["within_budget"] else "✖ OVER BUDGET"
        print(
            f"{r['page']:<{width}}  {r['median_ms']:>6.1f}ms  {r['p95_ms']:>6.1f}ms  {r['queries']:>7}  "
            f"{r['status']:>6}  {r['median_ms'] / BUDGET_MS:>12.2f}×  {r['p95_ms'] / BUDGET_P95_MS:>9.2f}×  {flag}"
        )
    csv_result = _measure_csv(client) if args.csv else None
    if csv_result:
        print(
            f"\nCSV of every person: {csv_result['rows']} rows, {csv_result['mb']:.1f} MB in "
            f"{csv_result['seconds']:.1f} s ({csv_result['seconds'] / CSV_BUDGET_S:.2f}× the {CSV_BUDGET_S} s "
            f"budget); peak memory +{csv_result['peak_rss_growth_mb']:.0f} MB"
        )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "benchmark": "dashboard_pages",
                "at": datetime.now(UTC).isoformat(),
                "n": args.n,
                "database": {"vendor": db.vendor, "name": str(db.settings_dict.get("NAME"))},
                "tenant": size,
                "machine": {
                    "python": platform.python_version(),
                    "cpus": os.cpu_count(),
                    # Other work on the machine inflates medians; the load average says how much.
                    "load_before": [round(x, 2) for x in load_before],
                    "load_after": [round(x, 2) for x in os.getloadavg()],
                },
                "missing_indexes": missing,
                "budget_ms": BUDGET_MS,
                "budget_p95_ms": BUDGET_P95_MS,
                "results": results,
                "csv": csv_result,
            },
            indent=2,
        )
    )
    print(
        f"\nload average before/after: {load_before[0]:.2f} / {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs"
    )
    print(f"wrote {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")
    failed = [r for r in results if r["status"] != 200]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

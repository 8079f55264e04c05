"""Reads about applications: assigned and active users per app, one app's users and daily usage."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.core.paginator import Page, Paginator
from django.db.models import Exists, F, Min, OuterRef, Q, QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone

from integrations.models import Application, ApplicationStats, AppUser, Connection, DailyUsage, LastUse
from integrations.selectors.common import days_ago, usage_available

ACTIVE_WINDOWS = (7, 30, 60, 90)
UTILIZATION_WINDOWS = (7, 30, 90)


@dataclass(frozen=True)
class AppStats:
    assigned: int = 0
    active_7: int = 0
    active_30: int = 0
    active_60: int = 0
    active_90: int = 0
    last_used_at: datetime | None = None

    def active(self, days: int) -> int:
        return int(getattr(self, f"active_{days}", 0))


@dataclass(frozen=True)
class AppRow:
    application: Application
    connection: Connection
    stats: AppStats
    usage_available: bool
    window: int

    @property
    def active(self) -> int:
        return self.stats.active(self.window)

    @property
    def inactive(self) -> int:
        return self.stats.assigned - self.stats.active(self.window)

    @property
    def utilization(self) -> float | None:
        """Active ÷ assigned in the window, or None when it cannot be measured."""
        if not self.usage_available or not self.stats.assigned:
            return None
        return self.active / self.stats.assigned

    @property
    def utilization_pct(self) -> int | None:
        u = self.utilization
        return None if u is None else round(u * 100)


# The read model's columns (ApplicationStats, integrations.services.read_models) the pages need.
APP_STATS_FIELDS = (
    "last_used_at",
    "stats__application_id",
    "stats__assigned_count",
    "stats__active_7",
    "stats__active_30",
    "stats__active_60",
    "stats__active_90",
)


def app_stats(app: Application) -> AppStats:
    """An application's assigned and active people, from its read model (refreshed by every sync
    and daily; zeros before the first refresh), and its last use by anyone. Load the app with
    select_related("stats")."""
    try:
        stats = app.stats
    except ApplicationStats.DoesNotExist:
        return AppStats(last_used_at=app.last_used_at)
    return AppStats(
        assigned=stats.assigned_count,
        active_7=stats.active_7,
        active_30=stats.active_30,
        active_60=stats.active_60,
        active_90=stats.active_90,
        last_used_at=app.last_used_at,
    )


def application_rows(
    *,
    connections: list[Connection],
    connection_id: int | None = None,
    q: str = "",
    window: int = 30,
    include_removed: bool = False,
) -> list[AppRow]:
    """Every application (JumpCloud itself first in each account) with its usage numbers."""
    if window not in UTILIZATION_WINDOWS:
        window = 30
    apps = Application.objects.select_related("stats").only(
        "id",
        "connection_id",
        "external_id",
        "kind",
        "name",
        "label",
        "sso_url",
        "active",
        "removed_at",
        "upstream_created_at",
        *APP_STATS_FIELDS,
    )
    if not include_removed:
        apps = apps.filter(removed_at__isnull=True)
    if connection_id:
        apps = apps.filter(connection_id=connection_id)
    for term in q.replace("\x00", "").split()[:5]:  # PostgreSQL cannot compare NUL
        apps = apps.filter(Q(name__icontains=term) | Q(label__icontains=term))
    by_id = {c.pk: c for c in connections}
    rows = [
        AppRow(
            application=a,
            connection=by_id[a.connection_id],
            stats=app_stats(a),
            usage_available=usage_available(by_id[a.connection_id]),
            window=window,
        )
        for a in apps
        if a.connection_id in by_id
    ]
    rows.sort(
        key=lambda r: (
            r.connection.name.lower(),
            r.connection.pk,
            r.application.kind != "directory",
            (r.application.label or r.application.name).lower(),
        )
    )
    return rows


APP_SORTS = {
    "name": lambda r: (r.application.label or r.application.name).lower(),
    "account": lambda r: r.connection.name.lower(),
    "assigned": lambda r: r.stats.assigned,
    "active_7": lambda r: r.stats.active_7,
    "active_30": lambda r: r.stats.active_30,
    "active_90": lambda r: r.stats.active_90,
    "utilization": lambda r: -1 if r.utilization is None else r.utilization,
    "last_used": lambda r: r.stats.last_used_at.timestamp() if r.stats.last_used_at else 0,
}


def sort_app_rows(rows: list[AppRow], ordering: str) -> list[AppRow]:
    """Sort a few hundred rows in memory (stable, so the account grouping stays within ties)."""
    key = ordering.lstrip("-")
    if key not in APP_SORTS:
        return rows
    return sorted(rows, key=APP_SORTS[key], reverse=ordering.startswith("-"))


def application_queryset() -> QuerySet[Application]:
    """Every application, by label (the API's list), with its read model's counts (zeros before the
    first refresh) and last use."""
    return Application.objects.annotate(
        users_count=Coalesce("stats__assigned_count", 0),
        active_30=Coalesce("stats__active_30", 0),
        active_90=Coalesce("stats__active_90", 0),
    ).order_by("label", "name", "id")


# --- one application ---------------------------------------------------------------------------
def application_get(pk: int) -> Application:
    return Application.objects.select_related("connection", "stats").get(pk=pk)


def application_user_queryset(app: Application) -> QuerySet[AppUser]:
    """The people who can use an application now: people removed upstream are left out, as the
    application's page leaves them out."""
    return AppUser.objects.filter(application=app, removed_at__isnull=True)


APP_USER_FIELDS = (
    "id",
    "application_id",
    "connection_id",
    "external_id",
    "kind",
    "username",
    "email",
    "first_name",
    "last_name",
    "display_name",
    "status",
    "role",
    "is_admin",
    "assignment",
    "last_used_at",
    "removed_at",
    "directory_user__id",
    "directory_user__username",
    "directory_user__email",
    "directory_user__display_name",
    "directory_user__first_name",
    "directory_user__last_name",
    "directory_user__status",
    "directory_user__is_admin",
    "directory_user__role",
    "directory_user__removed_at",
)
APP_USER_SORTS = {
    "last_used": ("last_used_at",),
    "name": ("directory_user__display_name", "display_name"),
    "username": ("directory_user__username", "username"),
    "status": ("status",),
}


@dataclass
class AppUsersResult:
    page: Page
    paginator: Paginator
    ordering: str
    inactive_days: int | None
    q: str


def application_users(app: Application, params: Mapping[str, Any], *, per_page: int = 50) -> AppUsersResult:
    """The people who can use an application, with last use and status; filterable, paginated."""
    qs: QuerySet[AppUser] = (
        application_user_queryset(app).select_related("directory_user").only(*APP_USER_FIELDS)
    )
    q = str(params.get("q") or "").replace("\x00", "").strip()  # PostgreSQL cannot compare NUL
    for term in q.split()[:5]:
        qs = qs.filter(
            Q(username__icontains=term)
            | Q(email__icontains=term)
            | Q(display_name__icontains=term)
            | Q(directory_user__username__icontains=term)
            | Q(directory_user__email__icontains=term)
            | Q(directory_user__display_name__icontains=term)
        )
    inactive_days: int | None = None
    try:
        inactive_days = int(params.get("inactive_days") or 0) or None
    except (TypeError, ValueError):
        inactive_days = None
    if inactive_days and usage_available(app.connection):
        cutoff = days_ago(min(inactive_days, 3650))
        qs = qs.filter(Q(last_used_at__isnull=True) | Q(last_used_at__lt=cutoff))
    ordering = str(params.get("ordering") or "-last_used")
    key = ordering.lstrip("-")
    if key not in APP_USER_SORTS:
        ordering, key = "-last_used", "last_used"
    desc = ordering.startswith("-")
    order = []
    for name in APP_USER_SORTS[key]:
        if name == "last_used_at":
            order.append(F(name).desc(nulls_last=True) if desc else F(name).asc(nulls_first=True))
        else:
            order.append(F(name).desc() if desc else F(name).asc())
    paginator = Paginator(qs.order_by(*order, "pk"), per_page)
    return AppUsersResult(
        page=paginator.get_page(params.get("page") or 1),
        paginator=paginator,
        ordering=ordering,
        inactive_days=inactive_days,
        q=q,
    )


@dataclass(frozen=True)
class UnassignedUse:
    """Someone who used an application without being assigned to it (or no longer being)."""

    person_external_id: str
    person: AppUser | None  # their directory row, when the directory has them
    last_used_at: datetime


UNASSIGNED_LIMIT = 200


def application_unassigned_users(app: Application, *, limit: int = UNASSIGNED_LIMIT) -> list[UnassignedUse]:
    """People whose logins to the app are stored although no live assignment lets them use it,
    most recent first: what an admin auditing access wants to see. Two queries."""
    assigned = AppUser.objects.filter(
        application=app, removed_at__isnull=True, external_id=OuterRef("person_external_id")
    )
    uses = list(
        LastUse.objects.filter(application=app)
        .exclude(Exists(assigned))
        .order_by("-last_used_at", "person_external_id")
        .values_list("person_external_id", "last_used_at")[:limit]
    )
    directory = {
        p.external_id: p
        for p in AppUser.objects.filter(
            connection_id=app.connection_id,
            application__kind=Application.Kind.DIRECTORY,
            external_id__in=[ext for ext, _ in uses],
        )
    }
    return [UnassignedUse(ext, directory.get(ext), when) for ext, when in uses]


@dataclass(frozen=True)
class DayUsage:
    day: date
    successes: int | None
    failures: int | None
    active_users: int | None


def usage_coverage_start(connection: Connection) -> date | None:
    """The first day torii has usage data for: the oldest day of the connection's DailyUsage.

    (Read from the rollup's (connection, day) index: the events table has no b-tree on time any
    more — a BRIN index serves the sync's time ranges — so MIN(occurred_at) would scan.)
    """
    return DailyUsage.objects.filter(connection=connection).aggregate(m=Min("day"))["m"]


def application_daily_usage(app: Application, *, days: int = 90) -> list[DayUsage]:
    """One entry per day of the period. Days before torii's usage data starts are None (not
    measured), not zero; so is every day when the account has no usage events at all."""
    today = timezone.localdate()
    start = today - timedelta(days=days - 1)
    if not usage_available(app.connection):
        return [DayUsage(start + timedelta(days=i), None, None, None) for i in range(days)]
    coverage = usage_coverage_start(app.connection)
    rows = {
        r.day: r
        for r in DailyUsage.objects.filter(application=app, day__gte=start, day__lte=today).only(
            "day", "successes", "failures", "active_users"
        )
    }
    out = []
    for i in range(days):
        d = start + timedelta(days=i)
        r = rows.get(d)
        if r is not None:
            out.append(DayUsage(d, r.successes, r.failures, r.active_users))
        elif coverage is None or d < coverage:
            out.append(DayUsage(d, None, None, None))
        else:
            out.append(DayUsage(d, 0, 0, 0))
    return out

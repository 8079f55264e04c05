"""Reads for Insights: logins and active users over time (from the DailyUsage rollup), most and
least used applications, inactive seats and people, and administrator hygiene."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.core.paginator import Page
from django.db.models import Sum
from django.utils import timezone

from integrations.models import Application, AppUser, Connection, DailyUsage
from integrations.selectors.applications import AppRow, application_rows
from integrations.selectors.common import days_ago, directory_app_ids, usage_connection_ids

INACTIVE_WINDOWS = (30, 60, 90)
PERIODS = (7, 30, 90)


@dataclass(frozen=True)
class LoginDay:
    day: date
    directory_success: int
    directory_failure: int
    sso_success: int
    sso_failure: int
    # People who signed in to the directory (portal or console) that day: distinct per account.
    directory_active: int
    # Distinct people per app, summed over apps: a person using three apps counts three times.
    app_active_sum: int


def logins_per_day(*, connections: list[Connection], days: int = 30) -> list[LoginDay]:
    """Per day: successful and failed logins to the directory and to SSO apps, and active users.

    One grouped query over the DailyUsage rollup (apps × days rows), never over raw events. Only
    connections with usage events count; the caller says when there are none.
    """
    ids = usage_connection_ids(connections)
    today = timezone.localdate()
    start = today - timedelta(days=days - 1)
    totals: dict[date, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    if ids:
        for r in (
            DailyUsage.objects.filter(connection_id__in=ids, day__gte=start, day__lte=today)
            .values("day", "application__kind")
            .annotate(s=Sum("successes"), f=Sum("failures"), a=Sum("active_users"))
            .order_by()
        ):
            t = totals[r["day"]]
            kind = "directory" if r["application__kind"] == Application.Kind.DIRECTORY else "sso"
            t[f"{kind}_success"] += r["s"] or 0
            t[f"{kind}_failure"] += r["f"] or 0
            t[f"{kind}_active"] += r["a"] or 0
    out = []
    for i in range(days):
        d = start + timedelta(days=i)
        t = totals.get(d, {})
        out.append(
            LoginDay(
                day=d,
                directory_success=t.get("directory_success", 0),
                directory_failure=t.get("directory_failure", 0),
                sso_success=t.get("sso_success", 0),
                sso_failure=t.get("sso_failure", 0),
                directory_active=t.get("directory_active", 0),
                app_active_sum=t.get("sso_active", 0),
            )
        )
    return out


@dataclass
class AppRankings:
    top: list[AppRow]
    least_used: list[AppRow]
    inactive_by_app: list[AppRow]
    inactive_seats: int
    assigned_seats: int

    @property
    def any_use(self) -> bool:
        """Whether any SSO app was used in the window (else "top" would be a list of zeros)."""
        return any(r.active for r in self.top)


def app_rankings(
    *, connections: list[Connection], window: int = 30, inactive_days: int = 30, limit: int = 10
) -> AppRankings:
    """Most and least used SSO apps (active users in `window` days) and inactive seats per app
    (no use in `inactive_days`), only for accounts whose usage is measured."""
    rows = [r for r in application_rows(connections=connections, window=window) if r.usage_available]
    sso = [r for r in rows if r.application.kind == Application.Kind.SSO and r.stats.assigned]
    top = sorted(sso, key=lambda r: (-r.active, -(r.utilization or 0)))[:limit]
    least = sorted(sso, key=lambda r: (r.utilization or 0, -r.stats.assigned))[:limit]
    inactive_rows = [
        AppRow(
            application=r.application,
            connection=r.connection,
            stats=r.stats,
            usage_available=True,
            window=inactive_days,
        )
        for r in rows
        if r.stats.assigned
    ]
    inactive_rows.sort(key=lambda r: (-r.inactive, (r.application.label or r.application.name).lower()))
    sso_inactive = [r for r in inactive_rows if r.application.kind == Application.Kind.SSO]
    return AppRankings(
        top=top,
        least_used=least,
        inactive_by_app=inactive_rows,
        inactive_seats=sum(r.inactive for r in sso_inactive),
        assigned_seats=sum(r.stats.assigned for r in sso_inactive),
    )


def _inactive_params(days: int) -> dict[str, str]:
    return {"inactive_days": str(days), "status": "active", "ordering": "last_used"}


def inactive_people_count(*, connections: list[Connection], days: int) -> int:
    """How many active people of measured accounts had no use anywhere in `days` days (never used
    counts), from the connections' read models."""
    from integrations.selectors.connections import connection_stats

    if days not in INACTIVE_WINDOWS:
        from integrations.selectors.users import directory_user_count

        return directory_user_count(_inactive_params(days))
    stats = connection_stats(connections)
    return sum(stats[pk].inactive(days) for pk in usage_connection_ids(connections) if pk in stats)


def inactive_people(*, connections: list[Connection], days: int, per_page: int = 50) -> Page:
    """Those people, never-used first: the users table's search, sorted on the read model's
    last_used_any column (an index walk), with the total from the read models."""
    from integrations.selectors.users import directory_user_search

    total = inactive_people_count(connections=connections, days=days)
    return directory_user_search(_inactive_params(days), per_page=per_page, known_count=total).page


@dataclass
class AdminHygiene:
    total: int = 0
    by_role: list[tuple[str, int]] = field(default_factory=list)
    without_mfa: list[AppUser] = field(default_factory=list)
    mfa_unknown: int = 0
    no_recent_login: list[AppUser] = field(default_factory=list)
    days: int = 90
    cutoff: datetime | None = None


def admin_hygiene(*, days: int = 90) -> AdminHygiene:
    """Administrators by role, those without MFA on their administrator account, and those with no
    console login in `days` (never logged in counts too).

    Administrators are few (tens), so one query fetches them and Python groups them.
    """
    cutoff = days_ago(days)
    admins = list(
        AppUser.objects.filter(application_id__in=directory_app_ids(), is_admin=True, removed_at__isnull=True)
        .select_related("connection")
        .only(
            "id",
            "kind",
            "username",
            "email",
            "display_name",
            "first_name",
            "last_name",
            "role",
            "status",
            "mfa_enabled",
            "admin_mfa_enabled",
            "admin_last_login_at",
            "last_used_at",
            "connection__id",
            "connection__name",
            "connection__capabilities",
        )
        .order_by("connection__name", "username", "id")
    )
    roles = Counter(a.role or "Administrator" for a in admins)
    return AdminHygiene(
        total=len(admins),
        by_role=sorted(roles.items(), key=lambda kv: (-kv[1], kv[0])),
        without_mfa=[a for a in admins if a.admin_mfa_enabled is False],
        mfa_unknown=sum(1 for a in admins if a.admin_mfa_enabled is None),
        no_recent_login=[a for a in admins if not a.admin_last_login_at or a.admin_last_login_at < cutoff],
        days=days,
        cutoff=cutoff,
    )

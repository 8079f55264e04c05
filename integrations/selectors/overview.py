"""The Overview: what needs the admin, in numbers per account — health (from the latest runs),
people, people active in the last 30 days, inactive licences (assigned app seats with no use in
30 days), administrators without MFA, and the last sync. A fixed number of queries whatever the
data size: the numbers come from the read models (ConnectionStats, Application's counts)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Sum

from integrations.models import Application, Connection, ConnectionStats
from integrations.selectors.common import usage_available
from integrations.selectors.connections import connection_stats
from integrations.selectors.health import ConnectionHealth, Problem, connection_health_map

ACTIVE_DAYS = 30


@dataclass
class AccountSummary:
    connection: Connection
    health: ConnectionHealth
    usage_available: bool
    people: int = 0
    # None where usage is not measured: torii cannot say who is active there.
    active: int | None = None
    inactive_seats: int | None = None
    assigned_seats: int = 0
    admins: int = 0
    admins_without_mfa: int = 0
    admins_mfa_unknown: int = 0
    last_sync_at: datetime | None = None


@dataclass
class Attention:
    """One line of "Needs you": which account, what, and where to act."""

    connection: Connection
    problem: Problem


@dataclass
class Overview:
    accounts: list[AccountSummary]
    attention: list[Attention] = field(default_factory=list)
    days: int = ACTIVE_DAYS

    @property
    def live(self) -> list[AccountSummary]:
        return [a for a in self.accounts if a.connection.is_live]

    @property
    def people(self) -> int:
        return sum(a.people for a in self.live)

    @property
    def measured(self) -> list[AccountSummary]:
        return [a for a in self.live if a.usage_available]

    @property
    def measured_people(self) -> int:
        return sum(a.people for a in self.measured)

    @property
    def active(self) -> int | None:
        return sum(a.active or 0 for a in self.measured) if self.measured else None

    @property
    def inactive_seats(self) -> int | None:
        return sum(a.inactive_seats or 0 for a in self.measured) if self.measured else None

    @property
    def assigned_seats(self) -> int:
        return sum(a.assigned_seats for a in self.measured)

    @property
    def admins(self) -> int:
        return sum(a.admins for a in self.live)

    @property
    def admins_without_mfa(self) -> int:
        return sum(a.admins_without_mfa for a in self.live)

    @property
    def last_sync_at(self) -> datetime | None:
        return max((a.last_sync_at for a in self.live if a.last_sync_at), default=None)


def _seats(connections: list[Connection], *, days: int) -> dict[int, tuple[int, int]]:
    """(assigned, inactive) SSO app seats per connection, from the applications' read model."""
    rows = (
        Application.objects.filter(
            connection_id__in=[c.pk for c in connections], kind=Application.Kind.SSO, removed_at__isnull=True
        )
        .values("connection_id")
        .annotate(assigned=Sum("stats__assigned_count"), active=Sum(f"stats__active_{days}"))
        .order_by()
    )
    return {r["connection_id"]: (r["assigned"] or 0, (r["assigned"] or 0) - (r["active"] or 0)) for r in rows}


def overview() -> Overview:
    from integrations.selectors.common import CONNECTION_SUMMARY_FIELDS

    connections = list(
        Connection.objects.only(*CONNECTION_SUMMARY_FIELDS, "status_message").order_by("name", "id")
    )
    connections.sort(key=lambda c: not c.is_live)
    if not connections:
        return Overview(accounts=[])
    health = connection_health_map(connections)
    stats = connection_stats(connections)
    seats = _seats(connections, days=ACTIVE_DAYS)
    accounts: list[AccountSummary] = []
    attention: list[Attention] = []
    for c in connections:
        measured = usage_available(c)
        h = health[c.pk]
        assigned, inactive = seats.get(c.pk, (0, 0))
        st = stats.get(c.pk) or ConnectionStats(connection=c)
        last = h.active_run or h.last_run
        accounts.append(
            AccountSummary(
                connection=c,
                health=h,
                usage_available=measured,
                people=st.users,
                active=st.people_active_30 if measured else None,
                inactive_seats=inactive if measured else None,
                assigned_seats=assigned,
                admins=st.admins,
                admins_without_mfa=st.admins_without_mfa,
                admins_mfa_unknown=st.admins_mfa_unknown,
                last_sync_at=(last.finished_at or last.started_at or last.created_at) if last else None,
            )
        )
        if c.is_live:
            attention.extend(Attention(connection=c, problem=p) for p in h.problems)
    return Overview(accounts=accounts, attention=attention)

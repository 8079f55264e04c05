"""Licence savings: unused seats and what they cost, per application and in total.

Unused seats are assigned seats with no successful use in the window (30, 60 or 90 days), plus the
seats bought but assigned to nobody. Reclaimable cost = those seats × the price per seat, never more
seats than were bought. Only accounts with usage data can say "unused": apps of the others show
their spare seats only. One query whatever the number of apps: the licences with their apps and
the apps' read models (ApplicationStats, refreshed by every sync).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from integrations.models import Application, ApplicationLicence, Connection
from integrations.selectors.applications import AppStats, app_stats
from integrations.selectors.common import usage_available

WINDOWS = (30, 60, 90)


@dataclass(frozen=True)
class LicenceRow:
    application: Application
    connection: Connection
    seats_purchased: int | None
    price_per_seat_month: Decimal | None
    assigned: int
    measured: bool
    # Assigned seats without use in each window (None when usage is not measured).
    unused: dict[int, int | None]
    # The window the page shows (row_* below, for templates).
    days: int = 90

    @property
    def spare(self) -> int:
        """Seats bought and assigned to nobody."""
        if self.seats_purchased is None:
            return 0
        return max(self.seats_purchased - self.assigned, 0)

    def reclaimable(self, days: int) -> int:
        seats = self.spare + (self.unused.get(days) or 0)
        if self.seats_purchased is not None:
            seats = min(seats, self.seats_purchased)
        return seats

    def monthly(self, days: int) -> Decimal | None:
        if self.price_per_seat_month is None:
            return None
        return self.price_per_seat_month * self.reclaimable(days)

    def yearly(self, days: int) -> Decimal | None:
        monthly = self.monthly(days)
        return None if monthly is None else monthly * 12

    @property
    def row_reclaimable(self) -> int:
        return self.reclaimable(self.days)

    @property
    def row_monthly(self) -> Decimal | None:
        return self.monthly(self.days)

    @property
    def row_yearly(self) -> Decimal | None:
        return self.yearly(self.days)

    @property
    def monthly_spend(self) -> Decimal | None:
        """What the app costs a month: seats bought (or, unknown, seats assigned) × price."""
        if self.price_per_seat_month is None:
            return None
        seats = self.seats_purchased if self.seats_purchased is not None else self.assigned
        return self.price_per_seat_month * seats


@dataclass(frozen=True)
class LicenceReport:
    rows: list[LicenceRow]
    days: int
    monthly_total: Decimal = Decimal(0)
    yearly_total: Decimal = Decimal(0)
    reclaimable_seats: int = 0
    monthly_spend: Decimal = Decimal(0)
    # Totals of every window, for the overview's "30 / 60 / 90 days" line.
    monthly_by_window: dict[int, Decimal] = field(default_factory=dict)

    @property
    def has_prices(self) -> bool:
        return any(r.price_per_seat_month is not None for r in self.rows)


def licence_row(
    app: Application,
    licence: ApplicationLicence | None,
    stats: AppStats,
    connection: Connection,
    days: int = 90,
) -> LicenceRow:
    measured = usage_available(connection)
    return LicenceRow(
        application=app,
        connection=connection,
        seats_purchased=licence.seats_purchased if licence else None,
        price_per_seat_month=licence.price_per_seat_month if licence else None,
        assigned=stats.assigned,
        measured=measured,
        unused={d: (stats.assigned - stats.active(d)) if measured else None for d in WINDOWS},
        days=days,
    )


def licence_savings(
    *, connections: list[Connection], days: int = 90, connection_id: int | None = None
) -> LicenceReport:
    """Every live application of `connections` that has seats or a price entered."""
    if days not in WINDOWS:
        days = 90
    by_id = {c.pk: c for c in connections}
    licences = (
        ApplicationLicence.objects.select_related("application", "application__stats")
        .filter(application__connection_id__in=list(by_id), application__removed_at__isnull=True)
        .exclude(seats_purchased__isnull=True, price_per_seat_month__isnull=True)
    )
    if connection_id:
        licences = licences.filter(application__connection_id=connection_id)
    rows = [
        licence_row(
            lic.application,
            lic,
            app_stats(lic.application),
            by_id[lic.application.connection_id],
            days,
        )
        for lic in licences
    ]
    rows.sort(key=lambda r: (-(r.monthly(days) or 0), (r.application.label or r.application.name).lower()))
    by_window = {d: sum((r.monthly(d) or Decimal(0) for r in rows), Decimal(0)) for d in WINDOWS}
    return LicenceReport(
        rows=rows,
        days=days,
        monthly_total=by_window[days],
        yearly_total=by_window[days] * 12,
        reclaimable_seats=sum(r.reclaimable(days) for r in rows),
        monthly_spend=sum((r.monthly_spend or Decimal(0) for r in rows), Decimal(0)),
        monthly_by_window=by_window,
    )


def application_licence_row(app: Application, stats: AppStats, *, days: int = 90) -> LicenceRow:
    """One application's row for its page (its stats already read by the page)."""
    licence = ApplicationLicence.objects.filter(application=app).first()
    return licence_row(app, licence, stats, app.connection, days if days in WINDOWS else 90)


EXPORT_HEADER = [
    "Account",
    "Application",
    "Seats bought",
    "Price per seat per month",
    "Assigned",
    "Spare (bought, unassigned)",
    "Unused 30 d",
    "Unused 60 d",
    "Unused 90 d",
    "Reclaimable seats",
    "Reclaimable per month",
    "Reclaimable per year",
]


def licence_export_rows(report: LicenceReport) -> list[list[object]]:
    d = report.days
    return [
        [
            r.connection.name,
            r.application.label or r.application.name,
            r.seats_purchased,
            r.price_per_seat_month,
            r.assigned,
            r.spare,
            r.unused[30],
            r.unused[60],
            r.unused[90],
            r.reclaimable(d),
            r.monthly(d),
            r.yearly(d),
        ]
        for r in report.rows
    ]

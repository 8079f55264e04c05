"""Licence seats and prices per application: set by Admins, every change in the audit log."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction

from integrations.models import Application, ApplicationLicence
from integrations.services.audit import audit_connection_event

MAX_SEATS = 10_000_000
MAX_PRICE = Decimal("1000000")


class LicenceInvalid(Exception):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def _clean(seats: Any, price: Any) -> tuple[int | None, Decimal | None]:
    errors: dict[str, str] = {}
    seats_value: int | None = None
    price_value: Decimal | None = None
    if seats not in (None, ""):
        try:
            seats_value = int(str(seats).strip())
        except ValueError:
            errors["seats_purchased"] = "Seats must be a whole number."
        else:
            if not 0 <= seats_value <= MAX_SEATS:
                errors["seats_purchased"] = f"Seats must be between 0 and {MAX_SEATS:,}."
    if price not in (None, ""):
        try:
            price_value = Decimal(str(price).strip())
        except InvalidOperation:
            errors["price_per_seat_month"] = "The price must be a number, e.g. 12.50."
        else:
            if not price_value.is_finite() or not Decimal(0) <= price_value <= MAX_PRICE:
                errors["price_per_seat_month"] = f"The price must be between 0 and {MAX_PRICE:,}."
            elif price_value != price_value.quantize(Decimal("0.01")):
                errors["price_per_seat_month"] = "The price has at most two decimals."
    if errors:
        raise LicenceInvalid(errors)
    return seats_value, price_value


def _recorded(values: dict[str, Any]) -> dict[str, Any]:
    price = values["price_per_seat_month"]
    return {
        "seats_purchased": values["seats_purchased"],
        "price_per_seat_month": None if price is None else f"{price:.2f}",
    }


def application_licence_set(
    *, application: Application, actor: Any, seats_purchased: Any, price_per_seat_month: Any
) -> ApplicationLicence:
    """Set (or clear, with empty values) an application's seats and price; audited when changed."""
    seats, price = _clean(seats_purchased, price_per_seat_month)
    with transaction.atomic():
        licence, _ = ApplicationLicence.objects.select_for_update().get_or_create(application=application)
        before = {
            "seats_purchased": licence.seats_purchased,
            "price_per_seat_month": licence.price_per_seat_month,
        }
        after = {"seats_purchased": seats, "price_per_seat_month": price}
        if before == after:
            return licence
        licence.seats_purchased = seats
        licence.price_per_seat_month = price
        licence.updated_by = actor if getattr(actor, "is_authenticated", False) else None
        licence.save()
        audit_connection_event(
            connection=application.connection,
            action="licence.changed",
            actor=actor,
            parameters={
                "application_id": application.pk,
                "application": str(application),
                "before": _recorded(before),
                "after": _recorded(after),
            },
        )
    return licence

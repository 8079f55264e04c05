"""Licence savings: the numbers against hand-built data, editing (Admins, audited, bad input
refused), the CSV, and the pages that show them."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
from django.urls import reverse

from integrations.models import ActionRun, ApplicationLicence, AppUser
from integrations.selectors.connections import connection_choices
from integrations.selectors.licences import licence_savings
from integrations.services.licences import LicenceInvalid, application_licence_set
from tests.dashboard.builders import ago, build_tenant
from tests.factories import api_token_for
from tests.read_models import refresh

pytestmark = pytest.mark.django_db


@pytest.fixture
def data(admin_user):
    """Acme (usage measured): App 0 has 5 assigned people last using it never, 10, 45, 75 and
    120 days ago; App 1's five used it never, 2, 3, 4, 5 days ago; App 2 has no licence entered.
    Beta (no usage events): one app, 5 assigned."""
    acme = build_tenant(people=5, apps=3, name="Acme")
    app0, app1, _app2 = acme.apps
    for person, days in zip(acme.people, (None, 10, 45, 75, 120), strict=True):
        AppUser.objects.filter(application=app0, directory_user=person).update(
            last_used_at=None if days is None else ago(days)
        )
    refresh(acme.connection)  # as a sync's finish step would, after rows changed by hand
    beta = build_tenant(people=5, apps=1, name="Beta", usage=False)
    application_licence_set(
        application=app0, actor=admin_user, seats_purchased=8, price_per_seat_month="10.00"
    )
    application_licence_set(
        application=app1, actor=admin_user, seats_purchased=3, price_per_seat_month="4.50"
    )
    application_licence_set(
        application=beta.apps[0], actor=admin_user, seats_purchased=10, price_per_seat_month="2"
    )
    return {"acme": acme, "beta": beta, "app0": app0, "app1": app1, "beta_app": beta.apps[0]}


def rows_by_app(report):
    return {r.application.pk: r for r in report.rows}


def test_numbers_per_app_and_in_total(data, django_assert_max_num_queries):
    with django_assert_max_num_queries(3):
        report = licence_savings(connections=connection_choices(), days=90)
        rows = rows_by_app(report)
    app0, app1, beta = rows[data["app0"].pk], rows[data["app1"].pk], rows[data["beta_app"].pk]
    assert data["acme"].apps[2].pk not in rows  # nothing entered: not in the report
    # App 0: 8 bought, 5 assigned (3 spare); unused: 4 in 30 days, 3 in 60, 2 in 90.
    assert (app0.assigned, app0.spare, app0.unused) == (5, 3, {30: 4, 60: 3, 90: 2})
    assert [app0.reclaimable(d) for d in (30, 60, 90)] == [7, 6, 5]
    assert app0.monthly(90) == Decimal("50.00") and app0.yearly(90) == Decimal("600.00")
    # App 1: over-assigned (5 on 3 seats); one never used it: 1 reclaimable, never more than bought.
    assert (app1.spare, app1.unused[90], app1.reclaimable(90)) == (0, 1, 1)
    assert app1.monthly(90) == Decimal("4.50")
    # Beta has no usage events: its spare seats only, "unused" unknown.
    assert beta.unused == {30: None, 60: None, 90: None} and beta.reclaimable(90) == 5
    assert beta.monthly(90) == Decimal("10")
    assert report.monthly_total == Decimal("64.50") and report.yearly_total == Decimal("774.00")
    assert report.reclaimable_seats == 11
    assert report.monthly_by_window == {30: Decimal("84.50"), 60: Decimal("74.50"), 90: Decimal("64.50")}
    assert report.monthly_spend == Decimal("80.00") + Decimal("13.50") + Decimal("20")
    # Largest saving first.
    assert [r.application.pk for r in report.rows] == [data["app0"].pk, data["beta_app"].pk, data["app1"].pk]


def test_query_count_does_not_grow_with_apps(data, admin_user, django_assert_max_num_queries):
    for app in build_tenant(people=2, apps=6, name="Gamma").apps:
        application_licence_set(
            application=app, actor=admin_user, seats_purchased=4, price_per_seat_month="1"
        )
    with django_assert_max_num_queries(3):
        report = licence_savings(connections=connection_choices(), days=30)
        assert len(report.rows) == 9


def test_service_audits_changes_and_refuses_bad_input(data, admin_user):
    app = data["app0"]
    before = ActionRun.objects.filter(action="licence.changed").count()
    application_licence_set(
        application=app, actor=admin_user, seats_purchased=12, price_per_seat_month="9.99"
    )
    run = ActionRun.objects.filter(action="licence.changed").latest("id")
    assert run.actor_username == "alice.admin" and run.connection_id == app.connection_id
    assert run.parameters["before"] == {"seats_purchased": 8, "price_per_seat_month": "10.00"}
    assert run.parameters["after"] == {"seats_purchased": 12, "price_per_seat_month": "9.99"}
    # The same values again change nothing and write no audit row.
    application_licence_set(
        application=app, actor=admin_user, seats_purchased=12, price_per_seat_month="9.99"
    )
    assert ActionRun.objects.filter(action="licence.changed").count() == before + 1
    for seats, price, field in [
        (-1, "1", "seats_purchased"),
        ("many", "1", "seats_purchased"),
        (1, "1.234", "price_per_seat_month"),
        (1, "NaN", "price_per_seat_month"),
        (1, "-2", "price_per_seat_month"),
        (1, "abc", "price_per_seat_month"),
    ]:
        with pytest.raises(LicenceInvalid) as caught:
            application_licence_set(
                application=app, actor=admin_user, seats_purchased=seats, price_per_seat_month=price
            )
        assert field in caught.value.errors
    licence = ApplicationLicence.objects.get(application=app)
    assert (licence.seats_purchased, licence.price_per_seat_month) == (12, Decimal("9.99"))


def test_app_page_form_admin_only(data, admin_client, viewer_client):
    app = data["app0"]
    url = reverse("dashboard:application_licence", args=[app.pk])
    assert viewer_client.post(url, {"seats_purchased": "1", "price_per_seat_month": "1"}).status_code == 403
    viewer_page = viewer_client.get(reverse("dashboard:application_detail", args=[app.pk])).content.decode()
    assert "50.00 EUR" in viewer_page and "Save licences" not in viewer_page
    response = admin_client.post(url, {"seats_purchased": "20", "price_per_seat_month": "3.25"})
    assert response.status_code == 302
    licence = ApplicationLicence.objects.get(application=app)
    assert (licence.seats_purchased, licence.price_per_seat_month) == (20, Decimal("3.25"))
    # 15 spare + 2 unused in 90 days = 17 seats × 3.25.
    page = admin_client.get(reverse("dashboard:application_detail", args=[app.pk])).content.decode()
    assert "55.25 EUR" in page and "Save licences" in page
    bad = admin_client.post(url, {"seats_purchased": "-3", "price_per_seat_month": "1.999"})
    assert bad.status_code == 400
    body = bad.content.decode()
    assert 'value="-3"' in body and 'value="1.999"' in body
    assert ApplicationLicence.objects.get(application=app).seats_purchased == 20
    # Empty fields clear the values (audited as well).
    assert admin_client.post(url, {"seats_purchased": "", "price_per_seat_month": ""}).status_code == 302
    licence.refresh_from_db()
    assert licence.seats_purchased is None and licence.price_per_seat_month is None
    assert ActionRun.objects.filter(action="licence.changed", actor_username="alice.admin").count() >= 4


def test_api_read_for_viewers_write_for_admins(data, client, admin_user, viewer_user):
    app = data["app0"]
    url = f"/api/v1/applications/{app.pk}/licence/"
    viewer = {"HTTP_AUTHORIZATION": f"Token {api_token_for(viewer_user)}"}
    admin = {"HTTP_AUTHORIZATION": f"Token {api_token_for(admin_user)}"}
    got = client.get(url, **viewer)
    assert got.status_code == 200
    body = got.json()
    assert (
        body["seats_purchased"] == 8 and body["price_per_seat_month"] == "10.00" and body["currency"] == "EUR"
    )
    assert body["unused"] == {"30": 4, "60": 3, "90": 2}
    assert body["reclaimable"]["90"] == {"seats": 5, "monthly": "50.00", "yearly": "600.00"}
    assert (
        client.put(
            url,
            {"seats_purchased": 1, "price_per_seat_month": "1"},
            content_type="application/json",
            **viewer,
        ).status_code
        == 403
    )
    patched = client.patch(url, {"price_per_seat_month": "12.00"}, content_type="application/json", **admin)
    assert patched.status_code == 200, patched.json()
    assert (
        patched.json()["seats_purchased"] == 8 and patched.json()["reclaimable"]["90"]["monthly"] == "60.00"
    )
    bad = client.put(
        url, {"seats_purchased": -1, "price_per_seat_month": "x"}, content_type="application/json", **admin
    )
    assert bad.status_code == 400 and set(bad.json()) == {"seats_purchased", "price_per_seat_month"}
    assert ApplicationLicence.objects.get(application=app).price_per_seat_month == Decimal("12.00")
    assert ActionRun.objects.filter(
        action="licence.changed", parameters__after__price_per_seat_month="12.00"
    ).exists()


def test_csv_numbers_and_formula_safety(data, viewer_client):
    data["app0"].label = '=HYPERLINK("http://evil.test","x")'
    data["app0"].save(update_fields=["label"])
    response = viewer_client.get(reverse("dashboard:licences_export"), {"licence_days": "30"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    text = b"".join(response.streaming_content).decode().lstrip("\ufeff")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][0] == "Account" and rows[0][-1] == "Reclaimable per year"
    by_app = {r[1]: r for r in rows[1:]}
    evil = by_app["'" + data["app0"].label]
    # 30 days: 3 spare + 4 unused = 7 seats × 10.00.
    assert evil[2:] == ["8", "10.00", "5", "3", "4", "3", "2", "7", "70.00", "840.00"]
    assert by_app["App 0"][6:9] == ["", "", ""]  # Beta's app: usage not measured


def test_insights_and_overview_show_the_savings(data, viewer_client):
    insights = viewer_client.get(reverse("dashboard:insights")).content.decode()
    assert 'id="licence-monthly">64.50 EUR' in insights and 'id="licence-yearly">774.00 EUR' in insights
    thirty = viewer_client.get(reverse("dashboard:insights"), {"licence_days": "30"}).content.decode()
    assert 'id="licence-monthly">84.50 EUR' in thirty
    home = viewer_client.get(reverse("dashboard:home")).content.decode()
    assert 'id="overview-licence-monthly">64.50 EUR' in home and "774.00 EUR" in home

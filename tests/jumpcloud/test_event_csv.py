"""The fast COPY text of event pages (jumpcloud.streams.events.events_csv) says what
csv-formatting their event_row() tuples says."""

from __future__ import annotations

import csv
import dataclasses
import io
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from integrations.csvtext import csv_text
from jumpcloud.parsing import Event
from jumpcloud.streams.events import event_row, events_csv

APP_BY_URL = {"https://sso.example.test/saml": "app-by-url"}
BASE = Event(
    id="e1",
    service="sso",
    event_type="sso_auth",
    timestamp=datetime(2026, 11, 1, 8, 30, tzinfo=UTC),
    success=True,
    actor_id="u1",
    actor_type="user",
    actor_username="jane.doe",
    actor_email="jane@example.test",
    app_id="a1",
    app_name="Slack",
    app_label="",
    app_sso_url="",
    client_ip="10.0.0.1",
    error_message="",
    organization="o1",
)
ODD = [
    BASE,
    dataclasses.replace(
        BASE,
        id="e2",
        success=False,
        error_message='bad "password", try again',
        timestamp=datetime(2026, 11, 1, 8, 30, 0, 123456, tzinfo=UTC),
    ),
    dataclasses.replace(BASE, id="e3", success=None, app_id="", app_sso_url="https://sso.example.test/saml"),
    dataclasses.replace(BASE, id="e4", app_id="", app_sso_url="https://unknown.example.test"),
    dataclasses.replace(
        BASE, id="e5", service="directory", event_type="user_login_attempt", app_id="", app_name=""
    ),
    dataclasses.replace(
        BASE, id="e6", service="directory", event_type="admin_login_attempt", actor_type="admin"
    ),
    dataclasses.replace(
        BASE, id="e7", service="directory", event_type="user_create", actor_username="Line\nBreak"
    ),
    dataclasses.replace(BASE, id="e8", actor_username="cr\ronly", app_label="Label, with comma"),
    dataclasses.replace(BASE, id="e9", actor_email="ü@ëxample.test", app_name="🙂 app", client_ip=""),
    dataclasses.replace(
        BASE, id="x" * 100, actor_username="n" * 300, error_message="m" * 600, app_name="a" * 300
    ),
    dataclasses.replace(BASE, id="e11", actor_username='"', actor_email=",", client_ip="\n"),
]


def _parsed(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def test_events_csv_equals_formatted_rows():
    text = events_csv(7, ODD, APP_BY_URL)
    rows = [event_row(7, e, APP_BY_URL) for e in ODD]
    # csv_text ends every row in CRLF once a value holds a CR; this text quotes the CR instead,
    # which COPY reads the same way. Field for field, the same.
    assert _parsed(text) == _parsed(csv_text(rows))
    assert '"cr\ronly"' in text and text.count("\n") == len(ODD) + 2  # two values hold a line break
    plain = [e for e in ODD if "\r" not in e.actor_username]
    assert events_csv(7, plain, APP_BY_URL) == csv_text([event_row(7, e, APP_BY_URL) for e in plain])
    assert events_csv(7, [], APP_BY_URL) == ""


_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=20)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            _TEXT,
            _TEXT,
            _TEXT,
            _TEXT,
            st.sampled_from([True, False, None]),
            st.sampled_from(["sso_auth", "user_login_attempt", "admin_login_attempt", "x,y"]),
        ),
        max_size=5,
    )
)
def test_events_csv_equals_formatted_rows_for_any_values(values):
    events = [
        dataclasses.replace(
            BASE,
            id=f"e{n}",
            actor_username=a,
            actor_email=b,
            app_name=c,
            error_message=d,
            success=ok,
            event_type=kind,
        )
        for n, (a, b, c, d, ok, kind) in enumerate(values)
    ]
    assert _parsed(events_csv(3, events, APP_BY_URL)) == _parsed(
        csv_text([event_row(3, e, APP_BY_URL) for e in events])
    )

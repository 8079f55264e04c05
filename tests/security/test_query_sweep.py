"""No query string makes any route fail: every query parameter of every route, as an anonymous
visitor, a Viewer and an Admin, with non-ASCII digits, forged cursors and odd encodings.

The routes come from the URL resolver; the parameters each route reads are found by watching its
QueryDict while it answers a plain GET (so a parameter added later is swept too), plus the names
any list page or API list reads. Runs with DEBUG on, as in development, where a server error would
show the debug page: none must happen, and no answer may show a data store's URL.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

import pytest
from django.conf import settings as django_settings
from django.http import QueryDict
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from tests.security.support import Route, all_routes, make_world, view_methods

pytestmark = [pytest.mark.django_db]

# Names read by list pages and API lists in general (pagination, search, filters, ordering).
COMMON = ["page", "page_size", "per_page", "cursor", "ordering", "q", "search", "connection", "format"]


def _cursor(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# The values the probe found (²: isdigit() but not int(); a forged cursor), their relatives, and
# the usual suspects.
WORST = [
    "²",
    "١٢",  # Arabic-Indic digits: int() reads them, a database id they are not
    "𝟙",
    "9" * 30,
    "-1",
    "1e309",
    "\x00",
    "cD1nYXJiYWdl",  # base64 of p=garbage
    _cursor("o=-5&r=1&p=garbage"),
    _cursor("p=2024-13-45 99:99:99"),
    "%",
    "\u202e1",
]
# Percent-encodings that are not UTF-8 (or are NUL, an overlong slash, a lone surrogate).
RAW_ENCODINGS = ["%ff%fe", "%c0%af", "%ed%a0%80", "%00", "%", "%zz", "a%e2%82", "1%C2%B2"]


@contextmanager
def reads_recorded() -> Iterator[set[str]]:
    """Every key any QueryDict is asked for while the block runs."""
    seen: set[str] = set()
    originals = {name: getattr(QueryDict, name) for name in ("get", "getlist", "__getitem__", "__contains__")}

    def wrap(name: str) -> Any:
        real = originals[name]

        def watched(self: QueryDict, key: Any, *args: Any, **kwargs: Any) -> Any:
            if isinstance(key, str):
                seen.add(key)
            return real(self, key, *args, **kwargs)

        return watched

    for name in originals:
        setattr(QueryDict, name, wrap(name))
    try:
        yield seen
    finally:
        for name, real in originals.items():
            setattr(QueryDict, name, real)


@pytest.fixture
def world(allow_sim, settings):
    # Lift the rate limits: this sweep is thousands of requests by one person.
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            k: "1000000/hour" for k in settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
        },
    }
    settings.TORII_EXPORTS_PER_USER = settings.TORII_EXPORTS_TOTAL = 1000
    settings.DEBUG = True
    return make_world(allow_sim, users=3)


@pytest.fixture
def clients(admin_user, viewer_user) -> dict[str, tuple[Client, APIClient]]:
    def pair(user: Any) -> tuple[Client, APIClient]:
        page, api = Client(raise_request_exception=False), APIClient(raise_request_exception=False)
        if user is not None:
            page.force_login(user)
            api.force_login(user)
        return page, api

    return {"anonymous": pair(None), "viewer": pair(viewer_user), "admin": pair(admin_user)}


def get_routes() -> list[Route]:
    return [
        r for r in all_routes() if r.name != "logout" and (not view_methods(r) or "GET" in view_methods(r))
    ]


def discover(routes: list[Route], world: Any, clients: dict[str, Any]) -> dict[str, list[str]]:
    """The parameters each route reads, as an Admin and as a Viewer."""
    params: dict[str, list[str]] = {}
    for route in routes:
        url = route.reverse(world)
        names: set[str] = set(COMMON)
        for role in ("admin", "viewer"):
            page, api = clients[role]
            with reads_recorded() as seen:
                response = (api if route.is_api else page).get(url)
                read_body(response)
            names |= seen
        params[route.name] = sorted(n for n in names if n.isascii() and n.isprintable() and len(n) < 40)
    return params


def read_body(response: Any) -> bytes:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content)
    return response.content


def ask(client: Any, url: str, query: str) -> tuple[int, bytes]:
    response = client.get(url, QUERY_STRING=query)
    try:
        body = read_body(response)
    except Exception as exc:  # an error while streaming is a server error too
        return 599, repr(exc).encode()
    return response.status_code, body


SECRETS = [v for v in (django_settings.REDIS_URL, django_settings.DATABASES["default"].get("PASSWORD")) if v]


def check(failures: list[str], role: str, url: str, query: str, status: int, body: bytes) -> None:
    if status >= 500:
        failures.append(f"{role} {url}?{query[:120]} → {status}: {body[:200]!r}")
    for secret in SECRETS:
        if secret.encode() in body:
            failures.append(f"{role} {url}?{query[:120]} shows a data store's URL or password")


def test_every_parameter_of_every_route_survives_the_worst_values(world, clients):
    routes = get_routes()
    params = discover(routes, world, clients)
    assert len(routes) > 40 and sum(len(p) for p in params.values()) > 300
    assert {"connection", "cursor", "app_user_ids"} <= set().union(*params.values())
    failures: list[str] = []
    for route in routes:
        url = route.reverse(world)
        names = params[route.name]
        for role, (page, api) in clients.items():
            client = api if route.is_api else page
            # Each worst value in every parameter at once...
            for value in WORST:
                query = "&".join(f"{quote(n)}={quote(value, safe='')}" for n in names)
                check(failures, role, url, query, *ask(client, url, query))
            if role != "admin":
                continue  # the others are refused before most parameters are read
            # ...then, as an Admin (who reaches every view), one parameter at a time (a parameter
            # validated first must not hide another), and an encoding that is not UTF-8.
            for name in names:
                for query in (
                    f"{quote(name)}=%C2%B2",  # ²
                    f"{quote(name)}=cD1nYXJiYWdl",
                    f"{quote(name)}=%ff%fe",
                ):
                    check(failures, role, url, query, *ask(client, url, query))
    assert not failures, "\n".join(failures[:40])


values = st.one_of(
    st.sampled_from(WORST),
    st.text(alphabet=st.characters(categories=["Nd", "No", "Nl"]), min_size=1, max_size=6),
    st.binary(max_size=24).map(lambda b: base64.b64encode(b).decode()),
    st.lists(
        st.sampled_from(["o=", "r=", "p=", "1", "-", "&", "x", "2024-01-01T00:00:00+00:00"]), max_size=6
    ).map(lambda parts: _cursor("".join(parts))),
    st.text(max_size=12),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
)


@st.composite
def queries(draw: Any, routes: list[Route], params: dict[str, list[str]]) -> tuple[Route, str, str]:
    route = draw(st.sampled_from(routes))
    role = draw(st.sampled_from(["anonymous", "viewer", "admin"]))
    names = params[route.name]
    parts = []
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        name = draw(st.sampled_from(names))
        if draw(st.booleans()):
            parts.append(f"{quote(name)}={quote(draw(values), safe='')}")
        else:
            parts.append(f"{quote(name)}={draw(st.sampled_from(RAW_ENCODINGS))}")
    return route, role, "&".join(parts)


@pytest.mark.django_db
def test_random_combinations_of_parameters_never_fail(world, clients):
    routes = get_routes()
    params = discover(routes, world, clients)
    failures: list[str] = []

    @hsettings(
        max_examples=250,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(case=queries(routes, params))
    def sweep(case: tuple[Route, str, str]) -> None:
        route, role, query = case
        page, api = clients[role]
        url = route.reverse(world)
        status, body = ask(api if route.is_api else page, url, query)
        check(failures, role, url, query, status, body)
        assert not failures, failures[-1]

    sweep()


@pytest.mark.parametrize(
    ("url", "query"),
    [
        ("/api/v1/capabilities/", "connection=²"),
        ("/api/v1/usage-events/", "cursor=cD1nYXJiYWdl"),
        ("/actions/users/new/", "connection=²"),
        ("/actions/users/new/preview/", "connection=²&username=x"),
        ("/actions/users/bulk-suspend/", "app_user_ids=²&app_user_ids=1"),
    ],
)
def test_the_inputs_the_probe_found_get_a_clear_answer(world, admin_user, admin_client, url, query):
    client: Any = admin_client
    if url.startswith("/api/"):
        client = APIClient()
        client.force_login(admin_user)
    response = client.get(url, QUERY_STRING=query)
    assert response.status_code in (200, 400, 404), (url, response.status_code)
    if url == "/api/v1/capabilities/":
        assert response.status_code == 400 and "connection must be an id" in response.json()["detail"]
    if "cursor" in query:
        assert response.status_code == 404 and "Invalid cursor" in response.json()["detail"]


def test_bulk_suspend_by_post_refuses_odd_ids_cleanly(world, admin_client):
    response = admin_client.post(
        reverse("dashboard:bulk_suspend_confirm"), {"app_user_ids": ["²", "١", world.directory_user.pk]}
    )
    assert response.status_code == 200
    assert world.directory_user.username in response.content.decode()


def _broken(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("a bug")


@pytest.mark.parametrize("role", ["viewer", "admin"])
def test_the_debug_page_never_shows_data_store_urls(world, clients, monkeypatch, role):
    """If a server error does happen in development (DEBUG on), the page shows no connection URL:
    not as a setting, not as an environment variable (runserver passes the environment in
    request.META), and the traceback itself only to Admins."""
    from integrations.selectors import overview as overview_selectors

    monkeypatch.setattr(overview_selectors, "overview", _broken)
    page, api = clients["admin" if role == "admin" else "viewer"]
    # Made here, not written in this file: the debug page shows source lines around each frame.
    db_password, redis_password = secrets.token_hex(8), secrets.token_hex(8)
    environ = {
        "DATABASE_URL": f"postgres://torii:{db_password}@db.internal:5432/torii",
        "REDIS_URL": f"redis://:{redis_password}@cache.internal:6379/0",
    }
    response = page.get(reverse("dashboard:home"), **environ)
    assert response.status_code == 500
    body = response.content.decode()
    for value in (*environ.values(), db_password, redis_password, *SECRETS):
        assert value not in body, value
    if role == "admin":
        assert "RuntimeError" in body and "Traceback" in body, "Admins get the debug page"
        assert "CACHES" in body and "********" in body
    else:
        assert "Traceback" not in body and "a bug" not in body

"""Reads about the directory's people: the users table, one person's page, CSV export rows."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.paginator import Page, Paginator
from django.db.models import Count, Prefetch, QuerySet, Window

from integrations.models import Application, AppUser, Connection, ConnectionStats, UsageEvent
from integrations.selectors.common import directory_app_ids, usage_available

# Columns the users table and its CSV need; everything else (extra JSON, ...) stays in the database.
PERSON_FIELDS = (
    "id",
    "connection_id",
    "application_id",
    "external_id",
    "kind",
    "username",
    "email",
    "first_name",
    "last_name",
    "display_name",
    "status",
    "mfa_enabled",
    "admin_mfa_enabled",
    "is_admin",
    "role",
    "password_expired",
    "upstream_created_at",
    "last_used_at",
    "last_used_any",
    "apps_count",
    "admin_last_login_at",
    "removed_at",
    "connection__id",
    "connection__name",
    "connection__capabilities",
    "connection__status",
    "connection__permission",
)
PAGE_SIZES = (25, 50, 100)
DEFAULT_PAGE_SIZE = 50


def directory_user_queryset() -> QuerySet[AppUser]:
    """The directory's people across every connection (the queryset AppUserFilter works on)."""
    # directory_user IS NULL is true of every directory row; saying so lets PostgreSQL use the
    # partial indexes made for people (the search's trigram and last-use indexes).
    return (
        AppUser.objects.filter(application_id__in=directory_app_ids(), directory_user__isnull=True)
        .select_related("connection")
        .only(*PERSON_FIELDS)
    )


def directory_user_detail_queryset() -> QuerySet[AppUser]:
    """The directory's people, each with every application they can use (`app_memberships`)."""
    memberships = AppUser.objects.select_related("application").order_by("application__label", "id")
    return directory_user_queryset().prefetch_related(Prefetch("app_memberships", queryset=memberships))


def usage_event_queryset() -> QuerySet[UsageEvent]:
    """Every stored usage event (the API pages them by cursor, newest first)."""
    return UsageEvent.objects.all()


@dataclass
class PeopleResult:
    filterset: Any
    page: Page
    paginator: Paginator
    ordering: str


def directory_user_search(
    params: Mapping[str, Any],
    *,
    page: int | str = 1,
    per_page: int = DEFAULT_PAGE_SIZE,
    default_ordering: str = "name",
    known_count: int | None = None,
) -> PeopleResult:
    """Filter, sort and paginate the people. The query count does not depend on the page size.

    known_count: the size of the filtered set when the caller has it (cached), saving the COUNT.
    """
    from integrations.filters import AppUserFilter

    data = params.copy() if hasattr(params, "copy") else dict(params)
    if not data.get("ordering"):
        data["ordering"] = default_ordering
    filterset = AppUserFilter(data, queryset=directory_user_queryset())
    qs = filterset.qs if filterset.is_valid() else directory_user_queryset().none()
    if per_page not in PAGE_SIZES:
        per_page = DEFAULT_PAGE_SIZE
    ordering = str(data["ordering"])
    paginator = Paginator(qs, per_page)
    if known_count is None and filterset.is_valid():
        known_count = count_from_read_models(filterset.form.cleaned_data)
    if known_count is not None:
        paginator.__dict__["count"] = known_count  # Paginator.count is a cached_property
    # A search is usually small: one query for its page and total.
    page_obj = None
    if data.get("q"):
        page_obj = _search_page(qs, paginator, page)
    if page_obj is None:
        page_obj = paginator.get_page(page)
    return PeopleResult(filterset=filterset, page=page_obj, paginator=paginator, ordering=ordering)


# Filters whose totals the read models hold (ConnectionStats.listed / listed_active).
COUNTED_FILTERS = {"connection", "status", "ordering"}


def count_from_read_models(cleaned: Mapping[str, Any]) -> int | None:
    """The users table's total from the read models, for the unfiltered table and its
    account / "active" views (no COUNT over tens of thousands of people); None for other filters."""
    if any(v not in (None, "") for k, v in cleaned.items() if k not in COUNTED_FILTERS):
        return None
    status = cleaned.get("status") or ""
    if status not in ("", AppUser.Status.ACTIVE):
        return None
    connection = cleaned.get("connection")
    ids = [connection.pk] if connection is not None else list(Connection.objects.values_list("pk", flat=True))
    stats = ConnectionStats.objects.filter(connection_id__in=ids).values_list("listed", "listed_active")
    rows = list(stats)
    if len(rows) != len(ids):  # a connection never refreshed: count for real
        return None
    return sum(active if status else listed for listed, active in rows)


def directory_user_count(params: Mapping[str, Any]) -> int:
    """How many people match these filters (0 when the filters are invalid)."""
    from integrations.filters import AppUserFilter

    filterset = AppUserFilter(params, queryset=directory_user_queryset())
    return filterset.qs.count() if filterset.is_valid() else 0


def _search_page(qs: QuerySet[AppUser], paginator: Paginator, page: int | str) -> Page | None:
    """A page of search results and their total from one query (COUNT(*) OVER ()).

    A text search cannot use an index: counting, then fetching the page, would scan every person
    twice. Searches are small, so the window costs nothing; None (page out of range, nothing found)
    falls back to the paginator.
    """
    try:
        number = max(1, int(page))
    except (TypeError, ValueError):
        number = 1
    size = paginator.per_page
    rows = list(qs.annotate(search_total=Window(Count("pk")))[(number - 1) * size : number * size])
    if not rows:
        return None
    paginator.__dict__["count"] = getattr(rows[0], "search_total", len(rows))  # Paginator.count is cached
    return Page(rows, number, paginator)


def admin_role_names() -> list[str]:
    """Administrator role names present in the data (for the role filter)."""
    return list(
        AppUser.objects.filter(application_id__in=directory_app_ids(), is_admin=True)
        .exclude(role="")
        .order_by("role")
        .values_list("role", flat=True)
        .distinct()
    )


def application_choices() -> list[tuple[str, list[tuple[int, str]]]]:
    """Applications for filter drop-downs, grouped by account: [(account, [(id, label), ...])].

    With several accounts every option names its account too ("JumpCloud — Acme"): a closed
    select shows only the option, and every account has a JumpCloud. Plain tuples from one query:
    hundreds of model instances would cost more than the query.
    """
    groups: dict[tuple[str, int], list[tuple[int, str]]] = {}
    rows = (
        Application.objects.filter(removed_at__isnull=True)
        .order_by("connection__name", "connection_id", "-kind", "label", "name", "id")
        .values_list("connection__name", "connection_id", "id", "label", "name", "external_id")
    )
    for account, conn_id, pk, label, name, ext in rows:
        groups.setdefault((account, conn_id), []).append((pk, label or name or ext))
    if len(groups) > 1:
        return [
            (account, [(pk, f"{label} — {account}") for pk, label in options])
            for (account, _), options in groups.items()
        ]
    return [(account, options) for (account, _), options in groups.items()]


# --- one person --------------------------------------------------------------------------------
def directory_user_get(pk: int) -> AppUser:
    return (
        AppUser.objects.filter(application__kind=Application.Kind.DIRECTORY)
        .select_related("connection", "application")
        .get(pk=pk)
    )


@dataclass(frozen=True)
class Membership:
    """One application a person can use."""

    app_user: AppUser
    application: Application
    is_directory: bool


def directory_user_memberships(person: AppUser) -> list[Membership]:
    """JumpCloud itself (the person's own row) and every SSO app they can use, most recent use first."""
    rows = list(
        AppUser.objects.filter(directory_user=person)
        .select_related("application")
        .only(
            "id",
            "status",
            "assignment",
            "last_used_at",
            "removed_at",
            "role",
            "application__id",
            "application__name",
            "application__label",
            "application__sso_url",
            "application__kind",
            "application__active",
            "application__removed_at",
            "application__external_id",
        )
    )
    out = [Membership(app_user=person, application=person.application, is_directory=True)]
    rows.sort(
        key=lambda r: (
            r.last_used_at is None,
            -(r.last_used_at.timestamp() if r.last_used_at else 0),
            (r.application.label or r.application.name).lower(),
        )
    )
    out.extend(Membership(app_user=r, application=r.application, is_directory=False) for r in rows)
    return out


@dataclass
class EventPage:
    events: list[UsageEvent]
    number: int
    has_next: bool

    @property
    def has_previous(self) -> bool:
        return self.number > 1


def directory_user_event_page(person: AppUser, *, page: Any = 1, per_page: int = 25) -> EventPage:
    """One page of the person's usage events, newest first, without counting them all (one query:
    a page and one more row, on the (connection, actor, occurred_at) index)."""
    try:
        number = max(1, min(int(page), 400))
    except (TypeError, ValueError):
        number = 1
    rows = directory_user_events(person, limit=number * per_page + 1, offset=(number - 1) * per_page)
    return EventPage(events=rows[:per_page], number=number, has_next=len(rows) > per_page)


def event_label(provider_key: str, event_type: str) -> str:
    """What a usage event type means, in words (the provider's label, else the type humanized)."""
    from integrations.providers import registry

    try:
        labels = registry.get(provider_key).event_labels
    except LookupError:
        labels = {}
    return labels.get(event_type) or event_type.replace("_", " ").capitalize()


def directory_user_events(person: AppUser, *, limit: int = 50, offset: int = 0) -> list[UsageEvent]:
    """The person's most recent usage events (as a user, and as an administrator when they are one)."""
    actor_ids = [i for i in (person.external_id, person.admin_external_id) if i]
    if not actor_ids:
        return []
    return list(
        UsageEvent.objects.filter(connection_id=person.connection_id, actor_external_id__in=actor_ids)
        .only(
            "id",
            "kind",
            "event_type",
            "occurred_at",
            "success",
            "application_external_id",
            "application_name",
            "client_ip",
            "error_message",
        )
        .order_by("-occurred_at")[offset:limit]
    )


def application_names(connection_id: int, external_ids: set[str]) -> dict[str, str]:
    """Display names for the applications usage events point at (one query)."""
    if not external_ids:
        return {}
    return {
        a.external_id: (a.label or a.name or a.external_id)
        for a in Application.objects.filter(connection_id=connection_id, external_id__in=external_ids).only(
            "external_id", "label", "name"
        )
    }


def person_usage_available(person: AppUser) -> bool:
    return usage_available(person.connection)


# --- CSV ---------------------------------------------------------------------------------------
EXPORT_HEADER = (
    "name",
    "username",
    "email",
    "account",
    "status",
    "role",
    "administrator",
    "mfa",
    "apps",
    "last_used_anywhere",
    "last_jumpcloud_login",
    "created",
    "external_id",
)


def directory_user_export_rows(params: Mapping[str, Any]) -> Iterator[tuple[Any, ...]]:
    """Rows of the filtered people for CSV, streamed from a server-side cursor in chunks."""
    from integrations.filters import AppUserFilter

    data = params.copy() if hasattr(params, "copy") else dict(params)
    if not data.get("ordering"):
        data["ordering"] = "name"
    filterset = AppUserFilter(data, queryset=directory_user_queryset())
    if not filterset.is_valid():
        return iter(())
    qs = filterset.qs.values_list(
        "display_name",
        "first_name",
        "last_name",
        "username",
        "email",
        "connection__name",
        "status",
        "role",
        "is_admin",
        "mfa_enabled",
        "apps_count",
        "last_used_any",
        "last_used_at",
        "upstream_created_at",
        "external_id",
        "connection__capabilities",
    )

    def rows() -> Iterator[tuple[Any, ...]]:
        for (
            display,
            first,
            last,
            username,
            email,
            account,
            status,
            role,
            is_admin,
            mfa,
            apps,
            last_any,
            last_login,
            created,
            ext_id,
            caps,
        ) in qs.iterator(chunk_size=2000):
            has_usage = bool((caps or {}).get("usage_events"))
            unavailable = "" if has_usage else "unavailable"
            yield (
                display or f"{first} {last}".strip(),
                username,
                email,
                account,
                status,
                role,
                "yes" if is_admin else "no",
                {True: "yes", False: "no"}.get(mfa, "unknown"),
                apps,
                _iso(last_any) if has_usage else unavailable,
                _iso(last_login) if has_usage else unavailable,
                _iso(created),
                ext_id,
            )

    return rows()


def _iso(value: datetime | None) -> str:
    return value.isoformat() if value else ""

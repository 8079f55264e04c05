"""Reads about the directory's people: the users table, one person's page, CSV export rows."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.paginator import Page, Paginator
from django.db.models import Count, DateTimeField, F, OuterRef, QuerySet, Subquery, Window
from django.db.models.functions import Coalesce, Greatest

from integrations.models import Application, AppUser, UsageEvent
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


def annotate_people(qs: QuerySet[AppUser]) -> QuerySet[AppUser]:
    """Add `apps_count` (SSO apps the person can use) and `last_used_any` (latest use of JumpCloud
    or any app). Both are correlated subqueries on the (directory_user, last_used_at) index;
    PostgreSQL evaluates them only for the rows of the page unless they are sorted on."""
    if "last_used_any" in qs.query.annotations:
        return qs
    memberships = AppUser.objects.filter(directory_user=OuterRef("pk"))
    apps_count = (
        memberships.filter(removed_at__isnull=True)
        .order_by()
        .values("directory_user")
        .annotate(n=Count("id"))
        .values("n")
    )
    latest_app_use = (
        memberships.filter(last_used_at__isnull=False).order_by("-last_used_at").values("last_used_at")[:1]
    )
    return qs.annotate(
        apps_count=Coalesce(Subquery(apps_count), 0),
        # PostgreSQL's GREATEST skips NULLs: NULL only when the person never used anything.
        last_used_any=Greatest("last_used_at", Subquery(latest_app_use, output_field=DateTimeField())),
    )


def directory_user_queryset() -> QuerySet[AppUser]:
    """The directory's people across every connection (the queryset AppUserFilter works on)."""
    return annotate_people(
        # directory_user IS NULL is true of every directory row; saying so lets PostgreSQL use the
        # partial indexes made for people (the search's trigram index).
        AppUser.objects.filter(application_id__in=directory_app_ids(), directory_user__isnull=True)
        .select_related("connection")
        .only(*PERSON_FIELDS)
    )


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
    paginator: Paginator
    if ordering in ("last_used", "-last_used"):
        paginator = LastUsePaginator(qs, per_page, descending=ordering.startswith("-"))
    else:
        paginator = Paginator(qs, per_page)
    if known_count is not None:
        paginator.__dict__["count"] = known_count  # Paginator.count is a cached_property
    # A search is usually small: one query for its page and total. Not when sorted by last use,
    # whose paginator counts first to choose its strategy (a broad search can be big).
    page_obj = None
    if data.get("q") and not isinstance(paginator, LastUsePaginator):
        page_obj = _search_page(qs, paginator, page)
    if page_obj is None:
        page_obj = paginator.get_page(page)
    return PeopleResult(filterset=filterset, page=page_obj, paginator=paginator, ordering=ordering)


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


# --- sorting by last use without computing it for every person -------------------------------------
# "Last used anywhere" is the latest of a person's own JumpCloud login and their use of any app: a
# value across rows that no index holds. Sorting tens of thousands of people by it means one
# subquery per person (~80 ms for 50k). When the filtered set is big, the first pages are instead
# assembled from two index-ordered streams (see _newest_first) or, oldest first, from the people
# who never used anything (never_used_first); anything else falls back to the plain ORDER BY.
FAST_PATH_MIN_ROWS = 2000
FAST_PATH_MAX_ROWS = 1000
MEMBERSHIP_SCAN_LIMIT = 200_000


class LastUsePaginator(Paginator):
    def __init__(self, object_list: QuerySet[AppUser], per_page: int, *, descending: bool) -> None:
        super().__init__(object_list, per_page)
        self.people = object_list
        self.descending = descending

    def page(self, number: Any) -> Page:
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        top = bottom + self.per_page
        rows: list[AppUser] | None = None
        if self.count >= FAST_PATH_MIN_ROWS and top <= FAST_PATH_MAX_ROWS:
            qs = self.people
            rows = _newest_first(qs, top) if self.descending else never_used_first(qs, top)
        if rows is None:
            return super().page(number)
        return Page(rows[bottom:top], number, self)


def _newest_first(qs: QuerySet[AppUser], n: int) -> list[AppUser] | None:
    """The first n people by last use anywhere, newest first, or None when they cannot be found
    this way (fewer than n people ever used anything).

    The top n by max(own, apps) are among the top n by their own last login plus the top n by
    their latest app use: anyone else has n people ahead of them on the stream that gives their
    maximum. The second stream reads app assignments newest first (dash_appuser_member_last_used)
    until n distinct people of the filtered set have appeared. Only used when the filtered set is
    big (FAST_PATH_MIN_ROWS), so a few thousand assignments are enough.
    """
    plain = qs.order_by()
    own = list(
        plain.filter(last_used_at__isnull=False)
        .order_by(F("last_used_at").desc(), "pk")
        .values_list("pk", flat=True)[:n]
    )
    # App assignments newest use first, over the whole table (a backward scan of a partial index),
    # then which of those people pass the filters. Joining the filters into the scan let the
    # planner misjudge semi-joins (170 ms with an app filter); two plain queries cannot go wrong.
    via_apps: list[int] = []
    scan = max(n * 20, 1000)
    while True:
        rows = list(
            AppUser.objects.filter(directory_user__isnull=False, last_used_at__isnull=False)
            .order_by("-last_used_at")
            .values_list("directory_user_id", flat=True)[:scan]
        )
        seen = list(dict.fromkeys(rows))
        allowed = set(plain.filter(pk__in=seen).values_list("pk", flat=True))
        via_apps = [pk for pk in seen if pk in allowed][:n]
        if len(via_apps) >= n or len(rows) < scan:
            break
        if scan >= MEMBERSHIP_SCAN_LIMIT:
            return None
        scan *= 4
    candidates = set(own) | set(via_apps)
    result = list(qs.filter(pk__in=candidates).order_by(F("last_used_any").desc(nulls_last=True), "pk")[:n])
    if len(result) < n or getattr(result[-1], "last_used_any", None) is None:
        return None
    return result


def never_used_first(qs: QuerySet[AppUser], n: int) -> list[AppUser] | None:
    """Oldest first starts with the people who never used anything (by id): when there are at
    least n of them, that is the page, read in primary-key order with one index probe per person
    (a scalar subquery, not NOT EXISTS: see AppUserFilter.filter_inactive_days for why)."""
    any_use = Subquery(
        # Unordered and selecting an indexed column: an index-only probe that stops at the first row.
        AppUser.objects.filter(directory_user=OuterRef("pk"), last_used_at__isnull=False)
        .order_by()
        .values("directory_user_id")[:1]
    )
    never: list[AppUser] = list(
        qs.filter(last_used_at__isnull=True)
        .alias(any_use=any_use)
        .filter(any_use__isnull=True)
        .order_by("pk")[:n]
    )
    return never if len(never) == n else None


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
    return annotate_people(
        AppUser.objects.filter(application__kind=Application.Kind.DIRECTORY).select_related(
            "connection", "application"
        )
    ).get(pk=pk)


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

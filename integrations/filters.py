"""django-filter FilterSets over the inventory, shared by the dashboard and the REST API.

`AuditLogFilter` filters the audit log (ActionRun rows). `AppUserFilter` filters the directory's people: AppUser rows of the directory applications (see
`integrations.selectors.users.directory_user_queryset`). `apps_count` and `last_used_any` are
read-model columns of those rows (integrations.services.read_models).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import django_filters
from django import forms
from django.db.models import BooleanField, F, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.utils import timezone

from integrations.models import ActionRun, Application, AppUser, Connection
from integrations.selectors.common import usage_available
from integrations.services.audit import action_labels

MAX_INACTIVE_DAYS = 3650


# Column names unqualified on purpose: they then resolve to the innermost AppUser table even when
# this queryset becomes a subquery (where Django renames the table U0).
PEOPLE_SEARCH_SQL = (
    "UPPER(display_name || ' ' || first_name || ' ' || last_name || ' ' || username || ' ' || email) "
    "LIKE %s ESCAPE '\\'"
)


def like_escape(text: str) -> str:
    """A user's text as a literal inside a LIKE pattern (ESCAPE '\\')."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class IntegerFilter(django_filters.NumberFilter):
    field_class = forms.IntegerField


class PeopleOrderingFilter(django_filters.OrderingFilter):
    """Sortable columns of the users table.

    Dates sort with "never" last when newest-first and first when oldest-first, so both directions
    answer a useful question (who used it most recently / who has not used it at all). The primary
    key always breaks ties (in the direction of the first column), so pages are stable.
    """

    COLUMNS: dict[str, tuple[str, ...]] = {
        "name": ("display_name", "last_name", "first_name"),
        "username": ("username",),
        "email": ("email",),
        "account": ("connection__name",),
        "status": ("status",),
        "role": ("role",),
        "apps": ("apps_count",),
        "last_used": ("last_used_any",),
        "last_login": ("last_used_at",),
        "created": ("upstream_created_at",),
    }
    LABELS = {
        "name": "Name",
        "username": "Username",
        "email": "Email",
        "account": "Account",
        "status": "Status",
        "role": "Role",
        "apps": "Apps",
        "last_used": "Last used (anywhere)",
        "last_login": "Last JumpCloud login",
        "created": "Created",
    }
    NULLABLE = {"last_used_any", "last_used_at", "upstream_created_at"}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("fields", {k: k for k in self.COLUMNS})
        kwargs.setdefault("field_labels", self.LABELS)
        super().__init__(*args, **kwargs)

    def filter(self, qs: QuerySet[AppUser], value: Any) -> QuerySet[AppUser]:
        params = [p for p in (value or []) if p]
        if not params:
            return qs
        order: list[Any] = []
        for param in params:
            desc = param.startswith("-")
            for name in self.COLUMNS.get(param.lstrip("-"), ()):
                expr = F(name)
                if name in self.NULLABLE:
                    order.append(expr.desc(nulls_last=True) if desc else expr.asc(nulls_first=True))
                else:
                    order.append(expr.desc() if desc else expr.asc())
        # The primary key breaks ties in the first column's direction: then "newest first" is
        # the exact backward walk of the ascending index (last_used_any ASC NULLS FIRST, id).
        tie = "-pk" if params[0].startswith("-") else "pk"
        return qs.order_by(*order, tie)


class AppUserFilter(django_filters.FilterSet):
    """Filters for the directory's people (one row per person per connection).

    Without a `status`, removed (soft-deleted) people are left out: they are no longer users.
    `inactive_days` only ever matches people of connections whose usage events are available —
    elsewhere torii cannot know who is inactive, and must not claim that everybody is.
    """

    q = django_filters.CharFilter(method="filter_q", label="Search")
    connection = django_filters.ModelChoiceFilter(
        queryset=Connection.objects.only("id", "name"), label="Account"
    )
    status = django_filters.ChoiceFilter(
        choices=AppUser.Status.choices, method="filter_status", label="Status"
    )
    role = django_filters.CharFilter(method="filter_role", label="Role")
    app = django_filters.ModelChoiceFilter(
        queryset=Application.objects.only("id", "kind", "connection_id"),
        method="filter_app",
        label="Application",
    )
    admin_mfa = django_filters.ChoiceFilter(
        choices=[("on", "MFA on"), ("off", "MFA off"), ("unknown", "MFA unknown")],
        method="filter_admin_mfa",
        label="Administrator MFA",
    )
    inactive_days = IntegerFilter(
        method="filter_inactive_days",
        label="No use in (days)",
        min_value=1,
        max_value=MAX_INACTIVE_DAYS,
    )
    ordering = PeopleOrderingFilter(label="Sort by")

    class Meta:
        model = AppUser
        fields: list[str] = []

    def filter_queryset(self, queryset: QuerySet[AppUser]) -> QuerySet[AppUser]:
        if not self.form.cleaned_data.get("status"):
            queryset = queryset.filter(removed_at__isnull=True).exclude(status=AppUser.Status.REMOVED)
        return super().filter_queryset(queryset)

    def filter_q(self, queryset: QuerySet[AppUser], name: str, value: str) -> QuerySet[AppUser]:
        # Every word must appear in the person's names, username or email, so "ada love" finds Ada
        # Lovelace. One expression over all of them, the one the trigram index
        # dash_appuser_search_trgm is built on (dashboard migration 0002).
        for term in value.split()[:5]:
            pattern = "%" + like_escape(term.upper()) + "%"
            # A constant SQL text; the user's words only ever travel as a bound parameter.
            condition = RawSQL(PEOPLE_SEARCH_SQL, [pattern], output_field=BooleanField())  # noqa: S611
            queryset = queryset.filter(condition)
        return queryset

    def filter_status(self, queryset: QuerySet[AppUser], name: str, value: str) -> QuerySet[AppUser]:
        if value == AppUser.Status.REMOVED:
            return queryset.filter(Q(status=value) | Q(removed_at__isnull=False))
        return queryset.filter(status=value, removed_at__isnull=True)

    def filter_role(self, queryset: QuerySet[AppUser], name: str, value: str) -> QuerySet[AppUser]:
        value = value.strip()
        if value.lower() == "user":
            return queryset.filter(is_admin=False)
        if value.lower() == "admin":
            return queryset.filter(is_admin=True)
        return queryset.filter(is_admin=True, role=value)

    def filter_admin_mfa(self, queryset: QuerySet[AppUser], name: str, value: str) -> QuerySet[AppUser]:
        """Administrators by the MFA of their administrator account (people who are not
        administrators never match)."""
        state = {"on": True, "off": False}.get(value)
        if state is None:
            return queryset.filter(is_admin=True, admin_mfa_enabled__isnull=True)
        return queryset.filter(is_admin=True, admin_mfa_enabled=state)

    def filter_app(self, queryset: QuerySet[AppUser], name: str, value: Application) -> QuerySet[AppUser]:
        if value.kind == Application.Kind.DIRECTORY:
            return queryset.filter(application_id=value.pk)
        members = AppUser.objects.filter(
            application_id=value.pk, removed_at__isnull=True, directory_user__isnull=False
        ).values("directory_user_id")
        return queryset.filter(pk__in=members)

    def filter_inactive_days(self, queryset: QuerySet[AppUser], name: str, value: int) -> QuerySet[AppUser]:
        cutoff = timezone.now() - timedelta(days=int(value))
        # The measured connections as a list of ids: a join on the JSON capabilities made
        # PostgreSQL walk the connection index over every AppUser row (150 ms on 450k rows).
        measured = [c.pk for c in Connection.objects.only("id", "capabilities") if usage_available(c)]
        # last_used_any (the read model) is the latest use of JumpCloud or any app; NULL: never.
        return queryset.filter(connection_id__in=measured).filter(
            Q(last_used_any__isnull=True) | Q(last_used_any__lt=cutoff)
        )


class AuditLogFilter(django_filters.FilterSet):
    """Filters of the audit page and of GET /api/v1/audit-log/."""

    connection = django_filters.ModelChoiceFilter(
        queryset=Connection.objects.order_by("name", "id"), label="Account", empty_label="All accounts"
    )
    action = django_filters.ChoiceFilter(
        # A callable: read when a form is built, after every provider registered its actions.
        choices=lambda: sorted(action_labels().items(), key=lambda kv: kv[1]),
        empty_label="Any action",
    )
    status = django_filters.ChoiceFilter(
        choices=ActionRun.Status.choices, label="Outcome", empty_label="Any outcome"
    )
    category = django_filters.ChoiceFilter(
        choices=ActionRun.Category.choices, label="Kind", empty_label="Any kind"
    )
    actor = django_filters.CharFilter(
        field_name="actor_username", lookup_expr="iexact", label="Actor (torii username)"
    )
    target = django_filters.CharFilter(
        field_name="target_username", lookup_expr="icontains", label="Target username"
    )
    date_from = django_filters.DateFilter(
        field_name="created_at",
        lookup_expr="date__gte",
        label="From",
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    date_to = django_filters.DateFilter(
        field_name="created_at",
        lookup_expr="date__lte",
        label="To",
        widget=forms.DateInput(attrs={"type": "date"}),
    )

    class Meta:
        model = ActionRun
        fields = ["connection", "action", "status", "category", "actor", "target", "date_from", "date_to"]

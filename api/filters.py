"""django-filter FilterSets of the REST API (drf-spectacular documents their parameters)."""

from __future__ import annotations

import django_filters as filters
from django.db.models import Q, QuerySet

from integrations.models import Application, AppUser, Connection, SyncRun, UsageEvent


class ConnectionFilter(filters.FilterSet):
    class Meta:
        model = Connection
        fields = ["provider", "status", "permission"]


class SyncRunFilter(filters.FilterSet):
    created_after = filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = SyncRun
        fields = ["connection", "kind", "trigger", "status"]


class ApplicationFilter(filters.FilterSet):
    search = filters.CharFilter(method="filter_search", help_text="Name or label contains.")
    removed = filters.BooleanFilter(field_name="removed_at", lookup_expr="isnull", exclude=True)

    class Meta:
        model = Application
        fields = ["connection", "kind", "active"]

    def filter_search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(Q(name__icontains=value) | Q(label__icontains=value))


class ApplicationUserFilter(filters.FilterSet):
    class Meta:
        model = AppUser
        fields = ["status"]


class UsageEventFilter(filters.FilterSet):
    """By account, kind, user, app and time range."""

    user = filters.NumberFilter(method="filter_user", help_text="A directory user's id (GET /api/v1/users/).")
    application = filters.NumberFilter(method="filter_application", help_text="An application's id.")
    since = filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="gte")
    until = filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="lt")

    class Meta:
        model = UsageEvent
        fields = [
            "connection",
            "kind",
            "event_type",
            "success",
            "actor_external_id",
            "actor_username",
            "application_external_id",
        ]

    def filter_user(self, queryset: QuerySet, name: str, value: int) -> QuerySet:
        user = AppUser.objects.filter(pk=value).values("connection_id", "external_id").first()
        if user is None:
            return queryset.none()
        return queryset.filter(connection_id=user["connection_id"], actor_external_id=user["external_id"])

    def filter_application(self, queryset: QuerySet, name: str, value: int) -> QuerySet:
        app = Application.objects.filter(pk=value).values("connection_id", "external_id").first()
        if app is None:
            return queryset.none()
        return queryset.filter(connection_id=app["connection_id"], application_external_id=app["external_id"])

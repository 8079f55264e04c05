"""Serializers of the REST API: shapes only. Reads come from querysets, writes go through services.

No serializer ever names Connection.credentials: the API shows the masked `secret_hint` only.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from rest_framework import serializers

from accounts.roles import is_admin
from api.schema import NamedChoiceField, model_choices
from integrations.models import ActionRun, Application, AppUser, Connection, SyncRun, UsageEvent
from integrations.services.audit import action_label
from integrations.services.licences import MAX_PRICE, MAX_SEATS

User = get_user_model()


# --- connections -----------------------------------------------------------------------------
class ConnectionSerializer(serializers.ModelSerializer):
    permission = model_choices("ConnectionPermissionEnum", Connection.Permission.choices)
    status = model_choices("ConnectionStatusEnum", Connection.Status.choices)
    can_act = serializers.BooleanField(
        read_only=True, help_text="Actions are allowed (permission Read and take action)."
    )

    class Meta:
        model = Connection
        fields = [
            "id",
            "provider",
            "name",
            "region",
            "base_url",
            "org_id",
            "org_name",
            "secret_hint",
            "permission",
            "status",
            "status_message",
            "capabilities",
            "can_act",
            "events_interval_minutes",
            "full_sync_interval_hours",
            "next_events_sync_at",
            "next_full_sync_at",
            "last_sync_at",
            "last_success_at",
            "created_at",
            "updated_at",
            "disconnected_at",
        ]
        read_only_fields = fields


class CapabilityStatusSerializer(serializers.Serializer):
    key = serializers.CharField()
    # A field named like an attribute of DRF's Field base class; DRF itself handles that fine.
    label = serializers.CharField()  # type: ignore[assignment]
    description = serializers.CharField()
    requires_write = serializers.BooleanField()
    supported = serializers.BooleanField(help_text="torii supports this for the provider.")
    available = serializers.BooleanField(help_text="Available for this connection now.")
    reason = serializers.CharField(help_text="Why it is not available ('' when it is).")

    def to_representation(self, instance: Any) -> dict[str, Any]:
        cap = instance.capability
        return {
            "key": cap.key,
            "label": cap.label,
            "description": cap.description,
            "requires_write": cap.requires_write,
            "supported": instance.supported,
            "available": instance.available,
            "reason": instance.reason,
        }


class ConnectionCapabilitiesSerializer(serializers.Serializer):
    connection = serializers.IntegerField()
    connection_name = serializers.CharField()
    provider = serializers.CharField()
    capabilities = CapabilityStatusSerializer(many=True)


# --- syncs -----------------------------------------------------------------------------------
class SyncRunSerializer(serializers.ModelSerializer):
    kind = model_choices("SyncKindEnum", SyncRun.Kind.choices)
    trigger = model_choices("SyncTriggerEnum", SyncRun.Trigger.choices)
    status = model_choices("SyncStatusEnum", SyncRun.Status.choices)
    requested_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )

    class Meta:
        model = SyncRun
        fields = [
            "id",
            "connection",
            "kind",
            "trigger",
            "status",
            "requested_by",
            "created_at",
            "started_at",
            "finished_at",
            "heartbeat_at",
            "current_stream",
            "streams",
            "error_message",
            "attempts",
        ]
        read_only_fields = fields


class SyncRunRequestSerializer(serializers.Serializer):
    connection = serializers.PrimaryKeyRelatedField(
        queryset=Connection.objects.exclude(status=Connection.Status.DISCONNECTED)
    )
    kind = NamedChoiceField(enum_name="SyncKindEnum", choices=SyncRun.Kind.choices, default=SyncRun.Kind.FULL)


# --- inventory -------------------------------------------------------------------------------
class ApplicationSerializer(serializers.ModelSerializer):
    kind = model_choices("ApplicationKindEnum", Application.Kind.choices)
    users_count = serializers.IntegerField(read_only=True, help_text="Users who can use it (not removed).")
    active_30 = serializers.IntegerField(
        read_only=True, help_text="Of those, how many used it in the last 30 days (0 without usage events)."
    )
    active_90 = serializers.IntegerField(read_only=True, help_text="The same over 90 days.")
    last_used_at = serializers.DateTimeField(
        read_only=True, allow_null=True, help_text="Last use by anyone, assigned or not."
    )

    class Meta:
        model = Application
        fields = [
            "id",
            "connection",
            "external_id",
            "kind",
            "name",
            "label",
            "sso_url",
            "active",
            "upstream_created_at",
            "removed_at",
            "first_seen_at",
            "users_count",
            "active_30",
            "active_90",
            "last_used_at",
        ]
        read_only_fields = fields


class AppUserSerializer(serializers.ModelSerializer):
    """One person's record in one application (for the directory application: a directory user)."""

    kind = model_choices("AppUserKindEnum", AppUser.Kind.choices)
    status = model_choices("AppUserStatusEnum", AppUser.Status.choices)

    class Meta:
        model = AppUser
        fields = [
            "id",
            "connection",
            "application",
            "external_id",
            "directory_user",
            "kind",
            "username",
            "email",
            "first_name",
            "last_name",
            "display_name",
            "status",
            "role",
            "is_admin",
            "mfa_enabled",
            "password_expired",
            "assignment",
            "upstream_created_at",
            "last_used_at",
            "admin_last_login_at",
            "removed_at",
        ]
        read_only_fields = fields


class MembershipSerializer(serializers.ModelSerializer):
    status = model_choices("AppUserStatusEnum", AppUser.Status.choices)
    application_label = serializers.SerializerMethodField()

    class Meta:
        model = AppUser
        fields = [
            "id",
            "application",
            "application_label",
            "status",
            "assignment",
            "last_used_at",
            "removed_at",
        ]
        read_only_fields = fields

    def get_application_label(self, obj: AppUser) -> str:
        return obj.application.label or obj.application.name


class UserSerializer(serializers.ModelSerializer):
    """A directory user (one person in one account), as in the users table."""

    kind = model_choices("AppUserKindEnum", AppUser.Kind.choices)
    status = model_choices("AppUserStatusEnum", AppUser.Status.choices)

    connection_name = serializers.CharField(source="connection.name", read_only=True)
    apps_count = serializers.IntegerField(read_only=True, help_text="SSO applications they can use.")
    last_used_any = serializers.DateTimeField(
        read_only=True, allow_null=True, help_text="Latest use of JumpCloud or any application."
    )

    class Meta:
        model = AppUser
        fields = [
            "id",
            "connection",
            "connection_name",
            "external_id",
            "kind",
            "username",
            "email",
            "first_name",
            "last_name",
            "display_name",
            "status",
            "role",
            "is_admin",
            "mfa_enabled",
            "password_expired",
            "upstream_created_at",
            "last_used_at",
            "admin_last_login_at",
            "removed_at",
            "apps_count",
            "last_used_any",
        ]
        read_only_fields = fields


class UserDetailSerializer(UserSerializer):
    apps = MembershipSerializer(source="app_memberships", many=True, read_only=True)

    class Meta(UserSerializer.Meta):
        fields = [*UserSerializer.Meta.fields, "apps"]
        read_only_fields = fields


class UsageEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = UsageEvent
        fields = [
            "id",
            "connection",
            "external_id",
            "kind",
            "event_type",
            "occurred_at",
            "success",
            "actor_external_id",
            "actor_type",
            "actor_username",
            "actor_email",
            "application_external_id",
            "application_name",
            "client_ip",
            "error_message",
        ]
        read_only_fields = fields


# --- audit and actions -----------------------------------------------------------------------
class ActionRunSerializer(serializers.ModelSerializer):
    """An audit record: a user action or a connection event. Never contains a secret."""

    category = model_choices("AuditCategoryEnum", ActionRun.Category.choices)
    status = model_choices("AuditStatusEnum", ActionRun.Status.choices)

    action_label = serializers.SerializerMethodField()

    class Meta:
        model = ActionRun
        fields = [
            "id",
            "category",
            "action",
            "action_label",
            "connection",
            "connection_name",
            "actor_username",
            "target_external_id",
            "target_username",
            "parameters",
            "result",
            "status",
            "error_message",
            "request_id",
            "created_at",
            "finished_at",
        ]
        read_only_fields = fields

    def get_action_label(self, obj: ActionRun) -> str:
        return action_label(obj.action)


class ActionRunDetailSerializer(ActionRunSerializer):
    snapshot = serializers.JSONField(
        read_only=True,
        allow_null=True,
        help_text="For deletions: the JumpCloud record as it was just before, so the account could be "
        "recreated. Admins only (it holds a person's whole record): always null for Viewers.",
    )
    has_snapshot = serializers.SerializerMethodField(help_text="A record was kept (Admins can read it).")

    class Meta(ActionRunSerializer.Meta):
        fields = [*ActionRunSerializer.Meta.fields, "has_snapshot", "snapshot"]
        read_only_fields = fields

    def get_has_snapshot(self, obj: ActionRun) -> bool:
        return bool(obj.snapshot)

    def to_representation(self, instance: ActionRun) -> dict[str, Any]:
        data = super().to_representation(instance)
        request = self.context.get("request")
        if not is_admin(getattr(request, "user", None)):
            data["snapshot"] = None
        return data


class CreateUserSerializer(serializers.Serializer):
    connection = serializers.PrimaryKeyRelatedField(queryset=Connection.objects.all())
    first_name = serializers.CharField(max_length=255, allow_blank=True, required=False, default="")
    last_name = serializers.CharField(max_length=255, allow_blank=True, required=False, default="")
    email = serializers.CharField(max_length=320)
    username = serializers.CharField(
        max_length=255,
        help_text="Spaces become dots ('Jane Doe' -> 'Jane.Doe'); other problems are refused with a reason.",
    )
    state = serializers.ChoiceField(
        choices=[("", "Organization default"), ("ACTIVATED", "Activated"), ("STAGED", "Staged")],
        required=False,
        default="",
        allow_blank=True,
    )


class ActionTargetSerializer(serializers.Serializer):
    user = serializers.PrimaryKeyRelatedField(
        queryset=AppUser.objects.filter(application__kind=Application.Kind.DIRECTORY).select_related(
            "connection", "application"
        ),
        help_text="Id of a directory user (GET /api/v1/users/).",
    )


class ActionRefusalSerializer(serializers.Serializer):
    detail = serializers.CharField()
    code = serializers.CharField(required=False)
    # Describes a response body for the schema only (never validated), so shadowing
    # Serializer.errors is harmless.
    errors = serializers.DictField(  # type: ignore[assignment]
        child=serializers.ListField(child=serializers.CharField()), required=False
    )
    action_run = serializers.IntegerField(required=False, allow_null=True)


class SyncConflictSerializer(serializers.Serializer):
    detail = serializers.CharField()
    sync_run = serializers.IntegerField(allow_null=True)


# --- licences ----------------------------------------------------------------------------------
class LicenceWriteSerializer(serializers.Serializer):
    seats_purchased = serializers.IntegerField(min_value=0, max_value=MAX_SEATS, allow_null=True)
    price_per_seat_month = serializers.DecimalField(
        max_digits=12, decimal_places=2, min_value=0, max_value=MAX_PRICE, allow_null=True
    )


class LicenceSerializer(serializers.Serializer):
    application = serializers.IntegerField()
    seats_purchased = serializers.IntegerField(allow_null=True)
    price_per_seat_month = serializers.CharField(allow_null=True, help_text="Decimal, two places.")
    currency = serializers.CharField()
    assigned = serializers.IntegerField()
    spare = serializers.IntegerField(help_text="Seats bought and assigned to nobody.")
    usage_measured = serializers.BooleanField()
    unused = serializers.DictField(
        child=serializers.IntegerField(allow_null=True), help_text="Assigned, no use in 30/60/90 days."
    )
    reclaimable = serializers.DictField(
        child=serializers.DictField(), help_text="Per window: seats, monthly, yearly."
    )


def licence_data(row: Any) -> dict[str, Any]:
    from django.conf import settings

    def money(value: Any) -> str | None:
        return None if value is None else f"{value:.2f}"

    return {
        "application": row.application.pk,
        "seats_purchased": row.seats_purchased,
        "price_per_seat_month": money(row.price_per_seat_month),
        "currency": settings.TORII_CURRENCY,
        "assigned": row.assigned,
        "spare": row.spare,
        "usage_measured": row.measured,
        "unused": {str(d): v for d, v in row.unused.items()},
        "reclaimable": {
            str(d): {
                "seats": row.reclaimable(d),
                "monthly": money(row.monthly(d)),
                "yearly": money(row.yearly(d)),
            }
            for d in row.unused
        },
    }

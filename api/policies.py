"""REST API v1 for policies and their runs: thin, every write through policies.services.

Viewers read (policies, runs, dry runs); Admins create, edit, run, approve, reject and undo.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from api.pagination import StandardPagination
from api.serializers import model_choices
from api.views import ApiViewMixin
from dashboard.params import parse_id
from integrations.models import Application, Connection
from integrations.services.actions import ActionRefused
from policies.models import POLICY_EDITABLE_FIELDS, Policy, PolicyRun, PolicyRunItem
from policies.selectors import Selection, policy_list, policy_run_items, policy_run_list, policy_selection
from policies.services import (
    PolicyError,
    policy_delete,
    policy_run_approve,
    policy_run_create,
    policy_run_reject,
    policy_run_undo,
    policy_save,
)


# --- serializers -------------------------------------------------------------------------------
class PolicySerializer(serializers.ModelSerializer):
    connections = serializers.PrimaryKeyRelatedField(
        many=True, queryset=Connection.objects.exclude(status=Connection.Status.DISCONNECTED)
    )
    application = serializers.PrimaryKeyRelatedField(
        queryset=Application.objects.filter(kind=Application.Kind.SSO, removed_at__isnull=True),
        allow_null=True,
        required=False,
    )

    class Meta:
        model = Policy
        fields = ["id", *POLICY_EDITABLE_FIELDS, "next_run_at", "created_at", "updated_at"]
        read_only_fields = ["next_run_at", "created_at", "updated_at"]

    def save(self, **kwargs: Any) -> Policy:
        data = {**self.validated_data, **kwargs}
        if "connections" in data:
            connections = list(data.pop("connections"))
        else:  # a PATCH that leaves them alone
            connections = list(self.instance.connections.all()) if self.instance else []
        policy = self.instance or Policy()
        for name, value in data.items():
            setattr(policy, name, value)
        try:
            self.instance = policy_save(
                policy=policy, connections=connections, actor=self.context["request"].user
            )
        except PolicyError as exc:
            raise serializers.ValidationError(exc.errors or {"detail": [exc.message]}) from None
        return self.instance


class CandidateSerializer(serializers.Serializer):
    connection = serializers.IntegerField(source="connection.pk")
    connection_name = serializers.CharField(source="connection.name")
    user = serializers.IntegerField(source="app_user.pk")
    username = serializers.CharField(source="app_user.username")
    email = serializers.CharField(source="app_user.email")
    last_used_at = serializers.DateTimeField(allow_null=True)
    reason = serializers.CharField()


class DryRunSerializer(serializers.Serializer):
    people = CandidateSerializer(many=True, source="candidates")
    count = serializers.SerializerMethodField()
    account_size = serializers.IntegerField()
    cap = serializers.IntegerField(source="limit")
    over_cap = serializers.BooleanField()
    brakes = serializers.ListField(child=serializers.CharField())
    excluded = serializers.DictField(child=serializers.IntegerField())

    def get_count(self, obj: Selection) -> int:
        return len(obj.candidates)


class PolicyRunItemSerializer(serializers.ModelSerializer):
    jumpcloud_request_id = serializers.SerializerMethodField()

    class Meta:
        model = PolicyRunItem
        fields = [
            "id",
            "connection",
            "app_user",
            "external_id",
            "username",
            "email",
            "last_used_at",
            "reason",
            "is_new",
            "outcome",
            "message",
            "action_run",
            "jumpcloud_request_id",
            "undo",
            "undo_message",
            "undo_action_run",
        ]

    def get_jumpcloud_request_id(self, obj: PolicyRunItem) -> str:
        return obj.action_run.request_id if obj.action_run else ""


class PolicyRunSerializer(serializers.ModelSerializer):
    status = model_choices("PolicyRunStatusEnum", PolicyRun.Status.choices)
    actor: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )
    approved_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )
    undone_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )

    class Meta:
        model = PolicyRun
        fields = [
            "id",
            "policy",
            "trigger",
            "status",
            "action",
            "dry_run",
            "stop_reason",
            "actor",
            "approved_by",
            "approved_at",
            "account_size",
            "selected",
            "created_at",
            "started_at",
            "finished_at",
            "undone_by",
            "undone_at",
        ]
        read_only_fields = fields


class PolicyRunDetailSerializer(PolicyRunSerializer):
    items = serializers.SerializerMethodField()

    class Meta(PolicyRunSerializer.Meta):
        fields = [*PolicyRunSerializer.Meta.fields, "items"]
        read_only_fields = fields

    @extend_schema_field(PolicyRunItemSerializer(many=True))
    def get_items(self, obj: PolicyRun) -> list[dict[str, Any]]:
        return list(PolicyRunItemSerializer(policy_run_items(run=obj), many=True).data)


class ProblemSerializer(serializers.Serializer):
    detail = serializers.CharField()


def _problem(message: str, code: int) -> Response:
    return Response({"detail": message}, status=code)


def _no_fields(request: Request) -> Response | None:
    """These calls take no input: anything but an empty body or `{}` is refused (400), so a
    mistyped call never acts."""
    data = request.data  # malformed JSON raises ParseError: a 400 already
    if not isinstance(data, dict):
        return _problem("Send an empty body or an empty JSON object.", status.HTTP_400_BAD_REQUEST)
    if data:
        unexpected = ", ".join(sorted(str(k) for k in data)[:10])
        return _problem(f"This call takes no fields; unexpected: {unexpected}.", status.HTTP_400_BAD_REQUEST)
    return None


# --- views -------------------------------------------------------------------------------------
@extend_schema_view(
    list=extend_schema(summary="List policies"),
    retrieve=extend_schema(summary="One policy"),
    create=extend_schema(summary="Create a policy (Admins)"),
    update=extend_schema(summary="Change a policy (Admins)"),
    partial_update=extend_schema(summary="Change part of a policy (Admins)"),
    destroy=extend_schema(summary="Delete a policy and its runs (Admins)"),
)
class PolicyViewSet(ApiViewMixin, viewsets.ModelViewSet):
    """Policies that act for the admin: who, what and when, with a dry run and brakes."""

    serializer_class = PolicySerializer
    pagination_class = StandardPagination

    def get_queryset(self) -> QuerySet[Policy]:
        return policy_list().order_by("name", "id")

    def perform_destroy(self, instance: Policy) -> None:
        try:
            policy_delete(policy=instance, actor=self.request.user)
        except PolicyError as exc:
            raise serializers.ValidationError({"detail": [exc.message]}) from None

    @extend_schema(summary="Whom the policy would touch today, and why", responses=DryRunSerializer)
    @action(detail=True, methods=["get"], url_path="dry-run", pagination_class=None, filter_backends=[])
    def dry_run(self, request: Request, pk: str | None = None) -> Response:
        return Response(DryRunSerializer(policy_selection(policy=self.get_object())).data)

    @extend_schema(
        summary="Run the policy now (Admins): the run acts on the Admin's authority",
        request=None,
        responses={201: PolicyRunSerializer, 400: ProblemSerializer, 403: ProblemSerializer},
    )
    @action(detail=True, methods=["post"], url_path="run", pagination_class=None, filter_backends=[])
    def run(self, request: Request, pk: str | None = None) -> Response:
        refused = _no_fields(request)
        if refused is not None:
            return refused
        try:
            run = policy_run_create(policy=self.get_object(), actor=request.user)
        except ActionRefused as exc:
            return _problem(exc.message, status.HTTP_403_FORBIDDEN)
        run.refresh_from_db()
        return Response(PolicyRunSerializer(run).data, status=status.HTTP_201_CREATED)


@extend_schema_view(
    list=extend_schema(summary="List policy runs, newest first"),
    retrieve=extend_schema(summary="One policy run, with every person's outcome"),
)
class PolicyRunViewSet(
    ApiViewMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    pagination_class = StandardPagination

    def get_queryset(self) -> QuerySet[PolicyRun]:
        qs = policy_run_list()
        policy = parse_id(self.request.query_params.get("policy"))
        if policy is not None:
            qs = qs.filter(policy_id=policy)
        return qs.order_by("-created_at", "-id")

    def get_serializer_class(self) -> type:
        return PolicyRunDetailSerializer if self.action == "retrieve" else PolicyRunSerializer

    def _change(self, request: Request, service: Any) -> Response:
        refused = _no_fields(request)
        if refused is not None:
            return refused
        try:
            run = service(run=self.get_object(), actor=request.user)
        except ActionRefused as exc:
            return _problem(exc.message, status.HTTP_403_FORBIDDEN)
        except PolicyError as exc:
            return _problem(exc.message, status.HTTP_409_CONFLICT)
        run.refresh_from_db()
        return Response(PolicyRunDetailSerializer(run).data)

    _responses = {
        200: PolicyRunDetailSerializer,
        400: ProblemSerializer,
        403: ProblemSerializer,
        409: OpenApiResponse(ProblemSerializer, description="The run is not in a state that allows this."),
    }

    @extend_schema(summary="Approve a waiting run (Admins)", request=None, responses=_responses)
    @action(detail=True, methods=["post"], pagination_class=None, filter_backends=[])
    def approve(self, request: Request, pk: str | None = None) -> Response:
        return self._change(request, policy_run_approve)

    @extend_schema(summary="Reject a waiting run (Admins)", request=None, responses=_responses)
    @action(detail=True, methods=["post"], pagination_class=None, filter_backends=[])
    def reject(self, request: Request, pk: str | None = None) -> Response:
        return self._change(request, policy_run_reject)

    @extend_schema(
        summary="Unsuspend everyone the run suspended (Admins)", request=None, responses=_responses
    )
    @action(detail=True, methods=["post"], pagination_class=None, filter_backends=[])
    def undo(self, request: Request, pk: str | None = None) -> Response:
        return self._change(request, policy_run_undo)

"""REST API v1 views: thin. Reads come from the selectors the pages use (querysets the filters and
pagination narrow); every write calls a service.

Permissions: the default class (accounts.permissions.IsViewerOrAdminReadAdminWrite) lets Viewers and
Admins read and only Admins write, exactly as in the UI; the action services check again.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_not_required
from django.db.models import QuerySet
from django.http import Http404
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import filters as drf_filters
from rest_framework import generics, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.pagination import BasePagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api import serializers as s
from api.filters import (
    ApplicationFilter,
    ApplicationUserFilter,
    ConnectionFilter,
    SyncRunFilter,
    UsageEventFilter,
)
from api.pagination import StandardPagination, UsageEventCursorPagination
from api.throttles import ActionsThrottle
from dashboard.params import parse_id
from integrations.filters import AppUserFilter, AuditLogFilter
from integrations.models import Application, ApplicationLicence, AppUser, SyncRun
from integrations.providers import registry
from integrations.selectors import applications as app_selectors
from integrations.selectors import connections as conn_selectors
from integrations.selectors.applications import app_stats
from integrations.selectors.audit import audit_log_queryset
from integrations.selectors.licences import application_licence_row
from integrations.selectors.users import (
    directory_user_detail_queryset,
    directory_user_queryset,
    usage_event_queryset,
)
from integrations.services import actions as action_services
from integrations.services.licences import LicenceInvalid, application_licence_set
from integrations.services.sync import SyncAlreadyRunning, SyncNotAllowed, sync_run_request


class ApiViewMixin:
    """DRF authenticates API calls itself (token or session), so Django's LoginRequiredMiddleware
    must not redirect them to the login page: anonymous callers get DRF's 401/403 instead."""

    pagination_class: type[BasePagination] | None = StandardPagination
    lookup_value_regex = r"\d+"

    @classmethod
    def as_view(cls, *args: Any, **kwargs: Any) -> Any:
        return login_not_required(super().as_view(*args, **kwargs))  # type: ignore[misc]


# --- connections -----------------------------------------------------------------------------
@extend_schema_view(
    list=extend_schema(
        summary="List connected accounts",
        description="The API key is never returned; `secret_hint` is its masked suffix.",
    ),
    retrieve=extend_schema(summary="One connected account"),
)
class ConnectionViewSet(ApiViewMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = s.ConnectionSerializer
    filterset_class = ConnectionFilter
    filter_backends = [DjangoFilterBackend, drf_filters.SearchFilter]  # the default's, plus search
    search_fields = ["name", "org_name", "org_id"]

    def get_queryset(self) -> QuerySet:
        return conn_selectors.connection_queryset()

    @extend_schema(summary="Capabilities of one account", responses=s.CapabilityStatusSerializer(many=True))
    @action(detail=True, pagination_class=None, filter_backends=[])
    def capabilities(self, request: Request, pk: str | None = None) -> Response:
        connection = self.get_object()
        statuses = registry.get(connection.provider).capability_statuses(connection)
        return Response(s.CapabilityStatusSerializer(statuses, many=True).data)


class CapabilitiesView(ApiViewMixin, APIView):
    pagination_class = None

    @extend_schema(
        summary="Capabilities of every live account",
        description="What torii supports for each provider and whether it is available for each connected account now.",
        parameters=[OpenApiParameter("connection", OpenApiTypes.INT, description="Only this connection.")],
        responses=s.ConnectionCapabilitiesSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        wanted = request.query_params.get("connection")
        pk = None
        if wanted is not None:
            pk = parse_id(wanted)
            if pk is None:
                return Response({"detail": "connection must be an id."}, status=status.HTTP_400_BAD_REQUEST)
        connections = conn_selectors.connections_live(pk=pk)
        rows = [
            {
                "connection": c.pk,
                "connection_name": c.name,
                "provider": c.provider,
                "capabilities": registry.get(c.provider).capability_statuses(c),
            }
            for c in connections
        ]
        return Response(s.ConnectionCapabilitiesSerializer(rows, many=True).data)


# --- syncs -----------------------------------------------------------------------------------
@extend_schema_view(
    list=extend_schema(summary="Sync history"),
    retrieve=extend_schema(summary="One sync run, with per-stream progress"),
)
class SyncRunViewSet(ApiViewMixin, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = s.SyncRunSerializer
    filterset_class = SyncRunFilter

    def get_queryset(self) -> QuerySet:
        return conn_selectors.sync_run_queryset()

    def get_throttles(self) -> list[Any]:
        throttles = list(super().get_throttles())
        if self.request.method == "POST":
            throttles.append(ActionsThrottle())
        return throttles

    @extend_schema(
        summary="Start a sync now",
        request=s.SyncRunRequestSerializer,
        responses={
            202: s.SyncRunSerializer,
            409: OpenApiResponse(
                s.SyncConflictSerializer, description="A sync of this account is already queued or running."
            ),
        },
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        payload = s.SyncRunRequestSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            run = sync_run_request(
                connection=payload.validated_data["connection"],
                kind=payload.validated_data["kind"],
                trigger=SyncRun.Trigger.MANUAL,
                requested_by=request.user,
            )
        except SyncAlreadyRunning as exc:
            return Response(
                {"detail": str(exc), "sync_run": exc.run.pk if exc.run else None},
                status=status.HTTP_409_CONFLICT,
            )
        except SyncNotAllowed as exc:
            return Response({"detail": str(exc), "sync_run": None}, status=status.HTTP_409_CONFLICT)
        return Response(s.SyncRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


# --- inventory -------------------------------------------------------------------------------
@extend_schema_view(
    list=extend_schema(summary="Applications (the directory itself and SSO apps), with users and last use"),
    retrieve=extend_schema(summary="One application"),
)
class ApplicationViewSet(ApiViewMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = s.ApplicationSerializer
    filterset_class = ApplicationFilter

    def get_queryset(self) -> QuerySet:
        # Counts and last use come from the application's read model, as the applications page
        # shows them (integrations.services.read_models).
        return app_selectors.application_queryset()

    @extend_schema(
        methods=["GET"],
        summary="An application's licences: seats bought, price per seat per month, unused seats and "
        "what they cost (reclaimable per month and per year, for 30, 60 and 90 days without use)",
        responses=s.LicenceSerializer,
    )
    @extend_schema(
        methods=["PUT", "PATCH"],
        summary="Set an application's seats bought and price per seat per month (Admins; audited; "
        "null clears)",
        request=s.LicenceWriteSerializer,
        responses=s.LicenceSerializer,
    )
    @action(detail=True, methods=["get", "put", "patch"], url_path="licence", filterset_class=None)
    def licence(self, request: Request, pk: str | None = None) -> Response:
        app = generics.get_object_or_404(Application.objects.select_related("connection", "stats"), pk=pk)
        if request.method in ("PUT", "PATCH"):
            current = ApplicationLicence.objects.filter(application=app).first()
            ser = s.LicenceWriteSerializer(data=request.data, partial=request.method == "PATCH")
            ser.is_valid(raise_exception=True)
            d = ser.validated_data
            try:
                application_licence_set(
                    application=app,
                    actor=request.user,
                    seats_purchased=d.get("seats_purchased", current.seats_purchased if current else None),
                    price_per_seat_month=d.get(
                        "price_per_seat_month", current.price_per_seat_month if current else None
                    ),
                )
            except LicenceInvalid as exc:
                raise s.serializers.ValidationError(exc.errors) from None
        stats = app_stats(app)
        return Response(s.licence_data(application_licence_row(app, stats)))


@extend_schema(summary="Users of one application, with status and last use")
class ApplicationUsersView(ApiViewMixin, generics.ListAPIView):
    serializer_class = s.AppUserSerializer
    filterset_class = ApplicationUserFilter

    def get_queryset(self) -> QuerySet:
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return AppUser.objects.none()
        try:
            app = app_selectors.application_get(self.kwargs["pk"])
        except Application.DoesNotExist:
            raise Http404("No such application") from None
        # People removed upstream are left out, as on the application's page.
        return app_selectors.application_user_queryset(app).order_by("username", "id")


@extend_schema_view(
    list=extend_schema(
        summary="Directory users of every account: search and the users page's filters",
        description="Without a `status` filter, removed users are left out. `inactive_days` only matches "
        "users of accounts whose usage events are available.",
    ),
    retrieve=extend_schema(summary="One directory user, with every application they can use"),
)
class UserViewSet(ApiViewMixin, viewsets.ReadOnlyModelViewSet):
    filterset_class = AppUserFilter

    def get_queryset(self) -> QuerySet:
        if getattr(self, "swagger_fake_view", False):  # schema generation: no database
            return AppUser.objects.none()
        queryset = (
            directory_user_detail_queryset() if self.action == "retrieve" else directory_user_queryset()
        )
        # The default order (AppUserFilter sorts when `ordering` is given).
        return queryset.order_by("username", "pk")

    def get_serializer_class(self) -> type:
        return s.UserDetailSerializer if self.action == "retrieve" else s.UserSerializer


@extend_schema_view(
    list=extend_schema(summary="Usage events (cursor pagination, newest first)"),
    retrieve=extend_schema(summary="One usage event"),
)
class UsageEventViewSet(ApiViewMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = s.UsageEventSerializer
    filterset_class = UsageEventFilter
    pagination_class = UsageEventCursorPagination

    def get_queryset(self) -> QuerySet:
        return usage_event_queryset()


# --- audit log and actions -------------------------------------------------------------------
@extend_schema_view(
    list=extend_schema(summary="The audit log: every action and connection event (read-only)"),
    retrieve=extend_schema(summary="One audit record"),
)
class AuditLogViewSet(ApiViewMixin, viewsets.ReadOnlyModelViewSet):
    filterset_class = AuditLogFilter

    def get_queryset(self) -> QuerySet:
        return audit_log_queryset()

    def get_serializer_class(self) -> type:
        return s.ActionRunDetailSerializer if self.action == "retrieve" else s.ActionRunSerializer


# The input of the provider's "create_user" action (the fields of CreateUserSerializer).
CREATE_FIELDS = ("first_name", "last_name", "email", "username", "state")
IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=True,
    pattern=r"^[\x21-\x7e]{8,64}$",
    description="A unique key per action (a UUID). Repeating a request with the same key never sends the "
    "action twice: the first outcome is returned (200, header Idempotent-Replayed: true).",
)
_REFUSALS = {
    400: OpenApiResponse(
        s.ActionRefusalSerializer, description="Invalid input; nothing was sent or recorded."
    ),
    403: OpenApiResponse(
        s.ActionRefusalSerializer, description="Not an Admin, or the account is read-only; nothing was sent."
    ),
    409: OpenApiResponse(
        s.ActionRefusalSerializer, description="Collides with a synced user; nothing was sent."
    ),
    422: OpenApiResponse(
        s.ActionRefusalSerializer, description="The Idempotency-Key was used for a different request."
    ),
}
_RUN_RESPONSES = {
    201: OpenApiResponse(
        s.ActionRunDetailSerializer,
        description="The action ran and was recorded. Its `status` says whether JumpCloud applied it "
        "(succeeded) or not (failed, with JumpCloud's message in `error_message`).",
    ),
    200: OpenApiResponse(
        s.ActionRunDetailSerializer, description="Replay: the outcome of the first request with this key."
    ),
    **_REFUSALS,
}
_REFUSAL_STATUS = {
    action_services.ActionForbidden: status.HTTP_403_FORBIDDEN,
    action_services.ActionConflict: status.HTTP_409_CONFLICT,
    action_services.IdempotencyKeyReused: status.HTTP_422_UNPROCESSABLE_ENTITY,
}


def _run_response(result: action_services.ActionResult, request: Request) -> Response:
    response = Response(
        s.ActionRunDetailSerializer(result.run, context={"request": request}).data,
        status=status.HTTP_200_OK if result.replayed else status.HTTP_201_CREATED,
    )
    if result.replayed:
        response["Idempotent-Replayed"] = "true"
    return response


def _refusal_response(exc: action_services.ActionRefused) -> Response:
    code = _REFUSAL_STATUS.get(type(exc), status.HTTP_400_BAD_REQUEST)
    body = {
        "detail": exc.message,
        "code": exc.code,
        "errors": exc.errors,
        "action_run": exc.run.pk if exc.run else None,
    }
    return Response(body, status=code)


def _invalid_response(payload: Any) -> Response:
    errors = {name: [str(m) for m in messages] for name, messages in payload.errors.items()}
    return Response(
        {
            "detail": "The input is not valid; nothing was sent.",
            "code": "invalid",
            "errors": errors,
            "action_run": None,
        },
        status=status.HTTP_400_BAD_REQUEST,
    )


@extend_schema_view(
    list=extend_schema(summary="User actions run through torii (the user-action part of the audit log)"),
    retrieve=extend_schema(summary="One user action and its outcome"),
)
class ActionViewSet(ApiViewMixin, viewsets.ReadOnlyModelViewSet):
    """Run user actions in JumpCloud. Admins only; accounts connected with Read and take action only."""

    filterset_class = AuditLogFilter

    def get_queryset(self) -> QuerySet:
        return audit_log_queryset(user_actions_only=True)

    def get_throttles(self) -> list[Any]:
        throttles = list(super().get_throttles())
        if self.request.method not in ("GET", "HEAD", "OPTIONS"):
            throttles.append(ActionsThrottle())
        return throttles

    def get_serializer_class(self) -> type:
        if self.action == "create_user":
            return s.CreateUserSerializer
        if self.action in ("suspend_user", "unsuspend_user", "delete_user"):
            return s.ActionTargetSerializer
        return s.ActionRunDetailSerializer if self.action == "retrieve" else s.ActionRunSerializer

    def _key(self, request: Request) -> str:
        return request.headers.get("Idempotency-Key", "")

    @extend_schema(
        summary="Create a user",
        parameters=[IDEMPOTENCY_HEADER],
        request=s.CreateUserSerializer,
        responses=_RUN_RESPONSES,
    )
    @action(detail=False, methods=["post"], url_path="create-user", filter_backends=[], pagination_class=None)
    def create_user(self, request: Request) -> Response:
        payload = s.CreateUserSerializer(data=request.data)
        if not payload.is_valid():
            return _invalid_response(payload)
        data = payload.validated_data
        try:
            result = action_services.action_run_request(
                connection=data["connection"],
                action="create_user",
                actor=request.user,
                idempotency_key=self._key(request),
                params={name: data[name] for name in CREATE_FIELDS},
            )
        except action_services.ActionRefused as exc:
            return _refusal_response(exc)
        return _run_response(result, request)

    def _on_user(self, request: Request, action_key: str) -> Response:
        payload = s.ActionTargetSerializer(data=request.data)
        if not payload.is_valid():
            return _invalid_response(payload)
        try:
            result = action_services.app_user_act(
                app_user=payload.validated_data["user"],
                action=action_key,
                actor=request.user,
                idempotency_key=self._key(request),
            )
        except action_services.ActionRefused as exc:
            return _refusal_response(exc)
        return _run_response(result, request)

    @extend_schema(
        summary="Suspend a user (they lose access to every SSO app and device login)",
        parameters=[IDEMPOTENCY_HEADER],
        request=s.ActionTargetSerializer,
        responses=_RUN_RESPONSES,
    )
    @action(
        detail=False, methods=["post"], url_path="suspend-user", filter_backends=[], pagination_class=None
    )
    def suspend_user(self, request: Request) -> Response:
        return self._on_user(request, "suspend_user")

    @extend_schema(
        summary="Unsuspend a user",
        parameters=[IDEMPOTENCY_HEADER],
        request=s.ActionTargetSerializer,
        responses=_RUN_RESPONSES,
    )
    @action(
        detail=False, methods=["post"], url_path="unsuspend-user", filter_backends=[], pagination_class=None
    )
    def unsuspend_user(self, request: Request) -> Response:
        return self._on_user(request, "unsuspend_user")

    @extend_schema(
        summary="Delete a user",
        description="The JumpCloud record is kept in the audit record's `snapshot` first. A user already "
        "gone from JumpCloud (404) counts as deleted.",
        parameters=[IDEMPOTENCY_HEADER],
        request=s.ActionTargetSerializer,
        responses=_RUN_RESPONSES,
    )
    @action(detail=False, methods=["post"], url_path="delete-user", filter_backends=[], pagination_class=None)
    def delete_user(self, request: Request) -> Response:
        return self._on_user(request, "delete_user")

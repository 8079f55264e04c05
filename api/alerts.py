"""REST API for alert channels and the delivery log: Admins only; a channel's secret is write-only
(returned once, in the response that created it, when torii generated it)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.permissions import IsToriiAdmin
from alerts import selectors, services
from alerts.kinds import SUBSCRIBABLE
from alerts.models import Channel, Delivery, DeliveryAttempt
from api.serializers import model_choices
from api.views import ApiViewMixin


class ChannelSerializer(serializers.ModelSerializer):
    event_kinds = serializers.MultipleChoiceField(choices=[(k.value, k.label) for k in SUBSCRIBABLE])
    secret = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        min_length=16,
        max_length=200,
        trim_whitespace=False,
    )

    class Meta:
        model = Channel
        fields = [
            "id",
            "name",
            "kind",
            "recipients",
            "url",
            "body_format",
            "event_kinds",
            "active",
            "secret",
            "secret_hint",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["secret_hint", "created_at", "updated_at"]

    def to_representation(self, instance: Channel) -> dict[str, Any]:
        data = super().to_representation(instance)
        data["event_kinds"] = list(instance.event_kinds or [])
        return data


class DeliveryAttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = DeliveryAttempt
        fields = ["number", "started_at", "succeeded", "status_code", "error", "retry_in_seconds"]


class DeliverySerializer(serializers.ModelSerializer):
    status = model_choices("AlertDeliveryStatusEnum", Delivery.Status.choices)
    event_kind = serializers.CharField(source="event.kind")
    subject = serializers.CharField(source="event.subject")
    connection = serializers.IntegerField(source="event.connection_id", allow_null=True)
    channel_name = serializers.CharField(source="channel.name")
    attempt_log = DeliveryAttemptSerializer(source="attempt_rows", many=True)

    class Meta:
        model = Delivery
        fields = [
            "id",
            "event",
            "event_kind",
            "subject",
            "connection",
            "channel",
            "channel_name",
            "status",
            "attempts",
            "next_attempt_at",
            "last_error",
            "created_at",
            "delivered_at",
            "attempt_log",
        ]


def _invalid(exc: services.ChannelInvalid) -> serializers.ValidationError:
    return serializers.ValidationError(exc.errors)


@extend_schema_view(
    list=extend_schema(summary="Alert channels (Admins)"),
    create=extend_schema(summary="Add an alert channel; a generated signing secret is returned once"),
    partial_update=extend_schema(summary="Change an alert channel (its kind stays)"),
    update=extend_schema(summary="Change an alert channel (its kind stays)"),
)
class ChannelViewSet(ApiViewMixin, viewsets.ModelViewSet):
    serializer_class = ChannelSerializer
    permission_classes = [IsToriiAdmin]

    def get_queryset(self) -> Any:
        return Channel.objects.order_by("name", "id")

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        ser = self.get_serializer(data=request.data)
        ser.is_valid(raise_exception=True)
        d = ser.validated_data
        try:
            channel, secret = services.channel_create(
                actor=request.user,
                name=d["name"],
                kind=d["kind"],
                recipients=d.get("recipients", ""),
                url=d.get("url", ""),
                body_format=d.get("body_format", Channel.BodyFormat.JSON),
                event_kinds=sorted(d["event_kinds"]),
                active=d.get("active", True),
                secret=d.get("secret", ""),
            )
        except services.ChannelInvalid as exc:
            raise _invalid(exc) from None
        body = self.get_serializer(channel).data
        if not d.get("secret"):
            body["signing_secret"] = secret
        return Response(body, status=status.HTTP_201_CREATED)

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        channel = self.get_object()
        ser = self.get_serializer(channel, data=request.data, partial=kwargs.get("partial", False))
        ser.is_valid(raise_exception=True)
        d = ser.validated_data
        if "kind" in d and d["kind"] != channel.kind:
            raise serializers.ValidationError(
                {"kind": "A channel's kind cannot change; add another channel."}
            )
        try:
            services.channel_update(
                channel=channel,
                actor=request.user,
                name=d.get("name", channel.name),
                recipients=d.get("recipients", channel.recipients),
                url=d.get("url", channel.url),
                body_format=d.get("body_format", channel.body_format),
                event_kinds=sorted(d["event_kinds"]) if "event_kinds" in d else list(channel.event_kinds),
                active=d.get("active", channel.active),
                secret=d.get("secret", ""),
            )
        except services.ChannelInvalid as exc:
            raise _invalid(exc) from None
        return Response(self.get_serializer(channel).data)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        services.channel_delete(channel=self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema_view(
    list=extend_schema(summary="Alert deliveries with every attempt (Admins)"),
    retrieve=extend_schema(summary="One alert delivery with its attempts"),
)
class DeliveryViewSet(
    ApiViewMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    serializer_class = DeliverySerializer
    permission_classes = [IsToriiAdmin]

    def get_queryset(self) -> Any:
        return selectors.delivery_rows().prefetch_related("attempt_rows")

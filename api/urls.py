from django.contrib.auth.decorators import login_not_required
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from api import alerts, policies, views

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("connections", views.ConnectionViewSet, basename="connection")
router.register("sync-runs", views.SyncRunViewSet, basename="sync-run")
router.register("applications", views.ApplicationViewSet, basename="application")
router.register("users", views.UserViewSet, basename="user")
router.register("usage-events", views.UsageEventViewSet, basename="usage-event")
router.register("actions", views.ActionViewSet, basename="action")
router.register("audit-log", views.AuditLogViewSet, basename="audit-log")
router.register("policies", policies.PolicyViewSet, basename="policy")
router.register("policy-runs", policies.PolicyRunViewSet, basename="policy-run")
router.register("alert-channels", alerts.ChannelViewSet, basename="alert-channel")
router.register("alert-deliveries", alerts.DeliveryViewSet, basename="alert-delivery")

extra = [
    path("capabilities/", views.CapabilitiesView.as_view(), name="capabilities"),
    path("applications/<int:pk>/users/", views.ApplicationUsersView.as_view(), name="application-users"),
]

urlpatterns = [
    # Left to DRF's authentication (session or token) rather than the login redirect, so scripts
    # holding only an API token can fetch the schema; anonymous callers get 401/403.
    path("schema/", login_not_required(SpectacularAPIView.as_view()), name="api-schema"),
    # The split view serves Swagger UI's start-up script as a file of its own (?script=): the
    # Content-Security-Policy forbids inline scripts, and the stock view has one (a blank page).
    path(
        "docs/",
        SpectacularSwaggerSplitView.as_view(url_name="api-schema", template_name="api/swagger_ui.html"),
        name="api-docs",
    ),
    path(
        "v1/",
        include(([*extra, *router.urls], "api-v1")),
    ),
]

"""Routes of the alerts pages (Admins only)."""

from django.urls import path

from dashboard.views import alerts

urlpatterns = [
    path("alerts/", alerts.AlertsView.as_view(), name="alerts"),
    path("alerts/channels/new/", alerts.ChannelCreateView.as_view(), name="alert_channel_create"),
    path("alerts/channels/<int:pk>/", alerts.ChannelEditView.as_view(), name="alert_channel_edit"),
    path("alerts/channels/<int:pk>/delete/", alerts.ChannelDeleteView.as_view(), name="alert_channel_delete"),
    path("alerts/channels/<int:pk>/test/", alerts.ChannelTestView.as_view(), name="alert_channel_test"),
    path("alerts/subscriptions/", alerts.SubscriptionsView.as_view(), name="alert_subscriptions"),
    path("alerts/deliveries/", alerts.DeliveriesView.as_view(), name="alert_deliveries"),
]

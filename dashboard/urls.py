from django.urls import include, path

from dashboard.views import applications, insights, integrations, pages, users

app_name = "dashboard"

urlpatterns = [
    path("", pages.HomeView.as_view(), name="home"),
    # Integrations
    path("integrations/", integrations.IntegrationsView.as_view(), name="integrations"),
    path("integrations/capabilities/", integrations.CapabilitiesView.as_view(), name="capabilities"),
    path("integrations/connect/<slug:provider>/", integrations.ConnectView.as_view(), name="connect"),
    path("integrations/<int:pk>/", integrations.ConnectionDetailView.as_view(), name="connection_detail"),
    path("integrations/<int:pk>/live/", integrations.ConnectionLiveView.as_view(), name="connection_live"),
    path("integrations/<int:pk>/card/", integrations.ConnectionCardView.as_view(), name="connection_card"),
    path("integrations/<int:pk>/edit/", integrations.ConnectionEditView.as_view(), name="connection_edit"),
    path(
        "integrations/<int:pk>/rotate-key/",
        integrations.ConnectionRotateKeyView.as_view(),
        name="connection_rotate_key",
    ),
    path(
        "integrations/<int:pk>/disconnect/",
        integrations.ConnectionDisconnectView.as_view(),
        name="connection_disconnect",
    ),
    path("integrations/<int:pk>/sync/", integrations.SyncNowView.as_view(), name="sync_now"),
    path(
        "integrations/<int:pk>/runs/<int:run_pk>/progress/",
        integrations.SyncProgressView.as_view(),
        name="sync_progress",
    ),
    # Users
    path("users/", users.UsersView.as_view(), name="users"),
    path("users/columns/", users.UsersColumnsView.as_view(), name="users_columns"),
    path("users/export.csv", users.UsersExportView.as_view(), name="users_export"),
    path("users/<int:pk>/", users.UserDetailView.as_view(), name="user_detail"),
    path("users/<int:pk>/live/", users.UserLiveView.as_view(), name="user_live"),
    # Applications
    path("applications/", applications.ApplicationsView.as_view(), name="applications"),
    path("applications/<int:pk>/", applications.ApplicationDetailView.as_view(), name="application_detail"),
    path(
        "applications/<int:pk>/licence/",
        applications.ApplicationLicenceView.as_view(),
        name="application_licence",
    ),
    # Insights
    path("insights/", insights.InsightsView.as_view(), name="insights"),
    path("insights/licences.csv", insights.LicencesExportView.as_view(), name="licences_export"),
    # Actions and the audit log.
    path("", include("dashboard.urls_actions")),
    # Policies that act for the admin.
    path("", include("policies.urls")),
    # Alerts: channels, subscriptions, the delivery log.
    path("", include("dashboard.urls_alerts")),
    # People and roles, your API tokens and password.
    path("", include("dashboard.urls_people")),
]

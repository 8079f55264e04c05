from django.urls import path

from dashboard.views import pages

app_name = "dashboard"

urlpatterns = [
    path("", pages.HomeView.as_view(), name="home"),
    path(
        "integrations/",
        pages.StubPage.as_view(title="Integrations", summary="Connected JumpCloud accounts, their status, sync history and capabilities."),
        name="integrations",
    ),
    path("users/", pages.StubPage.as_view(title="Users", summary="Every user of every connected account, with status, role and last use."), name="users"),
    path("applications/", pages.StubPage.as_view(title="Applications", summary="SSO applications with assigned and active users."), name="applications"),
    path("insights/", pages.StubPage.as_view(title="Insights", summary="Logins over time, active and inactive users, administrator hygiene."), name="insights"),
    path("audit/", pages.StubPage.as_view(title="Audit log", summary="Every action and connection event done through torii."), name="audit"),
]

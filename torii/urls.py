from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponseRedirect
from django.templatetags.static import static
from django.urls import include, path
from django.views.decorators.http import require_GET

from torii.health import ToriiHealthView, health_checks


@login_not_required
@require_GET
def favicon(request: HttpRequest) -> HttpResponseRedirect:
    """Browsers ask for /favicon.ico whatever the page says; send them to the SVG icon."""
    return HttpResponseRedirect(static("img/torii.svg"))


urlpatterns = [
    path("favicon.ico", favicon, name="favicon"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("health/", login_not_required(ToriiHealthView.as_view(checks=health_checks())), name="health"),
    path("admin/", admin.site.urls),
    path("api/", include("api.urls")),
    path("", include("dashboard.urls")),
]

handler403 = "dashboard.views.errors.permission_denied"
handler404 = "dashboard.views.errors.not_found"
handler500 = "dashboard.views.errors.server_error"

"""Routes for people and roles (Admins) and your own account (tokens, password)."""

from django.urls import path

from dashboard.views import account, people

urlpatterns = [
    path("people/", people.PeopleView.as_view(), name="people"),
    path("people/add/", people.PersonCreateView.as_view(), name="person_create"),
    path("people/<int:pk>/role/", people.PersonRoleView.as_view(), name="person_role"),
    path("people/<int:pk>/deactivate/", people.PersonDeactivateView.as_view(), name="person_deactivate"),
    path("people/<int:pk>/reactivate/", people.PersonActiveView.as_view(), name="person_reactivate"),
    path("people/lockouts/<int:pk>/unlock/", people.LockoutResetView.as_view(), name="lockout_reset"),
    path("account/tokens/", account.TokensView.as_view(), name="api_tokens"),
    path("account/tokens/new/", account.TokenCreateView.as_view(), name="api_token_create"),
    path("account/tokens/<str:key>/rotate/", account.TokenRotateView.as_view(), name="api_token_rotate"),
    path("account/tokens/<str:key>/revoke/", account.TokenRevokeView.as_view(), name="api_token_revoke"),
    path("account/password/", account.PasswordChangeView.as_view(), name="password_change"),
    path("account/password/done/", account.PasswordChangeDoneView.as_view(), name="password_change_done"),
]

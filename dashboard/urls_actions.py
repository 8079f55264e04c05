"""Routes for user actions and the audit log (included into the dashboard namespace).

Confirmation pages are GET; the endpoints that act are POST-only (405 on GET) and CSRF-protected.
"""

from django.urls import path

from dashboard.views import actions, audit

urlpatterns = [
    path("actions/users/new/", actions.UserCreateView.as_view(), name="user_create"),
    path("actions/users/new/preview/", actions.UserCreatePreviewView.as_view(), name="user_create_preview"),
    path("actions/users/new/submit/", actions.UserCreateSubmitView.as_view(), name="user_create_submit"),
    path(
        "actions/users/<int:pk>/suspend/",
        actions.UserSuspendConfirmView.as_view(),
        name="user_suspend_confirm",
    ),
    path("actions/users/<int:pk>/suspend/submit/", actions.UserSuspendView.as_view(), name="user_suspend"),
    path(
        "actions/users/<int:pk>/unsuspend/",
        actions.UserUnsuspendConfirmView.as_view(),
        name="user_unsuspend_confirm",
    ),
    path(
        "actions/users/<int:pk>/unsuspend/submit/", actions.UserUnsuspendView.as_view(), name="user_unsuspend"
    ),
    path(
        "actions/users/<int:pk>/delete/", actions.UserDeleteConfirmView.as_view(), name="user_delete_confirm"
    ),
    path("actions/users/<int:pk>/delete/submit/", actions.UserDeleteView.as_view(), name="user_delete"),
    path(
        "actions/users/bulk-suspend/", actions.BulkSuspendConfirmView.as_view(), name="bulk_suspend_confirm"
    ),
    path("actions/users/bulk-suspend/submit/", actions.BulkSuspendView.as_view(), name="bulk_suspend"),
    path("actions/runs/<int:pk>/", actions.ActionRunView.as_view(), name="action_run"),
    path("audit/", audit.AuditLogView.as_view(), name="audit"),
    path("audit/export.csv", audit.AuditLogCsvView.as_view(), name="audit_log_csv"),
]

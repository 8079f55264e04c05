"""Routes of the policy pages (included into the dashboard namespace). Pages that change
something are POST-only and CSRF-protected; only Admins reach them."""

from django.urls import path

from policies import views

urlpatterns = [
    path("policies/", views.PolicyListView.as_view(), name="policies"),
    path("policies/new/", views.PolicyCreateView.as_view(), name="policy_create"),
    path("policies/<int:pk>/", views.PolicyDetailView.as_view(), name="policy_detail"),
    path("policies/<int:pk>/edit/", views.PolicyEditView.as_view(), name="policy_edit"),
    path("policies/<int:pk>/dry-run.csv", views.PolicyDryRunCsvView.as_view(), name="policy_dry_run_csv"),
    path("policies/<int:pk>/run/", views.PolicyRunNowView.as_view(), name="policy_run_now"),
    path("policies/runs/<int:run_id>/", views.PolicyRunDetailView.as_view(), name="policy_run"),
    path("policies/runs/<int:run_id>/people.csv", views.PolicyRunCsvView.as_view(), name="policy_run_csv"),
    path(
        "policies/runs/<int:run_id>/approve/", views.PolicyRunApproveView.as_view(), name="policy_run_approve"
    ),
    path("policies/runs/<int:run_id>/reject/", views.PolicyRunRejectView.as_view(), name="policy_run_reject"),
    path("policies/runs/<int:run_id>/undo/", views.PolicyRunUndoView.as_view(), name="policy_run_undo"),
]

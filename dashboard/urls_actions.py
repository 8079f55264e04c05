"""Routes for user actions and the audit log (included into the dashboard namespace)."""

urlpatterns: list = []

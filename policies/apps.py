from django.apps import AppConfig


class PoliciesConfig(AppConfig):
    name = "policies"
    verbose_name = "Policies (automatic actions with dry run and brakes)"

    def ready(self) -> None:
        """Register the Celery tasks in every process (the services queue them by name)."""
        from policies import tasks  # noqa: F401

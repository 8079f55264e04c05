from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = "Integrations (provider-neutral core)"

    def ready(self) -> None:
        """Register the Celery tasks in every process: the services queue them by name, and an
        unregistered name would bypass eager execution (tests, CELERY_TASK_ALWAYS_EAGER)."""
        from integrations import tasks  # noqa: F401

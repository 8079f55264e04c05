from django.apps import AppConfig


class JumpCloudConfig(AppConfig):
    name = "jumpcloud"
    verbose_name = "JumpCloud"

    def ready(self) -> None:
        from integrations.providers import registry
        from jumpcloud.provider import JumpCloudProvider

        registry.register(JumpCloudProvider)

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "torii accounts and roles"

    def ready(self) -> None:
        from accounts import signals

        signals.connect()

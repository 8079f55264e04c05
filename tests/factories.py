"""factory_boy factories for the core models and torii users."""

from __future__ import annotations

import datetime as dt
from typing import Any

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from accounts.roles import ADMIN, VIEWER, grant_role
from integrations.crypto import encrypt_json
from integrations.models import ActionRun, Application, AppUser, Connection, DailyUsage, SyncRun, UsageEvent

TEST_API_KEY = "test-key-0000000000000000000000000000abcd"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"person{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.test")
    password = factory.PostGenerationMethodCall("set_password", "correct horse battery staple")

    @factory.post_generation
    def role(obj, create, extracted, **kwargs):  # noqa: N805 - factory_boy hook signature
        if create and extracted:
            obj.save()
            grant_role(obj, extracted)


class AdminFactory(UserFactory):
    @factory.post_generation
    def role(obj, create, extracted, **kwargs):  # noqa: N805
        if create:
            obj.save()
            grant_role(obj, extracted or ADMIN)


class ViewerFactory(UserFactory):
    @factory.post_generation
    def role(obj, create, extracted, **kwargs):  # noqa: N805
        if create:
            obj.save()
            grant_role(obj, extracted or VIEWER)


class ConnectionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Connection

    provider = "jumpcloud"
    name = factory.Sequence(lambda n: f"Acme {n}")
    region = "us"
    org_id = factory.Sequence(lambda n: f"{n:024x}")
    org_name = factory.LazyAttribute(lambda o: o.name)
    credentials = factory.LazyFunction(lambda: encrypt_json({"api_key": TEST_API_KEY}))
    secret_hint = "••••abcd"
    permission = Connection.Permission.READ_WRITE
    status = Connection.Status.CONNECTED
    capabilities = factory.LazyFunction(lambda: {"usage_events": True, "administrators": True})


class ApplicationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Application

    connection = factory.SubFactory(ConnectionFactory)
    # Typed loosely so that DirectoryAppFactory may set plain values instead of declarations.
    external_id: Any = factory.Sequence(lambda n: f"app{n:021d}")
    kind = Application.Kind.SSO
    name: Any = factory.Sequence(lambda n: f"app{n}")
    label: Any = factory.Sequence(lambda n: f"App {n}")
    sso_url: Any = factory.LazyAttribute(lambda o: f"https://sso.jumpcloud.com/saml2/{o.name}")


class DirectoryAppFactory(ApplicationFactory):
    external_id = "jumpcloud"
    kind = Application.Kind.DIRECTORY
    name = "jumpcloud"
    label = "JumpCloud"
    sso_url = ""


class AppUserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AppUser

    application = factory.SubFactory(DirectoryAppFactory)
    connection = factory.LazyAttribute(lambda o: o.application.connection)
    external_id = factory.Sequence(lambda n: f"{n:024x}")
    username = factory.Sequence(lambda n: f"user.{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@acme.test")
    first_name = "Jane"
    last_name = factory.Sequence(lambda n: f"Doe{n}")
    display_name = factory.LazyAttribute(lambda o: f"{o.first_name} {o.last_name}")
    status = AppUser.Status.ACTIVE
    role = "User"
    upstream_created_at = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(days=200))


class UsageEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = UsageEvent

    connection = factory.SubFactory(ConnectionFactory)
    external_id = factory.Sequence(lambda n: f"ev{n:022d}")
    kind = "directory"
    event_type = "user_login_attempt"
    occurred_at = factory.LazyFunction(timezone.now)
    success = True


class SyncRunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SyncRun

    connection = factory.SubFactory(ConnectionFactory)
    kind = SyncRun.Kind.FULL
    status = SyncRun.Status.SUCCEEDED


class DailyUsageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DailyUsage

    application = factory.SubFactory(ApplicationFactory)
    connection = factory.LazyAttribute(lambda o: o.application.connection)
    day = factory.LazyFunction(lambda: timezone.now().date())


class ActionRunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ActionRun

    action = "suspend_user"
    connection = factory.SubFactory(ConnectionFactory)
    connection_name = factory.LazyAttribute(lambda o: o.connection.name)


def api_token_for(user, *, days: int = 30) -> str:
    """A REST API token of `user` (hashed, expiring, as the tokens page makes them)."""
    from accounts.models import ApiToken

    _, secret = ApiToken.objects.create(user, expiry=dt.timedelta(days=days), prefix="torii_")
    return secret

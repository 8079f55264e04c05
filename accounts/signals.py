"""A changed password revokes every API token of that person (however it was changed: the
password page, the admin site, `changepassword`)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model


def remember_password(sender: Any, instance: Any, update_fields: Any = None, **kwargs: Any) -> None:
    instance._torii_password_changed = False
    if instance.pk is None or (update_fields is not None and "password" not in update_fields):
        return
    stored = sender.objects.filter(pk=instance.pk).values_list("password", flat=True).first()
    instance._torii_password_changed = stored is not None and stored != instance.password


def revoke_tokens_on_password_change(
    sender: Any, instance: Any, created: bool = False, **kwargs: Any
) -> None:
    if getattr(instance, "_torii_password_changed", False):
        from accounts.tokens import api_tokens_revoke_all

        api_tokens_revoke_all(user=instance)
        instance._torii_password_changed = False


def connect() -> None:
    from django.db.models.signals import post_save, pre_save

    User = get_user_model()
    pre_save.connect(remember_password, sender=User, dispatch_uid="torii-remember-password")
    post_save.connect(revoke_tokens_on_password_change, sender=User, dispatch_uid="torii-revoke-tokens")

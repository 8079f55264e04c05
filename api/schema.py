"""OpenAPI details the generated schema needs help with.

Several models share field names for different choice sets (`status` of a connection, a sync run, a
user, an audit record; `kind` of a sync, an application, a user). drf-spectacular would name those
enums from the field name and warn about the collisions (a `check --deploy` warning). A
NamedChoiceField carries its enum's component name instead, so every choice set is one named,
reusable component and nothing collides.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension, OpenApiSerializerFieldExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from rest_framework import serializers


class NamedChoiceField(serializers.ChoiceField):
    def __init__(self, *, enum_name: str, **kwargs: Any) -> None:
        self.enum_name = enum_name
        super().__init__(**kwargs)


class NamedChoiceFieldExtension(OpenApiSerializerFieldExtension):
    target_class = NamedChoiceField
    match_subclasses = True

    def get_name(self) -> str:
        return self.target.enum_name

    def map_serializer_field(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
        schema = auto_schema._map_serializer_field(self.target, direction, bypass_extensions=True)
        # The component is shared by reads and writes: read-only is said where it is used.
        for key in ("x-spec-enum-id", "readOnly"):
            schema.pop(key, None)
        return schema


def model_choices(enum_name: str, choices: Any, **kwargs: Any) -> NamedChoiceField:
    """A read-only choice field documented as the enum component `enum_name`."""
    return NamedChoiceField(enum_name=enum_name, choices=choices, read_only=True, **kwargs)


class ApiTokenScheme(OpenApiAuthenticationExtension):
    """torii's API tokens (accounts.authentication): `Authorization: Token <token>`."""

    target_class = "accounts.authentication.ApiTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return build_bearer_security_scheme_object(header_name="Authorization", token_prefix="Token")  # noqa: S106 - a header word

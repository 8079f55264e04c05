"""The official JumpCloud Swagger 2.0 specs as JSON-Schema draft-4 validators.

Swagger 2.0 definitions are draft-4 schemas plus a few extensions; `x-nullable: true` is turned into
a null-allowing type and the other `x-*` keys are dropped. `#/definitions/...` references resolve
through a referencing.Registry holding the whole spec document under a URN of its own.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft4Validator
from referencing import Registry
from referencing.jsonschema import DRAFT4

# JumpCloud's official specs, copied into the repository with their licence (docs/jumpcloud/openapi/SOURCE.md).
SPEC_DIR = Path(__file__).resolve().parents[3] / "docs" / "jumpcloud" / "openapi"
SPEC_FILES = {
    "v1": "JumpCloud.SDK.V1.json",
    "v2": "JumpCloud.SDK.V2.json",
    "di": "JumpCloud.SDK.DirectoryInsights.json",
}
# Where each spec's paths live on the simulator's single origin.
PREFIXES = {"v1": "/api", "v2": "/api/v2", "di": "/insights/directory/v1"}


def missing_specs() -> list[str]:
    return [name for name in SPEC_FILES.values() if not (SPEC_DIR / name).is_file()]


def _to_draft4(node: Any) -> Any:
    if isinstance(node, list):
        return [_to_draft4(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "properties" and isinstance(value, dict):
            out[key] = {name: _to_draft4(sub) for name, sub in value.items()}
        elif key.startswith("x-") or key in ("discriminator", "readOnly", "example", "externalDocs"):
            continue
        else:
            out[key] = _to_draft4(value)
    if node.get("x-nullable") is True:
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
        elif "$ref" in out:
            out = {"anyOf": [{"$ref": out.pop("$ref")}, {"type": "null"}], **out}
    return out


@cache
def load(api: str) -> dict[str, Any]:
    with open(SPEC_DIR / SPEC_FILES[api], encoding="utf-8") as fh:
        return _to_draft4(json.load(fh))


def _uri(api: str) -> str:
    return f"urn:jumpcloud-spec:{api}"


@cache
def _registry() -> Registry:
    registry: Registry = Registry()
    for api in SPEC_FILES:
        registry = registry.with_resource(_uri(api), DRAFT4.create_resource(load(api)))
    return registry


def _absolute_refs(node: Any, base: str) -> Any:
    if isinstance(node, list):
        return [_absolute_refs(item, base) for item in node]
    if isinstance(node, dict):
        return {
            k: (
                base + v
                if k == "$ref" and isinstance(v, str) and v.startswith("#")
                else _absolute_refs(v, base)
            )
            for k, v in node.items()
        }
    return node


def operation(api: str, method: str, path: str) -> dict[str, Any]:
    return load(api)["paths"][path][method.lower()]


def validator(api: str, schema: dict[str, Any]) -> Draft4Validator:
    """A validator for a schema taken from the spec; its local refs resolve inside that spec."""
    return Draft4Validator(
        _absolute_refs(copy.deepcopy(schema), _uri(api)),
        registry=_registry(),
        format_checker=Draft4Validator.FORMAT_CHECKER,
    )


def response_validator(api: str, method: str, path: str, status: str = "200") -> Draft4Validator | None:
    schema = operation(api, method, path)["responses"][status].get("schema")
    return validator(api, schema) if schema is not None else None


def body_validator(api: str, method: str, path: str) -> Draft4Validator | None:
    op = operation(api, method, path)
    spec = load(api)
    for param in op.get("parameters", []):
        if "$ref" in param:
            param = spec["parameters"][param["$ref"].rsplit("/", 1)[-1]]
        if param.get("in") == "body":
            return validator(api, param["schema"])
    return None


def errors(v: Draft4Validator, instance: Any) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in v.iter_errors(instance)][:10]

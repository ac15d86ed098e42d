"""Generate the TestEnvironment CRD from the pydantic models.

pydantic emits JSON Schema (refs, anyOf for optionals, titles); the API
server wants a structural OpenAPI v3 schema. This module bridges the two and
adds what only Kubernetes knows: list-map keys, printer columns, the status
subresource. Run `python -m testenv.crd > crds/testenvironment.yaml`.
"""

from __future__ import annotations

import sys
from typing import Any

import yaml

from . import models

# Lists whose items are keyed by name: the API server then rejects duplicates
# and server-side apply merges them per item.
NAMED_LISTS = {"datastores", "stubs", "services", "seed", "tests", "components", "seeds", "env"}

_DROP = {"title", "additionalProperties"}


def _resolve(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_resolve(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = _resolve(defs[node["$ref"].rsplit("/", 1)[-1]], defs)
        extra = {k: v for k, v in node.items() if k != "$ref"}
        return {**target, **_resolve(extra, defs)}
    return {key: _resolve(value, defs) for key, value in node.items() if key != "$defs"}


def _structural(node: dict[str, Any], name: str = "") -> dict[str, Any]:
    """One schema node, made structural: one type per node, no nulls, no refs."""
    if "anyOf" in node:
        options = [o for o in node["anyOf"] if o.get("type") != "null"]
        rest = {k: v for k, v in node.items() if k != "anyOf"}
        if rest.get("default", ...) is None:
            rest.pop("default")
        if node.get("x-kubernetes-int-or-string"):
            return {k: v for k, v in rest.items() if k not in _DROP}
        if len(options) == 1:
            return _structural({**options[0], **rest}, name)
        # int | str without the marker is not expressible; make it explicit.
        return {k: v for k, v in rest.items() if k not in _DROP} | {"x-kubernetes-int-or-string": True}

    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP:
            continue
        if key == "const":
            out["enum"] = [value]
        elif key == "properties":
            out["properties"] = {p: _structural(s, p) for p, s in value.items()}
        elif key == "items":
            out["items"] = _structural(value)
        elif key == "default" and value is None:
            continue
        else:
            out[key] = value

    if node.get("x-kubernetes-preserve-unknown-fields"):
        return out  # free-form: a map, or any JSON value when no type was declared
    if out.get("type") == "object" and "properties" not in out:
        extra = node.get("additionalProperties")
        if isinstance(extra, dict) and extra:
            out["additionalProperties"] = _structural(extra)
        else:
            out["x-kubernetes-preserve-unknown-fields"] = True
    elif out.get("type") == "object" and node.get("additionalProperties") is not False:
        # A model that accepts extra fields (WireMock's mapping format).
        out["x-kubernetes-preserve-unknown-fields"] = True
    if "type" not in out and not out.get("x-kubernetes-int-or-string"):
        if "enum" in out:
            out["type"] = "string"
        else:
            out["x-kubernetes-preserve-unknown-fields"] = True
    if out.get("type") == "array" and name in NAMED_LISTS:
        out["x-kubernetes-list-type"] = "map"
        out["x-kubernetes-list-map-keys"] = ["name"]
    return out


def openapi_schema(model: type[models.Model]) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    return _structural(_resolve(raw, raw.get("$defs", {})))


def _column(name: str, path: str, type_: str = "string", **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": type_, "jsonPath": path, **extra}


def custom_resource_definition() -> dict[str, Any]:
    spec_schema = openapi_schema(models.TestEnvironmentSpec)
    status_schema = openapi_schema(models.TestEnvironmentStatus)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{models.PLURAL}.{models.GROUP}",
            "labels": {"app.kubernetes.io/name": "testenv-operator"},
        },
        "spec": {
            "group": models.GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": models.KIND,
                "listKind": f"{models.KIND}List",
                "plural": models.PLURAL,
                "singular": models.SINGULAR,
                "shortNames": models.SHORT_NAMES,
                "categories": ["testenv"],
            },
            "versions": [
                {
                    "name": models.VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        _column("Phase", ".status.phase"),
                        _column("Ready", ".status.readyComponents"),
                        _column("Tests", ".status.testCounts"),
                        _column("Namespace", ".status.namespace", priority=1),
                        _column("Age", ".metadata.creationTimestamp", "date"),
                        _column("Expires", ".status.expiresAt"),
                    ],
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": "An ephemeral test environment: a namespace with datastores, "
                            "stubs and services, seeded and tested by Jobs, then collected.",
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": spec_schema,
                                "status": status_schema,
                            },
                            "required": ["spec"],
                        }
                    },
                }
            ],
        },
    }


def render() -> str:
    header = "# Generated from operator/testenv/models.py by `python -m testenv.crd`; do not edit.\n"
    return header + yaml.safe_dump(custom_resource_definition(), sort_keys=False, width=120)


if __name__ == "__main__":
    sys.stdout.write(render())

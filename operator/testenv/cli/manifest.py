"""A TestEnvironment manifest on its way to the cluster: read it, apply the
command line's name, namespace and `--set` overrides, and check it with the
same models the operator uses. Pure, apart from reading the file.
"""

from __future__ import annotations

import copy
import re
import sys
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from .. import models
from ..validate import validate

# Top-level spec lists whose items are addressed by their `name`.
NAMED_LISTS = ("datastores", "stubs", "services", "seed", "tests")
# Nested lists of {name, value} where `--set` may add a new item.
GROWABLE_LISTS = ("env",)
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
# What the API server takes as a custom resource's name (and the operator
# makes a namespace name of, dots turned into '-'): a DNS-1123 subdomain.
DNS_SUBDOMAIN = re.compile(rf"{DNS_LABEL.pattern}(\.{DNS_LABEL.pattern})*")
# What `kubectl get -o yaml` adds that must not be applied back.
SERVER_METADATA = ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields",
                   "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink", "finalizers", "ownerReferences")


class ManifestError(ValueError):
    """The manifest cannot be used; `problems` name the field paths and why."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Override:
    path: list[str]  # spec path segments; list items by name
    raw: str  # the value as typed

    @property
    def text(self) -> str:
        return ".".join(p.replace(".", "\\.") for p in self.path) + "=" + self.raw


# --- reading -------------------------------------------------------------------


def load_manifest(path: str) -> dict[str, Any]:
    """The TestEnvironment document in a YAML file ('-' for stdin)."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
    except OSError as exc:
        raise ManifestError([f"{path}: cannot read the manifest ({exc.strerror or exc})"]) from None
    return parse_manifest(text, path)


def parse_manifest(text: str, source: str = "<manifest>") -> dict[str, Any]:
    try:
        documents = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise ManifestError([f"{source}: not valid YAML ({exc})"]) from None
    if any(not isinstance(d, dict) for d in documents):
        raise ManifestError([f"{source}: every YAML document must be a mapping (an object)"])
    found: list[dict[str, Any]] = [d for d in documents if d.get("kind") == models.KIND]
    if not found:
        kinds = ", ".join(str(d.get("kind")) for d in documents) or "nothing"
        raise ManifestError([(f"{source}: no TestEnvironment in the file (found: {kinds}); "
                              f"it needs apiVersion: {models.API_VERSION} and kind: {models.KIND}")])
    if len(found) > 1:
        raise ManifestError([f"{source}: {len(found)} TestEnvironments in one file; `testenv up` takes one"])
    return found[0]


# --- name, namespace, overrides -------------------------------------------------------


def _split_path(text: str) -> list[str]:
    """Split on dots, except escaped ones: `podAnnotations.testenv\\.dev/simulate-exit-code`."""
    parts, current, escaped = [], "", False
    for char in text:
        if escaped:
            current, escaped = current + char, False
        elif char == "\\":
            escaped = True
        elif char == ".":
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return parts


def parse_override(text: str) -> Override:
    """`services.order-service.image=ghcr.io/acme/x:1` -> Override(path, raw value)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ManifestError([f"--set {text!r}: expected PATH=VALUE, e.g. services.order-service.image=repo/image:tag"])
    path = _split_path(key.strip())
    if path[0] == "spec":
        path = path[1:]
    if not path or any(not p for p in path):
        raise ManifestError([f"--set {text!r}: the path has an empty part"])
    return Override(path=path, raw=raw)


def _unwrap(annotation: Any) -> Any:
    """Strip Annotated and Optional: `Annotated[str, ...] | None` -> str."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return annotation
            annotation = args[0]
        else:
            return annotation


def _field_type(model: type[BaseModel], key: str) -> Any:
    for name, info in model.model_fields.items():
        if key in (name, info.alias):
            return _unwrap(info.annotation)
    return None


def _target_type(path: list[str]) -> Any:
    """The type the models expect at a spec path, or None when unknown."""
    current: Any = models.TestEnvironmentSpec
    expect_item = False
    for segment in path:
        if expect_item:  # this segment selects a list item; the type is the item's
            expect_item = False
            continue
        if isinstance(current, type) and issubclass(current, BaseModel):
            current = _field_type(current, segment)
        elif typing.get_origin(current) is dict:
            current = _unwrap(typing.get_args(current)[1])
        else:
            return None
        if current is None:
            return None
        if typing.get_origin(current) is list:
            current = _unwrap(typing.get_args(current)[0])
            expect_item = True
    return None if expect_item else current


def parse_value(override: Override) -> Any:
    """A YAML scalar (2 -> int, true -> bool, null -> removal), except where
    the models expect a string: there `16` and `true` stay text."""
    try:
        value = yaml.safe_load(override.raw) if override.raw.strip() else None
    except yaml.YAMLError:
        value = override.raw
    if _target_type(override.path) is str and not isinstance(value, str):
        return override.raw
    return value


def _item(items: list[Any], key: str, where: str, growable: bool) -> dict[str, Any]:
    for item in items:
        if isinstance(item, dict) and item.get("name") == key:
            return item
    if key.isdigit() and int(key) < len(items) and isinstance(indexed := items[int(key)], dict):
        return indexed
    if growable:
        added: dict[str, Any] = {"name": key}
        items.append(added)
        return added
    names = ", ".join(str(i.get("name")) for i in items if isinstance(i, dict)) or "none"
    raise KeyError(f"{where} has no item named {key!r} (items: {names})")


def apply_override(spec: dict[str, Any], override: Override) -> None:
    """Set one value in the spec (a plain dict, as in the manifest), in place."""
    value = parse_value(override)
    node: Any = spec
    where = "spec"
    try:
        for i, segment in enumerate(override.path):
            last = i == len(override.path) - 1
            if isinstance(node, list):
                node = _item(node, segment, where, growable=where.rsplit(".", 1)[-1] in GROWABLE_LISTS)
                where += f"[{segment}]"
                if last:
                    example = ".".join(override.path) + ".image"
                    raise KeyError(f"{where} is a list item; name one of its fields, e.g. {example}")
                continue
            if not isinstance(node, dict):
                raise KeyError(f"{where} is {type(node).__name__}, not an object")
            if last:
                if value is None:
                    node.pop(segment, None)
                else:
                    node[segment] = value
                return
            child = node.get(segment)
            if child is None:
                if segment in NAMED_LISTS and where == "spec":
                    raise KeyError(f"spec.{segment} is empty; there is no item {override.path[i + 1]!r} to change")
                child = [] if segment in GROWABLE_LISTS else {}
                node[segment] = child
            node = child
            where += f".{segment}"
    except KeyError as exc:
        raise ManifestError([f"--set {override.text}: {exc.args[0]}"]) from None


def prepare(
    manifest: dict[str, Any],
    *,
    namespace: str | None = None,
    name: str | None = None,
    overrides: Sequence[str] = (),
    default_namespace: str | None = None,
) -> dict[str, Any]:
    """The object to apply: name/namespace set, overrides applied, status and
    server-written metadata left out. Raises ManifestError for bad --set."""
    meta = dict(manifest.get("metadata") or {})
    for key in SERVER_METADATA:
        meta.pop(key, None)
    if name:
        meta["name"] = name
    if namespace or meta.get("namespace") or default_namespace:
        meta["namespace"] = namespace or meta.get("namespace") or default_namespace
    spec = copy.deepcopy(manifest.get("spec") or {})
    problems = []
    for text in overrides:
        try:
            apply_override(spec, parse_override(text))
        except ManifestError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ManifestError(problems)
    api_version = manifest.get("apiVersion") or models.API_VERSION
    return {"apiVersion": api_version, "kind": models.KIND, "metadata": meta, "spec": spec}


# --- checking -----------------------------------------------------------------------


def _path(loc: tuple[Any, ...], body: dict[str, Any]) -> str:
    """('spec', 'tests', 0, 'image') -> spec.tests[0].image (the item's name when it has one)."""
    out = ""
    node: Any = body  # walks into lists, dicts, and None past the end
    for part in loc:
        if isinstance(part, int):
            item = node[part] if isinstance(node, list) and part < len(node) else None
            named = item.get("name") if isinstance(item, dict) else None
            out += f"[{part}]" + (f"({named})" if isinstance(named, str) else "")
            node = item
        else:
            out += f".{part}" if out else str(part)
            node = node.get(part) if isinstance(node, dict) else None
    return out


def _message(error: ErrorDetails) -> str:
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        return "unknown field (check its spelling and camelCase)"
    if error["type"] == "missing":
        return "required field is missing"
    if error["type"] in ("literal_error",) and error["loc"][-1:] == ("apiVersion",):
        return f"must be {models.API_VERSION}"
    return models.pattern_message(error) or message


def check(body: dict[str, Any]) -> models.TestEnvironment:
    """Validate like the API server and the operator would; ManifestError names every problem."""
    problems = []
    name = (body.get("metadata") or {}).get("name")
    if not name:
        problems.append("metadata.name: required; set it in the manifest or pass --name")
    elif not isinstance(name, str) or len(name) > 253 or not DNS_SUBDOMAIN.fullmatch(name):
        problems.append(f"metadata.name: {name!r} is not a DNS subdomain (lower-case letters, digits, '-' and '.', "
                        "at most 253 characters, starting and ending with a letter or digit)")
    namespace = (body.get("metadata") or {}).get("namespace")
    if not isinstance(namespace, str) or len(namespace) > 63 or not DNS_LABEL.fullmatch(namespace):
        problems.append(f"metadata.namespace: {namespace!r} is not a valid namespace name")
    try:
        environment = models.TestEnvironment.model_validate(body)
    except ValidationError as exc:
        problems += [f"{_path(e['loc'], body) or 'spec'}: {_message(e)}" for e in exc.errors()]
        raise ManifestError(problems) from None
    # The whole-spec checks the operator runs, except the copy policy, which
    # only the operator's configuration knows.
    allow_any = frozenset(s.copy_from.namespace for s in environment.spec.services if s.copy_from)
    problems += [str(e) for e in validate(environment.spec, allow_any)]
    if problems:
        raise ManifestError(problems)
    return environment

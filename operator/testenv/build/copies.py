"""What a copied Deployment brings along, and the credentials a spec borrows:
the ConfigMaps and Secrets its pod template references, found, checked
against the administrator's Secret rule, and re-homed in the environment;
claims made emptyDir; the source's ServiceAccount left behind. Pure."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from ..models import EnvVar, SecretKeyRef
from .common import EnvRef, env_labels
from .placement import ANNOTATION_COPIED_FROM

# Every namespace has this ConfigMap (the cluster's CA); it is never copied.
ROOT_CA_CONFIGMAP = "kube-root-ca.crt"
# A copied Secret or borrowed key larger than this (decoded) is refused: an
# object must stay well under the API server's 1 MiB, and a test needs no more.
MAX_SECRET_BYTES = 256 * 1024
# On the copied pod template: the copied ConfigMaps' content, so a new run
# with changed config rolls the copy although the names stay.
ANNOTATION_CONFIG_HASH = "testenv.dev/config-hash"

ObjectName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", max_length=253)]


class SecretRule(BaseModel):
    """Which Secrets of one source namespace may be copied (config.copySecrets):
    all of them, or only these names, or only those carrying these labels."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    names: list[ObjectName] = Field(default_factory=list)  # empty: any name
    labels: dict[str, str] = Field(default_factory=dict)  # the Secret must carry every one

    def allows_name(self, name: str) -> bool:
        return not self.names or name in self.names

    def allows(self, secret: Mapping[str, Any]) -> bool:
        meta = secret.get("metadata") or {}
        labels = meta.get("labels") or {}
        return self.allows_name(meta.get("name", "")) and all(labels.get(k) == v for k, v in self.labels.items())

    def describe(self) -> str:
        parts = []
        if self.names:
            parts.append(f"names {self.names}")
        if self.labels:
            parts.append("labels " + ",".join(f"{k}={v}" for k, v in sorted(self.labels.items())))
        return " and ".join(parts) or "any Secret"


PULL_SECRETS = "imagePullSecrets"


def usable_secrets(
    secrets: Mapping[str, dict[str, Any] | None], rule: SecretRule | None
) -> dict[str, dict[str, Any] | None]:
    """The read Secrets a copy may take: found, allowed by the rule's labels, small enough."""
    if rule is None:
        return {}
    return {name: s for name, s in secrets.items()
            if s is not None and rule.allows(s) and _decoded_size(s) <= MAX_SECRET_BYTES}


@dataclass(frozen=True)
class Reference:
    """One place in a pod template that names a ConfigMap or a Secret."""

    kind: str  # ConfigMap | Secret
    name: str
    where: str  # e.g. "container api envFrom", "volume config", "imagePullSecrets"
    keys: tuple[str, ...] = ()  # the keys it needs; none: the whole object
    optional: bool = False


def _containers(pod_spec: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    yield from pod_spec.get("initContainers") or []
    yield from pod_spec.get("containers") or []


def references(pod_spec: Mapping[str, Any]) -> list[Reference]:
    """Every ConfigMap and Secret the pod template names, in order."""
    found: list[Reference] = []
    for container in _containers(pod_spec):
        where = f"container {container.get('name', '?')}"
        for source in container.get("envFrom") or []:
            for field, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
                if ref := source.get(field):
                    found.append(Reference(kind, ref["name"], f"{where} envFrom", (), bool(ref.get("optional"))))
        for var in container.get("env") or []:
            value_from = var.get("valueFrom") or {}
            for field, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
                if ref := value_from.get(field):
                    found.append(Reference(kind, ref["name"], f"{where} env {var.get('name')}",
                                           (ref["key"],), bool(ref.get("optional"))))
    for volume in pod_spec.get("volumes") or []:
        where = f"volume {volume.get('name', '?')}"
        sources = [volume] + list((volume.get("projected") or {}).get("sources") or [])
        for source in sources:
            if ref := source.get("configMap"):
                keys = tuple(item["key"] for item in ref.get("items") or [])
                found.append(Reference("ConfigMap", ref["name"], where, keys, bool(ref.get("optional"))))
            if (ref := source.get("secret")) is not None:
                name = ref.get("secretName") or ref.get("name")  # a volume's or a projection's
                keys = tuple(item["key"] for item in ref.get("items") or [])
                found.append(Reference("Secret", name, where, keys, bool(ref.get("optional"))))
    for ref in pod_spec.get("imagePullSecrets") or []:
        found.append(Reference("Secret", ref["name"], PULL_SECRETS, (), False))
    return [r for r in found if r.name and not (r.kind == "ConfigMap" and r.name == ROOT_CA_CONFIGMAP)]


def config_map_names(pod_spec: Mapping[str, Any]) -> list[str]:
    return sorted({r.name for r in references(pod_spec) if r.kind == "ConfigMap"})


def secret_names(pod_spec: Mapping[str, Any]) -> list[str]:
    return sorted({r.name for r in references(pod_spec) if r.kind == "Secret"})


def _keys(obj: Mapping[str, Any]) -> set[str]:
    return set(obj.get("data") or {}) | set(obj.get("binaryData") or {})


def _decoded_size(secret: Mapping[str, Any]) -> int:
    return sum(len(v) * 3 // 4 for v in (secret.get("data") or {}).values())


@dataclass(frozen=True)
class CopyCheck:
    """What stands in a copy's way: errors that will not fix themselves (the
    run is an Error) and a missing object that may still appear (it waits)."""

    errors: tuple[str, ...] = ()
    missing: str | None = None


def check_references(
    pod_spec: Mapping[str, Any],
    namespace: str,
    config_maps: Mapping[str, Mapping[str, Any] | None],
    secrets: Mapping[str, Mapping[str, Any] | None],
    rule: SecretRule | None,
    own_secrets: Mapping[str, str] | None = None,
) -> CopyCheck:
    """secrets holds only what the rule let the operator read (None: not found).
    own_secrets: names of Secrets the operator makes in the environment (a
    datastore's connection), which a copy's reference means and gets; those
    are not copied, so not checked. Image pull Secrets are not checked either:
    one that cannot be copied is left out (bring_along says so), and a pull
    that then fails is diagnosed as such."""
    errors: list[str] = []
    missing: str | None = None
    for ref in references(pod_spec):
        if ref.where == PULL_SECRETS or (ref.kind == "Secret" and ref.name in (own_secrets or {})):
            continue
        what = f"{ref.kind} {namespace}/{ref.name} ({ref.where})"
        if ref.kind == "Secret":
            if rule is None or not rule.allows_name(ref.name):
                allowed = "copying Secrets from it is not allowed" if rule is None else (
                    f"only {rule.describe()} may be copied from it")
                errors.append(
                    f"{what} is referenced, but {allowed}; an administrator can allow it in the operator's "
                    f"config.copySecrets.{namespace}, or the source can stop referencing it"
                )
                continue
            found = secrets.get(ref.name)
            if found is not None and not rule.allows(found):
                errors.append(f"{what} lacks the labels the operator's config.copySecrets.{namespace} requires "
                              f"({rule.describe()}); label it or ask an administrator")
                continue
            if found is not None and _decoded_size(found) > MAX_SECRET_BYTES:
                errors.append(f"{what} is larger than {MAX_SECRET_BYTES // 1024} KiB; a copy takes no more")
                continue
        else:
            found = config_maps.get(ref.name)
        if found is None:
            if not ref.optional and missing is None:
                missing = f"{what} not found; create it in {namespace} or mark the reference optional"
            continue
        absent = [k for k in ref.keys if k not in _keys(found)]
        if absent and not ref.optional and missing is None:
            missing = f"{what} has no key {absent[0]!r}; add it or fix the reference"
    return CopyCheck(tuple(errors), missing)


def _version(secret: Mapping[str, Any]) -> str:
    """Which version of the source this is: its resourceVersion, which every
    change of it changes. (Never its content: a hash of a short secret in a
    name anyone can list would let it be guessed.)"""
    meta = secret.get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}@{meta.get('resourceVersion', '')}"


def copied_secret_name(name: str, secret: Mapping[str, Any]) -> str:
    """A copied Secret is named after the source's version: created once,
    never patched, and a source changed before a new run is a new Secret."""
    digest = hashlib.sha256(_version(secret).encode()).hexdigest()[:10]
    return f"{name[:242]}-{digest}"


def _copied_object(kind: str, name: str, source: Mapping[str, Any], env: EnvRef) -> dict[str, Any]:
    meta = source.get("metadata") or {}
    obj: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": kind,
        "metadata": {
            "name": name,
            "namespace": env.target_namespace,
            "labels": env_labels(env),
            "annotations": {ANNOTATION_COPIED_FROM: f"{meta.get('namespace', '')}/{meta.get('name', '')}"},
        },
    }
    for key in ("data", "binaryData"):
        if source.get(key):
            obj[key] = dict(source[key])
    return obj


def copied_config_map(source: Mapping[str, Any], env: EnvRef) -> dict[str, Any]:
    """Under its own name: the copy's template names it so."""
    return _copied_object("ConfigMap", source["metadata"]["name"], source, env)


def copied_secret(source: Mapping[str, Any], env: EnvRef) -> dict[str, Any]:
    secret = _copied_object("Secret", copied_secret_name(source["metadata"]["name"], source), source, env)
    secret["type"] = source.get("type") or "Opaque"
    secret["immutable"] = True
    return secret


def _pull_secrets(pod_spec: dict[str, Any], copied: Mapping[str, str], keep: frozenset[str], notes: list[str]) -> None:
    """The source's pull Secrets: copied ones renamed, the operator's own
    (config.imagePullSecrets, same name) kept, the others left out."""
    refs = []
    for ref in pod_spec.get("imagePullSecrets") or []:
        if ref["name"] in copied or ref["name"] in keep:
            refs.append({"name": copied.get(ref["name"], ref["name"])})
        else:
            notes.append(f"image pull Secret {ref['name']} of the source left out: config.copySecrets does not "
                         "allow it (or it is missing); the operator's config.imagePullSecrets apply")
    if refs:
        pod_spec["imagePullSecrets"] = refs
    else:
        pod_spec.pop("imagePullSecrets", None)


def _rename_secrets(pod_spec: dict[str, Any], names: Mapping[str, str]) -> None:
    for container in _containers(pod_spec):
        for source in container.get("envFrom") or []:
            if (ref := source.get("secretRef")) and ref["name"] in names:
                ref["name"] = names[ref["name"]]
        for var in container.get("env") or []:
            ref = (var.get("valueFrom") or {}).get("secretKeyRef")
            if ref and ref["name"] in names:
                ref["name"] = names[ref["name"]]
    for volume in pod_spec.get("volumes") or []:
        if (ref := volume.get("secret")) and ref.get("secretName") in names:
            ref["secretName"] = names[ref["secretName"]]
        for source in (volume.get("projected") or {}).get("sources") or []:
            if (ref := source.get("secret")) and ref.get("name") in names:
                ref["name"] = names[ref["name"]]


def _handle_volumes(pod_spec: dict[str, Any], notes: list[str]) -> None:
    for volume in pod_spec.get("volumes") or []:
        if claim := volume.pop("persistentVolumeClaim", None):
            volume["emptyDir"] = {}
            notes.append(f"volume {volume.get('name')}: PersistentVolumeClaim {claim.get('claimName')} "
                         "replaced by an emptyDir (a copy never shares the source's data)")
        projected = volume.get("projected") or {}
        sources = projected.get("sources") or []
        kept = [s for s in sources if "serviceAccountToken" not in s]
        if len(kept) != len(sources):
            projected["sources"] = kept
            notes.append(f"volume {volume.get('name')}: its ServiceAccount token left out (copies run token-less)")


def bring_along(
    pod_spec: dict[str, Any],
    env: EnvRef,
    config_maps: Mapping[str, Mapping[str, Any] | None],
    secrets: Mapping[str, Mapping[str, Any] | None],
    keep_pull_secrets: frozenset[str] = frozenset(),
    own_secrets: Mapping[str, str] | None = None,
) -> tuple[list[dict[str, Any]], list[str]]:
    """Re-home what the (already checked) pod template references; rewrites
    pod_spec in place. secrets: only those the copy may take (usable_secrets).
    Returns the objects to put before the Deployment and notes on what was
    changed on purpose."""
    notes: list[str] = []
    account = pod_spec.pop("serviceAccountName", None) or pod_spec.pop("serviceAccount", None)
    pod_spec.pop("serviceAccount", None)
    if account and account != "default":
        notes.append(f"ServiceAccount {account} of the source not used: the copy runs token-less")
    _handle_volumes(pod_spec, notes)
    objects: list[dict[str, Any]] = []
    wanted_maps = config_map_names(pod_spec)
    for name in wanted_maps:
        if (found := config_maps.get(name)) is not None:
            objects.append(copied_config_map(found, env))
    renamed: dict[str, str] = {}
    for name in secret_names(pod_spec):
        if own_secrets and name in own_secrets:
            notes.append(f"Secret {name} is the environment's own ({own_secrets[name]}), not copied")
        elif (found := secrets.get(name)) is not None:
            secret = copied_secret(found, env)
            renamed[name] = secret["metadata"]["name"]
            objects.append(secret)
    _rename_secrets(pod_spec, renamed)
    _pull_secrets(pod_spec, renamed, keep_pull_secrets, notes)
    if wanted_maps or renamed:
        notes.append("copied with it: " + ", ".join(
            [f"ConfigMap {n}" for n in wanted_maps if config_maps.get(n) is not None]
            + [f"Secret {n} (as {renamed[n]})" for n in sorted(renamed)]))
    return objects, notes


def config_hash(objects: list[dict[str, Any]]) -> str:
    """Of the ConfigMaps only: a copied Secret's name already changes with it."""
    content = [(o["metadata"]["name"], o.get("data"), o.get("binaryData")) for o in objects if o["kind"] == "ConfigMap"]
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16]


# --- credentials: one key of an existing Secret, borrowed by a spec's env -----


def credential_refs(env: list[EnvVar]) -> list[SecretKeyRef]:
    return [v.value_from.secret_key_ref for v in env if v.value_from is not None]


def credential_key(ref: SecretKeyRef) -> tuple[str, str, str]:
    return (ref.namespace, ref.name, ref.key)


def credential_secret(ref: SecretKeyRef, value: str, env: EnvRef, source: Mapping[str, Any]) -> dict[str, Any]:
    """The one key (value: base64, as read) as a Secret of the environment,
    named after the reference and the source's version: created once, never
    patched."""
    digest = hashlib.sha256(f"{_version(source)}#{ref.key}".encode()).hexdigest()[:12]
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": f"credential-{digest}",
            "namespace": env.target_namespace,
            "labels": env_labels(env),
            "annotations": {ANNOTATION_COPIED_FROM: f"{ref.namespace}/{ref.name}#{ref.key}"},
        },
        "type": "Opaque",
        "immutable": True,
        "data": {ref.key: value},
    }


def credential_value(secret: Mapping[str, Any] | None, ref: SecretKeyRef) -> str | None:
    return None if secret is None else (secret.get("data") or {}).get(ref.key)


def decoded_size(value: str) -> int:
    return len(base64.b64decode(value.encode(), validate=False))

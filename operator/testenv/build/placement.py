"""Where environment pods run and what they pull with: the administrator's node
pool (node selector, tolerations) and registry credentials, put on every pod
an environment makes, and the copies of the pull Secrets those pods name."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .common import EnvRef, env_labels

ANNOTATION_COPIED_FROM = "testenv.dev/copied-from"


class Toleration(BaseModel):
    """A Kubernetes toleration, checked when the operator starts rather than
    when a pod is refused."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="forbid")

    key: str | None = None
    operator: Literal["Exists", "Equal"] = "Equal"
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    toleration_seconds: int | None = Field(default=None, alias="tolerationSeconds")

    @model_validator(mode="after")
    def _consistent(self) -> Toleration:
        if self.operator == "Exists" and self.value:
            raise ValueError("a toleration with operator Exists takes no value")
        if self.key is None and self.operator != "Exists":
            raise ValueError("a toleration without a key must use operator Exists")
        if self.toleration_seconds is not None and self.effect != "NoExecute":
            raise ValueError("tolerationSeconds applies to effect NoExecute only")
        return self

    def wire(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True)


@dataclass(frozen=True)
class PodPlacement:
    """What every environment pod gets; empty changes nothing."""

    node_selector: tuple[tuple[str, str], ...] = ()
    tolerations: tuple[Toleration, ...] = ()
    image_pull_secrets: tuple[str, ...] = ()  # Secret names, copied into each environment namespace

    @classmethod
    def of(
        cls,
        node_selector: dict[str, str] | None = None,
        tolerations: list[Toleration] | tuple[Toleration, ...] = (),
        image_pull_secrets: list[str] | tuple[str, ...] = (),
    ) -> PodPlacement:
        return cls(tuple(sorted((node_selector or {}).items())), tuple(tolerations), tuple(image_pull_secrets))


NO_PLACEMENT = PodPlacement()


def _pull_secret_refs(own: list[dict[str, Any]], placement: PodPlacement) -> list[dict[str, Any]]:
    names = {ref.get("name") for ref in own}
    return own + [{"name": name} for name in placement.image_pull_secrets if name not in names]


def place(pod_spec: dict[str, Any], placement: PodPlacement) -> dict[str, Any]:
    """A pod spec the operator built, placed on the administrator's nodes.
    Returns the same dict, so builders can wrap their literal in it."""
    if placement.node_selector:
        pod_spec["nodeSelector"] = dict(placement.node_selector)
    if placement.tolerations:
        pod_spec["tolerations"] = [t.wire() for t in placement.tolerations]
    if placement.image_pull_secrets:
        pod_spec["imagePullSecrets"] = _pull_secret_refs(pod_spec.get("imagePullSecrets") or [], placement)
    return pod_spec


def place_copy(pod_spec: dict[str, Any], placement: PodPlacement) -> dict[str, Any]:
    """A copied pod spec, re-placed: where the source ran (its nodeSelector,
    node affinity, tolerations) belongs to the source's nodes, so the
    operator's settings replace it when they are set; where they are not, the
    source's stays as it was. Ours are added to the source's pull Secrets
    (those copies.bring_along kept: copied under config.copySecrets)."""
    if placement.node_selector:
        affinity = pod_spec.get("affinity") or {}
        affinity.pop("nodeAffinity", None)
        if affinity:
            pod_spec["affinity"] = affinity
        else:
            pod_spec.pop("affinity", None)
    return place(pod_spec, placement)


def pull_secret_copy(source: dict[str, Any], env: EnvRef) -> dict[str, Any]:
    """The operator namespace's pull Secret as the environment namespace's own:
    a pod may only use pull Secrets of its own namespace."""
    meta = source.get("metadata") or {}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": meta["name"],
            "namespace": env.target_namespace,
            "labels": env_labels(env),
            "annotations": {ANNOTATION_COPIED_FROM: f"{meta.get('namespace', '')}/{meta['name']}"},
        },
        "type": source.get("type") or "Opaque",
        "data": dict(source.get("data") or {}),
    }

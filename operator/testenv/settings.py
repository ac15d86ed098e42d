"""The operator's configuration, read once from TESTENV_* environment variables.

Every value here is a chart value too (charts/testenv-operator/values.yaml).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Literal

from pydantic import Field, StringConstraints
from pydantic_settings import BaseSettings, SettingsConfigDict

from .build.copies import SecretRule
from .build.placement import PodPlacement, Toleration
from .models import Engine

SecretName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", max_length=253)]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TESTENV_", env_nested_delimiter="__", frozen=True)

    # Images. A datastore's `version` replaces the tag of its engine's image.
    engine_images: dict[Engine, str] = Field(
        default_factory=lambda: {
            Engine.POSTGRES: "postgres:16",
            Engine.MYSQL: "mysql:8.4",
            Engine.REDIS: "redis:7",
            Engine.MONGODB: "mongo:7",
        }
    )
    wiremock_image: str = "wiremock/wiremock:3.13.1"
    # The image whose client runs `sql` seeds is the engine's own image.

    # Where every environment pod runs (datastores, stubs, services and their
    # copies, seed and test Jobs): a shared cluster's dedicated node pool.
    # Set, they replace a copied Deployment's own node selection.
    pod_node_selector: dict[str, str] = Field(default_factory=dict)
    pod_tolerations: list[Toleration] = Field(default_factory=list)
    # Pull Secrets (names) in operator_namespace, copied into every environment
    # namespace and named by every environment pod: a private registry.
    image_pull_secrets: list[SecretName] = Field(default_factory=list)

    # Namespaces a service may be copied from (copyFrom.namespace).
    copy_allowlist: frozenset[str] = frozenset()
    # Source namespaces whose Secrets may be copied: those a copy references
    # (and its image pull Secrets), and keys a spec borrows with
    # env[].valueFrom.secretKeyRef. Per namespace: {} for any Secret, or
    # {names: [...]} and/or {labels: {...}} to limit it. Not listed: none.
    copy_secrets: dict[str, SecretRule] = Field(default_factory=dict)

    # Isolation defaults, used when a TestEnvironment leaves them out.
    pod_security_level: Literal["privileged", "baseline", "restricted"] = "restricted"
    default_quota_cpu: str = "4"
    default_quota_memory: str = "8Gi"
    default_quota_pods: str = "50"
    default_container_cpu: str = "500m"
    default_container_memory: str = "512Mi"
    # The namespace the operator runs in: its pods may reach environments
    # through the NetworkPolicy (stub verification, health checks).
    operator_namespace: str = "testenv-system"

    # Garbage collection. The environment's own lifecycle fields win.
    default_ttl_seconds_after_finished: int = 600
    default_retain_on_failure_seconds: int = 3600
    delete_resource_after_collection: bool = False
    # Seconds a pod-level cause that may still fix itself (an image pushed
    # late, a Secret created late, a full quota) is waited out before the run
    # ends in Error with that reason. An environment's
    # `lifecycle.failureGraceSeconds` wins.
    failure_grace_seconds: int = Field(default=120, ge=0)
    orphan_sweep_interval_seconds: int = 300
    orphan_sweep_dry_run: bool = False

    # Concurrency: environments beyond these wait in phase Queued (0 = no limit).
    max_active_environments: int = 0
    max_active_per_namespace: int = 0

    # Prefix of the environment namespaces; te-<name>-<hash>.
    namespace_prefix: str = "te"
    field_manager: str = "testenv-operator"


    def pod_placement(self) -> PodPlacement:
        return PodPlacement.of(self.pod_node_selector, self.pod_tolerations, self.image_pull_secrets)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()

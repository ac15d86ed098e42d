"""The operator's configuration, read once from TESTENV_* environment variables.

Every value here is a chart value too (charts/testenv-operator/values.yaml).
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .build.copies import SecretRule
from .build.placement import PodPlacement, Toleration
from .build.results import Collector
from .models import Engine

log = logging.getLogger(__name__)

# SigV4 refuses a presigned URL that lives longer than a week.
S3_LINK_MAX_SECONDS = 7 * 86400

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

    # Results: each seed and suite attempt's files (JUnit reports, artifacts)
    # and the log tails of failed containers, kept after the namespace is gone.
    # The collector is a sidecar from the operator's own image; empty: none
    # (the termination-message summary alone).
    collector_image: str = "ghcr.io/testenv-dev/testenv-operator:0.1.0"
    # "configmap": ConfigMaps beside the TestEnvironment, deleted with it (no
    # extra server); "s3": an S3-compatible bucket (results_s3_*).
    results_store: Literal["configmap", "s3"] = "configmap"
    results_s3_endpoint: str = ""
    # Where clients outside the cluster (CI runners, `testenv results`) reach
    # the bucket, when not at results_s3_endpoint (an in-cluster Service name,
    # say). Download links are signed for this host.
    results_s3_public_endpoint: str = ""
    results_s3_bucket: str = ""
    results_s3_region: str = "us-east-1"
    results_s3_prefix: str = "testenv"
    # A Secret in the operator's namespace with keys accessKeyId and
    # secretAccessKey; the chart passes them in as the two settings below.
    results_s3_credentials_secret: str = ""
    results_s3_access_key_id: str = ""
    results_s3_secret_access_key: str = Field(default="", repr=False)
    # Caps: a file, a seed's or suite's attempt (compressed; it travels through
    # the collector's log, which the kubelet rotates at 10 MiB), and all of a
    # run. What is over a cap is cut, with a note on the suite's status.
    results_max_file_bytes: int = Field(default=4 * 1024 * 1024, ge=1)
    results_max_attempt_bytes: int = Field(default=6 * 1024 * 1024, ge=1024, le=7 * 1024 * 1024)
    results_max_suite_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    results_max_run_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    # Results live until the TestEnvironment is deleted or this passes; a
    # re-run keeps the last results_keep_runs runs.
    results_retention_seconds: int = Field(default=7 * 86400, ge=60)
    results_keep_runs: int = Field(default=3, ge=1)

    # Concurrency: environments beyond these wait in phase Queued (0 = no limit).
    max_active_environments: int = 0
    max_active_per_namespace: int = 0

    # Prefix of the environment namespaces; te-<name>-<hash>.
    namespace_prefix: str = "te"
    field_manager: str = "testenv-operator"


    @model_validator(mode="after")
    def _say_when_retention_is_cut(self) -> Settings:
        if self.results_retention() < self.results_retention_seconds:
            log.warning("results_retention_seconds %d is longer than an S3 download link can last; results in the "
                        "bucket are kept %d seconds (7 days)", self.results_retention_seconds, S3_LINK_MAX_SECONDS)
        return self

    def results_retention(self) -> int:
        """Seconds results are kept after their run. A bucket's are fetched
        through links SigV4 lets live a week at most: kept longer, they could
        not be fetched, so they are not."""
        if self.results_store == "s3":
            return min(self.results_retention_seconds, S3_LINK_MAX_SECONDS)
        return self.results_retention_seconds

    def results_download_endpoint(self) -> str:
        return self.results_s3_public_endpoint or self.results_s3_endpoint

    def queues(self) -> bool:
        """Whether a concurrency limit is set, so that environments may wait in Queued."""
        return bool(self.max_active_environments or self.max_active_per_namespace)

    def pod_placement(self) -> PodPlacement:
        return PodPlacement.of(self.pod_node_selector, self.pod_tolerations, self.image_pull_secrets)

    def collector(self) -> Collector | None:
        if not self.collector_image:
            return None
        return Collector(self.collector_image, self.results_max_file_bytes, self.results_max_attempt_bytes)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()

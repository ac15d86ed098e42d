"""Pods and Events as the operator keeps them (slimmed for its indexes), the
reasons per owner the reconciler asks for, and the images pods ran; shown by
the CLI and carried by the JUnit report."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from typing import Any

from testenv.build.common import LABEL_COMPONENT, LABEL_ENV_UID, LABEL_KIND, LABEL_RUN
from testenv.cli.display import image_ref, provenance_table, reason_lines
from testenv.diagnose import PodOwner, Reason, diagnose_owners, grace_ends, wants_log
from testenv.junit import junit_xml
from testenv.models import ComponentStatus, JobPhase, Phase, SeedStatus, SuiteStatus, TestEnvironmentStatus
from testenv.observe import MAX_EVENT_MESSAGE, ImageRef, images, slim_event, slim_pod

NOW = datetime(2026, 11, 29, 8, 30, 0, tzinfo=UTC)
DIGEST = "sha256:" + "ab" * 32


def pod(name: str, *, kind: str = "service", component: str = "api", run: int | None = None,
        created: str = "2026-11-29T08:29:00Z", status: dict[str, Any] | None = None,
        image: str = "reg/api:1") -> dict[str, Any]:
    labels = {LABEL_KIND: kind, LABEL_COMPONENT: component, LABEL_ENV_UID: "u1"}
    if run is not None:
        labels[LABEL_RUN] = str(run)
    body: dict[str, Any] = {
        "metadata": {"name": name, "labels": labels, "creationTimestamp": created,
                     "managedFields": [{"manager": "kubelet"}], "uid": "x"},
        "spec": {"containers": [{"name": "main", "image": image, "ports": [{"containerPort": 80}],
                                 "env": [{"name": "A", "value": "b"}]}], "nodeName": "n"},
    }
    if status is not None:
        body["status"] = status
    return body


def running(image_id: str = "", image: str = "reg/api:1") -> dict[str, Any]:
    return {"phase": "Running", "startTime": "2026-11-29T08:29:01Z", "hostIP": "10.0.0.1",
            "containerStatuses": [{"name": "main", "image": image, "imageID": image_id, "ready": True,
                                   "restartCount": 0, "state": {"running": {}}}]}


def test_a_slim_pod_keeps_what_diagnosis_reads_and_drops_the_rest() -> None:
    slim = slim_pod(pod("api-1", status=running(f"reg/api@{DIGEST}")))
    assert "managedFields" not in slim["metadata"] and "uid" not in slim["metadata"]
    assert slim["spec"]["containers"] == [{"name": "main", "image": "reg/api:1"}]
    assert "nodeName" not in slim["spec"] and "hostIP" not in slim["status"]
    assert slim["status"]["containerStatuses"][0]["imageID"].endswith(DIGEST)


def test_a_slim_container_keeps_the_env_the_redactor_reads_the_memory_limit_and_that_a_probe_exists() -> None:
    secret_ref = {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}
    literal = {"name": "API_TOKEN", "value": "tok-123456"}
    body = pod("api-1", status=running())
    body["spec"]["containers"][0].update(
        env=[{"name": "A", "value": "b"}, secret_ref, literal, {"name": "API_TOKEN_SHORT", "value": "x"},
             {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "mode"}}}],
        resources={"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "2Gi"}},
        readinessProbe={"httpGet": {"path": "/health", "port": 8080}, "periodSeconds": 5},
    )
    body["status"]["conditions"] = [{"type": "Ready", "status": "False", "reason": "ContainersNotReady",
                                     "lastProbeTime": None, "lastTransitionTime": "2026-11-29T08:29:02Z"}]
    slim = slim_pod(body)
    assert slim["spec"]["containers"] == [{"name": "main", "image": "reg/api:1", "env": [secret_ref, literal],
                                           "resources": {"limits": {"memory": "2Gi"}}, "readinessProbe": {}}]
    assert slim["status"]["conditions"] == [{"type": "Ready", "status": "False", "reason": "ContainersNotReady",
                                             "lastTransitionTime": "2026-11-29T08:29:02Z"}]


def test_slim_pods_share_their_short_strings() -> None:
    # Each watch event is parsed on its own, into strings of its own.
    first, second = (slim_pod(json.loads(json.dumps(pod(name, status=running())))) for name in ("api-1", "api-2"))
    assert first["metadata"]["labels"][LABEL_ENV_UID] is second["metadata"]["labels"][LABEL_ENV_UID]
    key = next(iter(first["status"]["containerStatuses"][0]))
    assert key is next(iter(second["status"]["containerStatuses"][0]))


def test_a_pod_with_no_status_yet_is_kept_and_diagnosed_as_nothing() -> None:
    slim = slim_pod(pod("api-1"))
    assert slim["status"] == {}
    assert diagnose_owners([PodOwner("service", "api")], [slim], now=NOW) == {}
    assert images([slim]) == {PodOwner("service", "api"): ImageRef("reg/api:1", None)}


def test_only_warnings_that_explain_pods_are_kept_and_their_messages_capped() -> None:
    involved = {"kind": "Pod", "name": "api-1"}
    normal = {"type": "Normal", "reason": "Pulled", "message": "ok", "involvedObject": involved}
    other = {"type": "Warning", "reason": "FailedMount", "message": "x", "involvedObject": involved}
    huge = {"type": "Warning", "reason": "Unhealthy", "message": "Readiness probe failed: " + "x" * 100_000,
            "involvedObject": involved, "metadata": {"name": "e", "managedFields": []}}
    assert slim_event(normal) is None and slim_event(other) is None
    kept = slim_event(huge)
    assert len(kept["message"]) == MAX_EVENT_MESSAGE
    assert kept["metadata"] == {"name": "e"}


def test_images_take_the_digest_from_the_newest_pod_that_resolved_one() -> None:
    pods = [
        pod("api-old", created="2026-11-29T08:00:00Z", status=running("reg/api@sha256:" + "00" * 32)),
        pod("api-new", created="2026-11-29T08:29:00Z", status=running(f"reg/api@{DIGEST}")),
        pod("api-newest", created="2026-11-29T08:29:30Z", status={"phase": "Pending"}),
        pod("e2e-r2-x", kind="test", component="e2e", run=2, status=running(DIGEST, image="reg/t:1"),
            image="reg/t:1"),
        {"metadata": {"name": "stranger", "labels": {}}, "spec": {"containers": [{"name": "c", "image": "i"}]}},
    ]
    found = images(pods)
    assert found[PodOwner("service", "api")] == ImageRef("reg/api:1", DIGEST)
    assert found[PodOwner("test", "e2e", 2)] == ImageRef("reg/t:1", DIGEST)
    assert len(found) == 2


def test_an_owner_without_any_pod_is_diagnosed_from_its_jobs_refusal() -> None:
    event = {"type": "Warning", "reason": "FailedCreate", "involvedObject": {"kind": "Job", "name": "fixtures-r1"},
             "message": 'Error creating: pods "fixtures-r1-x" is forbidden: exceeded quota: q, requested: pods=1, '
                        "used: pods=1, limited: pods=1",
             "firstTimestamp": "2026-11-29T08:29:50Z", "lastTimestamp": "2026-11-29T08:29:55Z"}
    owners = [PodOwner("seed", "fixtures", 1), PodOwner("seed", "other", 1), PodOwner("service", "fixtures")]
    found = diagnose_owners(owners, [], [event], now=NOW, grace=timedelta(seconds=60))
    assert list(found) == [PodOwner("seed", "fixtures", 1)]
    quota = found[PodOwner("seed", "fixtures", 1)]
    assert quota.reason == Reason.QUOTA_EXCEEDED and not quota.permanent
    assert grace_ends(quota, timedelta(seconds=60)) == datetime(2026, 11, 29, 8, 30, 50, tzinfo=UTC)
    assert not wants_log(quota)
    final = diagnose_owners(owners, [], [event], now=NOW + timedelta(minutes=5), grace=timedelta(seconds=60))
    assert final[PodOwner("seed", "fixtures", 1)].permanent
    assert grace_ends(final[PodOwner("seed", "fixtures", 1)], timedelta(seconds=60)) is None


def _status() -> TestEnvironmentStatus:
    return TestEnvironmentStatus(
        phase=Phase.ERROR, run=1, message="service api: cannot pull",
        components=[ComponentStatus(name="api", kind="service", reason="ImagePullBackOff", message="cannot pull",
                                    image="reg/api:1"),
                    ComponentStatus(name="db", kind="datastore", ready=True, image="postgres:16",
                                    image_digest=DIGEST)],
        seeds=[SeedStatus(name="schema", phase=JobPhase.SUCCEEDED, image="postgres:16", image_digest=DIGEST)],
        tests=[SuiteStatus(name="e2e", phase=JobPhase.FAILED, failed=1, image="reg/t:1", image_digest=DIGEST)],
    )


def test_the_cli_lists_reasons_and_what_ran() -> None:
    status = _status()
    assert reason_lines(status) == ["  service api: ImagePullBackOff: cannot pull"]
    assert image_ref("reg/t:1", DIGEST) == f"reg/t:1@{DIGEST}"
    assert image_ref("reg/t:1", None) == "reg/t:1" and image_ref(None, None) == "-"
    table = provenance_table(status)
    assert table is not None and table.row_count == 4
    assert provenance_table(TestEnvironmentStatus()) is None


def test_the_junit_report_carries_the_images_as_properties() -> None:
    root = ET.fromstring(junit_xml("pr-1", _status()))
    e2e = next(s for s in root.findall("testsuite") if s.get("name") == "e2e")
    props = {p.get("name"): p.get("value") for p in e2e.find("properties")}
    assert props["testenv.image"] == "reg/t:1"
    assert props["testenv.imageDigest"] == DIGEST
    assert props["testenv.datastore.db.imageDigest"] == DIGEST
    assert props["testenv.seed.schema.image"] == "postgres:16"
    assert props["testenv.service.api.image"] == "reg/api:1"
    assert "testenv.service.api.imageDigest" not in props

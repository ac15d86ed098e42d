"""Operator settings that change lifecycle behaviour, with the operator
restarted under them: delete the record after collection, and an orphan
sweep that only reports."""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from testbed_support import wait_for

pytestmark = pytest.mark.component


@pytest.fixture
def reconfigured(operator, tmp_path):
    operator.stop()
    other = replace(operator, env=operator.env | {
        "TESTENV_DELETE_RESOURCE_AFTER_COLLECTION": "true",
        "TESTENV_ORPHAN_SWEEP_DRY_RUN": "true",
    }, log_path=tmp_path / "operator.log", process=None)
    other.start()
    try:
        yield other
    finally:
        other.stop()
        operator.start()


def _orphan_namespace(core: client.CoreV1Api, name: str) -> None:
    """An environment namespace whose TestEnvironment never existed."""
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels={
        "app.kubernetes.io/managed-by": "testenv-operator",
        "testenv.dev/environment": "gone",
        "testenv.dev/environment-namespace": "ci",
        "testenv.dev/environment-uid": str(uuid.uuid4()),
    })))


def test_the_record_is_deleted_after_collection_when_configured(reconfigured, environments, core):
    environments.apply("gone", {"lifecycle": {"ttlSecondsAfterFinished": 1},
                                "tests": [{"name": "t", "image": "i"}]})
    status = environments.wait_phase("gone", "Succeeded", timeout=60)
    wait_for(lambda: not environments.exists("gone"), timeout=60, what="the TestEnvironment deleted")
    with pytest.raises(ApiException) as missing:
        core.read_namespace(status["namespace"])
    assert missing.value.status == 404


def test_a_dry_run_sweep_reports_orphans_and_keeps_them(reconfigured, core):
    name = f"te-orphan-{uuid.uuid4().hex[:5]}"
    _orphan_namespace(core, name)
    try:
        wait_for(lambda: f"would delete namespace {name} (dry run)" in reconfigured.logs(), timeout=60,
                 what="the dry-run report")
        assert core.read_namespace(name).status.phase == "Active"
    finally:
        core.delete_namespace(name)


def _deleting_or_gone(core: client.CoreV1Api, name: str) -> bool:
    try:
        return core.read_namespace(name).metadata.deletion_timestamp is not None
    except ApiException as exc:
        return exc.status == 404


def test_orphans_left_while_the_operator_was_down_are_swept_when_it_starts(operator, core, tmp_path):
    operator.stop()
    name = f"te-orphan-{uuid.uuid4().hex[:5]}"
    _orphan_namespace(core, name)
    # An interval far beyond the test: only the pass at start can do it.
    patient = replace(operator, env=operator.env | {"TESTENV_ORPHAN_SWEEP_INTERVAL_SECONDS": "3600"},
                      log_path=tmp_path / "operator.log", process=None)
    patient.start()
    try:
        wait_for(lambda: f"deleting namespace {name}: orphaned" in patient.logs(), timeout=60,
                 what="the orphan swept at start")
        assert _deleting_or_gone(core, name)
    finally:
        patient.stop()
        operator.start()

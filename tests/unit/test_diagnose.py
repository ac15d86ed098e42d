"""Pod diagnosis: what a user is told when an owner's pods do not come up,
from pod statuses and Events shaped as real kubelets and controllers write them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from testenv.build.common import LABEL_COMPONENT, LABEL_ENV_UID, LABEL_KIND, LABEL_RUN
from testenv.diagnose import (
    MAX_LOG_LINE,
    MAX_LOG_LINES,
    MAX_MESSAGE,
    REDACTED,
    Diagnosis,
    PodOwner,
    Reason,
    diagnose_pods,
    log_key,
    log_reclaimed,
    pod_owner,
    pods_by_owner,
)

NOW = datetime(2026, 11, 29, 8, 30, 0, tzinfo=UTC)
JUST_NOW = "2026-11-29T08:29:30Z"  # within the default grace (2 minutes)
LONG_AGO = "2026-11-29T08:20:00Z"  # well past it
IMAGE = "localhost:5000/testenv/runner:no-such-tag"
PULL_ERROR = (
    f'rpc error: code = NotFound desc = failed to pull and unpack image "{IMAGE}": '
    f'failed to resolve reference "{IMAGE}": {IMAGE}: not found'
)

# --- shapes ---------------------------------------------------------------------


def container_status(
    name: str = "app",
    *,
    image: str = IMAGE,
    state: dict[str, Any] | None = None,
    last: dict[str, Any] | None = None,
    restarts: int = 0,
    ready: bool = False,
) -> dict[str, Any]:
    return {
        "name": name,
        "image": image,
        "imageID": "",
        "ready": ready,
        "started": "running" in (state or {}),
        "restartCount": restarts,
        "state": state or {"waiting": {"reason": "ContainerCreating"}},
        "lastState": {"terminated": last} if last else {},
    }


def waiting(reason: str, message: str | None = None) -> dict[str, Any]:
    return {"waiting": {"reason": reason, **({"message": message} if message is not None else {})}}


def terminated(exit_code: int, reason: str = "Error", message: str | None = None,
               finished: str = "2026-11-29T08:29:50Z") -> dict[str, Any]:
    ended = {
        "exitCode": exit_code,
        "reason": reason,
        "startedAt": "2026-11-29T08:29:49Z",
        "finishedAt": finished,
        "containerID": "containerd://0f3c",
    }
    if message is not None:
        ended["message"] = message
    return ended


def pod(
    name: str = "api-7d9f8c6b5-x2x4q",
    *,
    kind: str = "service",
    component: str = "api",
    run: int | None = None,
    phase: str = "Pending",
    statuses: list[dict[str, Any]] | None = None,
    init_statuses: list[dict[str, Any]] | None = None,
    conditions: list[dict[str, Any]] | None = None,
    containers: list[dict[str, Any]] | None = None,
    start: str | None = JUST_NOW,
    created: str = "2026-11-29T08:29:29Z",
    uid_label: str = "env-uid-1",
) -> dict[str, Any]:
    labels = {LABEL_COMPONENT: component, LABEL_KIND: kind, LABEL_ENV_UID: uid_label}
    if run is not None:
        labels[LABEL_RUN] = str(run)
    status: dict[str, Any] = {"phase": phase, "qosClass": "Burstable"}
    if start:
        status["startTime"] = start
    if conditions is not None:
        status["conditions"] = conditions
    if statuses is not None:
        status["containerStatuses"] = statuses
    if init_statuses is not None:
        status["initContainerStatuses"] = init_statuses
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "te-pr-1-ab12c", "labels": labels, "creationTimestamp": created},
        "spec": {"containers": containers or [{"name": "app", "image": IMAGE}], "restartPolicy": "Always"},
        "status": status,
    }


def event(
    reason: str,
    message: str,
    *,
    kind: str = "Pod",
    name: str = "api-7d9f8c6b5-x2x4q",
    field_path: str | None = None,
    first: str = JUST_NOW,
    last: str = "2026-11-29T08:29:55Z",
    type_: str = "Warning",
    count: int = 3,
) -> dict[str, Any]:
    involved = {"kind": kind, "name": name, "namespace": "te-pr-1-ab12c", "uid": "u-1"}
    if field_path:
        involved["fieldPath"] = field_path
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{name}.1879", "namespace": "te-pr-1-ab12c", "creationTimestamp": first},
        "type": type_,
        "reason": reason,
        "message": message,
        "involvedObject": involved,
        "firstTimestamp": first,
        "lastTimestamp": last,
        "count": count,
        "source": {"component": "kubelet" if kind == "Pod" else "replicaset-controller"},
    }


def diagnose(pods: list[dict[str, Any]], events: list[dict[str, Any]] = (), **kwargs: Any) -> Diagnosis | None:
    return diagnose_pods(pods, events, now=NOW, **kwargs)


def crash_looping(restarts: int = 3, last: dict[str, Any] | None = None, **pod_kwargs: Any) -> dict[str, Any]:
    state = waiting("CrashLoopBackOff",
                    'back-off 40s restarting failed container=app pod=api-7d9f8c6b5-x2x4q_te-pr-1-ab12c(u-1)')
    return pod(phase="Running", statuses=[container_status(state=state, last=last or terminated(1),
                                                            restarts=restarts)], **pod_kwargs)


READY_CONDITIONS = [
    {"type": "PodScheduled", "status": "True", "lastTransitionTime": JUST_NOW},
    {"type": "Ready", "status": "True", "lastTransitionTime": JUST_NOW},
]

# --- nothing to say ----------------------------------------------------------------


def test_a_running_ready_pod_has_no_diagnosis() -> None:
    healthy = pod(phase="Running", conditions=READY_CONDITIONS, statuses=[
        container_status(state={"running": {"startedAt": JUST_NOW}}, ready=True)])
    assert diagnose([healthy]) is None


def test_no_pods_and_no_events_have_no_diagnosis() -> None:
    assert diagnose([]) is None


@pytest.mark.parametrize("status", [None, {}, {"phase": "Pending"}, {"phase": "Pending", "containerStatuses": []}])
def test_a_pod_without_status_yet_has_no_diagnosis(status: dict[str, Any] | None) -> None:
    fresh = pod()
    if status is None:
        del fresh["status"]
    else:
        fresh["status"] = status
    assert diagnose([fresh]) is None


def test_a_container_still_being_created_has_no_diagnosis() -> None:
    assert diagnose([pod(statuses=[container_status(state=waiting("ContainerCreating"))])]) is None


def test_a_container_that_restarted_once_and_is_ready_again_has_no_diagnosis() -> None:
    recovered = pod(phase="Running", statuses=[container_status(
        state={"running": {"startedAt": JUST_NOW}}, last=terminated(1), restarts=1, ready=True)])
    assert diagnose([recovered]) is None


def test_a_terminating_pod_is_ignored() -> None:
    leaving = crash_looping()
    leaving["metadata"]["deletionTimestamp"] = JUST_NOW
    assert diagnose([leaving]) is None


# --- image pulls ------------------------------------------------------------------


def test_err_image_pull_names_the_image_and_the_registrys_message() -> None:
    found = diagnose([pod(statuses=[container_status(state=waiting("ErrImagePull", PULL_ERROR))])])
    assert found is not None
    assert found.reason == Reason.IMAGE_PULL_BACK_OFF
    assert found.image == IMAGE and found.container == "app" and found.pod == "api-7d9f8c6b5-x2x4q"
    assert found.message == (
        f'container "app" cannot pull image "{IMAGE}": failed to pull and unpack image "{IMAGE}": '
        f'failed to resolve reference "{IMAGE}": {IMAGE}: not found'
    )
    assert "rpc error" not in found.message


def test_image_pull_back_off_keeps_the_registrys_message_a_current_kubelet_appends() -> None:
    message = f'Back-off pulling image "{IMAGE}": ErrImagePull: {PULL_ERROR}'
    found = diagnose([pod(statuses=[container_status(state=waiting("ImagePullBackOff", message))])])
    assert found is not None and found.reason == Reason.IMAGE_PULL_BACK_OFF
    assert found.message.endswith(f"{IMAGE}: not found")
    assert "Back-off" not in found.message


def test_image_pull_back_off_without_detail_takes_it_from_the_pods_failed_event() -> None:
    bare = pod(statuses=[container_status(state=waiting("ImagePullBackOff", f'Back-off pulling image "{IMAGE}"'))])
    events = [
        event("Failed", f'Failed to pull image "{IMAGE}": {PULL_ERROR}', field_path="spec.containers{app}"),
        event("Failed", "Error: ErrImagePull", field_path="spec.containers{app}", last="2026-11-29T08:29:40Z"),
        event("BackOff", f'Back-off pulling image "{IMAGE}"', type_="Normal"),
    ]
    found = diagnose([bare], events)
    assert found is not None
    assert found.message.endswith(f"{IMAGE}: not found"), found.message


def test_image_pull_back_off_without_any_detail_still_names_the_image() -> None:
    found = diagnose([pod(statuses=[container_status(state=waiting("ImagePullBackOff"))])])
    assert found is not None
    assert found.message == f'container "app" cannot pull image "{IMAGE}": the image could not be pulled'


def test_a_failed_pull_may_fix_itself_within_the_grace_period() -> None:
    found = diagnose([pod(start=JUST_NOW, statuses=[container_status(state=waiting("ErrImagePull", PULL_ERROR))])])
    assert found is not None and found.permanent is False and found.since == JUST_NOW


def test_a_failed_pull_is_permanent_after_the_grace_period() -> None:
    found = diagnose([pod(start=LONG_AGO, statuses=[container_status(state=waiting("ImagePullBackOff", PULL_ERROR))])])
    assert found is not None and found.permanent is True


def test_the_grace_period_is_the_callers() -> None:
    stuck = pod(start=JUST_NOW, statuses=[container_status(state=waiting("ImagePullBackOff", PULL_ERROR))])
    assert diagnose([stuck], grace=timedelta(seconds=10)).permanent is True
    assert diagnose([stuck], grace=timedelta(hours=1)).permanent is False


def test_a_pod_without_start_time_falls_back_to_its_creation_for_the_grace() -> None:
    stuck = pod(start=None, created=LONG_AGO, statuses=[container_status(state=waiting("ErrImagePull", PULL_ERROR))])
    found = diagnose([stuck])
    assert found is not None and found.permanent is True and found.since == LONG_AGO


def test_an_image_that_may_not_be_pulled_and_is_absent_is_a_pull_failure() -> None:
    message = f'Container image "{IMAGE}" is not present with pull policy of Never'
    found = diagnose([pod(statuses=[container_status(state=waiting("ErrImageNeverPull", message))])])
    assert found is not None and found.reason == Reason.IMAGE_PULL_BACK_OFF
    assert found.message.endswith("is not present with pull policy of Never")


def test_an_invalid_image_name_is_permanent_at_once() -> None:
    message = ('Failed to apply default image tag "Reg/App:1": '
               'couldn\'t parse image name "Reg/App:1": invalid reference format')
    bad = pod(statuses=[container_status(image="Reg/App:1", state=waiting("InvalidImageName", message))],
              containers=[{"name": "app", "image": "Reg/App:1"}])
    found = diagnose([bad])
    assert found is not None
    assert found.reason == Reason.INVALID_IMAGE_NAME and found.permanent is True
    assert found.message == f'container "app" has an invalid image name "Reg/App:1": {message}'


def test_an_init_containers_pull_failure_is_diagnosed() -> None:
    init = container_status("wait-for-db", state=waiting("ErrImagePull", PULL_ERROR))
    found = diagnose([pod(init_statuses=[init], statuses=[container_status(state=waiting("PodInitializing"))],
                          containers=[{"name": "app", "image": "localhost:5000/testenv/app:1"}])])
    assert found is not None and found.container == "wait-for-db" and found.image == IMAGE


# --- crash loops --------------------------------------------------------------------


def test_a_crash_loop_names_the_exit_code_and_termination_reason() -> None:
    found = diagnose([crash_looping(restarts=3)])
    assert found is not None
    assert found.reason == Reason.CRASH_LOOP_BACK_OFF
    assert found.exit_code == 1 and found.permanent is True
    assert found.message == 'container "app" keeps exiting: exit code 1 (Error), restarted 3 times'


def test_a_first_crash_may_still_be_a_late_dependency() -> None:
    found = diagnose([crash_looping(restarts=1)])
    assert found is not None and found.reason == Reason.CRASH_LOOP_BACK_OFF and found.permanent is False


def test_a_container_that_keeps_exiting_between_back_offs_is_a_crash_loop() -> None:
    between = pod(phase="Running", statuses=[container_status(
        state={"terminated": terminated(2)}, last=terminated(2), restarts=4)])
    found = diagnose([between])
    assert found is not None and found.reason == Reason.CRASH_LOOP_BACK_OFF and found.exit_code == 2


def test_a_crash_loop_shows_the_previous_containers_last_log_lines() -> None:
    crash = crash_looping()
    logs = "\n".join(f"line {i}" for i in range(1, 21)) + "\nError: cannot connect to db\n"
    found = diagnose([crash], previous_logs={log_key(pod="api-7d9f8c6b5-x2x4q", container="app"): logs})
    assert found is not None
    tail = "; last log lines: line 17 | line 18 | line 19 | line 20 | Error: cannot connect to db"
    assert found.message.endswith(tail)
    assert found.message.count(" | ") == MAX_LOG_LINES - 1


def test_logs_of_another_pod_are_not_shown() -> None:
    found = diagnose([crash_looping()], previous_logs={log_key(pod="other-pod", container="app"): "not mine"})
    assert found is not None and "not mine" not in found.message


def test_without_logs_the_termination_message_is_shown() -> None:
    found = diagnose([crash_looping(last=terminated(1, message="panic: config file /etc/app.yaml missing\n"))])
    assert found is not None
    assert found.message.endswith("; termination message: panic: config file /etc/app.yaml missing")


def test_a_huge_log_line_is_cut_and_the_message_capped() -> None:
    logs = "x" * 5_000_000 + "\n" + "y" * 10_000 + "\nshort last line\n"
    found = diagnose([crash_looping()], previous_logs={log_key(pod="api-7d9f8c6b5-x2x4q", container="app"): logs})
    assert found is not None
    assert len(found.message) <= MAX_MESSAGE
    assert "y" * (MAX_LOG_LINE - 1) + "…" in found.message
    assert "x" * 20 not in found.message  # the line cut by the tail window is dropped, not shown in part


def test_a_non_utf8_log_is_shown_with_replacement_characters() -> None:
    logs = b"starting\n\xff\xfe broken \xc3\x28 bytes\n\x1b[31mFATAL\x1b[0m: \x00bad\x07 config\n"
    found = diagnose([crash_looping()], previous_logs={log_key(pod="api-7d9f8c6b5-x2x4q", container="app"): logs})
    assert found is not None
    assert found.message.endswith("last log lines: starting | \ufffd\ufffd broken \ufffd( bytes | FATAL: bad config")


def test_the_kubelets_notice_of_a_removed_container_is_no_log() -> None:
    """It answers 200 with this body; a crash-loop message once showed it as
    the container's last log lines."""
    assert log_reclaimed(b"unable to retrieve container logs for containerd://0f9cf353d01a8761213f10e2cc1f5c399c761ad\n")
    assert not log_reclaimed(b"starting up\nconfig missing\n")
    assert not log_reclaimed(b"error: unable to retrieve container logs for containerd://0f9c, retrying\n")


def test_a_log_of_blank_lines_adds_nothing() -> None:
    found = diagnose([crash_looping()], previous_logs={log_key(pod="api-7d9f8c6b5-x2x4q", container="app"): "\n\n  \n"})
    assert found is not None and found.message.endswith("restarted 3 times")


def test_a_liveness_probe_that_kills_the_container_is_named() -> None:
    crash = crash_looping(last=terminated(137, reason="Error"))
    events = [event("Unhealthy", "Liveness probe failed: HTTP probe failed with statuscode: 500",
                    field_path="spec.containers{app}")]
    found = diagnose([crash], events)
    assert found is not None
    assert found.message == ('container "app" keeps exiting: exit code 137 (Error), restarted 3 times; '
                             "Liveness probe failed: HTTP probe failed with statuscode: 500")


def test_a_container_that_cannot_start_its_command_is_permanent() -> None:
    message = ('failed to create containerd task: failed to create shim task: OCI runtime create failed: '
               'runc create failed: unable to start container process: exec: "serve": '
               'executable file not found in $PATH: unknown')
    broken = pod(phase="Running", statuses=[container_status(
        state=waiting("CrashLoopBackOff", "back-off 10s"), last=terminated(128, "StartError", message), restarts=1)])
    found = diagnose([broken])
    assert found is not None
    assert found.reason == Reason.START_ERROR and found.permanent is True and found.exit_code == 128
    assert 'exec: "serve": executable file not found in $PATH' in found.message


def test_a_run_container_error_is_a_start_error() -> None:
    message = ('failed to create containerd task: OCI runtime create failed: unable to start container process: '
               'exec: "/app/serve": stat /app/serve: no such file or directory: unknown')
    found = diagnose([pod(statuses=[container_status(state=waiting("RunContainerError", message))])])
    assert found is not None and found.reason == Reason.START_ERROR and found.permanent is True
    assert "stat /app/serve: no such file or directory" in found.message


def test_a_crash_without_an_exit_code_says_it_is_unknown() -> None:
    last = terminated(0)
    del last["exitCode"]
    found = diagnose([crash_looping(last=last)])
    assert found is not None and found.exit_code is None
    assert "exit code unknown" in found.message


# --- out of memory -------------------------------------------------------------------


def test_an_oom_killed_crash_loop_names_the_memory_limit() -> None:
    crash = crash_looping(last=terminated(137, "OOMKilled"), restarts=3)
    crash["spec"]["containers"][0]["resources"] = {"limits": {"memory": "64Mi"}}
    found = diagnose([crash])
    assert found is not None
    assert found.reason == Reason.OOM_KILLED and found.permanent is True and found.exit_code == 137
    assert found.message == 'container "app" ran out of memory (OOMKilled, exit code 137, memory limit 64Mi), ' \
                            "restarted 3 times"


def test_an_oom_killed_job_pod_is_permanent() -> None:
    job_pod = pod("e2e-r1-0-abcde", kind="test", component="e2e", run=1, phase="Failed", statuses=[
        container_status("tests", state={"terminated": terminated(137, "OOMKilled")})],
        containers=[{"name": "tests", "image": IMAGE}])
    found = diagnose([job_pod])
    assert found is not None and found.reason == Reason.OOM_KILLED and found.permanent is True
    assert found.message == 'container "tests" ran out of memory (OOMKilled, exit code 137)'


def test_a_container_running_again_after_one_oom_is_not_yet_permanent() -> None:
    again = pod(phase="Running", statuses=[container_status(
        state={"running": {"startedAt": JUST_NOW}}, last=terminated(137, "OOMKilled"), restarts=1)])
    found = diagnose([again])
    assert found is not None and found.reason == Reason.OOM_KILLED and found.permanent is False


# --- jobs -------------------------------------------------------------------------------


def test_a_failing_test_is_the_suites_result_not_a_diagnosis() -> None:
    failed = pod("e2e-r1-0-abcde", kind="test", component="e2e", run=1, phase="Failed", statuses=[
        container_status("tests", state={"terminated": terminated(1)})])
    assert diagnose([failed]) is None


def test_a_failed_seed_says_how_it_ended_with_its_log() -> None:
    failed = pod("users-r1-abcde", kind="seed", component="users", run=1, phase="Failed", statuses=[
        container_status("seed", state={"terminated": terminated(3)})],
        containers=[{"name": "seed", "image": IMAGE}])
    logs = 'psql:/seed/seed.sql:4: ERROR:  relation "users" does not exist\n'
    found = diagnose([failed], previous_logs={log_key(pod="users-r1-abcde", container="seed"): logs})
    assert found is not None
    assert found.reason == Reason.CONTAINER_FAILED and found.exit_code == 3 and found.permanent is False
    assert found.message == ('container "seed" failed: exit code 3 (Error); last log lines: '
                             'psql:/seed/seed.sql:4: ERROR: relation "users" does not exist')


# --- configuration ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kubelet", "said"),
    [
        ('secret "orders-db-creds" not found', 'Secret "orders-db-creds" not found'),
        ('configmap "app-settings" not found', 'ConfigMap "app-settings" not found'),
        ("couldn't find key password in Secret te-pr-1-ab12c/orders-db-creds",
         'Secret "orders-db-creds" has no key "password"'),
        ("couldn't find key LOG_LEVEL in ConfigMap te-pr-1-ab12c/app-settings",
         'ConfigMap "app-settings" has no key "LOG_LEVEL"'),
    ],
)
def test_a_config_error_names_what_is_missing(kubelet: str, said: str) -> None:
    found = diagnose([pod(statuses=[container_status(state=waiting("CreateContainerConfigError", kubelet))])])
    assert found is not None
    assert found.reason == Reason.CREATE_CONTAINER_CONFIG_ERROR
    assert found.message == f'container "app" cannot start: {said}'


def test_a_missing_secret_may_still_be_created_within_the_grace_period() -> None:
    missing = waiting("CreateContainerConfigError", 'secret "orders-db-creds" not found')
    assert diagnose([pod(start=JUST_NOW, statuses=[container_status(state=missing)])]).permanent is False
    assert diagnose([pod(start=LONG_AGO, statuses=[container_status(state=missing)])]).permanent is True


def test_an_image_that_runs_as_root_under_run_as_non_root_is_permanent_at_once() -> None:
    message = ('container has runAsNonRoot and image will run as root '
               '(pod: "api-7d9f8c6b5-x2x4q_te-pr-1-ab12c(u-1)", container: app)')
    found = diagnose([pod(start=JUST_NOW, statuses=[container_status(
        state=waiting("CreateContainerConfigError", message))])])
    assert found is not None and found.permanent is True
    assert found.message == f'container "app" cannot start: {message}'


def test_an_unknown_config_error_keeps_the_kubelets_words() -> None:
    found = diagnose([pod(statuses=[container_status(state=waiting("CreateContainerConfigError", "something new"))])])
    assert found is not None and found.message == 'container "app" cannot start: something new'


def test_a_create_container_error_is_reported() -> None:
    found = diagnose([pod(statuses=[container_status(
        state=waiting("CreateContainerError", "failed to reserve container name \"app_api\": name is reserved"))])])
    assert found is not None and found.reason == Reason.CREATE_CONTAINER_ERROR and found.permanent is False


# --- scheduling -----------------------------------------------------------------------------

SCHEDULER_MESSAGE = (
    "0/2 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, "
    "1 node(s) had untolerated taint {kwok.x-k8s.io/node: fake}. preemption: 0/2 nodes are available: "
    "2 Preemption is not helpful for scheduling."
)


def unschedulable(since: str) -> dict[str, Any]:
    return pod(start=None, conditions=[{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                        "message": SCHEDULER_MESSAGE, "lastTransitionTime": since}])


def test_an_unschedulable_pod_gives_the_schedulers_message() -> None:
    found = diagnose([unschedulable(JUST_NOW)])
    assert found is not None
    assert found.reason == Reason.UNSCHEDULABLE and found.container is None
    assert found.message == f'pod "api-7d9f8c6b5-x2x4q" cannot be scheduled: {SCHEDULER_MESSAGE}'
    assert found.permanent is False and found.since == JUST_NOW


def test_an_unschedulable_pod_is_permanent_after_the_grace_period() -> None:
    found = diagnose([unschedulable(LONG_AGO)])
    assert found is not None and found.permanent is True


# --- pods the API server refuses ----------------------------------------------------------------

QUOTA = ('Error creating: pods "api-7d9f8c6b5-p8q2z" is forbidden: exceeded quota: te-quota, '
         "requested: pods=1, used: pods=1, limited: pods=1")
POD_SECURITY = ('Error creating: pods "api-7d9f8c6b5-p8q2z" is forbidden: violates PodSecurity "restricted:latest": '
                'allowPrivilegeEscalation != false (container "app" must set '
                "securityContext.allowPrivilegeEscalation=false)")
LIMIT_RANGE = ('Error creating: pods "api-7d9f8c6b5-p8q2z" is forbidden: '
               "maximum memory usage per Container is 1Gi, but limit is 2Gi")
WEBHOOK = ('Error creating: admission webhook "validate.kyverno.svc" denied the request: '
           "images must come from registry.corp")


def failed_create(message: str, *, kind: str = "ReplicaSet", name: str = "api-7d9f8c6b5", **kwargs: Any):
    return event("FailedCreate", message, kind=kind, name=name, **kwargs)


@pytest.mark.parametrize(
    ("message", "reason", "detail"),
    [
        (QUOTA, Reason.QUOTA_EXCEEDED,
         "exceeded quota: te-quota, requested: pods=1, used: pods=1, limited: pods=1"),
        (POD_SECURITY, Reason.POD_SECURITY_REJECTED, POD_SECURITY.split("is forbidden: ", 1)[1]),
        (LIMIT_RANGE, Reason.LIMIT_RANGE_REJECTED, "maximum memory usage per Container is 1Gi, but limit is 2Gi"),
        (WEBHOOK, Reason.FAILED_CREATE, WEBHOOK),
    ],
)
def test_a_refused_pod_gives_the_api_servers_message(message: str, reason: Reason, detail: str) -> None:
    found = diagnose([], [failed_create(message)])
    assert found is not None
    assert found.reason == reason and found.pod == ""
    assert found.message == f'ReplicaSet "api-7d9f8c6b5" cannot create pods: {detail}'


def test_pod_security_and_limit_range_refusals_are_permanent_at_once() -> None:
    assert diagnose([], [failed_create(POD_SECURITY)]).permanent is True
    assert diagnose([], [failed_create(LIMIT_RANGE)]).permanent is True


def test_an_exceeded_quota_is_permanent_once_it_lasts_past_the_grace() -> None:
    assert diagnose([], [failed_create(QUOTA, first=JUST_NOW)]).permanent is False
    found = diagnose([], [failed_create(QUOTA, first=LONG_AGO)])
    assert found.permanent is True and found.since == LONG_AGO


def test_a_refusal_followed_by_a_created_pod_is_over() -> None:
    later = pod(created="2026-11-29T08:29:58Z", phase="Running", conditions=READY_CONDITIONS, statuses=[
        container_status(state={"running": {"startedAt": JUST_NOW}}, ready=True)])
    assert diagnose([later], [failed_create(QUOTA, last="2026-11-29T08:29:55Z")]) is None


def test_a_jobs_refusal_is_matched_to_its_run() -> None:
    owner = PodOwner(kind="test", name="e2e", run=2)
    refused = failed_create(QUOTA.replace("api-7d9f8c6b5-p8q2z", "e2e-r2-0-x"), kind="Job", name="e2e-r2")
    earlier = failed_create(QUOTA, kind="Job", name="e2e-r1")
    found = diagnose([], [earlier, refused], owner=owner)
    assert found is not None and found.message.startswith('Job "e2e-r2" cannot create pods: exceeded quota')
    assert diagnose([], [earlier], owner=owner) is None


def test_another_deployments_refusal_is_ignored_for_an_owner() -> None:
    owner = PodOwner(kind="service", name="api")
    assert diagnose([], [failed_create(QUOTA, name="api-gateway-5c4b")], owner=owner) is None
    assert diagnose([], [failed_create(QUOTA, name="api-5c4b6d7f8")], owner=owner) is not None


def test_normal_events_are_ignored() -> None:
    assert diagnose([], [failed_create(QUOTA, type_="Normal")]) is None
    assert diagnose([], [event("SuccessfulCreate", "Created pod: api-x", kind="ReplicaSet", name="api-7d")]) is None


def test_events_in_the_events_api_shape_are_understood() -> None:
    new_style = {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": "api-7d9f8c6b5.1", "creationTimestamp": LONG_AGO},
        "type": "Warning",
        "reason": "FailedCreate",
        "note": QUOTA,
        "regarding": {"kind": "ReplicaSet", "name": "api-7d9f8c6b5"},
        "eventTime": "2026-11-29T08:20:00.123456Z",
        "series": {"count": 9, "lastObservedTime": "2026-11-29T08:29:59.000001Z"},
    }
    found = diagnose([], [new_style])
    assert found is not None and found.reason == Reason.QUOTA_EXCEEDED and found.permanent is True


# --- readiness -----------------------------------------------------------------------------------

PROBE = ('Readiness probe failed: Get "http://10.244.0.24:8080/__admin/health": '
         "dial tcp 10.244.0.24:8080: connect: connection refused")


def not_ready(started: str) -> dict[str, Any]:
    return pod("stub-6b7c-x9z8w", kind="stub", component="payments", phase="Running",
               containers=[{"name": "wiremock", "image": "localhost:5000/testenv/wiremock:3",
                            "readinessProbe": {"httpGet": {"path": "/__admin/health", "port": 8080}}}],
               statuses=[container_status("wiremock", image="localhost:5000/testenv/wiremock:3",
                                          state={"running": {"startedAt": started}})])


def unhealthy(message: str = PROBE, *, pod_name: str = "stub-6b7c-x9z8w", last: str = "2026-11-29T08:29:55Z"):
    return event("Unhealthy", message, name=pod_name, field_path="spec.containers{wiremock}",
                 first=min(last, JUST_NOW), last=last)


def test_a_failing_readiness_probe_gives_the_probes_message() -> None:
    found = diagnose([not_ready(JUST_NOW)], [unhealthy()])
    assert found is not None
    assert found.reason == Reason.READINESS_PROBE_FAILED and found.container == "wiremock"
    assert found.message == f'container "wiremock" is running but not ready: {PROBE}'
    assert found.permanent is False and found.since == JUST_NOW


def test_a_readiness_probe_failing_past_the_grace_is_permanent() -> None:
    found = diagnose([not_ready(LONG_AGO)], [unhealthy()])
    assert found is not None and found.permanent is True


def test_a_container_just_started_without_failed_probes_is_not_diagnosed() -> None:
    assert diagnose([not_ready(JUST_NOW)]) is None


def test_a_container_not_ready_for_long_without_events_is_diagnosed() -> None:
    found = diagnose([not_ready(LONG_AGO)])
    assert found is not None and found.reason == Reason.READINESS_PROBE_FAILED and found.permanent is True
    assert found.message == f'container "wiremock" is running but not ready since {LONG_AGO}'


def test_probe_failures_of_an_earlier_container_or_another_pod_do_not_count() -> None:
    stale = unhealthy(last="2026-11-29T08:29:00Z")  # before this container started
    other = unhealthy(pod_name="stub-6b7c-other")
    assert diagnose([not_ready(JUST_NOW)], [stale, other]) is None


def test_the_latest_probe_message_is_shown() -> None:
    older = unhealthy("Readiness probe failed: HTTP probe failed with statuscode: 503", last="2026-11-29T08:29:40Z")
    found = diagnose([not_ready(JUST_NOW)], [unhealthy(), older])
    assert found is not None and found.message.endswith("connection refused")


# --- choosing among pods ---------------------------------------------------------------------------


def test_a_permanent_cause_wins_over_one_that_may_pass() -> None:
    pulling = pod("api-1", start=JUST_NOW, statuses=[container_status(state=waiting("ErrImagePull", PULL_ERROR))])
    found = diagnose([pulling, crash_looping(name="api-2")])
    assert found is not None and found.reason == Reason.CRASH_LOOP_BACK_OFF and found.pod == "api-2"


def test_among_causes_the_one_that_explains_the_others_wins() -> None:
    config = pod("api-2", start=LONG_AGO, statuses=[container_status(
        state=waiting("CreateContainerConfigError", 'secret "db" not found'))])
    found = diagnose([crash_looping(name="api-1"), config, unschedulable(LONG_AGO)])
    assert found is not None and found.reason == Reason.CREATE_CONTAINER_CONFIG_ERROR


def test_the_choice_does_not_depend_on_the_order_of_pods() -> None:
    pods = [crash_looping(name="api-b"), crash_looping(name="api-a")]
    assert diagnose(pods) == diagnose(list(reversed(pods)))
    assert diagnose(pods).pod == "api-a"


def test_a_crashing_pod_wins_over_a_refused_second_replica() -> None:
    found = diagnose([crash_looping()], [failed_create(QUOTA, first=LONG_AGO, last="2026-11-29T08:29:59Z")])
    assert found is not None and found.reason == Reason.CRASH_LOOP_BACK_OFF


def test_pods_of_another_owner_are_ignored() -> None:
    other = crash_looping(name="worker-1", component="worker")
    owner = PodOwner(kind="service", name="api")
    assert diagnose([other], owner=owner) is None
    found = diagnose([other, crash_looping()], owner=owner)
    assert found is not None and found.pod == "api-7d9f8c6b5-x2x4q"


def test_a_naive_now_is_taken_as_utc() -> None:
    stuck = pod(start=LONG_AGO, statuses=[container_status(state=waiting("ErrImagePull", PULL_ERROR))])
    assert diagnose_pods([stuck], now=NOW.replace(tzinfo=None)).permanent is True


def test_every_message_is_capped() -> None:
    huge = "no such host " * 1000
    found = diagnose([pod(statuses=[container_status(state=waiting("ErrImagePull", huge))])])
    assert found is not None
    assert len(found.message) == MAX_MESSAGE and found.message.endswith("…")


# --- secrets ------------------------------------------------------------------------------------------


def with_secret_env(crash: dict[str, Any]) -> dict[str, Any]:
    def from_secret(key: str) -> dict[str, Any]:
        return {"secretKeyRef": {"name": "orders-db-connection", "key": key}}

    crash["spec"]["containers"][0]["env"] = [
        {"name": "ORDERS_DB_PASSWORD", "valueFrom": from_secret("password")},
        {"name": "ORDERS_DB_URL", "valueFrom": from_secret("url")},
        {"name": "STRIPE_API_KEY", "value": "sk_test_4eC39HqLyjWDarjtT1zdp7dc"},
        {"name": "LOG_LEVEL", "value": "debug"},
    ]
    return crash


def crash_with_logs(logs: str, **kwargs: Any) -> Diagnosis:
    found = diagnose([with_secret_env(crash_looping())],
                     previous_logs={log_key(pod="api-7d9f8c6b5-x2x4q", container="app"): logs}, **kwargs)
    assert found is not None
    return found


def test_values_of_env_vars_from_secrets_are_redacted_from_logs() -> None:
    found = crash_with_logs("env: ORDERS_DB_PASSWORD=hunter2hunter2 ORDERS_DB_URL='postgres://app:pw@db:5432/app'\n")
    assert "hunter2" not in found.message and "pw@" not in found.message
    assert f"ORDERS_DB_PASSWORD={REDACTED}" in found.message
    assert f"ORDERS_DB_URL='{REDACTED}" in found.message


def test_literal_values_of_secret_looking_env_vars_are_redacted() -> None:
    found = crash_with_logs("stripe: using key sk_test_4eC39HqLyjWDarjtT1zdp7dc\nLOG_LEVEL=debug\n")
    assert "sk_test_4eC39HqLyjWDarjtT1zdp7dc" not in found.message
    assert "LOG_LEVEL=debug" in found.message


def test_secret_values_the_caller_knows_are_redacted_everywhere() -> None:
    found = crash_with_logs("connecting with s3cr3t-Pa55 as app\n", secrets={"s3cr3t-Pa55", "ab", ""})
    assert "s3cr3t-Pa55" not in found.message
    assert f"connecting with {REDACTED} as app" in found.message
    assert "restarted" in found.message  # a two-letter value redacts nothing


@pytest.mark.parametrize(
    "line",
    [
        "password=topsecret1",
        'config: {"db_password": "topsecret1"}',
        "DB_PASSWORD: topsecret1",
        "dialing redis://default:topsecret1@redis:6379/0",
        "Authorization token=topsecret1",
        "GET /api with header Authorization: Bearer topsecret1",
    ],
)
def test_secret_looking_assignments_and_url_passwords_are_redacted(line: str) -> None:
    found = crash_with_logs(line + "\n")
    assert "topsecret1" not in found.message and REDACTED in found.message


def test_an_image_name_that_contains_a_secret_word_is_kept() -> None:
    image = "localhost:5000/secret-scanner:1.0"
    found = diagnose([pod(statuses=[container_status(image=image, state=waiting("ErrImagePull", "not found"))],
                          containers=[{"name": "app", "image": image}])])
    assert found is not None and f'"{image}"' in found.message


def test_a_secret_at_the_edge_of_a_cut_line_is_not_shown_in_part() -> None:
    secret = "Zq8vXw2mLp4nRt6yUb1cHd3f"
    line = "a" * (MAX_LOG_LINE - 10) + secret + " trailing"
    found = crash_with_logs(line + "\n", secrets={secret})
    assert secret[:8] not in found.message


def test_secrets_are_redacted_from_termination_messages_too() -> None:
    crash = with_secret_env(crash_looping(last=terminated(1, message="ORDERS_DB_PASSWORD=hunter2hunter2")))
    found = diagnose([crash])
    assert found is not None and "hunter2" not in found.message


# --- owners ------------------------------------------------------------------------------------------


def test_pods_are_grouped_by_component_and_by_the_run_of_a_job() -> None:
    api_1, api_2 = pod("api-1"), pod("api-2")
    seed_r1 = pod("users-r1-a", kind="seed", component="users", run=1)
    seed_r2 = pod("users-r2-a", kind="seed", component="users", run=2)
    same_name_suite = pod("api-r2-0-a", kind="test", component="api", run=2)
    unlabelled = {"metadata": {"name": "debug", "labels": {"run": "debug"}}, "status": {}}
    grouped = pods_by_owner([api_1, api_2, seed_r1, seed_r2, same_name_suite, unlabelled])
    assert {owner: [p["metadata"]["name"] for p in pods] for owner, pods in grouped.items()} == {
        PodOwner("service", "api"): ["api-1", "api-2"],
        PodOwner("seed", "users", 1): ["users-r1-a"],
        PodOwner("seed", "users", 2): ["users-r2-a"],
        PodOwner("test", "api", 2): ["api-r2-0-a"],
    }


def test_pods_of_another_environment_are_left_out_by_uid() -> None:
    mine, theirs = pod("api-1"), pod("api-2", uid_label="env-uid-2")
    assert list(pods_by_owner([mine, theirs], env_uid="env-uid-1").values()) == [[mine]]


def test_a_pod_with_a_broken_run_label_has_no_owner() -> None:
    broken = pod("x", kind="seed", component="users")
    broken["metadata"]["labels"][LABEL_RUN] = "latest"
    assert pod_owner(broken) is None
    assert pod_owner({"metadata": {}}) is None
    assert pod_owner({}) is None


def test_an_owners_workload_is_its_deployment_or_its_runs_job() -> None:
    assert PodOwner("service", "api").workload == "api"
    assert PodOwner("test", "e2e", 3).workload == "e2e-r3"

"""What only real pods can show: images pulled from the test bed's registry,
servers accepting connections, cluster DNS, NetworkPolicy, and the failures a
user meets first (a wrong tag, a container that will not start).

Every object under test is rendered by the operator's own builders with the
placement an administrator would configure (podNodeSelector/podTolerations),
and applied server-side as the operator applies it."""

from __future__ import annotations

import pytest
from realnode_support import (
    PLACEMENT,
    apply,
    client_pod,
    create_pod,
    env_ref,
    pod_states,
    run_to_end,
    wait_available,
    waiting_reason,
)
from testbed_support import wait_for
from testenv.build.datastores import datastore_objects, datastore_secret, secret_env
from testenv.build.namespace import network_policy
from testenv.build.stubs import stub_objects
from testenv.kube import Kube
from testenv.models import Datastore, Engine, Stub, StubVerification
from testenv.stubaccess import through_api_server
from testenv.stubverify import verify_stub

pytestmark = pytest.mark.realnode


def test_pods_of_an_environment_land_on_the_real_node_only_when_placed(cluster, core, images, restricted_namespace):
    pod = client_pod("placed", images["runner"], ["python3", "-c", "print('on a real node')"])
    phase, log = run_to_end(cluster, core, restricted_namespace, pod)
    assert (phase, log.strip()) == ("Succeeded", "on a real node")
    assert core.read_namespaced_pod("placed", restricted_namespace).spec.node_name == "testbed-node"
    # Without the placement it lands on a simulated node and never runs.
    unplaced = client_pod("unplaced", images["runner"], ["true"])
    unplaced["spec"].pop("nodeSelector")
    unplaced["spec"].pop("tolerations")
    create_pod(cluster, restricted_namespace, unplaced)
    node = wait_for(lambda: core.read_namespaced_pod("unplaced", restricted_namespace).spec.node_name,
                    timeout=30, what="the unplaced pod to be scheduled", interval=0.2)
    assert node.startswith("kwok-node-"), node


def test_wiremock_stub_answers_another_pod_through_its_service_dns_name(
    cluster, core, apps, images, restricted_namespace, api_client
):
    stub = Stub.model_validate({
        "name": "payments",
        "mappings": [{
            "request": {"method": "POST", "urlPath": "/v1/charges"},
            "response": {"status": 201, "jsonBody": {"id": "ch_1", "status": "succeeded"},
                         "headers": {"Content-Type": "application/json"}},
        }],
    })
    env = env_ref(restricted_namespace)
    apply(cluster, stub_objects(stub, env, images["wiremock"], PLACEMENT))
    wait_available(apps, core, restricted_namespace, "payments")

    url = f"http://payments.{restricted_namespace}.svc.cluster.local:8080/v1/charges"
    script = (
        "import json, urllib.request\n"
        f"req = urllib.request.Request({url!r}, data=b'{{}}', method='POST')\n"
        "with urllib.request.urlopen(req, timeout=10) as r:\n"
        "    print(r.status, json.load(r)['status'])\n"
    )
    phase, log = run_to_end(cluster, core, restricted_namespace, client_pod("caller", images["runner"],
                                                                              ["python3", "-c", script]))
    assert (phase, log.strip()) == ("Succeeded", "201 succeeded"), log

    # An operator outside the cluster (as `make demo` runs it) verifies the
    # stub through the API server's Service proxy: the real call counts, the
    # missing one fails with what the stub really received.
    verified = stub.model_copy(update={"verify": [
        StubVerification.model_validate({"request": {"method": "POST", "urlPath": "/v1/charges"}}),
        StubVerification.model_validate({"request": {"method": "POST", "urlPath": "/v1/refunds"}}),
    ]})
    admin = through_api_server(Kube(api_client, "realnode-tests"), namespace=restricted_namespace, service="payments",
                               port=8080)
    status = verify_stub(admin, verified)
    assert (status.passed, status.failed) == (1, 1), status
    assert status.failures == ["POST /v1/refunds: expected at least 1 request, got 0"]
    assert status.message == ("1 of 2 verifications failed; the stub received 1 request(s), newest first: "
                              "POST /v1/charges -> 201")


# The engine's own client, inside the engine's own image (as `sql` seeds run),
# with the credentials read from the environment's Secret.
CLIENTS = {
    Engine.POSTGRES: 'psql "$DB_URL" -tAc "select current_user || \' \' || current_database()"',
    Engine.MYSQL: 'mysql -h "$DB_HOST" -u "$DB_USER" -p"$DB_PASSWORD" "$DB_NAME" -N -e "select current_user(), database()"',
    Engine.REDIS: 'redis-cli -h "$DB_HOST" -a "$DB_PASSWORD" --no-auth-warning set seen yes '
                  '&& redis-cli -h "$DB_HOST" -a "$DB_PASSWORD" --no-auth-warning get seen',
}
EXPECTED = {
    Engine.POSTGRES: "testenv orders",
    Engine.MYSQL: "testenv@%\torders",
    Engine.REDIS: "OK\nyes",
}


@pytest.mark.parametrize("engine", [Engine.POSTGRES, Engine.MYSQL, Engine.REDIS], ids=str)
def test_engine_image_runs_restricted_and_accepts_the_secrets_credentials(
    cluster, core, apps, images, restricted_namespace, engine
):
    ds = Datastore(name="orders", engine=engine)
    env = env_ref(restricted_namespace)
    image = images[str(engine)]
    apply(cluster, [datastore_secret(ds, env, "s3cr3t-Pw_1"), *datastore_objects(ds, env, image, PLACEMENT)])
    wait_available(apps, core, restricted_namespace, "orders", timeout=240)

    env_vars = [
        secret_env("DB_URL", "orders", "url"),
        secret_env("DB_HOST", "orders", "host"),
        secret_env("DB_USER", "orders", "username"),
        secret_env("DB_PASSWORD", "orders", "password"),
        secret_env("DB_NAME", "orders", "database"),
    ]
    pod = client_pod("client", image, ["sh", "-c", CLIENTS[engine]], env=env_vars, uid=999)
    phase, log = run_to_end(cluster, core, restricted_namespace, pod)
    assert phase == "Succeeded", log
    assert log.strip().startswith(EXPECTED[engine]), log


# A probe that reports what a client sees: the body, or the kind of failure.
# kube-router rejects what a policy forbids (connection refused at once); a
# Service or pod address the node has not programmed yet times out instead.
PROBE = """
import sys, time, urllib.error, urllib.request
url, patience = sys.argv[1], float(sys.argv[2])
deadline = time.monotonic() + patience
while True:
    try:
        print(urllib.request.urlopen(url, timeout=3).read().decode())
        break
    except urllib.error.URLError as e:
        reason = e.reason if isinstance(e.reason, Exception) else e
        if time.monotonic() > deadline:
            print('blocked:', type(reason).__name__)
            break
        time.sleep(0.2)
"""


def _probe(images, name: str, url: str, patience: float) -> dict:
    return client_pod(name, images["runner"], ["python3", "-c", PROBE, url, str(patience)])


def test_network_policy_like_the_operators_blocks_other_namespaces(
    cluster, core, apps, images, restricted_namespace, other_namespace
):
    stub = Stub.model_validate({"name": "inside", "mappings": [
        {"request": {"method": "GET", "url": "/ping"}, "response": {"status": 200, "body": "pong"}}]})
    env = env_ref(restricted_namespace)
    apply(cluster, stub_objects(stub, env, images["wiremock"], PLACEMENT))
    wait_available(apps, core, restricted_namespace, "inside")
    url = f"http://inside.{restricted_namespace}.svc.cluster.local:8080/ping"
    # Before the policy: reachable from another namespace (within 30 s, the
    # time the node may take to program a new Service under load).
    _, log = run_to_end(cluster, core, other_namespace, _probe(images, "before", url, 30))
    assert log.strip() == "pong", log

    apply(cluster, [network_policy(env, operator_namespace="testenv-system")])
    tries = iter(range(1000))

    def outside_refused() -> bool:
        _, out = run_to_end(cluster, core, other_namespace, _probe(images, f"after-{next(tries)}", url, 0))
        return out.strip() == "blocked: ConnectionRefusedError"

    wait_for(outside_refused, timeout=60, what="the policy to refuse another namespace", interval=0.5)
    # Inside the environment's namespace the stub still answers (a new pod's
    # address joins the policy's allowed sources within a second or so).
    _, log = run_to_end(cluster, core, restricted_namespace, _probe(images, "inside-caller", url, 30))
    assert log.strip() == "pong", log


# One DNS query for an outside name, straight to the pod's nameserver: the
# response code, the answer count and how long the server took. A server that
# forwards to an unreachable upstream would take its forward timeout (seconds).
RAW_DNS_QUERY = """
import socket, struct, time
server = next(l.split()[1] for l in open('/etc/resolv.conf') if l.startswith('nameserver'))
print(socket.gethostbyname('kubernetes.default.svc.cluster.local'))
name = b''.join(bytes([len(p)]) + p for p in b'example.com'.split(b'.')) + b'\\0'
query = struct.pack('>HHHHHH', 0x1234, 0x0100, 1, 0, 0, 0) + name + struct.pack('>HH', 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(5)
started = time.monotonic()
s.sendto(query, (server, 53))
reply = s.recv(512)
elapsed = time.monotonic() - started
flags, answers = struct.unpack('>H', reply[2:4])[0], struct.unpack('>H', reply[6:8])[0]
print(server, flags & 0xF, answers, 'fast' if elapsed < 1 else f'slow {elapsed:.1f}s')
"""


def test_cluster_dns_answers_cluster_names_and_nothing_outside(cluster, core, images, restricted_namespace):
    phase, log = run_to_end(cluster, core, restricted_namespace, client_pod("dns", images["runner"],
                                                                              ["python3", "-c", RAW_DNS_QUERY]))
    assert phase == "Succeeded", log
    kubernetes_ip = core.read_namespaced_service("kubernetes", "default").spec.cluster_ip
    resolved, reply = log.strip().splitlines()
    server, rcode, answers, speed = reply.split(maxsplit=3)
    assert resolved == kubernetes_ip
    # The node's CoreDNS (the bridge's gateway), which refuses or fails the
    # name at once (REFUSED 5 or SERVFAIL 2) with no answer: it forwards nowhere.
    assert server == "10.244.0.1", log
    assert (rcode in ("2", "5"), answers, speed) == (True, "0", "fast"), log


def test_an_image_missing_from_the_registry_ends_in_image_pull_backoff(cluster, core, images, restricted_namespace):
    missing = images["runner"].rsplit(":", 1)[0] + ":no-such-tag"
    pod = client_pod("missing", missing, ["true"])
    create_pod(cluster, restricted_namespace, pod)
    reason = wait_for(
        lambda: (r := waiting_reason(core, restricted_namespace, "missing")) in ("ErrImagePull", "ImagePullBackOff") and r,
        timeout=60, what="ErrImagePull/ImagePullBackOff", interval=0.5,
    )
    assert reason in ("ErrImagePull", "ImagePullBackOff")
    wait_for(lambda: waiting_reason(core, restricted_namespace, "missing") == "ImagePullBackOff",
             timeout=60, what="ImagePullBackOff", interval=0.5)
    status = core.read_namespaced_pod("missing", restricted_namespace).status.container_statuses[0]
    assert "no-such-tag" in (status.state.waiting.message or ""), status


def test_an_image_of_any_other_registry_is_never_fetched_from_off_the_machine(cluster, core, restricted_namespace):
    # Any registry the test bed does not serve resolves to a closed local
    # port (containerd's _default host config), never to DNS or the network.
    pod = client_pod("elsewhere", "localhost:7/not-ours:1", ["true"])
    create_pod(cluster, restricted_namespace, pod)

    def pull_message() -> str | None:
        statuses = core.read_namespaced_pod("elsewhere", restricted_namespace).status.container_statuses or []
        waiting = statuses[0].state.waiting if statuses else None
        return waiting.message if waiting and waiting.reason in ("ErrImagePull", "ImagePullBackOff") else None

    message = wait_for(pull_message, timeout=60, what="the pull to fail", interval=0.5)
    assert "127.0.0.1:9" in message and "connection refused" in message, message


def test_a_container_that_exits_1_at_start_ends_in_crash_loop_backoff(cluster, core, images, restricted_namespace):
    pod = client_pod("crasher", images["runner"], ["sh", "-c", "echo starting; exit 1"])
    pod["spec"]["restartPolicy"] = "Always"
    create_pod(cluster, restricted_namespace, pod)

    # What `kubectl describe` shows: the container waiting in CrashLoopBackOff,
    # or the kubelet's BackOff Event for it. Under load a CI run saw the
    # status stay at the last termination through an 80 s back-off, while the
    # kubelet logged and announced the back-off.
    def crash_looping() -> bool:
        if waiting_reason(core, restricted_namespace, "crasher") == "CrashLoopBackOff":
            return True
        events = core.list_namespaced_event(restricted_namespace, field_selector="involvedObject.name=crasher").items
        return any(e.reason == "BackOff" and "restarting failed container" in (e.message or "") for e in events)

    try:
        wait_for(crash_looping, timeout=120, what="CrashLoopBackOff", interval=0.2)
    except AssertionError as e:
        raise AssertionError(f"{e}; pods: {pod_states(core, restricted_namespace)}") from None
    status = core.read_namespaced_pod("crasher", restricted_namespace).status.container_statuses[0]
    terminated = status.last_state.terminated or status.state.terminated
    assert terminated is not None and terminated.exit_code == 1, pod_states(core, restricted_namespace)
    assert status.restart_count >= 1

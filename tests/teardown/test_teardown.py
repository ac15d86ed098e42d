"""`make cluster-down` leaves nothing behind: a test bed of its own, with a
real pod and a Service on the real node, started and stopped, and the host
compared with how it was before. Runs first (tests/conftest.py), while no
other test bed's real node exists on the machine."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from testbed_support import BIN, CLUSTER_SH, wait_for

pytestmark = pytest.mark.teardown

SYSCTLS = [
    "kernel.panic", "kernel.panic_on_oops", "vm.overcommit_memory", "net.ipv4.ip_forward",
    "net.ipv4.conf.all.route_localnet", "net.bridge.bridge-nf-call-iptables",
]
OUTSIDE_PATHS = ["/run/containerd", "/var/lib/cni", "/var/log/pods", "/var/log/containers",
                 "/var/lib/kubelet", "/var/run/netns", "/etc/cni", "/opt/containerd", "/opt/cni"]
OUR_PROGRAMS = ("containerd", "runc", "kubelet", "kube-proxy", "kube-router", "coredns", "docker-registry",
                "registry", "etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok", "pause")


def _run(*cmd: str) -> str:
    result = subprocess.run(cmd, capture_output=True, text=True)
    return result.stdout


def _our_processes(state: str) -> list[str]:
    """Processes of the test bed: its programs, or anything naming its state or binaries."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if not argv or not argv[0]:
            continue
        line = b" ".join(argv).decode(errors="replace")
        program = os.path.basename(argv[0].decode(errors="replace"))
        if program in OUR_PROGRAMS or program.startswith("containerd-shim") or state in line or str(BIN) in line:
            found.append(f"{pid} {line}")
    return sorted(found)


def snapshot(state: str) -> dict[str, object]:
    """What the node may change on the host, read the way an administrator would."""
    sysctls = {name: _run("sysctl", "-n", name).strip() for name in SYSCTLS}
    return {
        "processes": [p.split(" ", 1)[1] for p in _our_processes(state)],
        "mounts": sorted(Path("/proc/self/mounts").read_text().splitlines()),
        "links": sorted(line.split(":")[1].strip().split("@")[0]
                        for line in _run("ip", "-o", "link", "show").splitlines()),
        "addresses": sorted(_run("ip", "-o", "addr", "show").splitlines()),
        "routes": sorted(_run("ip", "route", "show", "table", "all").splitlines()),
        "nftables": _run("nft", "list", "ruleset"),
        "iptables": [line for line in _run("iptables-save").splitlines() if not line.startswith("#")],
        "ip6tables": [line for line in _run("ip6tables-save").splitlines() if not line.startswith("#")],
        "ipsets": sorted(_run("ipset", "list", "-n").split()),
        "netns": sorted(_run("ip", "netns", "list").split()),
        "cgroups": sorted(str(p) for p in Path("/sys/fs/cgroup").glob("*/kubepods*")),
        "sysctls": sysctls,
        "listening": sorted(line.split()[4] for line in _run("ss", "-Hltn").splitlines()),
        "paths": [p for p in OUTSIDE_PATHS if os.path.exists(p)],
    }


# A cold start builds every image (about 4 minutes on 2 cores) before the node.
@pytest.mark.timeout(1500)
def test_cluster_down_leaves_nothing_behind():
    if subprocess.run(["ip", "link", "show", "tenv0"], capture_output=True).returncode == 0:
        pytest.skip("a test bed's real node is already running on this machine (make cluster); "
                    "this test needs the host without one")
    state = tempfile.mkdtemp(prefix="testenv-teardown-")
    env = dict(os.environ, TESTBED_STATE=state, TESTBED_NAME="teardown")
    env.pop("KUBECONFIG", None)
    before = snapshot(state)
    kubeconfig = f"{state}/kubeconfig"

    def kubectl(*args: str, input: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([str(BIN / "kubectl"), "--kubeconfig", kubeconfig, *args],
                              input=input, capture_output=True, text=True)

    started = time.monotonic()
    up = subprocess.run(["bash", str(CLUSTER_SH), "up"], env=env, capture_output=True, text=True)
    try:
        assert up.returncode == 0, f"test bed failed to start:\n{up.stdout}\n{up.stderr}"
        print(f"test bed with real node up in {time.monotonic() - started:.1f}s")
        runner = next(line.split("=", 1)[1] for line in Path(state, "images.env").read_text().splitlines()
                      if line.startswith("TESTBED_IMAGE_RUNNER="))
        # A pod (sandbox, veth, volumes, cgroups) behind a Service (kube-proxy rules)
        # and a NetworkPolicy (kube-router's chains and ipsets).
        objects = [
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "default",
                                                             "labels": {"app": "web"}},
             "spec": {"nodeSelector": {"testenv.dev/node": "real"},
                      "tolerations": [{"key": "testenv.dev/real-node", "operator": "Exists"}],
                      "containers": [{"name": "web", "image": runner.strip('"'),
                                      "command": ["python3", "-m", "http.server", "8080"],
                                      "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}]}],
                      "volumes": [{"name": "scratch", "emptyDir": {}}]}},
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"},
             "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}},
            {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
             "metadata": {"name": "same-namespace", "namespace": "default"},
             "spec": {"podSelector": {}, "ingress": [{"from": [{"podSelector": {}}]}]}},
        ]
        applied = kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}))
        assert applied.returncode == 0, applied.stderr
        wait_for(lambda: kubectl("get", "pod", "web", "-o", "jsonpath={.status.containerStatuses[0].ready}").stdout
                 == "true", timeout=120, what="a real pod Ready", interval=0.5)
        # The node really changed the host in every way compared below: the
        # comparison after `down` is not between two empty pictures.
        def node_programmed() -> dict[str, object] | None:
            now = snapshot(state)
            return now if ("table ip kube-proxy" in now["nftables"] and "KUBE-NWPLCY" in now["nftables"]
                           and len(now["ipsets"]) > len(before["ipsets"])) else None

        during = wait_for(node_programmed, timeout=60, what="kube-proxy's and kube-router's rules", interval=1)
        assert during["processes"] != before["processes"] and "tenv0" in during["links"]
        assert during["cgroups"] != before["cgroups"] and during["mounts"] != before["mounts"]
    finally:
        down = subprocess.run(["bash", str(CLUSTER_SH), "down"], env=env, capture_output=True, text=True)
    assert down.returncode == 0, down.stderr
    assert not os.path.exists(state)
    # Processes may take a moment to be reaped after their parent exits.
    wait_for(lambda: [p.split(" ", 1)[1] for p in _our_processes(state)] == before["processes"],
             timeout=20, what="the test bed's processes to exit", interval=0.2)
    after = snapshot(state)
    changed = {key: {"before": before[key], "after": after[key]} for key in before if before[key] != after[key]}
    assert not changed, f"cluster down left changes on the host: {json.dumps(changed, indent=1)[:6000]}"

"""Real pods: how long the operator's PostgreSQL Deployment (the builders'
own objects, placed on the test bed's real node) takes from apply to Ready.
The first repeat on a fresh test bed pulls the image from the local registry
(containerd's store is new with every `make cluster`); the others find it
cached. Each repeat says which, from the kubelet's Pulled Event. Needs a running test bed with its real node (`make cluster`).

    python bench/realnode_startup.py --repeats 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "operator")]

from kubernetes import client, config  # noqa: E402
from testenv.build.common import EnvRef  # noqa: E402
from testenv.build.datastores import datastore_objects, datastore_secret  # noqa: E402
from testenv.build.placement import PodPlacement, Toleration  # noqa: E402
from testenv.models import Datastore, Engine  # noqa: E402

PLACEMENT = PodPlacement.of(
    {"testenv.dev/node": "real"},
    [Toleration(key="testenv.dev/real-node", operator="Exists", effect="NoSchedule")],
)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--state", default=str(ROOT / ".cluster"), help="the test bed's TESTBED_STATE")
    args = p.parse_args()
    state = Path(args.state)
    images = dict(line.strip().split("=", 1) for line in (state / "images.env").read_text().splitlines()
                  if line.startswith("TESTBED_IMAGE_"))
    image = images["TESTBED_IMAGE_POSTGRES"]
    kubeconfig = str(state / "kubeconfig")
    api = config.new_client_from_config(config_file=kubeconfig)
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    kubectl = str(ROOT / ".cache" / "testbed" / "bin" / "kubectl")
    times: list[float] = []  # image already on the node
    cold_times: list[float] = []  # pulled from the registry first
    for i in range(args.repeats):
        ns = f"bench-pg-{uuid.uuid4().hex[:6]}"
        labels = {f"pod-security.kubernetes.io/{m}": "restricted" for m in ("enforce", "warn")}
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns, labels=labels)))
        env = EnvRef(name="bench", namespace="default", uid=str(uuid.uuid4()), target_namespace=ns)
        ds = Datastore(name="orders-db", engine=Engine.POSTGRES)
        objects = [datastore_secret(ds, env, "bench-Pw_1"), *datastore_objects(ds, env, image, PLACEMENT)]
        started = time.monotonic()
        subprocess.run([kubectl, "--kubeconfig", kubeconfig, "apply", "--server-side", "-f", "-"], check=True,
                       capture_output=True, input=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}),
                       text=True)
        deadline = started + 300
        while True:
            d = apps.read_namespaced_deployment("orders-db", ns)
            if d.status.available_replicas:
                break
            if time.monotonic() > deadline:
                sys.exit(f"repeat {i}: not Ready after 300 s")
            time.sleep(0.1)
        elapsed = time.monotonic() - started
        pulled = [e.message for e in core.list_namespaced_event(ns).items if e.reason == "Pulled"]
        cold = any("Successfully pulled" in m for m in pulled)
        (cold_times if cold else times).append(elapsed)
        print(f"repeat {i}: apply -> Ready {elapsed:.2f} s; kubelet: {pulled[0] if pulled else '?'}", flush=True)
        core.delete_namespace(ns)
    for label, values in (("image pulled", cold_times), ("image cached", times)):
        if values:
            print(f"postgres apply -> Ready, {label}: median {statistics.median(values):.2f} s "
                  f"[{min(values):.2f} .. {max(values):.2f}] n={len(values)}")
    print("(the readiness probe starts after 5 s and runs every 5 s: that bounds the figure from below)")


if __name__ == "__main__":
    main()

"""`testenv-operator`: run the operator (kopf) against the current cluster."""

from __future__ import annotations

import os
import random
import sys


def main() -> None:
    args = ["kopf", "run", "--all-namespaces", "-m", "testenv.handlers"]
    if os.environ.get("TESTENV_STANDALONE", "true").lower() in ("1", "true", "yes"):
        args.append("--standalone")
    else:
        args += ["--peering", os.environ.get("TESTENV_PEERING", "testenv-operator")]
        priority = os.environ.get("TESTENV_PEERING_PRIORITY", "")
        if priority == "auto":
            # kopf pauses every peer of equal priority; distinct random ones
            # let exactly one replica act and another take over when it dies.
            priority = str(random.SystemRandom().randint(1, 1_000_000))
        if priority:
            args += ["--priority", priority]
    if port := os.environ.get("TESTENV_HEALTH_PORT"):
        host = os.environ.get("TESTENV_HEALTH_HOST", "0.0.0.0")
        args += ["--liveness", f"http://{host}:{port}/healthz"]
    args += sys.argv[1:]
    from kopf.cli import main as kopf_main

    sys.argv = args
    kopf_main()


if __name__ == "__main__":
    main()

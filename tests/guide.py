"""The design guide's order-flow environment, as examples/order-flow.yaml
ships it, so tests prove the example users copy from."""

from __future__ import annotations

import copy
from typing import Any

import yaml
from testbed_support import ROOT

EXAMPLE = ROOT / "examples" / "order-flow.yaml"


def guide_spec(*, copy_namespace: str | None = None, with_tests: bool = True) -> dict[str, Any]:
    """The example's spec. copy_namespace re-points copyFrom at a namespace the
    test prepared; without one the copied service runs from its image alone."""
    spec = copy.deepcopy(yaml.safe_load(EXAMPLE.read_text())["spec"])
    for service in spec["services"]:
        if "copyFrom" in service:
            if copy_namespace is None:
                del service["copyFrom"]
            else:
                service["copyFrom"]["namespace"] = copy_namespace
    if not with_tests:
        del spec["tests"]
    return spec

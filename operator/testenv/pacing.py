"""How often status is written. A phase or a condition's state is written the
moment it changes; progress within a phase (one more component ready, a
suite started, a new message) is held until STATUS_INTERVAL has passed since
the last write, so a rollout of many components costs one write a second,
not one per component."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

STATUS_INTERVAL = 1.0
PROGRESS = frozenset({"message", "components", "seeds", "tests", "readyComponents", "testCounts", "summary"})


def _essential(status: Mapping[str, Any]) -> dict[str, Any]:
    essential = {k: v for k, v in status.items() if k not in PROGRESS and k != "conditions"}
    essential["conditions"] = sorted(
        (c.get("type"), c.get("status"), c.get("reason")) for c in status.get("conditions") or []
    )
    return essential


def hold_status(
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    *,
    since_last_write: float | None,
    announces: bool = False,
    interval: float = STATUS_INTERVAL,
) -> float:
    """Seconds to hold the write of `after` (wire form) over `before`; 0 means
    write now. A change that comes with Events (`announces`) is never held:
    the Events and the status must agree."""
    if announces or since_last_write is None or since_last_write >= interval:
        return 0.0
    if _essential(before) != _essential(after):
        return 0.0
    return interval - since_last_write

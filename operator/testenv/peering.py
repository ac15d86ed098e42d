"""Whether kopf's peering has paused this operator, read from the peering
object's status as kopf writes it. kopf pauses its own watches and daemons
but not tasks of ours, such as the orphan sweep, which asks here."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

DEFAULT_LIFETIME = 60  # kopf's own default for a peer that does not say


def _alive(peer: Mapping[str, Any], now: datetime) -> bool:
    try:
        seen = datetime.fromisoformat(str(peer["lastseen"]))
    except (KeyError, ValueError):
        return False
    if seen.tzinfo is None:
        seen = seen.replace(tzinfo=UTC)
    return seen + timedelta(seconds=int(peer.get("lifetime", DEFAULT_LIFETIME))) > now


def outranked(peers: Mapping[str, Mapping[str, Any]], priority: int, now: datetime) -> bool:
    """kopf's rule: pause while a live peer has a higher priority, or while
    another shares ours (then every one of them pauses). This operator's own
    entry is among `peers`, so sharing means two or more at our priority."""
    live = [peer for peer in peers.values() if _alive(peer, now)]
    higher = any(int(peer.get("priority", 0)) > priority for peer in live)
    same = sum(1 for peer in live if int(peer.get("priority", 0)) == priority)
    return higher or same > 1

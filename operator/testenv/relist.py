"""Deletes missed while a watch was down, sent once it has listed again.

kopf forgets an object (its per-object memory, its entries in every index,
its daemons) only on the object's DELETED event. A watch that must list
again (410 Gone after an API server or etcd restart; a paused replica
resuming) gets no event for what was deleted in the gap, and kopf keeps all
of it for the rest of the process: memory that grows with every restart, and
indexes that show pods, Jobs and namespaces long gone (the namespace index
is what the delete handler waits on). A chaos soak's survivor kept 166 such
memories (bench/RESULTS.md, the chaos soak, "ninth session").

client-go's reflector closes the same gap by replacing its store with the
new listing and sending a delete for each object the listing lacks
(DeletedFinalStateUnknown). Listings does that here: each watch-stream's
objects are remembered by uid, as small as kopf needs to route and forget
them, and when a listing ends (kopf's Bookmark.LISTED) a DELETED event goes
out for each one it did not list, before the bookmark. A listing cut short
ends with no bookmark and deletes nothing.

kopf 1.45 has no hook for this, so `install` wraps its watch-stream
function (kopf._cogs.clients.watching.continuous_watch), which
`infinite_watch` calls anew for each listing."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from kopf._cogs.clients import watching

log = logging.getLogger(__name__)

_ORIGINAL = watching.continuous_watch


class Listings:
    """One watch-stream's objects (a resource, in a namespace or cluster-wide),
    kept across its listings. `seen` takes each raw event or bookmark in the
    order kopf's stream yields them and returns what to pass on instead."""

    def __init__(self, now: Callable[[], str] = lambda: datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")) -> None:
        self.now = now
        self.known: dict[str, tuple[str, str, str, str | None, Mapping[str, str]]] = {}
        self.listed: set[str] = set()

    def listing(self) -> None:
        """A new listing begins: nothing listed yet."""
        self.listed = set()

    def seen(self, event: Any) -> list[Any]:
        if event is watching.Bookmark.LISTED:
            gone = [self._deleted(uid) for uid in self.known if uid not in self.listed]
            for deleted in gone:
                del self.known[deleted["object"]["metadata"]["uid"]]
            self.listed = set()
            return [*gone, event]
        if not isinstance(event, Mapping) or event.get("type") == "BOOKMARK":
            return [event]
        body = event.get("object") or {}
        meta = body.get("metadata") or {}
        uid = meta.get("uid")
        if uid:
            if event.get("type") == "DELETED":
                self.known.pop(uid, None)
            else:
                if event.get("type") is None:  # kopf's mark for an object of a listing
                    self.listed.add(uid)
                self.known[uid] = (body.get("apiVersion") or "", body.get("kind") or "", meta.get("name") or "",
                                   meta.get("namespace"), meta.get("labels") or {})
        return [event]

    def _deleted(self, uid: str) -> dict[str, Any]:
        api_version, kind, name, namespace, labels = self.known[uid]
        # deletionTimestamp, as a real DELETED event of an object with
        # finalizers has it: kopf stops an object's daemons only when it is
        # there, and the daemon returns on it rather than run a pass on a body
        # with no spec. When is unknown; the listing is when it was found gone.
        metadata: dict[str, Any] = {"uid": uid, "name": name, "labels": dict(labels),
                                    "deletionTimestamp": self.now()}
        if namespace is not None:
            metadata["namespace"] = namespace
        return {"type": "DELETED", "object": {"apiVersion": api_version, "kind": kind, "metadata": metadata}}


_STREAMS: dict[tuple[Any, Any], Listings] = {}


async def continuous_watch(**kwargs: Any) -> AsyncIterator[Any]:
    """kopf's continuous_watch, with the deletes its listing implies."""
    listings = _STREAMS.setdefault((kwargs["resource"], kwargs["namespace"]), Listings())
    listings.listing()
    async for event in _ORIGINAL(**kwargs):
        passed = listings.seen(event)
        if len(passed) > 1:
            log.info("%s: %d deleted while the watch was down, forgotten now", kwargs["resource"], len(passed) - 1)
        for each in passed:
            yield each


def install() -> None:
    watching.continuous_watch = continuous_watch

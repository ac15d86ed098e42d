"""relist.py: a watch that lists again sends the deletes it missed."""

from __future__ import annotations

import asyncio
from typing import Any

from kopf._cogs.clients import watching
from testenv import relist

LISTED = watching.Bookmark.LISTED
OURS = {"app.kubernetes.io/managed-by": "testenv-operator", "testenv.dev/environment-uid": "env-1"}


def pod(uid: str, name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"uid": uid, "name": name, "namespace": "te-a", "labels": labels or OURS}}


WHEN = "2026-12-01T03:00:00Z"


def gone(body: dict[str, Any]) -> dict[str, Any]:
    """The DELETED event relist sends for an object last seen as `body`."""
    meta = body["metadata"]
    return {"type": "DELETED", "object": {"apiVersion": body["apiVersion"], "kind": body["kind"], "metadata": {
        **{k: meta[k] for k in ("uid", "name", "namespace", "labels") if k in meta}, "deletionTimestamp": WHEN}}}


def feed(listings: relist.Listings, *events: Any) -> list[Any]:
    return [out for event in events for out in listings.seen(event)]


def test_what_a_new_listing_lacks_is_deleted_before_the_listing_ends() -> None:
    listings = relist.Listings(now=lambda: WHEN)
    listings.listing()
    feed(listings, {"type": None, "object": pod("a", "pa")}, {"type": None, "object": pod("b", "pb")}, LISTED,
         {"type": "ADDED", "object": pod("c", "pc")}, {"type": "DELETED", "object": pod("a", "pa")})
    # The watch is lost (a 410 after an API server restart): kopf lists again.
    listings.listing()
    out = feed(listings, {"type": None, "object": pod("b", "pb")}, LISTED)
    assert out[0] == {"type": None, "object": pod("b", "pb")}
    # c was deleted in the gap; a's delete was seen and is not sent twice; b is still there.
    assert out[1:] == [gone(pod("c", "pc")), LISTED]
    assert set(listings.known) == {"b"}


def test_a_listing_cut_short_deletes_nothing() -> None:
    listings = relist.Listings(now=lambda: WHEN)
    listings.listing()
    feed(listings, {"type": None, "object": pod("a", "pa")}, {"type": None, "object": pod("b", "pb")}, LISTED)
    listings.listing()
    assert feed(listings, {"type": None, "object": pod("a", "pa")}) == [{"type": None, "object": pod("a", "pa")}]
    # The connection broke mid-listing; no bookmark came. The next listing starts over.
    listings.listing()
    out = feed(listings, {"type": None, "object": pod("b", "pb")}, LISTED)
    assert out[1:] == [gone(pod("a", "pa")), LISTED]


def test_the_delete_carries_what_kopf_routes_and_filters_by() -> None:
    """kopf keys its memories and indexes by uid; its filters and our
    wake-ups read the labels and the namespace (a cluster-wide object has
    none); it stops an object's daemons only once deletionTimestamp is set."""
    listings = relist.Listings(now=lambda: WHEN)
    listings.listing()
    namespace = {"apiVersion": "v1", "kind": "Namespace",
                 "metadata": {"uid": "n", "name": "te-a", "labels": OURS, "resourceVersion": "9"},
                 "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}
    feed(listings, {"type": "MODIFIED", "object": namespace})
    listings.listing()
    (deleted, bookmark) = feed(listings, LISTED)
    assert bookmark is LISTED
    assert deleted == {"type": "DELETED", "object": {"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "uid": "n", "name": "te-a", "labels": OURS, "deletionTimestamp": WHEN}}}


def test_bookmarks_and_objects_without_uid_pass_through_untouched() -> None:
    listings = relist.Listings(now=lambda: WHEN)
    bookmark = {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "12"}}}
    odd = {"type": "ADDED", "object": {"metadata": {"name": "no-uid"}}}
    assert feed(listings, bookmark, odd) == [bookmark, odd]
    assert listings.known == {}


def test_the_wrapper_is_what_kopfs_infinite_watch_calls(monkeypatch) -> None:
    """installed, kopf's own loop (infinite_watch) lists through relist, and
    the stream it yields has the missed deletes in it."""
    from testenv import handlers  # noqa: F401  (installs on import, before any watch)

    assert watching.continuous_watch is relist.continuous_watch
    rounds = iter([[{"type": None, "object": pod("a", "pa")}, {"type": None, "object": pod("b", "pb")}, LISTED],
                   [{"type": None, "object": pod("b", "pb")}, LISTED]])

    async def scripted(**_: Any):
        for event in next(rounds):
            yield event

    monkeypatch.setattr(relist, "_ORIGINAL", scripted)
    monkeypatch.setattr(relist, "_STREAMS", {})

    async def two_listings() -> list[Any]:
        import kopf

        settings = kopf.OperatorSettings()
        settings.watching.reconnect_backoff = 0
        return [event async for event in watching.infinite_watch(
            settings=settings, resource="pods", namespace=None, _iterations=2)]

    seen = asyncio.run(two_listings())
    assert [e if e is LISTED else (e["type"], e["object"]["metadata"]["uid"]) for e in seen] == [
        (None, "a"), (None, "b"), LISTED, (None, "b"), ("DELETED", "a"), LISTED]

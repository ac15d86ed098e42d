"""The shipping service: POST /shipments queues a shipment in Redis and
answers 202 at once; a worker thread takes it off the queue, books it with
the carrier the seed configured and mails the customer through the email
provider. GET /shipments/<order> shows how far it got: queued -> notified
(or notify_failed)."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from typing import Any

import httpx
import redis

from .web import App, HTTPError, need, required

QUEUE = "shipments:queue"
store = redis.Redis.from_url(required("SHIPPING_CACHE_URL"), decode_responses=True, socket_timeout=10)
EMAIL_URL = required("EMAIL_PROVIDER_URL")
# Off only to show what a stub's request verification says when a service
# never calls it (the example's failing variant).
EMAIL_ENABLED = os.environ.get("EMAIL_ENABLED", "true").lower() != "false"
log = logging.getLogger("shop")


def health() -> None:
    store.ping()


app = App("shipping", health)


@app.route("POST", "/shipments")
def queue(body: Any) -> tuple[int, Any]:
    need(body, "order_id", "email")
    key = f"shipment:{body['order_id']}"
    if not store.hsetnx(key, "status", "queued"):  # a retried request
        return 202, store.hgetall(key)
    store.hset(key, mapping={"order_id": body["order_id"], "email": body["email"]})
    store.rpush(QUEUE, json.dumps(body))
    return 202, store.hgetall(key)


@app.route("GET", "/shipments/(?P<order_id>[\\w-]+)")
def get(order_id: str) -> tuple[int, Any]:
    shipment = store.hgetall(f"shipment:{order_id}")
    if not shipment:
        raise HTTPError(404, f"no shipment for {order_id}")
    return 200, shipment


def _notify(client: httpx.Client, shipment: dict[str, Any], tracking: str) -> bool:
    message = {"to": shipment["email"], "template": "order-shipped",
               "data": {"order_id": shipment["order_id"], "tracking": tracking}}
    for attempt in range(3):
        try:
            client.post(f"{EMAIL_URL}/v1/messages", json=message).raise_for_status()
            return True
        except httpx.HTTPError as exc:
            log.warning("email for %s failed (%s), attempt %d", shipment["order_id"], exc, attempt + 1)
            time.sleep(0.5 * 2**attempt)
    return False


def work() -> None:
    client = httpx.Client(timeout=5)
    while True:
        try:
            item = store.blpop([QUEUE], timeout=5)
        except redis.RedisError as exc:
            log.warning("queue unavailable: %s", exc)
            time.sleep(1)
            continue
        if item is None:
            continue
        shipment = json.loads(item[1])
        key = f"shipment:{shipment['order_id']}"
        carrier = store.get("config:carrier") or "unknown"
        tracking = f"{carrier}-{uuid.uuid4().hex[:10]}"
        store.hset(key, mapping={"carrier": carrier, "tracking": tracking, "status": "booked"})
        if EMAIL_ENABLED:
            store.hset(key, "status", "notified" if _notify(client, shipment, tracking) else "notify_failed")


if __name__ == "__main__":
    threading.Thread(target=work, name="shipping-worker", daemon=True).start()
    app.serve()

"""The orders service: POST /orders runs the order saga.

1. reserve the items at inventory (409 when out of stock: the order is rejected);
2. charge the card at the payment gateway;
3. charged: hand the order to shipping, the order is confirmed;
   not charged: release the reservation (the compensation), the order ends
   `payment_declined` (402) or `payment_failed` (502/504).
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import httpx
import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from .payments import Outcome, PaymentGateway
from .web import App, HTTPError, need, required

DB_URL = required("ORDERS_DB_URL")
INVENTORY_URL = required("INVENTORY_URL")
SHIPPING_URL = required("SHIPPING_URL")
gateway = PaymentGateway(required("PAYMENT_GATEWAY_URL"), float(os.environ.get("PAYMENT_TIMEOUT_SECONDS", "2")))
services = httpx.Client(timeout=5)

FAILED = {Outcome.DECLINED: ("payment_declined", 402), Outcome.TIMEOUT: ("payment_failed", 504)}


def db() -> psycopg.Connection[dict[str, Any]]:
    return psycopg.connect(DB_URL, row_factory=dict_row, connect_timeout=5)


def health() -> None:
    with db() as conn:
        conn.execute("SELECT 1 FROM orders LIMIT 1")


app = App("orders", health)


def _set(order_id: str, **fields: Any) -> None:
    assignments = ", ".join(f"{k} = %({k})s" for k in fields)
    with db() as conn:
        conn.execute(f"UPDATE orders SET {assignments}, updated_at = now() WHERE id = %(id)s", {**fields, "id": order_id})


def _order(order_id: str) -> dict[str, Any]:
    with db() as conn:
        row = conn.execute("SELECT * FROM orders WHERE id = %s", (order_id,)).fetchone()
    if row is None:
        raise HTTPError(404, f"no order {order_id}")
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in row.items()}


@app.route("POST", "/orders")
def create_order(body: Any) -> tuple[int, Any]:
    need(body, "email", "items", "card")
    order_id = body.get("id") or f"o-{uuid.uuid4().hex[:12]}"
    with db() as conn:
        conn.execute(
            "INSERT INTO orders (id, email, items, status) VALUES (%s, %s, %s, 'pending')",
            (order_id, body["email"], Jsonb(body["items"])),
        )
    reserved = services.post(f"{INVENTORY_URL}/reservations", json={"order_id": order_id, "items": body["items"]})
    if reserved.status_code == 409:
        _set(order_id, status="rejected", reason=reserved.json().get("error", "out of stock"))
        return 409, _order(order_id)
    reserved.raise_for_status()
    total = reserved.json()["total_cents"]
    _set(order_id, total_cents=total, status="reserved")

    charge = gateway.charge(order_id, total, body["card"])
    if charge.outcome is not Outcome.CHARGED:
        # Compensation: the stock goes back before the order says it failed.
        services.delete(f"{INVENTORY_URL}/reservations/{order_id}").raise_for_status()
        status, code = FAILED.get(charge.outcome, ("payment_failed", 502))
        _set(order_id, status=status, reason=f"{charge.outcome}: {charge.detail}")
        return code, _order(order_id)

    _set(order_id, status="paid", payment_id=charge.charge_id)
    shipped = services.post(f"{SHIPPING_URL}/shipments",
                            json={"order_id": order_id, "email": body["email"], "items": body["items"]})
    shipped.raise_for_status()
    _set(order_id, status="confirmed")
    return 201, _order(order_id)


@app.route("GET", "/orders/(?P<order_id>[\\w-]+)")
def get_order(order_id: str) -> tuple[int, Any]:
    return 200, _order(order_id)


if __name__ == "__main__":
    app.serve()

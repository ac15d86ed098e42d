"""The inventory service: products with stock, and reservations of stock
for orders (made and released as one transaction each)."""

from __future__ import annotations

from typing import Any

import pymysql
import pymysql.cursors

from .mysqlurl import connect_args
from .web import App, HTTPError, need, required

DB = connect_args(required("INVENTORY_DB_URL"))


def db() -> pymysql.connections.Connection:
    return pymysql.connect(**DB, cursorclass=pymysql.cursors.DictCursor, autocommit=False)


def health() -> None:
    with db() as conn, conn.cursor() as cur:
        cur.execute("SELECT 1 FROM products LIMIT 1")


app = App("inventory", health)


@app.route("POST", "/products")
def add_product(body: Any) -> tuple[int, Any]:
    need(body, "sku", "name", "price_cents", "stock")
    with db() as conn, conn.cursor() as cur:
        try:
            cur.execute("INSERT INTO products (sku, name, price_cents, stock) VALUES (%s, %s, %s, %s)",
                        (body["sku"], body["name"], body["price_cents"], body["stock"]))
        except pymysql.err.IntegrityError as exc:
            raise HTTPError(409, f"product {body['sku']} exists") from exc
        conn.commit()
    return 201, get_product(body["sku"])[1]


@app.route("GET", "/products/(?P<sku>[\\w-]+)")
def get_product(sku: str) -> tuple[int, Any]:
    with db() as conn, conn.cursor() as cur:
        cur.execute("SELECT sku, name, price_cents, stock FROM products WHERE sku = %s", (sku,))
        row = cur.fetchone()
    if row is None:
        raise HTTPError(404, f"no product {sku}")
    return 200, row


@app.route("DELETE", "/products/(?P<sku>[\\w-]+)")
def delete_product(sku: str) -> tuple[int, Any]:
    with db() as conn, conn.cursor() as cur:
        cur.execute("DELETE FROM reservations WHERE sku = %s", (sku,))
        cur.execute("DELETE FROM products WHERE sku = %s", (sku,))
        conn.commit()
    return 204, None


@app.route("POST", "/reservations")
def reserve(body: Any) -> tuple[int, Any]:
    need(body, "order_id", "items")
    order_id, items = body["order_id"], body["items"]
    with db() as conn, conn.cursor() as cur:
        cur.execute("SELECT COALESCE(SUM(r.qty * p.price_cents), 0) AS total, COUNT(*) AS n FROM reservations r "
                    "JOIN products p ON p.sku = r.sku WHERE r.order_id = %s", (order_id,))
        existing = cur.fetchone()
        if existing["n"]:  # a retried request: the reservation stands
            return 201, {"order_id": order_id, "total_cents": int(existing["total"])}
        total = 0
        for item in items:
            cur.execute("SELECT price_cents, stock FROM products WHERE sku = %s FOR UPDATE", (item["sku"],))
            product = cur.fetchone()
            if product is None or product["stock"] < item["qty"]:
                conn.rollback()
                raise HTTPError(409, f"out of stock: {item['sku']}", sku=item["sku"])
            cur.execute("UPDATE products SET stock = stock - %s WHERE sku = %s", (item["qty"], item["sku"]))
            cur.execute("INSERT INTO reservations (order_id, sku, qty) VALUES (%s, %s, %s)",
                        (order_id, item["sku"], item["qty"]))
            total += product["price_cents"] * item["qty"]
        conn.commit()
    return 201, {"order_id": order_id, "total_cents": total}


@app.route("DELETE", "/reservations/(?P<order_id>[\\w-]+)")
def release(order_id: str) -> tuple[int, Any]:
    with db() as conn, conn.cursor() as cur:
        cur.execute("SELECT sku, qty FROM reservations WHERE order_id = %s FOR UPDATE", (order_id,))
        for row in cur.fetchall():
            cur.execute("UPDATE products SET stock = stock + %s WHERE sku = %s", (row["qty"], row["sku"]))
        cur.execute("DELETE FROM reservations WHERE order_id = %s", (order_id,))
        conn.commit()
    return 204, None


if __name__ == "__main__":
    app.serve()

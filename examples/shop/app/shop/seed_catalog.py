"""A seed from an image: loads the product catalog bundled with the shop into
the inventory database (after the schema seed made its tables). Running it
twice leaves the same catalog (an upsert), as a seed that may be retried must."""

from __future__ import annotations

import json
from importlib.resources import files

import pymysql

from .mysqlurl import connect_args
from .web import required


def main() -> None:
    catalog = json.loads(files("shop").joinpath("catalog.json").read_text())
    with pymysql.connect(**connect_args(required("INVENTORY_DB_URL"))) as conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO products (sku, name, price_cents, stock) VALUES (%(sku)s, %(name)s, %(price_cents)s, %(stock)s)"
            " ON DUPLICATE KEY UPDATE name = VALUES(name), price_cents = VALUES(price_cents), stock = VALUES(stock)",
            catalog,
        )
        conn.commit()
    print(f"catalog: {len(catalog)} products loaded")


if __name__ == "__main__":
    main()

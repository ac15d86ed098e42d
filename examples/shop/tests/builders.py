"""Test-data builders: each test says only what matters to it, the builder
fills in the rest and remembers what it made, so the fixture can remove it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

# The payment gateway stub answers by card token (the environment's mappings).
CARD_OK = "tok_visa"
CARD_DECLINED = "tok_declined"
CARD_GATEWAY_ERROR = "tok_error"
CARD_SLOW = "tok_slow"
CARD_RESET = "tok_reset"


@dataclass
class Product:
    sku: str
    price_cents: int
    stock: int


@dataclass
class ProductBuilder:
    http: httpx.Client
    base_url: str
    prefix: str
    made: list[str] = field(default_factory=list)

    def create(self, *, stock: int = 5, price_cents: int = 1000, name: str = "test product") -> Product:
        sku = f"{self.prefix}-{len(self.made)}"
        response = self.http.post(f"{self.base_url}/products",
                                  json={"sku": sku, "name": name, "price_cents": price_cents, "stock": stock})
        assert response.status_code == 201, response.text
        self.made.append(sku)
        return Product(sku, price_cents, stock)

    def stock(self, product: Product) -> int:
        response = self.http.get(f"{self.base_url}/products/{product.sku}")
        response.raise_for_status()
        return response.json()["stock"]

    def cleanup(self) -> None:
        for sku in self.made:
            self.http.delete(f"{self.base_url}/products/{sku}")


@dataclass
class OrderBuilder:
    http: httpx.Client
    base_url: str
    placed: list[str] = field(default_factory=list)

    def place(self, *items: tuple[Product, int], card: str = CARD_OK, email: str = "buyer@example.test") -> httpx.Response:
        order_id = f"o-{uuid.uuid4().hex[:12]}"
        self.placed.append(order_id)
        body: dict[str, Any] = {"id": order_id, "email": email, "card": card,
                                "items": [{"sku": p.sku, "qty": qty} for p, qty in items]}
        return self.http.post(f"{self.base_url}/orders", json=body)

"""The orders service against its real PostgreSQL, with the payment gateway
stubbed: what each answer of the gateway does to the order, the stored row
and the stock."""

from __future__ import annotations

import psycopg
import pytest
from builders import CARD_DECLINED, CARD_GATEWAY_ERROR, CARD_OK, CARD_RESET, CARD_SLOW


def stored(db: psycopg.Connection, order_id: str) -> tuple:
    return db.execute("SELECT status, total_cents, payment_id FROM orders WHERE id = %s", (order_id,)).fetchone()


@pytest.mark.smoke
def test_a_charged_order_is_confirmed_and_stored_with_its_payment(products, orders, orders_db):
    mug = products.create(price_cents=1200, stock=5)
    response = orders.place((mug, 2), card=CARD_OK)
    assert response.status_code == 201, response.text
    order = response.json()
    assert order["status"] == "confirmed"
    assert stored(orders_db, order["id"]) == ("confirmed", 2400, "ch_test_visa")
    assert products.stock(mug) == 3


# Each gateway answer that leaves the card uncharged: the order's HTTP answer,
# its stored status and reason (its start); the stock always goes back.
FAILED_CHARGES = [
    pytest.param(CARD_DECLINED, 402, "payment_declined", "declined: card_declined", id="declined-402"),
    pytest.param(CARD_GATEWAY_ERROR, 502, "payment_failed", "error: gateway answered 500", id="gateway-500"),
    pytest.param(CARD_SLOW, 504, "payment_failed", "timeout: no answer in time", id="slower-than-timeout",
                 marks=pytest.mark.slow),
    # How the reset shows (ReadError, RemoteProtocolError) depends on when it hits.
    pytest.param(CARD_RESET, 502, "payment_failed", "unavailable: ", id="connection-reset"),
]


@pytest.mark.parametrize(("card", "http_status", "order_status", "reason"), FAILED_CHARGES)
def test_an_uncharged_order_fails_and_releases_the_stock(products, orders, orders_db, card, http_status,
                                                         order_status, reason):
    mug = products.create(stock=5)
    response = orders.place((mug, 1), card=card)
    assert response.status_code == http_status, response.text
    assert response.json()["status"] == order_status
    assert response.json()["reason"].startswith(reason), response.json()
    assert stored(orders_db, response.json()["id"])[0] == order_status
    assert products.stock(mug) == 5


def test_an_order_beyond_the_stock_is_rejected_and_never_charged(products, orders, orders_db):
    poster = products.create(stock=1)
    response = orders.place((poster, 2), card=CARD_OK)
    assert response.status_code == 409, response.text
    assert stored(orders_db, response.json()["id"]) == ("rejected", None, None)
    assert products.stock(poster) == 1


def test_the_total_comes_from_inventorys_prices(products, orders, orders_db):
    mug, tee = products.create(price_cents=1200), products.create(price_cents=2500)
    response = orders.place((mug, 1), (tee, 2))
    assert response.status_code == 201, response.text
    assert stored(orders_db, response.json()["id"])[1] == 1200 + 2 * 2500

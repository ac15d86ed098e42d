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


def test_a_declined_card_answers_402_and_releases_the_stock(products, orders, orders_db):
    mug = products.create(stock=5)
    response = orders.place((mug, 1), card=CARD_DECLINED)
    assert response.status_code == 402, response.text
    assert response.json()["reason"] == "declined: card_declined"
    assert stored(orders_db, response.json()["id"])[0] == "payment_declined"
    assert products.stock(mug) == 5


def test_a_gateway_error_fails_the_order_with_502(products, orders, orders_db):
    mug = products.create(stock=5)
    response = orders.place((mug, 1), card=CARD_GATEWAY_ERROR)
    assert response.status_code == 502, response.text
    assert response.json()["reason"] == "error: gateway answered 500"
    assert stored(orders_db, response.json()["id"])[0] == "payment_failed"
    assert products.stock(mug) == 5


@pytest.mark.slow
def test_a_gateway_slower_than_the_clients_timeout_fails_with_504(products, orders, orders_db):
    mug = products.create(stock=5)
    response = orders.place((mug, 1), card=CARD_SLOW)
    assert response.status_code == 504, response.text
    assert stored(orders_db, response.json()["id"])[0] == "payment_failed"
    assert products.stock(mug) == 5


def test_a_connection_reset_by_the_gateway_fails_the_order(products, orders, orders_db):
    mug = products.create(stock=5)
    response = orders.place((mug, 1), card=CARD_RESET)
    assert response.status_code == 502, response.text
    assert response.json()["reason"].startswith("unavailable: ")
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

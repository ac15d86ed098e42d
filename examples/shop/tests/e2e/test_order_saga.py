"""End to end across the three services: the order saga and its
compensation, as a customer would see it. Shipping works off its queue in
the background, so its result is waited for, with a deadline."""

from __future__ import annotations

import pytest
from builders import CARD_DECLINED, CARD_OK
from waiting import eventually


@pytest.mark.smoke
def test_an_order_reserves_stock_charges_the_card_and_is_shipped_with_a_mail(http, urls, products, orders):
    tee = products.create(price_cents=2500, stock=4)
    response = orders.place((tee, 3), card=CARD_OK, email="ada@example.test")
    assert response.status_code == 201, response.text
    order_id = response.json()["id"]
    assert products.stock(tee) == 1

    shipment = eventually(lambda: http.get(f"{urls['shipping']}/shipments/{order_id}").json(),
                          lambda s: s.get("status") in ("notified", "notify_failed"),
                          what=f"the shipment of {order_id} to be mailed")
    assert shipment["status"] == "notified"
    # The carrier comes from the shipping-cache seed.
    assert shipment["carrier"] == "testenv-post"
    assert shipment["tracking"].startswith("testenv-post-")


def test_a_failed_payment_releases_the_stock_and_ships_nothing(http, urls, products, orders):
    tee = products.create(stock=4)
    response = orders.place((tee, 3), card=CARD_DECLINED)
    assert response.status_code == 402, response.text
    order_id = response.json()["id"]
    eventually(lambda: products.stock(tee), lambda stock: stock == 4, what="the reserved stock to be released")
    assert http.get(f"{urls['orders']}/orders/{order_id}").json()["status"] == "payment_declined"
    assert http.get(f"{urls['shipping']}/shipments/{order_id}").status_code == 404


def test_the_catalog_seeded_from_the_shop_image_is_for_sale(http, urls):
    mug = http.get(f"{urls['inventory']}/products/mug-blue")
    assert mug.status_code == 200, mug.text
    assert mug.json()["name"] == "Blue mug"

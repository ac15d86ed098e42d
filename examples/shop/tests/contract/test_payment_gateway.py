"""Consumer-driven contract: the orders service's own payment client, run
against the stub mappings this environment declares for the payment gateway.
When a mapping drifts from what the client reads (a renamed field, another
status), the interaction's outcome changes and its test fails.

Requests carry `X-Contract-Test`, which the environment's stub verification
leaves out: only the services' own calls count there."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from shop.payments import Outcome, PaymentGateway

CONTRACT = json.loads((Path(__file__).parent / "payment_gateway.json").read_text())
TIMEOUT = float(os.environ.get("PAYMENT_TIMEOUT_SECONDS", "1"))


@pytest.fixture(scope="module")
def gateway() -> PaymentGateway:
    client = PaymentGateway(os.environ["PAYMENT_GATEWAY_URL"], timeout=TIMEOUT)
    client.client.headers["X-Contract-Test"] = "true"
    return client


@pytest.mark.parametrize("interaction", CONTRACT["interactions"], ids=lambda i: i["card"])
def test_the_stub_keeps_the_consumers_expectation(gateway: PaymentGateway, interaction: dict) -> None:
    charge = gateway.charge(f"contract-{interaction['card']}", 1234, interaction["card"])
    assert charge.outcome == Outcome(interaction["outcome"]), f"{interaction['description']}: {charge}"
    if "detail" in interaction:
        assert charge.detail == interaction["detail"]
    if charge.outcome is Outcome.CHARGED:
        assert charge.charge_id


@pytest.mark.smoke
def test_the_gateway_stub_answers(gateway: PaymentGateway) -> None:
    assert gateway.charge("contract-smoke", 100, "tok_visa").outcome is Outcome.CHARGED

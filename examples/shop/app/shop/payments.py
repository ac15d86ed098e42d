"""The orders service's client of the payment gateway (a third party; a
WireMock stub in the test environment). What it sends and what it reads from
the answers is the consumer side of the contract the stub's mappings must
keep: `tests/contract` checks them against each other."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import httpx

CHARGES_PATH = "/v1/charges"


class Outcome(StrEnum):
    CHARGED = "charged"
    DECLINED = "declined"  # 402: the card was refused; final
    ERROR = "error"  # 5xx or an answer we cannot read
    TIMEOUT = "timeout"  # no answer within the client's timeout
    UNAVAILABLE = "unavailable"  # the connection failed or was reset


@dataclass(frozen=True)
class Charge:
    outcome: Outcome
    charge_id: str | None = None
    detail: str = ""


def charge_request(order_id: str, amount_cents: int, card: str, currency: str = "EUR") -> dict[str, Any]:
    return {"order_id": order_id, "amount": amount_cents, "currency": currency, "source": card}


def read_charge_response(status: int, body: Any) -> Charge:
    """What the client understands of the gateway's answer."""
    if status in (200, 201):
        if not isinstance(body, dict) or not isinstance(body.get("id"), str) or body.get("status") != "succeeded":
            return Charge(Outcome.ERROR, detail=f"unreadable charge: {body!r:.200}")
        return Charge(Outcome.CHARGED, charge_id=body["id"])
    if status == 402:
        error = body.get("error") if isinstance(body, dict) else None
        code = error.get("code") if isinstance(error, dict) else None
        if not isinstance(code, str):
            return Charge(Outcome.ERROR, detail=f"402 without error.code: {body!r:.200}")
        return Charge(Outcome.DECLINED, detail=code)
    return Charge(Outcome.ERROR, detail=f"gateway answered {status}")


class PaymentGateway:
    def __init__(self, base_url: str, timeout: float) -> None:
        self.client = httpx.Client(base_url=base_url, timeout=timeout)

    def charge(self, order_id: str, amount_cents: int, card: str) -> Charge:
        try:
            response = self.client.post(CHARGES_PATH, json=charge_request(order_id, amount_cents, card),
                                        headers={"Idempotency-Key": order_id})
        except httpx.TimeoutException:
            return Charge(Outcome.TIMEOUT, detail="no answer in time")
        except httpx.TransportError as exc:
            return Charge(Outcome.UNAVAILABLE, detail=exc.__class__.__name__)
        try:
            body = response.json()
        except ValueError:
            body = None
        return read_charge_response(response.status_code, body)

"""Apply bodies: UTF-8 JSON that the API server's YAML apply reader takes back
exactly (the round trip against the real API server is in the fuzz benchmark)."""

from __future__ import annotations

import json

import pytest
import yaml
from testenv.wire import apply_body


@pytest.mark.parametrize("value", ["smile \U0001F600", "T\u0087\u0082\u0015\u007f", "a\u0085b", "tab\tnl\n", "é"])
def test_the_body_reads_back_the_same_as_json_and_as_yaml(value: str) -> None:
    body = apply_body({"data": {"a": value}})
    assert json.loads(body) == {"data": {"a": value}}
    assert yaml.safe_load(body.decode()) == {"data": {"a": value}}


def test_characters_beyond_the_bmp_stay_raw_utf8_not_surrogate_escapes() -> None:
    assert apply_body("\U0001F600") == '"\U0001F600"'.encode()

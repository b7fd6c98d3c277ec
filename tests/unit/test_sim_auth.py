"""The simulator checks signed requests exactly as KuCoin does, with KuCoin's codes and HTTP 401."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

import pytest

from sim import DEMO_API_KEY, DEMO_API_PASSPHRASE, DEMO_API_SECRET
from tests.support.sim import SimHarness, running_sim, signer_for

ACCOUNTS = "/api/v1/accounts?type=trade"


@pytest.fixture
async def harness() -> AsyncIterator[SimHarness]:
    async with running_sim() as h:
        yield h


@pytest.mark.parametrize("version", [2, 3])
async def test_encrypted_passphrase_versions_accepted(harness: SimHarness, version: int) -> None:
    answer = await harness.call("GET", ACCOUNTS, signer=signer_for(DEMO_API_KEY, DEMO_API_SECRET,
                                                                    DEMO_API_PASSPHRASE, version))
    assert answer.status == 200
    usdt = [a for a in answer.data if a["currency"] == "USDT"]
    assert usdt == [{**usdt[0], "type": "trade", "available": "100000", "balance": "100000", "holds": "0"}]


async def test_version_1_sends_the_passphrase_plain(harness: SimHarness) -> None:
    plain = signer_for(DEMO_API_KEY, DEMO_API_SECRET, DEMO_API_PASSPHRASE, version=1)
    assert (await harness.call("GET", ACCOUNTS, signer=plain)).code == "200000"
    headers = harness.signer.headers("GET", ACCOUNTS)
    headers["KC-API-KEY-VERSION"] = "1"  # encrypted passphrase but version 1: refused
    answer = await harness.call("GET", ACCOUNTS, signed=False, headers=headers)
    assert (answer.status, answer.code) == (401, "400004")


@pytest.mark.parametrize("missing", ["KC-API-KEY", "KC-API-SIGN", "KC-API-TIMESTAMP", "KC-API-PASSPHRASE"])
async def test_missing_header(harness: SimHarness, missing: str) -> None:
    headers = harness.signer.headers("GET", ACCOUNTS)
    del headers[missing]
    answer = await harness.call("GET", ACCOUNTS, signed=False, headers=headers)
    assert (answer.status, answer.code) == (401, "400001")


@pytest.mark.parametrize("skew_ms", [-6000, 6000])
async def test_timestamp_outside_five_seconds(harness: SimHarness, skew_ms: int) -> None:
    headers = harness.signer.headers("GET", ACCOUNTS, timestamp_ms=int(time.time() * 1000) + skew_ms)
    answer = await harness.call("GET", ACCOUNTS, signed=False, headers=headers)
    assert (answer.status, answer.code, answer.body["msg"]) == (401, "400002", "Invalid KC-API-TIMESTAMP")


async def test_timestamp_inside_window_accepted(harness: SimHarness) -> None:
    headers = harness.signer.headers("GET", ACCOUNTS, timestamp_ms=int(time.time() * 1000) - 4000)
    assert (await harness.call("GET", ACCOUNTS, signed=False, headers=headers)).code == "200000"


async def test_unknown_key(harness: SimHarness) -> None:
    other = signer_for("someone-else", DEMO_API_SECRET, DEMO_API_PASSPHRASE)
    answer = await harness.call("GET", ACCOUNTS, signer=other)
    assert (answer.status, answer.code, answer.body["msg"]) == (401, "400003", "KC-API-KEY does not exist.")


async def test_bad_passphrase(harness: SimHarness) -> None:
    wrong = signer_for(DEMO_API_KEY, DEMO_API_SECRET, "not-the-passphrase")
    answer = await harness.call("GET", ACCOUNTS, signer=wrong)
    assert (answer.status, answer.code) == (401, "400004")


async def test_bad_sign_from_wrong_secret(harness: SimHarness) -> None:
    headers = signer_for(DEMO_API_KEY, "wrong-secret", DEMO_API_PASSPHRASE).headers("GET", ACCOUNTS)
    headers["KC-API-PASSPHRASE"] = harness.signer.headers("GET", ACCOUNTS)["KC-API-PASSPHRASE"]
    answer = await harness.call("GET", ACCOUNTS, signed=False, headers=headers)
    assert (answer.status, answer.code, answer.body["msg"]) == (401, "400005", "Invalid KC-API-SIGN")


async def test_signature_covers_raw_body_bytes(harness: SimHarness) -> None:
    signed_body = json.dumps({"symbol": "BTC-USDT", "side": "buy", "type": "market", "funds": "10"}).encode()
    sent_body = signed_body.replace(b": ", b":")  # same JSON, other bytes
    headers = harness.signer.headers("POST", "/api/v1/hf/orders", signed_body)
    answer = await harness.call("POST", "/api/v1/hf/orders", sent_body, signed=False, headers=headers)
    assert (answer.status, answer.code) == (401, "400005")
    assert harness.balance("USDT") == 100000  # nothing executed


async def test_signature_covers_raw_query(harness: SimHarness) -> None:
    headers = harness.signer.headers("GET", "/api/v1/accounts?type=trade&currency=BTC")
    answer = await harness.call("GET", "/api/v1/accounts?currency=BTC&type=trade", signed=False, headers=headers)
    assert answer.code == "400005"
    good = await harness.call("GET", "/api/v1/trade-fees?symbols=BTC-USDT,ETH-BTC")
    assert [fee["symbol"] for fee in good.data] == ["BTC-USDT", "ETH-BTC"]


async def test_signature_is_over_the_decoded_query_as_kucoins_sdk_signs_it(harness: SimHarness) -> None:
    # the official SDK signs `symbols=A,B` and sends `symbols=A%2CB`; KuCoin accepts it
    headers = harness.signer.headers("GET", "/api/v1/trade-fees?symbols=BTC-USDT,ETH-BTC")
    sent = "/api/v1/trade-fees?symbols=BTC-USDT%2CETH-BTC"
    answer = await harness.call("GET", sent, signed=False, headers=headers)
    assert [fee["symbol"] for fee in answer.data] == ["BTC-USDT", "ETH-BTC"]
    # signing the encoded form is signing something KuCoin never checks
    encoded = harness.signer.headers("GET", sent)
    assert (await harness.call("GET", sent, signed=False, headers=encoded)).code == "400005"


@pytest.mark.parametrize("version", ["4", "0", "two"])
async def test_bad_key_version(harness: SimHarness, version: str) -> None:
    headers = harness.signer.headers("GET", ACCOUNTS)
    headers["KC-API-KEY-VERSION"] = version
    answer = await harness.call("GET", ACCOUNTS, signed=False, headers=headers)
    assert (answer.status, answer.code) == (401, "400009")


async def test_public_endpoints_need_no_signature(harness: SimHarness) -> None:
    answer = await harness.call("GET", "/api/v1/timestamp", signed=False)
    assert abs(answer.data - time.time() * 1000) < 5000


async def test_unsigned_private_call_refused(harness: SimHarness) -> None:
    answer = await harness.call("POST", "/api/v1/bullet-private", signed=False)
    assert (answer.status, answer.code) == (401, "400001")


async def test_wrong_content_type_and_unknown_route(harness: SimHarness) -> None:
    body = json.dumps({"symbol": "BTC-USDT", "side": "buy", "type": "market", "funds": "10"}).encode()
    headers = harness.signer.headers("POST", "/api/v1/hf/orders", body)
    headers["Content-Type"] = "text/plain"
    answer = await harness.call("POST", "/api/v1/hf/orders", body, signed=False, headers=headers)
    assert (answer.status, answer.code) == (415, "415000")
    missing = await harness.call("GET", "/api/v1/no-such-thing")
    assert (missing.status, missing.code) == (404, "404000")

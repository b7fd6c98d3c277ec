"""error_from_response maps KuCoin codes and statuses to the exception a caller acts on."""

from __future__ import annotations

import pickle

import pytest

from shared.kucoin.errors import (
    AuthError,
    DuplicateClientOid,
    InsufficientBalance,
    InvalidOrder,
    KucoinError,
    RateLimited,
    ServerError,
    TransportError,
    UnknownOutcome,
    UnknownSymbol,
    error_from_response,
)
from shared.kucoin.errors import OrderNotFound


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        *((f"40000{n}", AuthError) for n in range(1, 10)),
        ("200004", InsufficientBalance),
        ("400100", InvalidOrder),
        ("600100", InvalidOrder),
        ("300000", InvalidOrder),
        ("400600", InvalidOrder),
        ("415000", InvalidOrder),
        ("126044", DuplicateClientOid),
        ("126043", OrderNotFound),
        ("900001", UnknownSymbol),
        ("429000", RateLimited),
        ("500000", ServerError),
        ("123456", KucoinError),
    ],
)
def test_code_maps_to_class(code: str, expected: type[KucoinError]) -> None:
    error = error_from_response(200, {"code": code, "msg": "m"}, {})
    assert type(error) is expected
    assert (error.code, error.msg, error.http_status) == (code, "m", 200)


def test_duplicate_client_oid_is_an_invalid_order() -> None:
    assert isinstance(error_from_response(200, {"code": "126044", "msg": "dup"}, {}), InvalidOrder)


def test_readable_str() -> None:
    error = error_from_response(200, {"code": "200004", "msg": "Insufficient balance."}, {})
    assert str(error) == "KuCoin 200004: Insufficient balance. (HTTP 200)"


def test_numeric_code_is_read_as_string() -> None:
    error = error_from_response(200, {"code": 900001, "msg": "symbol not exists"}, {})
    assert isinstance(error, UnknownSymbol) and error.code == "900001"


def test_http_401_without_code_is_auth_error() -> None:
    assert type(error_from_response(401, None, {})) is AuthError


def test_http_429_reads_rate_limit_headers() -> None:
    headers = {"gw-ratelimit-limit": "4000", "gw-ratelimit-remaining": "3", "gw-ratelimit-reset": "1234"}
    error = error_from_response(429, b"slow down", headers)
    assert isinstance(error, RateLimited)
    assert (error.reset_ms, error.limit, error.remaining, error.http_status) == (1234, 4000, 3, 429)
    assert "1234 ms" in str(error)


def test_rate_limited_without_headers_has_zero_reset() -> None:
    error = error_from_response(200, {"code": "429000", "msg": "Too Many Requests"}, {"gw-ratelimit-reset": "x"})
    assert isinstance(error, RateLimited)
    assert (error.reset_ms, error.limit, error.remaining) == (0, None, None)


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_with_unknown_or_no_code_is_server_error(status: int) -> None:
    assert type(error_from_response(status, b"<html>", {})) is ServerError
    assert type(error_from_response(status, {"code": "777777", "msg": "?"}, {})) is ServerError


@pytest.mark.parametrize("payload", [None, b"\x00garbage", ["a list"], {"msg": "no code"}, "text"])
def test_unparseable_body_is_server_error(payload: object) -> None:
    error = error_from_response(200, payload, {})
    assert type(error) is ServerError and error.code == ""


def test_unknown_outcome_names_its_client_oid() -> None:
    error = UnknownOutcome("tri-7", "POST /api/v1/hf/orders: timed out", 0)
    assert error.client_oid == "tri-7"
    assert "tri-7" in str(error) and "do not retry" in str(error)


def test_errors_survive_pickling_between_processes() -> None:
    outcome = pickle.loads(pickle.dumps(UnknownOutcome("tri-8", "timeout", 503, "500000")))
    assert type(outcome) is UnknownOutcome
    assert (outcome.client_oid, outcome.msg, outcome.http_status, outcome.code) == ("tri-8", "timeout", 503, "500000")
    limited = pickle.loads(pickle.dumps(RateLimited("429000", "busy", reset_ms=900, limit=10, remaining=0)))
    assert (limited.reset_ms, limited.limit, limited.remaining, limited.code) == (900, 10, 0, "429000")


def test_local_errors_have_no_code_or_status_in_str() -> None:
    assert str(TransportError("", "GET /x: reset")) == "KuCoin: GET /x: reset"


@pytest.mark.parametrize(("code", "msg"), [("126043", "Order does not exist"), ("400100", "order not exist.")])
def test_both_order_not_exist_answers_mean_no_such_order(code: str, msg: str) -> None:
    error = error_from_response(200, {"code": code, "msg": msg}, {})
    assert isinstance(error, OrderNotFound) and isinstance(error, InvalidOrder)


def test_other_parameter_errors_are_not_order_not_found() -> None:
    error = error_from_response(200, {"code": "400100", "msg": "Order size increment invalid."}, {})
    assert type(error) is InvalidOrder

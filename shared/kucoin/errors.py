"""KuCoin failures as a small exception hierarchy, one class per thing a caller does differently.

KuCoin reports business errors inside a 200 envelope (`{"code": "200004", "msg": ...}`), so the
mapping keys on `code` first and uses the HTTP status only where the code says nothing (429,
401, 5xx, a body that is not an envelope). Every `__str__` reads on its own in a log line:
``KuCoin 200004: Insufficient balance. (HTTP 200)``.

`UnknownOutcome` is the one that matters most: a placement whose result we could not see may or
may not have created an order, so the only safe follow-up is a query by clientOid — a retry
could trade twice.
"""

from __future__ import annotations

from collections.abc import Mapping

from shared.kucoin.constants import (
    AUTH_CODES,
    DUPLICATE_CLIENT_OID,
    FUNDS_BELOW_MINIMUM,
    INSUFFICIENT_BALANCE,
    INTERNAL_ERROR,
    INVALID_AMOUNT,
    NOT_TRADING,
    ORDER_NOT_EXIST,
    PARAMETER_ERROR,
    PARAMETER_ORDER_NOT_EXIST_MSG,
    RATE_LIMIT_LIMIT_HEADER,
    RATE_LIMIT_REMAINING_HEADER,
    RATE_LIMIT_RESET_HEADER,
    TOO_MANY_REQUESTS,
    UNKNOWN_SYMBOL,
    UNSUPPORTED_MEDIA_TYPE,
)

__all__ = [
    "KucoinError",
    "AuthError",
    "RateLimited",
    "InsufficientBalance",
    "InvalidOrder",
    "DuplicateClientOid",
    "OrderNotFound",
    "UnknownSymbol",
    "ServerError",
    "UnknownOutcome",
    "TransportError",
    "error_from_response",
]


class KucoinError(Exception):
    """Any failed KuCoin call; `code` is KuCoin's 6-digit string ("" when none was received)."""

    def __init__(self, code: str, msg: str, http_status: int = 0) -> None:
        super().__init__(code, msg, http_status)
        self.code = code
        self.msg = msg
        self.http_status = http_status

    def __str__(self) -> str:
        head = f"KuCoin {self.code}: " if self.code else "KuCoin: "
        tail = f" (HTTP {self.http_status})" if self.http_status else ""
        return f"{head}{self.msg}{tail}"


class AuthError(KucoinError):
    """Key, signature, passphrase, timestamp or permission refused (400001-400009, HTTP 401),
    or a private call attempted without credentials. Retrying will not help; fix the setup."""


class RateLimited(KucoinError):
    """The account's 30 s weight pool is spent (429000 / HTTP 429); wait `reset_ms` before more.

    The pool is shared by every worker on the account, so `limit`/`remaining` are the
    exchange's view, not this process's. They are None when the gateway did not send them.
    """

    def __init__(
        self,
        code: str,
        msg: str,
        http_status: int = 429,
        *,
        reset_ms: int = 0,
        limit: int | None = None,
        remaining: int | None = None,
    ) -> None:
        super().__init__(code, msg, http_status)
        self.reset_ms = reset_ms
        self.limit = limit
        self.remaining = remaining

    def __str__(self) -> str:
        return f"{super().__str__()} [reset in {self.reset_ms} ms]"


class InsufficientBalance(KucoinError):
    """200004: the TRADE account cannot cover the order (the order was not placed)."""


class InvalidOrder(KucoinError):
    """The exchange rejected the order's parameters (size/funds/increment/minimum, pair not
    trading, content type); the order was not placed."""


class OrderNotFound(InvalidOrder):
    """126043 `Order does not exist` (HF), or 400100 `order not exist.`: no such order, so a
    placement whose answer was lost and that a query does not find was never placed."""


class DuplicateClientOid(InvalidOrder):
    """126044: the clientOid was used before — the earlier order with it is the real one."""


class UnknownSymbol(KucoinError):
    """900001: the symbol does not exist on the exchange."""


class ServerError(KucoinError):
    """HTTP 5xx, KuCoin's own 500000, or a body that is not a KuCoin envelope."""


class UnknownOutcome(KucoinError):
    """A placement whose result is unknown (timeout, dropped connection, 5xx after sending).

    The order may exist. Resolve it with a query by `client_oid`; NEVER retry the placement.
    """

    def __init__(self, client_oid: str, msg: str, http_status: int = 0, code: str = "") -> None:
        super().__init__(code, msg, http_status)
        self.args = (client_oid, msg, http_status, code)  # so pickling rebuilds it (workers are processes)
        self.client_oid = client_oid

    def __str__(self) -> str:
        return (
            f"{super().__str__()} — outcome of clientOid {self.client_oid} unknown: "
            "query it by clientOid, do not retry"
        )


class TransportError(KucoinError):
    """A call whose request failed below HTTP (timeout, reset, refused) and that placed nothing:
    any non-placement call, or a placement whose connection could not even be opened."""


_CODE_CLASSES: dict[str, type[KucoinError]] = {
    INSUFFICIENT_BALANCE: InsufficientBalance,
    PARAMETER_ERROR: InvalidOrder,
    FUNDS_BELOW_MINIMUM: InvalidOrder,
    INVALID_AMOUNT: InvalidOrder,
    NOT_TRADING: InvalidOrder,
    UNSUPPORTED_MEDIA_TYPE: InvalidOrder,
    DUPLICATE_CLIENT_OID: DuplicateClientOid,
    ORDER_NOT_EXIST: OrderNotFound,
    UNKNOWN_SYMBOL: UnknownSymbol,
    INTERNAL_ERROR: ServerError,
}


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def error_from_response(http_status: int, payload: object, headers: Mapping[str, str]) -> KucoinError:
    """The exception for a response that is not a success envelope.

    `payload` is the decoded JSON body, or anything else (None, bytes) when it did not decode
    as an object; such bodies come from proxies and gateways, not KuCoin, hence ServerError.
    """
    if isinstance(payload, Mapping) and "code" in payload:
        code = str(payload["code"])
        msg = str(payload.get("msg") or "")
    else:
        code, msg = "", f"unparseable response body: {payload!r:.200}"
    if code == TOO_MANY_REQUESTS or http_status == 429:
        return RateLimited(
            code,
            msg or "Too Many Requests",
            http_status,
            reset_ms=_int_header(headers, RATE_LIMIT_RESET_HEADER) or 0,
            limit=_int_header(headers, RATE_LIMIT_LIMIT_HEADER),
            remaining=_int_header(headers, RATE_LIMIT_REMAINING_HEADER),
        )
    if code in AUTH_CODES or http_status == 401:
        return AuthError(code, msg, http_status)
    if code == PARAMETER_ERROR and msg.strip().lower() == PARAMETER_ORDER_NOT_EXIST_MSG:
        return OrderNotFound(code, msg, http_status)
    known = _CODE_CLASSES.get(code)
    if known is not None:
        return known(code, msg, http_status)
    if http_status >= 500 or not code:
        return ServerError(code, msg, http_status)
    return KucoinError(code, msg, http_status)

"""KuCoin error messages and HTTP statuses, as the simulator answers them (codes: shared.kucoin.constants).

Clients key on the 6-digit `code`, never on the HTTP status alone, so every refusal goes
through `KucoinError` and one table of messages; the `reject` knob reuses the table to answer
any code "with its message". Messages follow the API notes; where the notes are silent the
wording is KuCoin-like and marked as the simulator's choice.
"""

from __future__ import annotations

from shared.kucoin.constants import (
    BAD_KEY_VERSION,
    BAD_PASSPHRASE,
    BAD_REQUEST,
    BAD_SIGN,
    BAD_TIMESTAMP,
    DUPLICATE_CLIENT_OID,
    FUNDS_BELOW_MINIMUM,
    INSUFFICIENT_BALANCE,
    INTERNAL_ERROR,
    INVALID_AMOUNT,
    IP_NOT_WHITELISTED,
    METHOD_NOT_ALLOWED,
    MISSING_HEADER,
    NO_PERMISSION,
    NOT_TRADING,
    PARAMETER_ERROR,
    TOO_MANY_REQUESTS,
    UNKNOWN_KEY,
    UNKNOWN_SYMBOL,
    UNSUPPORTED_MEDIA_TYPE,
    URL_NOT_FOUND,
)

__all__ = ["KucoinError", "message_for", "http_status_for"]

_MESSAGES: dict[str, str] = {
    MISSING_HEADER: "Please check the header of your request for KC-API-KEY, KC-API-SIGN, "
    "KC-API-TIMESTAMP, KC-API-PASSPHRASE",
    BAD_TIMESTAMP: "Invalid KC-API-TIMESTAMP",
    UNKNOWN_KEY: "KC-API-KEY does not exist.",
    BAD_PASSPHRASE: "Invalid KC-API-PASSPHRASE",
    BAD_SIGN: "Invalid KC-API-SIGN",
    IP_NOT_WHITELISTED: "Invalid request ip, the current clientIp is not in the whitelist.",
    NO_PERMISSION: "Access denied, requires more permission.",
    BAD_KEY_VERSION: "Invalid KC-API-KEY-VERSION",
    BAD_REQUEST: "Bad Request",
    PARAMETER_ERROR: "Parameter Error",
    INSUFFICIENT_BALANCE: "Insufficient balance.",
    INVALID_AMOUNT: "Order size invalid.",
    FUNDS_BELOW_MINIMUM: "Funds below the minimum requirement.",
    UNKNOWN_SYMBOL: "symbol not exists",
    NOT_TRADING: "validation.createOrder.symbolNotAvailable",
    DUPLICATE_CLIENT_OID: "clientOid duplicate",
    TOO_MANY_REQUESTS: "Too Many Requests",
    UNSUPPORTED_MEDIA_TYPE: "Unsupported Media Type",
    URL_NOT_FOUND: "Url Not Found.",
    METHOD_NOT_ALLOWED: "Method Not Allowed.",
    INTERNAL_ERROR: "Internal Server Error.",
}

_AUTH_CODES = frozenset({MISSING_HEADER, BAD_TIMESTAMP, UNKNOWN_KEY, BAD_PASSPHRASE, BAD_SIGN, IP_NOT_WHITELISTED,
                         NO_PERMISSION, BAD_KEY_VERSION})
_HTTP_STATUS = {
    BAD_REQUEST: 400,
    TOO_MANY_REQUESTS: 429,
    UNSUPPORTED_MEDIA_TYPE: 415,
    URL_NOT_FOUND: 404,
    METHOD_NOT_ALLOWED: 405,
    INTERNAL_ERROR: 500,
}


def message_for(code: str) -> str:
    """KuCoin's message for `code`; unknown codes get a neutral text rather than an empty one."""
    return _MESSAGES.get(code, "Request rejected.")


def http_status_for(code: str) -> int:
    """Auth failures are 401 and gateway errors keep their HTTP status; business errors are 200."""
    if code in _AUTH_CODES:
        return 401
    return _HTTP_STATUS.get(code, 200)


class KucoinError(Exception):
    """A refusal answered as `{"code": code, "msg": msg}`; the HTTP status follows the code."""

    def __init__(self, code: str, msg: str | None = None) -> None:
        self.code = code
        self.msg = msg if msg is not None else message_for(code)
        self.http_status = http_status_for(code)
        super().__init__(f"{code} {self.msg}")

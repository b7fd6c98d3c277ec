"""KuCoin error codes and messages, as the simulator answers them.

Clients key on the 6-digit `code`, never on the HTTP status alone, so every refusal goes
through `KucoinError` and one table of messages; the `reject` knob reuses the table to answer
any code "with its message". Messages follow the API notes; where the notes are silent the
wording is KuCoin-like and marked as the simulator's choice.
"""

from __future__ import annotations

__all__ = [
    "KucoinError",
    "message_for",
    "http_status_for",
    "SUCCESS",
    "MISSING_HEADER",
    "BAD_TIMESTAMP",
    "UNKNOWN_KEY",
    "BAD_PASSPHRASE",
    "BAD_SIGN",
    "BAD_KEY_VERSION",
    "BAD_REQUEST",
    "PARAMETER_ERROR",
    "INSUFFICIENT_BALANCE",
    "INVALID_AMOUNT",
    "FUNDS_BELOW_MINIMUM",
    "UNKNOWN_SYMBOL",
    "NOT_TRADING",
    "DUPLICATE_CLIENT_OID",
    "TOO_MANY_REQUESTS",
    "UNSUPPORTED_MEDIA_TYPE",
    "URL_NOT_FOUND",
    "METHOD_NOT_ALLOWED",
    "INTERNAL_ERROR",
]

SUCCESS = "200000"
MISSING_HEADER = "400001"
BAD_TIMESTAMP = "400002"
UNKNOWN_KEY = "400003"
BAD_PASSPHRASE = "400004"
BAD_SIGN = "400005"
BAD_KEY_VERSION = "400009"
BAD_REQUEST = "400000"
PARAMETER_ERROR = "400100"
INSUFFICIENT_BALANCE = "200004"
INVALID_AMOUNT = "300000"
FUNDS_BELOW_MINIMUM = "600100"
UNKNOWN_SYMBOL = "900001"
NOT_TRADING = "400600"
DUPLICATE_CLIENT_OID = "126044"
TOO_MANY_REQUESTS = "429000"
UNSUPPORTED_MEDIA_TYPE = "415000"
URL_NOT_FOUND = "404000"
METHOD_NOT_ALLOWED = "405000"
INTERNAL_ERROR = "500000"

_MESSAGES: dict[str, str] = {
    MISSING_HEADER: "Please check the header of your request for KC-API-KEY, KC-API-SIGN, "
    "KC-API-TIMESTAMP, KC-API-PASSPHRASE",
    BAD_TIMESTAMP: "Invalid KC-API-TIMESTAMP",
    UNKNOWN_KEY: "KC-API-KEY does not exist.",
    BAD_PASSPHRASE: "Invalid KC-API-PASSPHRASE",
    BAD_SIGN: "Invalid KC-API-SIGN",
    "400006": "Invalid request ip, the current clientIp is not in the whitelist.",
    "400007": "Access denied, requires more permission.",
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

_AUTH_CODES = frozenset({MISSING_HEADER, BAD_TIMESTAMP, UNKNOWN_KEY, BAD_PASSPHRASE, BAD_SIGN, "400006", "400007",
                         BAD_KEY_VERSION})
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

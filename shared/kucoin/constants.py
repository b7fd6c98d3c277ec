"""Every KuCoin fact that the client and the simulator must agree on, in one place.

REST routes (method, path, rate-limit pool, weight, signed or not), the resource pools and their
VIP0 quotas, the `gw-ratelimit-*` and `KC-API-*` header names, error codes, and the private
WebSocket's topics. The client (`shared/kucoin/rest.py`, `errors.py`, `ws.py`) and the simulator
(`sim/`) both read these, so a path or code cannot drift between the two. Source: the API notes
(kucoin-api.md).

This module imports nothing, so the simulator can read it without loading the client; the
signing itself is deliberately NOT shared (each side implements it from the notes).
"""

from __future__ import annotations

from dataclasses import dataclass

# -- resource pools (KuCoin VIP0 quotas per 30 s window) -------------------------------------

SPOT_POOL = "spot"  # private trading calls, per account
PUBLIC_POOL = "public"  # per IP
MANAGEMENT_POOL = "management"  # accounts
SPOT_POOL_LIMIT = 4000
PUBLIC_POOL_LIMIT = 2000
MANAGEMENT_POOL_LIMIT = 2000
RATE_WINDOW_MS = 30_000

RATE_LIMIT_LIMIT_HEADER = "gw-ratelimit-limit"
RATE_LIMIT_REMAINING_HEADER = "gw-ratelimit-remaining"
RATE_LIMIT_RESET_HEADER = "gw-ratelimit-reset"  # ms until the window resets

# -- signed-request headers ------------------------------------------------------------------

API_KEY_HEADER = "KC-API-KEY"
API_SIGN_HEADER = "KC-API-SIGN"
API_TIMESTAMP_HEADER = "KC-API-TIMESTAMP"
API_PASSPHRASE_HEADER = "KC-API-PASSPHRASE"
API_KEY_VERSION_HEADER = "KC-API-KEY-VERSION"
TIMESTAMP_WINDOW_MS = 5_000  # signed calls further than this from server time are refused


# -- REST routes -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Route:
    """One REST endpoint; `path` uses `{name}` for path parameters (aiohttp's route syntax)."""

    method: str
    path: str
    pool: str
    weight: int
    private: bool


PLACE_ORDER = Route("POST", "/api/v1/hf/orders", SPOT_POOL, 1, True)
PLACE_ORDER_TEST = Route("POST", "/api/v1/hf/orders/test", SPOT_POOL, 1, True)
PLACE_ORDER_SYNC = Route("POST", "/api/v1/hf/orders/sync", SPOT_POOL, 1, True)
GET_ORDER_BY_CLIENT_OID = Route("GET", "/api/v1/hf/orders/client-order/{clientOid}", SPOT_POOL, 2, True)
GET_ORDER = Route("GET", "/api/v1/hf/orders/{orderId}", SPOT_POOL, 2, True)
CANCEL_ORDER = Route("DELETE", "/api/v1/hf/orders/{orderId}", SPOT_POOL, 1, True)
TRADE_FEES = Route("GET", "/api/v1/trade-fees", SPOT_POOL, 3, True)
ACCOUNTS = Route("GET", "/api/v1/accounts", MANAGEMENT_POOL, 5, True)
BULLET_PRIVATE = Route("POST", "/api/v1/bullet-private", SPOT_POOL, 10, True)
SYMBOLS = Route("GET", "/api/v2/symbols", PUBLIC_POOL, 4, False)
ORDER_BOOK_20 = Route("GET", "/api/v1/market/orderbook/level2_20", PUBLIC_POOL, 2, False)
ORDER_BOOK_100 = Route("GET", "/api/v1/market/orderbook/level2_100", PUBLIC_POOL, 4, False)
SERVER_TIME = Route("GET", "/api/v1/timestamp", PUBLIC_POOL, 3, False)

ORDER_BOOKS = {20: ORDER_BOOK_20, 100: ORDER_BOOK_100}  # by depth
MAX_TRADE_FEE_SYMBOLS = 10  # trade-fees takes at most this many symbols per call

# -- response codes --------------------------------------------------------------------------

SUCCESS = "200000"
# auth (HTTP 401)
MISSING_HEADER = "400001"
BAD_TIMESTAMP = "400002"
UNKNOWN_KEY = "400003"
BAD_PASSPHRASE = "400004"
BAD_SIGN = "400005"
IP_NOT_WHITELISTED = "400006"
NO_PERMISSION = "400007"
BAD_KEY_VERSION = "400009"
AUTH_CODES = frozenset(f"40000{n}" for n in range(1, 10))
# request and order
BAD_REQUEST = "400000"
PARAMETER_ERROR = "400100"
INSUFFICIENT_BALANCE = "200004"
INVALID_AMOUNT = "300000"
FUNDS_BELOW_MINIMUM = "600100"
UNKNOWN_SYMBOL = "900001"
NOT_TRADING = "400600"
DUPLICATE_CLIENT_OID = "126044"
# "this order does not exist": HF's own code, or the generic parameter error with this message;
# both mean the order was never placed
ORDER_NOT_EXIST = "126043"
ORDER_NOT_EXIST_MSG = "Order does not exist"
PARAMETER_ORDER_NOT_EXIST_MSG = "order not exist."
# gateway
TOO_MANY_REQUESTS = "429000"
UNSUPPORTED_MEDIA_TYPE = "415000"
URL_NOT_FOUND = "404000"
METHOD_NOT_ALLOWED = "405000"
INTERNAL_ERROR = "500000"

# -- private WebSocket -----------------------------------------------------------------------

ORDER_TOPIC = "/spotMarket/tradeOrdersV2"
BALANCE_TOPIC = "/account/balance"
TOPIC_SUBJECTS = {ORDER_TOPIC: "orderChange", BALANCE_TOPIC: "account.balance"}

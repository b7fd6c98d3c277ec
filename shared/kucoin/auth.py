"""KuCoin request signing, exactly as the exchange verifies it.

`prehash = timestamp + METHOD + path(+?query) + body`; the signature and (for key versions 2/3)
the passphrase are base64(HMAC-SHA256(secret, ·)). The simulator verifies with its own
implementation (`sim/auth.py`), so the four vectors from the API notes pin both sides.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

from shared.credentials import Credentials
from shared.kucoin.constants import (
    API_KEY_HEADER,
    API_KEY_VERSION_HEADER,
    API_PASSPHRASE_HEADER,
    API_SIGN_HEADER,
    API_TIMESTAMP_HEADER,
)

__all__ = ["sign", "encrypt_passphrase", "prehash", "Signer"]


def sign(secret: str, message: str | bytes) -> str:
    """base64(HMAC-SHA256(secret, message))."""
    if isinstance(message, str):
        message = message.encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def encrypt_passphrase(secret: str, passphrase: str) -> str:
    """The KC-API-PASSPHRASE header value for key versions 2 and 3."""
    return sign(secret, passphrase)


def prehash(timestamp_ms: int | str, method: str, path_with_query: str, body: bytes | str = b"") -> bytes:
    """The exact bytes KuCoin signs; `body` is the raw JSON sent (empty for GET/DELETE)."""
    if isinstance(body, str):
        body = body.encode()
    return f"{timestamp_ms}{method.upper()}{path_with_query}".encode() + body


class Signer:
    """Builds signed headers; the encrypted passphrase is computed once, not per request."""

    __slots__ = ("_key", "_secret", "_passphrase_header", "_version")

    def __init__(self, credentials: Credentials) -> None:
        self._key = credentials.api_key
        self._secret = credentials.api_secret.encode()
        self._version = str(credentials.key_version)
        if credentials.key_version >= 2:
            self._passphrase_header = encrypt_passphrase(credentials.api_secret, credentials.api_passphrase)
        else:
            self._passphrase_header = credentials.api_passphrase

    def headers(
        self, method: str, path_with_query: str, body: bytes = b"", timestamp_ms: int | None = None
    ) -> dict[str, str]:
        """Headers for one private call; `timestamp_ms` defaults to the local wall clock."""
        ts = str(timestamp_ms if timestamp_ms is not None else int(time.time() * 1000))
        mac = hmac.new(self._secret, prehash(ts, method, path_with_query, body), hashlib.sha256)
        return {
            API_KEY_HEADER: self._key,
            API_SIGN_HEADER: base64.b64encode(mac.digest()).decode(),
            API_TIMESTAMP_HEADER: ts,
            API_PASSPHRASE_HEADER: self._passphrase_header,
            API_KEY_VERSION_HEADER: self._version,
            "Content-Type": "application/json",
        }

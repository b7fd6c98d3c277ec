"""Verifying KuCoin-signed requests exactly as the exchange does.

The signature is checked over the raw path and query as received and the raw body bytes, so a
client that signs one serialisation and sends another is caught, as it would be on KuCoin.
The key version comes from `KC-API-KEY-VERSION` (absent means 1, as for keys created before
the header existed): version 1 sends the passphrase plain, versions 2 and 3 send it as
base64(HMAC-SHA256(secret, passphrase)). Checks run in this order: missing header (400001),
key version (400009), timestamp within the window (400002), key (400003), passphrase (400004),
signature (400005).
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from shared.credentials import Credentials
from shared.kucoin.auth import encrypt_passphrase, prehash, sign
from sim.errors import (
    BAD_KEY_VERSION,
    BAD_PASSPHRASE,
    BAD_SIGN,
    BAD_TIMESTAMP,
    MISSING_HEADER,
    UNKNOWN_KEY,
    KucoinError,
)

__all__ = ["Verifier"]

_REQUIRED = ("KC-API-KEY", "KC-API-SIGN", "KC-API-TIMESTAMP", "KC-API-PASSPHRASE")
_VERSIONS = frozenset({"1", "2", "3"})


class Verifier:
    """Checks one account's signed requests; the encrypted passphrase is computed once."""

    __slots__ = ("_credentials", "_encrypted_passphrase", "_window_ms")

    def __init__(self, credentials: Credentials, window_ms: int) -> None:
        self._credentials = credentials
        self._encrypted_passphrase = encrypt_passphrase(credentials.api_secret, credentials.api_passphrase)
        self._window_ms = window_ms

    def verify(self, headers: Mapping[str, str], method: str, raw_path: str, body: bytes, now_ms: int) -> None:
        """Raise KucoinError (HTTP 401) unless the request is signed by this account's key."""
        values = [headers.get(name) for name in _REQUIRED]
        if not all(values):
            raise KucoinError(MISSING_HEADER)
        key, signature, timestamp, passphrase = values
        version = headers.get("KC-API-KEY-VERSION", "1")
        if version not in _VERSIONS:
            raise KucoinError(BAD_KEY_VERSION)
        if not (timestamp.isascii() and timestamp.isdigit()) or abs(int(timestamp) - now_ms) > self._window_ms:
            raise KucoinError(BAD_TIMESTAMP)
        if not hmac.compare_digest(key.encode(), self._credentials.api_key.encode()):
            raise KucoinError(UNKNOWN_KEY)
        expected_passphrase = self._credentials.api_passphrase if version == "1" else self._encrypted_passphrase
        if not hmac.compare_digest(passphrase.encode(), expected_passphrase.encode()):
            raise KucoinError(BAD_PASSPHRASE)
        expected_sign = sign(self._credentials.api_secret, prehash(timestamp, method, raw_path, body))
        if not hmac.compare_digest(signature.encode(), expected_sign.encode()):
            raise KucoinError(BAD_SIGN)

"""Verifying KuCoin-signed requests exactly as the exchange does, independently of the client.

This is the simulator's own implementation of KuCoin's check, written from the API notes and
sharing no code with the client's signer (`shared/kucoin/auth.py`): a signing bug in one then
shows up as a refusal by the other, and the notes' four test vectors pin both.

KuCoin signs `timestamp + METHOD + path(?query) + body` with HMAC-SHA256 keyed by the API secret,
base64-encoded. The signature is checked over the path as received, the query URL-*decoded*
(KuCoin's own SDK signs `symbols=A,B` and sends `symbols=A%2CB`; the exchange accepts it) and
the raw body bytes, so a client that signs one body and sends another is caught, as it would be
on KuCoin. The key version comes from `KC-API-KEY-VERSION` (absent means 1, as for keys
created before the header existed): version 1 sends the passphrase plain, versions 2 and 3
send it as base64(HMAC-SHA256(secret, passphrase)). Checks run in this order: missing header
(400001), key version (400009), timestamp within the window (400002), key (400003), passphrase
(400004), signature (400005).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from urllib.parse import unquote

from shared.credentials import Credentials
from shared.kucoin.constants import (
    API_KEY_HEADER,
    API_KEY_VERSION_HEADER,
    API_PASSPHRASE_HEADER,
    API_SIGN_HEADER,
    API_TIMESTAMP_HEADER,
    BAD_KEY_VERSION,
    BAD_PASSPHRASE,
    BAD_SIGN,
    BAD_TIMESTAMP,
    MISSING_HEADER,
    UNKNOWN_KEY,
)
from sim.errors import KucoinError

__all__ = ["Verifier", "expected_signature", "expected_passphrase"]

_REQUIRED = (API_KEY_HEADER, API_SIGN_HEADER, API_TIMESTAMP_HEADER, API_PASSPHRASE_HEADER)
_VERSIONS = frozenset({"1", "2", "3"})


def _hmac_b64(secret: str, message: bytes) -> str:
    return base64.b64encode(hmac.digest(secret.encode(), message, hashlib.sha256)).decode()


def signed_path(raw_path: str) -> str:
    """What KuCoin signs of a request target: the path as sent and its query percent-decoded."""
    path, mark, query = raw_path.partition("?")
    return path + mark + unquote(query) if mark else path


def expected_signature(secret: str, timestamp: str, method: str, raw_path: str, body: bytes) -> str:
    """The KC-API-SIGN KuCoin expects for a request with these raw parts."""
    return _hmac_b64(secret, (timestamp + method.upper() + raw_path).encode() + body)


def expected_passphrase(secret: str, passphrase: str, key_version: str) -> str:
    """The KC-API-PASSPHRASE KuCoin expects: plain for version 1, encrypted for 2 and 3."""
    return passphrase if key_version == "1" else _hmac_b64(secret, passphrase.encode())


class Verifier:
    """Checks one account's signed requests; the encrypted passphrase is computed once."""

    __slots__ = ("_credentials", "_encrypted_passphrase", "_window_ms")

    def __init__(self, credentials: Credentials, window_ms: int) -> None:
        self._credentials = credentials
        self._encrypted_passphrase = expected_passphrase(credentials.api_secret, credentials.api_passphrase, "2")
        self._window_ms = window_ms

    def verify(self, headers: Mapping[str, str], method: str, raw_path: str, body: bytes, now_ms: int) -> None:
        """Raise KucoinError (HTTP 401) unless the request is signed by this account's key."""
        values = [headers.get(name) for name in _REQUIRED]
        if not all(values):
            raise KucoinError(MISSING_HEADER)
        key, signature, timestamp, passphrase = values
        version = headers.get(API_KEY_VERSION_HEADER, "1")
        if version not in _VERSIONS:
            raise KucoinError(BAD_KEY_VERSION)
        if not (timestamp.isascii() and timestamp.isdigit()) or abs(int(timestamp) - now_ms) > self._window_ms:
            raise KucoinError(BAD_TIMESTAMP)
        if not hmac.compare_digest(key.encode(), self._credentials.api_key.encode()):
            raise KucoinError(UNKNOWN_KEY)
        wanted_passphrase = self._credentials.api_passphrase if version == "1" else self._encrypted_passphrase
        if not hmac.compare_digest(passphrase.encode(), wanted_passphrase.encode()):
            raise KucoinError(BAD_PASSPHRASE)
        wanted_sign = expected_signature(self._credentials.api_secret, timestamp, method, signed_path(raw_path), body)
        if not hmac.compare_digest(signature.encode(), wanted_sign.encode()):
            raise KucoinError(BAD_SIGN)

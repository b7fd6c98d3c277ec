"""The four signing vectors from the KuCoin API notes, verbatim."""

import pytest

from shared.credentials import Credentials
from shared.kucoin.auth import Signer, encrypt_passphrase, prehash, sign

SECRET = "a1b2c3d4-e5f6-7890-abcd-ef1234567890"


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (
            '1700000000000POST/api/v1/hf/orders{"clientOid":"tri-0001","side":"buy","symbol":"BTC-USDT",'
            '"type":"market","funds":"100"}',
            "XcEjpRu5r3slzferaOcg1sg+1GqWb/G9rSATqSQ1Me0=",
        ),
        (
            "1700000000123GET/api/v1/hf/orders/client-order/tri-0001?symbol=BTC-USDT",
            "L6rKnNmwpFA7l98hODsUJvLy/nTfTyKS2AlOFRZHD5Y=",
        ),
        ("1700000000456POST/api/v1/bullet-private", "vV/RhMIytn5ePQ+35oBXueu2aXBn3wTxnXdwAx3zsUI="),
    ],
)
def test_signature_vectors(message: str, expected: str) -> None:
    assert sign(SECRET, message) == expected


def test_vector_four_and_passphrases() -> None:
    assert sign("secret", "1700000000000GET/api/v1/accounts") == "ka2jGwVPj+HJ5t7L4fEM4HttekAXENIQpmo8ulfZmV8="
    assert encrypt_passphrase("secret", "pass") == "5sWmbVCOKjHTC6QsbNtTLaVSV6j3Lytz0LaHyiow0EE="
    assert encrypt_passphrase(SECRET, "MyPassphrase123") == "9tqIJtSeIaRxPqfJLqcjaP7Qmm3NHUcwCbV40A7rdYU="


@pytest.mark.parametrize("version", [2, 3])
def test_signer_headers_match_vector(version: int) -> None:
    signer = Signer(Credentials("k", SECRET, "MyPassphrase123", key_version=version))
    body = b'{"clientOid":"tri-0001","side":"buy","symbol":"BTC-USDT","type":"market","funds":"100"}'
    headers = signer.headers("POST", "/api/v1/hf/orders", body, timestamp_ms=1700000000000)
    assert headers["KC-API-SIGN"] == "XcEjpRu5r3slzferaOcg1sg+1GqWb/G9rSATqSQ1Me0="
    assert headers["KC-API-PASSPHRASE"] == "9tqIJtSeIaRxPqfJLqcjaP7Qmm3NHUcwCbV40A7rdYU="
    assert headers["KC-API-KEY-VERSION"] == str(version)
    assert headers["KC-API-TIMESTAMP"] == "1700000000000"


def test_prehash_layout() -> None:
    assert prehash(1, "get", "/a?b=c") == b"1GET/a?b=c"


def test_credentials_repr_hides_secrets() -> None:
    creds = Credentials("key-123456", "s3cr3t-value", "pp-value")
    assert "s3cr3t-value" not in repr(creds) and "pp-value" not in repr(creds)

"""The four signing vectors from the KuCoin API notes, verbatim, against BOTH implementations.

The client signs (`shared.kucoin.auth`) and the simulator verifies (`sim.auth`) with code that
shares nothing, so each is checked here against the notes rather than against the other.
"""

import pytest

from shared.credentials import Credentials
from shared.kucoin.auth import Signer, encrypt_passphrase, prehash, sign
from sim.auth import Verifier, expected_passphrase, expected_signature
from sim.errors import KucoinError

SECRET = "a1b2c3d4-e5f6-7890-abcd-ef1234567890"
PASSPHRASE = "MyPassphrase123"
ENCRYPTED_PASSPHRASE = "9tqIJtSeIaRxPqfJLqcjaP7Qmm3NHUcwCbV40A7rdYU="

# (secret, passphrase, its encryption, timestamp, method, path with query, body, signature)
VECTORS = [
    (SECRET, PASSPHRASE, ENCRYPTED_PASSPHRASE, "1700000000000", "POST", "/api/v1/hf/orders",
     b'{"clientOid":"tri-0001","side":"buy","symbol":"BTC-USDT","type":"market","funds":"100"}',
     "XcEjpRu5r3slzferaOcg1sg+1GqWb/G9rSATqSQ1Me0="),
    (SECRET, PASSPHRASE, ENCRYPTED_PASSPHRASE, "1700000000123", "GET",
     "/api/v1/hf/orders/client-order/tri-0001?symbol=BTC-USDT", b"",
     "L6rKnNmwpFA7l98hODsUJvLy/nTfTyKS2AlOFRZHD5Y="),
    (SECRET, PASSPHRASE, ENCRYPTED_PASSPHRASE, "1700000000456", "POST", "/api/v1/bullet-private", b"",
     "vV/RhMIytn5ePQ+35oBXueu2aXBn3wTxnXdwAx3zsUI="),
    ("secret", "pass", "5sWmbVCOKjHTC6QsbNtTLaVSV6j3Lytz0LaHyiow0EE=", "1700000000000", "GET", "/api/v1/accounts",
     b"", "ka2jGwVPj+HJ5t7L4fEM4HttekAXENIQpmo8ulfZmV8="),
]


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


@pytest.mark.parametrize(("secret", "passphrase", "encrypted", "ts", "method", "path", "body", "signature"), VECTORS)
def test_client_signs_every_vector(secret: str, passphrase: str, encrypted: str, ts: str, method: str, path: str,
                                   body: bytes, signature: str) -> None:
    headers = Signer(Credentials("k", secret, passphrase, key_version=2)).headers(method, path, body, int(ts))
    assert (headers["KC-API-SIGN"], headers["KC-API-PASSPHRASE"]) == (signature, encrypted)


@pytest.mark.parametrize(("secret", "passphrase", "encrypted", "ts", "method", "path", "body", "signature"), VECTORS)
def test_simulator_verifies_every_vector(secret: str, passphrase: str, encrypted: str, ts: str, method: str,
                                         path: str, body: bytes, signature: str) -> None:
    assert expected_signature(secret, ts, method, path, body) == signature
    assert expected_passphrase(secret, passphrase, "2") == expected_passphrase(secret, passphrase, "3") == encrypted
    assert expected_passphrase(secret, passphrase, "1") == passphrase
    verifier = Verifier(Credentials("k", secret, passphrase), window_ms=5_000)
    headers = {"KC-API-KEY": "k", "KC-API-SIGN": signature, "KC-API-TIMESTAMP": ts,
               "KC-API-PASSPHRASE": encrypted, "KC-API-KEY-VERSION": "3"}
    verifier.verify(headers, method, path, body, now_ms=int(ts))  # accepted: raises nothing
    tampered = {**headers, "KC-API-SIGN": signature[:-2] + ("A=" if signature[-2] != "A" else "B=")}
    with pytest.raises(KucoinError) as refused:
        verifier.verify(tampered, method, path, body, now_ms=int(ts))
    assert (refused.value.code, refused.value.http_status) == ("400005", 401)


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

"""KuCoin API credentials, kept out of reprs so they cannot leak through logs or tracebacks."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Credentials"]


@dataclass(frozen=True, slots=True)
class Credentials:
    """An API key triple; `key_version` 2 (ccxt) and 3 (official SDK) sign identically."""

    api_key: str
    api_secret: str = field(repr=False)
    api_passphrase: str = field(repr=False)
    key_version: int = 2

    def __repr__(self) -> str:
        return f"Credentials(api_key={self.api_key[:4]}…, key_version={self.key_version})"

    def secrets(self) -> tuple[str, ...]:
        """The values log redaction must scrub (the key itself is an identifier, not a secret)."""
        return tuple(s for s in (self.api_secret, self.api_passphrase) if s)

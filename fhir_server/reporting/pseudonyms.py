"""Pseudonyms for national reporting (domain.md §8): HMAC-SHA-256 of a personnummer (or
samordningsnummer) under the region's secret ``EVI_PSEUDONYM_KEY``: stable across months
and reports, not reversible without the key. Hex, lower case."""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["MIN_KEY_BYTES", "PseudonymKeyError", "Pseudonymizer"]

#: a shorter secret is refused: reporting does not start without a real key
MIN_KEY_BYTES = 32


class PseudonymKeyError(ValueError):
    """No key, or one shorter than MIN_KEY_BYTES: reporting cannot start."""


class Pseudonymizer:
    def __init__(self, key: str | bytes | None):
        raw = key.encode("utf-8") if isinstance(key, str) else key
        if not raw or len(raw) < MIN_KEY_BYTES:
            raise PseudonymKeyError(
                f"EVI_PSEUDONYM_KEY must be set to a secret of at least {MIN_KEY_BYTES} bytes "
                "(e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(48))')"
            )
        self._key = raw

    def pseudonym(self, value: str) -> str:
        """The pseudonym of one identifier value (the personnummer's 12 digits)."""
        return hmac.new(self._key, value.encode("utf-8"), hashlib.sha256).hexdigest()

"""Pseudonyms: HMAC-SHA-256 under the region's key (reporting/pseudonyms.py)."""

import hashlib
import hmac

import pytest

from fhir_server.reporting import PseudonymKeyError, Pseudonymizer

KEY = "k" * 40


def test_stable_keyed_and_not_the_value():
    p = Pseudonymizer(KEY)
    assert p.pseudonym("201203042383") == p.pseudonym("201203042383")
    assert p.pseudonym("201203042383") != Pseudonymizer("x" * 40).pseudonym("201203042383")
    assert p.pseudonym("201203042383") == hmac.new(KEY.encode(), b"201203042383", hashlib.sha256).hexdigest()
    assert "201203042383" not in p.pseudonym("201203042383")


@pytest.mark.parametrize("key", [None, "", "short", b"x" * 31])
def test_a_missing_or_short_key_is_refused(key):
    with pytest.raises(PseudonymKeyError):
        Pseudonymizer(key)

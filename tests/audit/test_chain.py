"""The chain value: exactly the bytes docs/audit.md names, and what ``check`` finds."""

import hashlib
import json

import orjson

from fhir_server.audit import CHAIN_URL, canonical, chain_value, check, seal


def _event():
    return {"resourceType": "AuditEvent", "id": None, "recorded": "2026-12-03T10:00:00.000000Z", "action": "R",
            "agent": [{"who": {"display": "Åsa \"quoted\" \\ back"}, "requestor": True}]}


def test_the_chain_value_is_sha256_of_previous_and_the_sorted_compact_json():
    event = _event()
    value, body = seal(event, 7, "ab" * 32)
    plain = {**_event(), "id": "7"}
    content = json.dumps(plain, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    assert value == hashlib.sha256(("ab" * 32).encode("ascii") + content).hexdigest()
    stored = orjson.loads(body)
    assert stored["extension"] == [{"url": CHAIN_URL, "valueString": value}] and stored["id"] == "7"
    assert canonical(stored) == content
    assert check(body, "ab" * 32, "7") == (value, None)


def test_canonical_keeps_other_extensions():
    event = {**_event(), "extension": [{"url": "x", "valueString": "y"}, {"url": CHAIN_URL, "valueString": "z"}]}
    assert orjson.loads(canonical(event))["extension"] == [{"url": "x", "valueString": "y"}]


def test_check_names_what_is_wrong():
    value, body = seal(_event(), 1, "")
    assert check(body, "", "1") == (value, None)
    assert "does not match" in check(body.replace(b'"R"', b'"U"'), "", "1")[1]
    assert "does not match" in check(body, "0" * 64, "1")[1]  # the previous event changed
    assert "id" in check(body, "", "2")[1]
    assert "not JSON" in check(b"{", "", "1")[1]
    assert "no (or more than one)" in check(orjson.dumps(_event()), "", "1")[1]
    assert chain_value("", b"") == hashlib.sha256(b"").hexdigest()


def test_a_sealed_event_is_stored_with_its_chain_extension_last_and_others_kept():
    event = {"resourceType": "AuditEvent", "action": "R", "recorded": "2026-12-03T10:00:00.000000Z"}
    value, body = seal(dict(event), 3, "")
    stored = orjson.loads(body)
    assert list(stored)[-1] == "extension" and stored["extension"] == [{"url": CHAIN_URL, "valueString": value}]
    assert check(body, "", "3") == (value, None)
    # an event that already has an extension keeps it, and the chain covers it
    other = {"url": "https://example.org/x", "valueString": "y"}
    previous = value
    value, body = seal({**event, "extension": [other]}, 4, previous)
    stored = orjson.loads(body)
    assert stored["extension"] == [other, {"url": CHAIN_URL, "valueString": value}]
    assert check(body, previous, "4") == (value, None)

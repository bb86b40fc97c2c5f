"""Tamper evidence: every AuditEvent carries a SHA-256 chain value over its content and
the previous event's chain value (extension ``evi-audit-chain``, valueString, hex).

Exactly what is hashed (docs/audit.md shows one worked through)::

    chain(event) = lowercase hex of SHA-256( P || C )

    P = the previous event's chain value, as its 64 ASCII characters; the empty string
        for the first event of the log (after a purge: the anchor's value, the chain
        value of the last event removed)
    C = the event in canonical JSON, without its evi-audit-chain extension (and without
        ``extension`` at all when that was its only one): UTF-8, no whitespace outside
        strings, every object's keys sorted by code point, non-ASCII characters as they
        are, the escapes JSON requires (``\\"``, ``\\\\``, control characters) and no other.
        Python: ``json.dumps(event, sort_keys=True, separators=(",", ":"),
        ensure_ascii=False).encode("utf-8")`` gives the same bytes.

The event's ``id`` (its place in the log) and ``meta`` are part of C, so an event moved,
renumbered or changed in any element no longer matches its chain value, and removing an
event breaks the next one's.
"""

from __future__ import annotations

import hashlib

import orjson

__all__ = ["CHAIN_URL", "canonical", "chain_value", "seal", "sealed_content", "splice", "check"]

CHAIN_URL = "https://evi-fhir.org/fhir/StructureDefinition/evi-audit-chain"


def canonical(event: dict) -> bytes:
    """C above: the event without its chain extension, canonical JSON."""
    if "extension" in event:
        kept = [e for e in event["extension"] or () if not (isinstance(e, dict) and e.get("url") == CHAIN_URL)]
        event = {k: v for k, v in event.items() if k != "extension"}
        if kept:
            event["extension"] = kept
    return orjson.dumps(event, option=orjson.OPT_SORT_KEYS)


def chain_value(previous: str, content: bytes) -> str:
    return hashlib.sha256(previous.encode("ascii") + content).hexdigest()


_SPLICE_HEAD = b',"extension":[{"url":"' + CHAIN_URL.encode("ascii") + b'","valueString":"'


def sealed_content(event: dict, seq: int) -> bytes:
    """``C`` of an event of ``balp.audit_event`` (no extension): with its id, canonical."""
    event["id"] = str(seq)
    return orjson.dumps(event, option=orjson.OPT_SORT_KEYS)


def splice(content: bytes, value: str) -> bytes:
    """The event's bytes as served: ``C`` (of an event without extensions) with the chain
    extension spliced in as its last member (JSON members have no order), so the event
    is serialised once."""
    return b"%s%s%s\"}]}" % (content[:-1], _SPLICE_HEAD, value.encode("ascii"))


def seal(event: dict, seq: int, previous: str) -> tuple[str, bytes]:
    """Give ``event`` its id and chain value; (the value, its bytes with the extension)."""
    if "extension" in event:  # not an event of balp's: the general way, its extensions kept
        event["id"] = str(seq)
        value = chain_value(previous, orjson.dumps(event, option=orjson.OPT_SORT_KEYS))
        event["extension"] = [*(event["extension"] or ()), {"url": CHAIN_URL, "valueString": value}]
        return value, orjson.dumps(event)
    content = sealed_content(event, seq)
    value = chain_value(previous, content)
    return value, splice(content, value)


def check(body: bytes, previous: str, expected_id: str) -> tuple[str | None, str | None]:
    """(the event's chain value, what is wrong with it or None) for stored bytes that
    should follow ``previous`` and have the id ``expected_id``."""
    try:
        event = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None, "its bytes are not JSON"
    if not isinstance(event, dict):
        return None, "its bytes are not a JSON object"
    values = [e.get("valueString") for e in event.get("extension") or () if isinstance(e, dict) and e.get("url") == CHAIN_URL]
    if len(values) != 1 or not isinstance(values[0], str):
        return None, "it carries no (or more than one) evi-audit-chain value"
    if event.get("id") != expected_id:
        return values[0], f"its id is {event.get('id')!r}, not {expected_id!r}"
    if chain_value(previous, canonical(event)) != values[0]:
        return values[0], "its chain value does not match its content and the previous event's chain value"
    return values[0], None

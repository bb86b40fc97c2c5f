"""What the log stores of an AuditEvent: a compact record of the request's facts and one
access (``entries_of``), from which the BALP event is built (``event_of``) to seal it
(``seal_record``: its chain value is over the event, as docs/audit.md defines it) and
whenever it is read (``event_body``: the same bytes, byte for byte).

Why records and not the events' JSON: a record is ~240 bytes where its event is ~1,900,
and the log writes one for every request on patient data. Measured (benchmarks/audit.py,
docs/audit.md "Cost"), the events' bytes (SQLite pages, WAL frames, checkpoints) were
most of what the log cost a read. A record is also what a SQLite log makes durable in
its pending file before the answer leaves; after a crash the next start reads it back
from there and seals it the same way. So a record names everything its event needs, the
server's base URL included::

    [1, server base, recorded, request id, status, caller, auth on, address, address type,
     client display, [interaction, patient, resources, query, path, outcome, operation]]

    caller: null, or [role, client id, client name, user, organization, organization HSA-id]

The leading 1 is the record's format. **An event built from a stored record must never
change**: its chain value was computed over those bytes. A change to what ``balp`` builds
for the same facts needs a new format number, with the old one's building kept for the
records already stored; tests/audit/test_record.py pins the bytes of format 1 for every
shape of event and fails when they move. Events stored whole (before records) are served
as stored.
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple, Sequence

import orjson

from fhir_server.audit.balp import RequestFacts, ServerIdentity, audit_event
from fhir_server.audit.chain import chain_value, sealed_content, splice
from fhir_server.audit.trail import Access
from fhir_server.storage.audit import AuditEntry, AuditRow

__all__ = ["CallerFacts", "RECORD_FORMAT", "record", "entries_of", "event_of", "seal_record", "event_body"]

#: the format of the records written now
RECORD_FORMAT = 1


class CallerFacts(NamedTuple):
    """What an event names of its caller (``security.Caller``'s attributes of these names)."""

    role: str
    client_id: str | None
    client_name: str | None
    user: str | None
    organization: str | None
    organization_hsa: str | None


def _caller(caller) -> tuple | None:
    if caller is None:
        return None
    return (caller.role, caller.client_id, caller.client_name, caller.user, caller.organization,
            caller.organization_hsa)


def record(facts: RequestFacts, server: ServerIdentity) -> tuple:
    """A request's part of its records, once per request (``entries_of`` adds each access)."""
    return (RECORD_FORMAT, server.base, facts.recorded, facts.request_id, facts.status, _caller(facts.caller),
            facts.auth_on, facts.address, facts.address_type, facts.client_display)


def entries_of(facts: RequestFacts, accesses: Sequence[Access], server: ServerIdentity) -> list[AuditEntry]:
    shared = record(facts, server)
    return [AuditEntry(a.patient, facts.recorded, (*shared, tuple(a))) for a in accesses]


@lru_cache(maxsize=64)
def _server(base: str) -> ServerIdentity:
    return ServerIdentity(base)


def event_of(content: Sequence) -> dict:
    """The event of a record (as made, or as read back: lists for tuples), without id and
    chain value. ``ValueError`` for what is no record of a known format."""
    try:
        (form, base, recorded, request_id, status, caller, auth_on, address, address_type, client_display,
         access) = content
        if form != RECORD_FORMAT:
            raise ValueError(f"an access log record of format {form!r}, unknown to this server")
        facts = RequestFacts(recorded, request_id, status, CallerFacts(*caller) if caller is not None else None,
                             auth_on, address, address_type, client_display)
        access = Access(*access)
        if not isinstance(access.resources, tuple):  # read back from JSON: a list
            access = access._replace(resources=tuple(access.resources))
        return audit_event(facts, access, _server(base), prepared=True)
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise ValueError(f"not an access log record: {exc}") from None


def seal_record(content: object, seq: int, previous: str) -> tuple[str, bytes]:
    """The store's ``Seal`` for records: (the event's chain value, the record as stored)."""
    value = chain_value(previous, sealed_content(event_of(content), seq))  # type: ignore[arg-type]
    return value, orjson.dumps(content)


def event_body(row: AuditRow) -> bytes:
    """The stored event's bytes as served (with its id and chain extension). ``ValueError``
    when the stored bytes are neither an event nor a record (altered)."""
    body = row.body
    if body[:1] == b"{":  # stored whole, before records
        return body
    try:
        content = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ValueError("its stored bytes are not JSON") from None
    return splice(sealed_content(event_of(content), row.seq), row.chain)

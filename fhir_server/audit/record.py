"""What the store keeps of an AuditEvent until it is sealed: a compact record of the
request's facts and one access (``record``), from which ``seal_record`` builds the BALP
event, gives it its id and chain value and serialises it.

A record is a JSON value (tuples, strings, numbers), because a SQLite log makes it
durable in its pending file before the answer leaves and seals it moments later, on its
committer thread (``storage/sqlite/audit.py``); after a crash the next start reads it
back from that file and seals it the same way. So a record names everything its event
needs, the server's base URL included, and building the event (the costlier part) is
off the request's path::

    [server base, recorded, request id, status, caller, auth on, address, address type,
     client display, [interaction, patient, resources, query, path, outcome, operation]]

    caller: null, or [role, client id, client name, user, organization, organization HSA-id]
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple, Sequence

from fhir_server.audit.balp import RequestFacts, ServerIdentity, audit_event
from fhir_server.audit.chain import seal
from fhir_server.audit.trail import Access
from fhir_server.storage.audit import AuditEntry

__all__ = ["CallerFacts", "record", "entries_of", "seal_record", "event_of"]


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
    """A request's facts, once per request (``entries_of`` adds each access)."""
    return (server.base, facts.recorded, facts.request_id, facts.status, _caller(facts.caller), facts.auth_on,
            facts.address, facts.address_type, facts.client_display)


def entries_of(facts: RequestFacts, accesses: Sequence[Access], server: ServerIdentity) -> list[AuditEntry]:
    shared = record(facts, server)
    return [AuditEntry(a.patient, facts.recorded, (*shared, tuple(a))) for a in accesses]


@lru_cache(maxsize=64)
def _server(base: str) -> ServerIdentity:
    return ServerIdentity(base)


def event_of(content: Sequence) -> dict:
    """The unsealed event of a record (as made, or as read back from a pending file)."""
    base, recorded, request_id, status, caller, auth_on, address, address_type, client_display, access = content
    facts = RequestFacts(recorded, request_id, status, CallerFacts(*caller) if caller is not None else None,
                         auth_on, address, address_type, client_display)
    access = Access(*access)
    if not isinstance(access.resources, tuple):  # read back from JSON: a list
        access = access._replace(resources=tuple(access.resources))
    return audit_event(facts, access, _server(base), prepared=True)


def seal_record(content: object, seq: int, previous: str) -> tuple[str, bytes]:
    """The store's ``Seal`` for records: (the event's chain value, its bytes)."""
    return seal(event_of(content), seq, previous)  # type: ignore[arg-type]

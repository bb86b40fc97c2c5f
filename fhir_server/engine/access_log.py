"""The access log as clients meet it (domain.md §6): AuditEvents read and searched from the
audit store (``Store.audit``, never the resource tables or their indexes), the patient's
extract (``$access-log``), and every write of an AuditEvent refused.

- **Reading** (``AuditEvent/{id}``, ``AuditEvent?patient=…&date=…``): roles the access
  policy lets see every AuditEvent (the shipped policy: ``admin``), with a token scope
  that covers it; any other role is refused with 403 for the whole type, before anything
  is looked up (so nothing about any event is told). Auth off (loopback): allowed.
- **The extract**: the ``admin`` and ``evi`` roles (domain.md §6), read scope on
  AuditEvent; the Patient must be known (a deleted one still has its log).
- **Writing**: no one, whatever the role (admin included), whatever the path (single
  interactions, conditional ones, Bundle entries): 405, with ``Allow: GET``. The server's
  own writer (``fhir_server.audit``) is the only way into the log.
"""

from __future__ import annotations

from types import MappingProxyType

from fhir_server.audit import AuditSearch, event_body, parse_audit_search, parse_extract_period
from fhir_server.engine.context import RequestContext
from fhir_server.engine.work import Runtime
from fhir_server.errors import BadRequest, Forbidden, MethodNotAllowed, NotFound
from fhir_server.model import is_valid_id
from fhir_server.storage.audit import AuditQuery, AuditRow
from fhir_server.storage.base import ResourceVersion

__all__ = [
    "AUDIT_EVENT", "EXTRACT_ROLES", "AuditWriteRefused", "refuse_audit_write", "refuse_audit_listing", "read_event", "search_events",
    "AuditEventPage", "access_log",
]

AUDIT_EVENT = "AuditEvent"
#: who may take a patient's extract (domain.md §6)
EXTRACT_ROLES = frozenset({"admin", "evi"})
#: events per store query while collecting an extract
_EXTRACT_BATCH = 1000


class AuditWriteRefused(MethodNotAllowed):
    headers = MappingProxyType({"Allow": "GET"})


def refuse_audit_write(resource_type: str | None) -> None:
    if resource_type == AUDIT_EVENT:
        raise AuditWriteRefused(
            "AuditEvents are written by the server only: the access log is append-only, and no client "
            "(admin included) may create, update, patch or delete one"
        )


def refuse_audit_listing(resource_type: str | None, where: str) -> None:
    """History of AuditEvent, and its searches inside a Bundle: the log lives in the audit
    store, which only ``GET [base]/AuditEvent?patient=…&date=…`` searches (an event has one
    version: its history would only repeat it)."""
    if resource_type == AUDIT_EVENT:
        raise BadRequest(f"AuditEvent {where} is not supported: search the access log with "
                         "GET [base]/AuditEvent?patient=…&date=…")


def _check_reader(runtime: Runtime, ctx: RequestContext, letter: str) -> None:
    caller = ctx.caller
    if caller is None:
        return
    if not runtime.policy.role(caller.role).unrestricted(AUDIT_EVENT):
        raise Forbidden(f"The access log (AuditEvent) is not open to the role {caller.role!r}: the access policy "
                        "lets only administrators read it")
    if not caller.scopes.allows(AUDIT_EVENT, letter):
        verb = "read" if letter == "r" else "search"
        raise Forbidden(f"The token's scopes do not allow {verb} of AuditEvent (needs system/AuditEvent.{letter})")


def _row_version(row: AuditRow) -> ResourceVersion:
    return ResourceVersion(AUDIT_EVENT, row.id, 1, row.recorded, False, "POST", event_body(row))


def read_event(runtime: Runtime, ctx: RequestContext, rid: str, version_id: str | None = None) -> ResourceVersion:
    """``AuditEvent/{id}`` (and ``/_history/1``: an event has one version)."""
    _check_reader(runtime, ctx, "r")
    row = runtime.store.audit.get(int(rid)) if rid.isascii() and rid.isdigit() and len(rid) <= 18 else None
    if row is None or (version_id is not None and version_id != "1"):
        raise NotFound(f"AuditEvent/{rid}{'' if version_id is None else '/_history/' + version_id} is not known")
    return _row_version(row)


class AuditEventPage:
    __slots__ = ("search", "versions", "total", "after")

    def __init__(self, search: AuditSearch, versions: list[ResourceVersion], total: int, after: tuple[str, int] | None):
        self.search, self.versions, self.total = search, versions, total
        #: the next page's cursor (None: this is the last)
        self.after = after


def search_events(runtime: Runtime, ctx: RequestContext, params: list[tuple[str, str]]) -> AuditEventPage:
    _check_reader(runtime, ctx, "s")
    search = parse_audit_search(params, default_count=runtime.default_page_size, max_count=runtime.max_page_size)
    query = search.query
    store = runtime.store.audit
    total = store.count(query)
    if query.limit == 0:
        return AuditEventPage(search, [], total, None)
    rows = store.query(AuditQuery(query.patient, query.start, query.end, query.after, query.limit + 1))
    after = (rows[query.limit - 1].recorded, rows[query.limit - 1].seq) if len(rows) > query.limit else None
    versions = [_row_version(r) for r in rows[: query.limit]]
    ctx.budget.spend(len(versions), "The page of AuditEvents")
    return AuditEventPage(search, versions, total, after)


def access_log(runtime: Runtime, ctx: RequestContext, patient_id: str, params: list[tuple[str, str]]) -> list[AuditRow]:
    """The patient's AuditEvents recorded within ``start``..``end``, oldest first."""
    caller = ctx.caller
    if caller is not None:
        if caller.role not in EXTRACT_ROLES:
            raise Forbidden(f"$access-log is for the {' and '.join(sorted(EXTRACT_ROLES))} roles, not {caller.role!r}")
        if not caller.scopes.allows(AUDIT_EVENT, "r"):
            raise Forbidden("The token's scopes do not allow read of AuditEvent (needs system/AuditEvent.r)")
    start, end = parse_extract_period(params)
    if not is_valid_id(patient_id):
        raise NotFound(f"Patient/{patient_id} is not a valid resource id")
    with runtime.work(ctx, write=False) as work:
        if work.uow.current("Patient", patient_id) is None:
            raise NotFound(f"Patient/{patient_id} is not known")
    store, rows, after = runtime.store.audit, [], None
    while True:
        batch = store.query(AuditQuery(patient_id, start, end, after, _EXTRACT_BATCH))
        ctx.budget.spend(len(batch), "The access log extract")
        rows.extend(batch)
        if len(batch) < _EXTRACT_BATCH:
            return rows
        after = (batch[-1].recorded, batch[-1].seq)

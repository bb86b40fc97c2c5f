"""The PDL log around every request (domain.md §6, docs/audit.md).

A route that may touch patient data (``Route.audit``: its restful-interaction code) gets
an ``AuditTrail`` in the request's state when it arrives, before authentication; the
engine adds what the request reads and writes to it. When the request has its answer,
or its error, the trail is settled with that status (0 success, 4 the client's error or
refused, 8 a server failure) and its AuditEvents are stored, and the answer leaves only
once they are stored durably: appended at once where that needs no waiting, else handed
to the process's group-commit thread and awaited (``audit.writer``); the loop never
blocks.

A request that recorded nothing (refused before it read anything: 401 without a caller,
403 for a scope, 404 for a type; or found nothing to change) is logged from what its URL
says, when that is patient data; a system-level request (transaction, batch, system
search or history) only when it failed. With ``EVI_AUDIT=off`` there is no writer and no
trail: nothing is logged and the engine's captures cost one attribute check.
"""

from __future__ import annotations

from starlette.requests import Request

from fhir_server.api.deps import request_id_of, state_of
from fhir_server.audit import QUERY_INTERACTIONS, Access, AuditTrail, AuditWriter, RequestFacts, is_patient_data
from fhir_server.model import now_instant

__all__ = ["writer_of", "begin", "finish"]

#: routes whose events carry the query (and Bundles, whose entries may be searches)
_NAMES_QUERY = QUERY_INTERACTIONS | {"transaction", "batch"}


def writer_of(request: Request) -> AuditWriter | None:
    """None with ``EVI_AUDIT=off``."""
    return request.app.state.audit_writer


def begin(request: Request, route) -> AuditTrail | None:
    """The request's trail (in its state, where ``deps.context_of`` finds it), or None."""
    if route.audit is None:
        return None
    writer = writer_of(request)
    if writer is None:
        return None
    if route.audit in _NAMES_QUERY:  # what the client asked, for the events' query entity
        path = route.path.format(**request.path_params).lstrip("/")
        query = request.scope.get("query_string", b"").decode("utf-8", errors="replace")
    else:
        path = query = ""
    trail = AuditTrail(path, query, operation=route.operation if route.audit == "operation" else None)
    state = state_of(request)
    state["audit"] = trail
    state["audit_writer"] = writer  # for ``finish``: one lookup per request
    return trail


def _literal_type(path: str) -> str | None:
    first = path.lstrip("/").split("/", 1)[0]
    return first if first[:1].isupper() else None


def fallback(route, params: dict, trail: AuditTrail, status: int) -> Access | None:
    """What the request was about, from its URL, for when it recorded nothing."""
    rtype = params.get("resource_type") or _literal_type(route.path)
    rid = params.get("id")
    if "compartment_type" in params:  # Patient/{id}/Observation: that patient's data
        patient = params["compartment_id"] if params["compartment_type"] == "Patient" else None
        rtype = None if params.get("resource_type") == "*" else params.get("resource_type")
        if patient is None and not is_patient_data(rtype):
            return None
        return Access(route.audit, patient, (), trail.query or None, trail.path)
    if rtype is None:
        if status < 400:  # a system-level request that found no patient data
            return None
    elif not is_patient_data(rtype):
        return None
    resources = ()
    if rtype and rid:
        resources = (f"{rtype}/{rid}/_history/{params['vid']}",) if "vid" in params else (f"{rtype}/{rid}",)
    patient = rid if rtype == "Patient" and rid else None
    operation = route.operation if route.audit == "operation" else None
    return Access(trail.interaction or route.audit, patient, resources, trail.query or None, trail.path,
                  operation=operation)


async def finish(request: Request, route, trail: AuditTrail, status: int) -> None:
    """Settle the trail with the answer's ``status`` and wait until its events are stored
    (``AuditUnavailable``, 503, when they could not be)."""
    events = trail.events(None if trail.accesses else fallback(route, request.path_params, trail, status))
    if not events:
        return
    state = state_of(request)
    client = request.scope.get("client")
    writer: AuditWriter = state["audit_writer"]
    facts = RequestFacts(
        recorded=now_instant(),  # when it was answered
        request_id=request_id_of(request),
        status=status,
        caller=state.get("caller"),
        auth_on=writer.auth_on,
        address=client[0] if client else None,
    )
    if not writer.try_write(facts, events):  # it would have to wait: the group-commit thread
        await writer.write(facts, events)

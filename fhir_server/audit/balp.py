"""AuditEvents in the IHE Basic Audit Log Patterns (BALP 1.1; domain.md §6), one per Access.

Which BALP profile each event follows (subtype -> action -> profile):

  read, vread                      R  BALP Read / PatientRead
  search-type, search-system,
  history-*, operation             E  BALP Query / PatientQuery (``entity[query]``)
  create                           C  BALP Create / PatientCreate
  update, patch                    U  BALP Update / PatientUpdate
  delete                           D  BALP Delete / PatientDelete
  transaction, batch (refused)     E  (no BALP pattern: a request refused before its entries were read)
  operation: notification, relay   E  (no BALP pattern: a delivery the server made, engine/disclosures.py)

Agents: the client (``who.identifier`` its client id; ``type`` DCM 110153 Source Role ID,
or 110152 Destination Role ID for reads, as BALP has them), the server (the other of the
two), the user (HSA-id) where the token names one, and the care unit (the token's care
unit or the client's registered organisation: ``who`` its Organization and HSA-id, type
v3-RoleClass PROV as BALP's organisation agent). ``requestor`` is true on the user where
there is one, else on the client. With auth off the client is anonymous but present
(``who.display``); a request refused with 401 names no client (``who.display``
"unauthenticated"), only its network address. Entities: the Patient (role 1, the slice
``patient``), each resource (role 4), the query of searches and operations (role 24,
``query`` base64 of the query string as sent), and the request id (BALP's XrequestId).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

import orjson

from fhir_server.audit.trail import Access, action_of, outcome_of
from fhir_server.security import HSA_SYSTEM, Caller

__all__ = ["RequestFacts", "ServerIdentity", "audit_event", "PROFILE", "QUERY_INTERACTIONS"]

PROFILE = "https://evi-fhir.org/fhir/StructureDefinition/evi-audit-event"
_DCM = "http://dicom.nema.org/resources/ontology/DCM"
_ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
_OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
_PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
_BALP_ENTITY_TYPE = "https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType"
_OUTCOME_TEXT = {"0": "Success", "4": "Minor failure", "8": "Serious failure"}
#: interactions whose event carries the query (BALP Query)
QUERY_INTERACTIONS = frozenset({"search-type", "search-system", "history-instance", "history-type",
                                "history-system", "operation"})
#: the product's own operations' canonicals (the others: the spec's)
_OPERATIONS = {
    "everything": "http://hl7.org/fhir/OperationDefinition/Patient-everything",
    "triage": "https://evi-fhir.org/fhir/OperationDefinition/triage",
    "triage-queue": "https://evi-fhir.org/fhir/OperationDefinition/triage-queue",
    "export": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export",
}
#: deliveries the server makes (engine/disclosures.py): not operations a client calls,
#: named by what they send and without the ``$``
_DELIVERIES = {
    "notification": ("http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-subscription-notification",
                     "Subscription notification"),
    "relay": ("https://evi-fhir.org/fhir/relay", "Relay to an upstream FHIR server"),
}


def _coding(system: str, code: str, display: str | None = None) -> dict:
    found = {"system": system, "code": code}
    if display:
        found["display"] = display
    return found


# The parts every event shares (codes without displays: every event carries them, and
# the log keeps millions). Events are built for serialisation only (orjson), and sealing
# sets only their top-level ``id`` and ``extension``: these are never mutated.
_TYPE = _coding("http://terminology.hl7.org/CodeSystem/audit-event-type", "rest")
_SOURCE_ROLE = {"coding": [_coding(_DCM, "110153")]}
_DESTINATION_ROLE = {"coding": [_coding(_DCM, "110152")]}
_AUTHOR = {"coding": [_coding(_PARTICIPATION, "AUT")]}
_RECIPIENT = {"coding": [_coding(_PARTICIPATION, "IRCP")]}
_PROVIDER = {"coding": [_coding("http://terminology.hl7.org/CodeSystem/v3-RoleClass", "PROV")]}
_PERSON = _coding(_ENTITY_TYPE, "1")
_PATIENT_ROLE = _coding(_OBJECT_ROLE, "1")
_SYSTEM_OBJECT = _coding(_ENTITY_TYPE, "2")
_DOMAIN_RESOURCE = _coding(_OBJECT_ROLE, "4")
_QUERY_ROLE = _coding(_OBJECT_ROLE, "24")
_REQUEST_ID = _coding(_BALP_ENTITY_TYPE, "XrequestId")
_SOURCE_TYPE = [_coding("http://terminology.hl7.org/CodeSystem/security-source-type", "4")]
_ANONYMOUS = {"display": "anonymous (authentication off, EVI_AUTH=off)"}
_UNAUTHENTICATED = {"display": "unauthenticated (no valid bearer token)"}


@dataclass(frozen=True, slots=True)
class ServerIdentity:
    """This server as its events name it (``source.observer`` and the server agent): its
    public base URL."""

    base: str

    def who(self) -> dict:
        return {"identifier": {"value": self.base}}


class RequestFacts(NamedTuple):
    """What every event of one request shares (a named tuple: one per request, cheap)."""

    #: when the request was answered (FHIR instant, UTC, fixed width)
    recorded: str
    request_id: str
    #: the answer's HTTP status: the outcome of every access that has none of its own
    status: int = 200
    #: None with auth off (anonymous), and for a request refused with 401 (``auth_on``)
    caller: Caller | None = None
    auth_on: bool = False
    #: the client's network address, as the connection gave it
    address: str | None = None
    #: DICOM network access point type of ``address``: 2 an IP address, 5 a URI (where a
    #: delivery went: engine/disclosures.py)
    address_type: str = "2"
    #: who the client is when no caller names it, instead of the anonymous/unauthenticated
    #: text (a relay: the server's own delivery)
    client_display: str | None = None


def _client(facts: RequestFacts, kind: dict) -> dict:
    caller = facts.caller
    if caller is not None and caller.client_id:
        who: dict = {"identifier": {"value": caller.client_id}}
        if caller.client_name:
            who["display"] = caller.client_name
    elif facts.client_display:
        who = {"display": facts.client_display}
    else:
        who = _UNAUTHENTICATED if facts.auth_on else _ANONYMOUS
    agent = {"type": kind, "who": who, "requestor": caller is None or not caller.user}
    if caller is not None and not caller.user:
        agent["role"] = [{"text": caller.role}]
    if facts.address:
        agent["network"] = {"address": facts.address, "type": facts.address_type}
    return agent


def _people(caller: Caller, writes: bool) -> list[dict]:
    """The user (HSA-id) and the care unit, where the caller names them."""
    agents = []
    if caller.user:
        agents.append({"type": _AUTHOR if writes else _RECIPIENT, "role": [{"text": caller.role}],
                       "who": {"identifier": {"system": HSA_SYSTEM, "value": caller.user}}, "requestor": True})
    if caller.organization or caller.organization_hsa:
        who: dict = {}
        if caller.organization:
            who["reference"] = caller.organization
        if caller.organization_hsa:
            who["identifier"] = {"system": HSA_SYSTEM, "value": caller.organization_hsa}
        agents.append({"type": _PROVIDER, "who": who, "requestor": False})
    return agents


def _agents(facts: RequestFacts, server: ServerIdentity, action: str) -> list[dict]:
    reads = action == "R"  # BALP Read: the data flows from the server to the client
    agents = [
        _client(facts, _DESTINATION_ROLE if reads else _SOURCE_ROLE),
        {"type": _SOURCE_ROLE if reads else _DESTINATION_ROLE, "who": server.who(), "requestor": False,
         "network": {"address": server.base, "type": "5"}},
    ]
    if facts.caller is not None:
        agents.extend(_people(facts.caller, action in ("C", "U", "D")))
    return agents


def _entities(facts: RequestFacts, access: Access) -> list[dict]:
    entities = []
    if access.patient is not None:
        entities.append({"what": {"reference": f"Patient/{access.patient}"}, "type": _PERSON, "role": _PATIENT_ROLE})
    for ref in access.resources:
        entities.append({"what": {"reference": ref}, "type": _SYSTEM_OBJECT, "role": _DOMAIN_RESOURCE})
    if access.interaction in QUERY_INTERACTIONS and (access.query or access.path):
        query: dict = {"type": _SYSTEM_OBJECT, "role": _QUERY_ROLE}
        if access.query:
            query["query"] = base64.b64encode(access.query.encode("utf-8")).decode("ascii")
        query["description"] = f"{access.path or ''}?{access.query}" if access.query else (access.path or "")
        entities.append(query)
    entities.append({"what": {"identifier": {"value": facts.request_id}}, "type": _REQUEST_ID})
    return entities


@lru_cache(maxsize=1024)
def _prepared_agents(caller: Caller | None, auth_on: bool, address: str | None, address_type: str,
                     client_display: str | None, server: ServerIdentity, action: str) -> orjson.Fragment:
    """``_agents`` serialised as canonical JSON once per client, address and action: a
    process sees few of them, and the agents are most of an event's bytes."""
    facts = RequestFacts("", "", 200, caller, auth_on, address, address_type, client_display)
    return orjson.Fragment(orjson.dumps(_agents(facts, server, action), option=orjson.OPT_SORT_KEYS))


@lru_cache(maxsize=64)
def _prepared_source(server: ServerIdentity) -> orjson.Fragment:
    return orjson.Fragment(orjson.dumps(_source(server), option=orjson.OPT_SORT_KEYS))


def _source(server: ServerIdentity) -> dict:
    return {"observer": server.who(), "type": _SOURCE_TYPE}


def audit_event(facts: RequestFacts, access: Access, server: ServerIdentity, *, prepared: bool = False) -> dict:
    """The AuditEvent of one access; ``id`` and the chain extension are set when it is sealed.

    ``prepared``: for sealing and storing only (``audit.writer``): the parts a client's
    events share (agents, source) come as pre-serialised canonical JSON
    (``orjson.Fragment``), so the event serialises to the same bytes with less work; a
    test compares the two for every shape of event."""
    status = access.outcome if access.outcome is not None else facts.status
    outcome = outcome_of(status)
    action = action_of(access.interaction)
    subtype = [_coding("http://hl7.org/fhir/restful-interaction", access.interaction)]
    if access.operation in _DELIVERIES:
        subtype.append(_coding("urn:ietf:rfc:3986", *_DELIVERIES[access.operation]))
    elif access.operation:
        canonical = _OPERATIONS.get(access.operation, f"http://hl7.org/fhir/OperationDefinition/{access.operation}")
        subtype.append(_coding("urn:ietf:rfc:3986", canonical, f"${access.operation}"))
    event = {
        "resourceType": "AuditEvent",
        "id": None,
        "meta": {"versionId": "1", "lastUpdated": facts.recorded, "profile": [PROFILE]},
        "type": _TYPE,
        "subtype": subtype,
        "action": action,
        "recorded": facts.recorded,
        "outcome": outcome,
    }
    if outcome != "0":
        event["outcomeDesc"] = f"{_OUTCOME_TEXT[outcome]}: HTTP {status}"
    if prepared:
        event["agent"] = _prepared_agents(facts.caller, facts.auth_on, facts.address, facts.address_type,
                                          facts.client_display, server, action)
        event["source"] = _prepared_source(server)
    else:
        event["agent"] = _agents(facts, server, action)
        event["source"] = _source(server)
    event["entity"] = _entities(facts, access)
    return event

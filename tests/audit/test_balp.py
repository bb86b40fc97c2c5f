"""Each BALP pattern's fields (domain.md §6), as ``audit_event`` builds them."""

import base64

import pytest

from fhir_server.audit import PROFILE, Access, RequestFacts, ServerIdentity, audit_event
from fhir_server.security import HSA_SYSTEM, Caller
from fhir_server.security.scopes import Scopes

SERVER = ServerIdentity("https://evi.example/fhir")
CLIENT = Caller("evi", Scopes.parse("system/*.cruds"), client_id="evi-app", client_name="EVI app",
                organization="Organization/evi", organization_hsa="SE2321000032-EVI1")
PERSON = Caller("evi", Scopes.parse("user/*.cruds"), client_id="dashboard", user="SE2321000032-1234",
                organization="Organization/evi", organization_hsa="SE2321000032-EVI1")


def _facts(caller=CLIENT, status=200, auth_on=True):
    return RequestFacts("2026-12-03T10:00:00.000000Z", "req-1", status, caller, auth_on, "10.0.0.7")


def _codes(event, key):
    return [c["code"] for c in event[key]] if isinstance(event[key], list) else event[key]["code"]


def _roles(event):
    return [(e.get("role") or {}).get("code") for e in event["entity"]]


def _requestors(event):
    return [a for a in event["agent"] if a["requestor"]]


@pytest.mark.parametrize("interaction, action", [
    ("read", "R"), ("vread", "R"), ("create", "C"), ("update", "U"), ("patch", "U"), ("delete", "D"),
    ("search-type", "E"), ("search-system", "E"), ("history-instance", "E"), ("operation", "E"),
])
def test_pattern_fields(interaction, action):
    access = Access(interaction, "p1", ("Observation/o1/_history/2",), "subject=Patient/p1", "Observation",
                    operation="everything" if interaction == "operation" else None)
    event = audit_event(_facts(), access, SERVER)
    assert event["type"] == {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest"}
    assert event["subtype"][0] == {"system": "http://hl7.org/fhir/restful-interaction", "code": interaction}
    assert (event["action"], event["outcome"], event["recorded"]) == (action, "0", "2026-12-03T10:00:00.000000Z")
    assert event["meta"]["profile"] == [PROFILE]
    assert event["source"]["observer"] == {"identifier": {"value": SERVER.base}}
    patient = event["entity"][0]
    assert patient["what"] == {"reference": "Patient/p1"} and patient["role"]["code"] == "1" and patient["type"]["code"] == "1"
    data = event["entity"][1]
    assert data["what"] == {"reference": "Observation/o1/_history/2"} and data["role"]["code"] == "4"
    query = [e for e in event["entity"] if (e.get("role") or {}).get("code") == "24"]
    if action == "E":
        assert base64.b64decode(query[0]["query"]).decode() == "subject=Patient/p1"
    else:
        assert query == []
    if interaction == "operation":
        assert event["subtype"][1]["code"] == "http://hl7.org/fhir/OperationDefinition/Patient-everything"
    client = event["agent"][0]
    assert client["who"]["identifier"] == {"value": "evi-app"} and _requestors(event) == [client]
    unit = next(a for a in event["agent"] if a["type"]["coding"][0]["code"] == "PROV")
    assert unit["who"] == {"reference": "Organization/evi", "identifier": {"system": HSA_SYSTEM, "value": "SE2321000032-EVI1"}}


def test_the_user_is_the_requestor_where_the_token_names_one():
    event = audit_event(_facts(PERSON), Access("read", "p1", ("Patient/p1/_history/1",)), SERVER)
    (user,) = _requestors(event)
    assert user["who"]["identifier"] == {"system": HSA_SYSTEM, "value": "SE2321000032-1234"}
    assert event["agent"][0]["who"]["identifier"] == {"value": "dashboard"} and not event["agent"][0]["requestor"]


def test_outcomes_and_anonymous_clients():
    refused = audit_event(_facts(None, 401), Access("read", None, ("Observation/o1",)), SERVER)
    assert refused["outcome"] == "4" and "HTTP 401" in refused["outcomeDesc"]
    assert refused["agent"][0]["who"]["display"].startswith("unauthenticated") and refused["agent"][0]["requestor"]
    assert refused["agent"][0]["network"]["address"] == "10.0.0.7"
    assert _roles(refused)[0] == "4"  # no patient could be named
    failed = audit_event(_facts(status=500), Access("create", "p1"), SERVER)
    assert failed["outcome"] == "8"
    own = audit_event(_facts(status=200), Access("read", "p1", outcome=403), SERVER)
    assert own["outcome"] == "4"
    off = audit_event(_facts(None, auth_on=False), Access("read", "p1"), SERVER)
    assert off["agent"][0]["who"]["display"].startswith("anonymous") and len(_requestors(off)) == 1


@pytest.mark.parametrize("caller", [CLIENT, PERSON, None])
@pytest.mark.parametrize("interaction", ["read", "create", "delete", "search-type", "operation"])
@pytest.mark.parametrize("status", [200, 403, 503])
def test_a_prepared_event_serialises_to_the_same_bytes(caller, interaction, status):
    """The writer's events share pre-serialised parts (``prepared``): sealed, they must be
    byte for byte what the plain event gives, or the chain would not verify."""
    import orjson

    from fhir_server.audit import check, seal

    for address in ("10.0.0.7", None, "fe80::1"):
        facts = RequestFacts("2026-12-03T10:00:00.000000Z", "req-ä\"1", status, caller, caller is not None, address)
        access = Access(interaction, "p1" if caller else None, ("Observation/o1/_history/2",), "name=Ö\\x&y=\n",
                        "Observation", operation="everything" if interaction == "operation" else None)
        plain = audit_event(facts, access, SERVER)
        prepared = audit_event(facts, access, SERVER, prepared=True)
        assert seal(plain, 7, "") == seal(prepared, 7, "")
        value, body = seal(prepared, 7, "a" * 64)
        assert check(body, "a" * 64, "7") == (value, None)
        assert orjson.loads(body)["agent"] == audit_event(facts, access, SERVER)["agent"]

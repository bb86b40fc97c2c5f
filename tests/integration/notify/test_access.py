"""Subscriptions with auth on (domain.md §5, §7): a subscriber gets only events about what
its client may read, redacted as its reads are; a filter naming what it may not see is
refused; every client sees, updates and deletes only its own Subscriptions."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.support.auth import ClientKey, access_token, auth_server, bearer, client_entry
from tests.support.evi import TEST_REGION
from tests.support.notify import FHIR_JSON, create_subscription, subscription, wait_status
from tests.support.webhook import Receiver, focus_of

SL = "http://hl7.se/fhir/ig/base/CodeSystem/SecurityLabel"
UDDEVALLA, KALMAR = "Organization/socialtjansten-uddevalla", "Organization/socialtjansten-kalmar"
MANAGING = "Organization/vardcentral-uddevalla"
CLIENTS = {
    # name: (role, organization, scopes)
    "admin": ("admin", "Organization/evi-vgr", "system/*.cruds"),
    "uddevalla": ("municipality", UDDEVALLA, "system/*.rs system/Subscription.cud"),
    "kalmar": ("municipality", KALMAR, "system/*.rs system/Subscription.cud"),
    "managing": ("care-unit", MANAGING, "system/*.cruds"),
    "no-subscriptions": ("municipality", KALMAR, "system/*.rs"),
}
ORGANIZATIONS = [UDDEVALLA, KALMAR, MANAGING, "Organization/evi-vgr"]


def _patient(protected: bool) -> dict:
    resource = {
        "resourceType": "Patient", "id": f"p-{uuid.uuid4().hex[:12]}",
        "name": [{"family": "Skyddad" if protected else "Öppen", "given": ["Tove"]}], "birthDate": "2013-05-05",
        "address": [{"line": ["Hemliga vägen 1"], "city": "Hemlingby"}],
        "telecom": [{"system": "phone", "value": "0701234567"}],
        "managingOrganization": {"reference": MANAGING},
    }
    if protected:
        resource["meta"] = {"security": [{"system": SL, "code": "sekretessmarkering"}]}
    return resource


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("notify-access")
    keys = {name: ClientKey.new(f"c-{name}") for name in CLIENTS}
    entries = [client_entry(keys[n], role=r, organization=o, scopes=tuple(s.split())) for n, (r, o, s) in CLIENTS.items()]
    with auth_server(tmp, entries, storage=f"sqlite://{tmp / 'evi.db'}", region_file=str(TEST_REGION),
                     notify_retry_first_seconds=0.2, notify_retry_max_seconds=1.0) as live:
        clients = {n: httpx.Client(base_url=live.base_url, timeout=30,
                                   headers={**bearer(access_token(live, keys[n], CLIENTS[n][2])), **FHIR_JSON})
                   for n in CLIENTS}
        for ref in ORGANIZATIONS:
            kind, oid = ref.split("/")
            r = clients["admin"].put(f"/{ref}", json={"resourceType": kind, "id": oid, "name": oid})
            assert r.status_code in (200, 201), r.text
        yield clients
        for c in clients.values():
            c.close()


def _notice(admin: httpx.Client, patient: str, recipient: str) -> str:
    r = admin.post("/Communication", json={
        "resourceType": "Communication", "status": "completed", "subject": {"reference": patient},
        "recipient": [{"reference": recipient}], "sender": {"reference": "Organization/evi-vgr"},
        "payload": [{"contentString": "Placerat barn"}]})
    assert r.status_code == 201, r.text
    return f"Communication/{r.json()['id']}"


def _put(admin: httpx.Client, resource: dict) -> str:
    r = admin.put(f"/Patient/{resource['id']}", json=resource)
    assert r.status_code == 201, r.text
    return f"Patient/{resource['id']}"


def test_a_subscriber_gets_only_what_its_client_may_read_and_protected_identity_redacted(world):
    admin, uddevalla = world["admin"], world["uddevalla"]
    protected, open_ = _put(admin, _patient(True)), _put(admin, _patient(False))
    with Receiver() as hook:
        # no filter: the topic's every event, as far as Uddevalla's social services may see
        sub = create_subscription(uddevalla, subscription("communication-received", hook.url,
                                                          content="full-resource"))
        wait_status(uddevalla, sub["id"], "active")
        _notice(admin, open_, KALMAR)  # Kalmar's: not for Uddevalla
        mine = _notice(admin, protected, UDDEVALLA)
        hook.wait_for(lambda: hook.events() == [1])
        _notice(admin, protected, KALMAR)
        also_mine = _notice(admin, open_, UDDEVALLA)
        hook.wait_for(lambda: hook.events() == [1, 2])
    first, second = hook.bundles("event-notification")
    assert [f.split("/fhir/")[1] for f in focus_of(first) + focus_of(second)] == [mine, also_mine]
    patient = next(e["resource"] for e in first["entry"] if e.get("resource", {}).get("resourceType") == "Patient")
    assert "address" not in patient and "telecom" not in patient
    assert any(s.get("code") == "REDACTED" for s in patient["meta"]["security"])
    unprotected = next(e["resource"] for e in second["entry"] if e.get("resource", {}).get("resourceType") == "Patient")
    assert unprotected["address"] and unprotected["telecom"]


def test_the_managing_unit_gets_the_protected_patient_unredacted(world):
    admin, managing = world["admin"], world["managing"]
    protected = _put(admin, _patient(True))
    with Receiver() as hook:
        sub = create_subscription(managing, subscription(
            "task-assigned", hook.url, content="full-resource", filters=(f"Task?owner={MANAGING}",)))
        wait_status(managing, sub["id"], "active")
        r = admin.post("/Task", json={"resourceType": "Task", "status": "requested", "intent": "order",
                                      "for": {"reference": protected}, "owner": {"reference": MANAGING}})
        assert r.status_code == 201, r.text
        hook.wait_for(lambda: hook.events() == [1])
    [bundle] = hook.bundles("event-notification")
    patient = next(e["resource"] for e in bundle["entry"] if e.get("resource", {}).get("resourceType") == "Patient")
    assert patient["address"] and patient["telecom"]


@pytest.mark.parametrize("topic,criterion", [
    ("appointment-booked", "Appointment?actor=Patient/{hidden}"),  # a patient Kalmar may not see
    ("appointment-booked", "Appointment?actor=Patient/no-such-patient"),  # answered as the hidden one
])
def test_a_filter_naming_what_the_client_may_not_see_is_403_and_stores_nothing(world, topic, criterion):
    admin, kalmar = world["admin"], world["kalmar"]
    hidden = _put(admin, _patient(False)).split("/")[1]
    before = kalmar.get("/Subscription", params={"_summary": "count"}).json()["total"]
    r = kalmar.post("/Subscription", json=subscription(topic, "http://127.0.0.1:9/hook",
                                                       filters=(criterion.format(hidden=hidden),)))
    assert r.status_code == 403, r.text
    assert r.json()["resourceType"] == "OperationOutcome"
    assert "may not see" in r.text
    assert kalmar.get("/Subscription", params={"_summary": "count"}).json()["total"] == before


def test_a_token_without_subscription_scopes_cannot_subscribe(world):
    r = world["no-subscriptions"].post("/Subscription", json=subscription("communication-received",
                                                                          "http://127.0.0.1:9/hook"))
    assert r.status_code == 403 and r.json()["resourceType"] == "OperationOutcome"


def test_each_client_sees_updates_and_deletes_only_its_own_subscriptions(world):
    uddevalla, kalmar, admin = world["uddevalla"], world["kalmar"], world["admin"]
    closed = "http://127.0.0.1:9/hook"  # nothing listens: the handshake fails, which is fine here
    theirs = create_subscription(uddevalla, subscription("communication-received", closed))
    mine = create_subscription(kalmar, subscription("communication-received", closed))
    assert kalmar.get(f"/Subscription/{theirs['id']}").status_code == 404
    assert kalmar.get(f"/Subscription/{theirs['id']}/$status").status_code == 404
    assert kalmar.get(f"/Subscription/{theirs['id']}/$events").status_code == 404
    found = {e["resource"]["id"] for e in kalmar.get("/Subscription", params={"_count": "500"}).json().get("entry", [])}
    assert mine["id"] in found and theirs["id"] not in found
    assert kalmar.put(f"/Subscription/{theirs['id']}", json={**theirs, "status": "off"}).status_code in (403, 404)
    # deleting what the caller may not see: 204 with nothing deleted (docs/access.md)
    assert kalmar.delete(f"/Subscription/{theirs['id']}").status_code in (204, 404)
    stored = uddevalla.get(f"/Subscription/{theirs['id']}")
    assert stored.status_code == 200 and stored.json()["status"] != "off"
    # its owner may turn it off and delete it; admin sees every Subscription
    assert admin.get(f"/Subscription/{theirs['id']}").status_code == 200
    latest = uddevalla.get(f"/Subscription/{theirs['id']}").json()
    r = uddevalla.put(f"/Subscription/{theirs['id']}", json={**latest, "status": "off"})
    assert r.status_code == 200 and r.json()["status"] == "off", r.text
    assert uddevalla.delete(f"/Subscription/{theirs['id']}").status_code in (200, 204)
    # gone (a restricted type answers 404 for deleted ones too: docs/access.md)
    assert uddevalla.get(f"/Subscription/{theirs['id']}").status_code == 404

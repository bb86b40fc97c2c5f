"""Every REST interaction driven through fhirpy's SyncFHIRClient against the live server.

Where fhirpy cannot express an interaction (If-Match, If-None-Exist, JSON Patch) a
second client with ``extra_headers`` is used; response headers and exact status codes
that fhirpy hides are checked with httpx (the ``http`` fixture).
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import MultipleResourcesFound, OperationOutcome, ResourceNotFound

from tests.integration.fhirpy_helpers import (
    JSON_PATCH,
    PNR_SYSTEM,
    REMISS_SYSTEM,
    RUN_SYSTEM,
    entry_ids,
    expressions,
    history_version_ids,
    issue_codes,
    organization_body,
    outcome_of,
    patient_body,
    pnr,
    service_request_body,
    task_body,
)


@pytest.fixture
def client(server) -> SyncFHIRClient:
    return SyncFHIRClient(server.base_url)


def with_headers(server, **headers) -> SyncFHIRClient:
    """A client that sends extra headers on every request (fhirpy's only way to add headers)."""
    return SyncFHIRClient(server.base_url, extra_headers={k.replace("_", "-"): v for k, v in headers.items()})


def new_patient(client: SyncFHIRClient, uid: str, n: int = 0, **extra):
    patient = client.resource("Patient", **patient_body(uid, n, **extra))
    patient.save()
    return patient


def run_scope(uid: str) -> str:
    return f"{RUN_SYSTEM}|{uid}"


# --------------------------------------------------------------------------- create / read


def test_create_assigns_id_and_meta(client, uid):
    patient = client.resource("Patient", **patient_body(uid))
    assert patient.id is None
    patient.save()

    assert patient.id, "the server must assign an id"
    assert patient["meta"]["versionId"] == "1"
    assert patient["meta"]["lastUpdated"].endswith("Z") and "T" in patient["meta"]["lastUpdated"]
    assert patient["identifier"][0] == {"system": PNR_SYSTEM, "value": pnr(uid)}


def test_create_ignores_client_supplied_id(client, uid):
    patient = client.resource("Patient", **patient_body(uid))
    created = client.execute("Patient", method="post", data={**patient.serialize(), "id": f"mine-{uid[:10]}"})
    assert created["id"] != f"mine-{uid[:10]}"
    assert created["meta"]["versionId"] == "1"


def test_create_location_etag_and_last_modified(http, client, uid):
    r = http.post("/Patient", json=patient_body(uid), headers={"Content-Type": "application/fhir+json"})
    assert r.status_code == 201
    body = r.json()
    assert r.headers["Location"] == f"{client.url}/Patient/{body['id']}/_history/1"
    assert r.headers["ETag"] == 'W/"1"'
    assert r.headers["Last-Modified"].endswith("GMT")
    # and fhirpy reads what httpx created
    read = client.get("Patient", body["id"])
    assert read["id"] == body["id"]
    assert read["meta"] == body["meta"]


def test_prefer_return_minimal_and_operation_outcome(server, client, uid):
    minimal = with_headers(server, Prefer="return=minimal")
    assert minimal.execute("Patient", method="post", data=patient_body(uid, 1)) is None  # 201, empty body
    # fhirpy quirk: with an empty body, resource.save() cannot learn the new id
    quiet = minimal.resource("Patient", **patient_body(uid, 2))
    quiet.save()
    assert quiet.id is None
    oo = with_headers(server, Prefer="return=OperationOutcome").execute("Patient", method="post", data=patient_body(uid, 3))
    assert oo["resourceType"] == "OperationOutcome"
    assert oo["issue"][0]["severity"] == "information"
    assert client.resources("Patient").search(identifier=run_scope(uid)).count() == 3


def test_read_returns_the_stored_resource(client, uid):
    patient = new_patient(client, uid)
    read = client.resources("Patient").search(_id=patient.id).get()
    assert read == patient  # fhirpy compares references
    raw = client.get("Patient", patient.id)
    assert raw["resourceType"] == "Patient"
    assert raw["name"] == [{"family": "Andersson", "given": ["Elsa"]}]
    assert raw["meta"]["versionId"] == "1"

    # through a reference, too
    assert client.reference("Patient", patient.id).to_resource()["birthDate"] == "2012-03-04"


def test_read_unknown_id_is_404_not_found(client, http, uid):
    with pytest.raises(ResourceNotFound) as info:
        client.get("Patient", f"no-such-{uid}")
    outcome = outcome_of(info.value)
    assert outcome["resourceType"] == "OperationOutcome"
    assert issue_codes(outcome) == ["not-found"]
    assert http.get(f"/Patient/no-such-{uid}").status_code == 404


def test_conditional_read_refresh_uses_if_none_match(client, server, uid):
    patient = new_patient(client, uid)
    # fhirpy's refresh sends If-None-Match: <versionId>; the server answers 304 and fhirpy keeps the resource
    patient.refresh()
    assert patient["meta"]["versionId"] == "1"

    other = client.get("Patient", patient.id)
    other = client.resource("Patient", **other)
    other["active"] = False
    other.save()
    patient.refresh()  # now a 200 with the new version
    assert patient["meta"]["versionId"] == "2"
    assert patient["active"] is False


# --------------------------------------------------------------------------- update / vread


def test_update_creates_new_version_and_vread_returns_old_ones(client, uid):
    patient = new_patient(client, uid)
    first_updated = patient["meta"]["lastUpdated"]

    patient["active"] = True
    patient.save()
    assert patient["meta"]["versionId"] == "2"
    assert patient["meta"]["lastUpdated"] > first_updated

    patient["name"] = [{"family": "Andersson", "given": ["Elsa", "Maria"]}]
    patient.save()
    assert patient["meta"]["versionId"] == "3"

    ref = client.reference("Patient", patient.id)
    v1 = ref.execute("_history/1", method="get")
    v2 = ref.execute("_history/2", method="get")
    v3 = client.execute(f"Patient/{patient.id}/_history/3", method="get")
    assert v1["meta"]["versionId"] == "1" and "active" not in v1
    assert v1["meta"]["lastUpdated"] == first_updated
    assert v2["meta"]["versionId"] == "2" and v2["active"] is True
    assert v2["name"][0]["given"] == ["Elsa"]
    assert v3["name"][0]["given"] == ["Elsa", "Maria"]
    # read returns the newest
    assert client.get("Patient", patient.id)["meta"]["versionId"] == "3"

    with pytest.raises(ResourceNotFound):
        ref.execute("_history/4", method="get")


def test_update_as_create_with_client_id(client, http, uid):
    rid = f"evi-{uid[:24]}"
    with pytest.raises(ResourceNotFound):
        client.get("Patient", rid)

    patient = client.resource("Patient", id=rid, **patient_body(uid))
    patient.save()  # fhirpy PUTs Patient/<id> because the resource has an id
    assert patient.id == rid
    assert patient["meta"]["versionId"] == "1"
    assert client.get("Patient", rid)["identifier"][0]["value"] == pnr(uid)

    # the PUT that created it answered 201 (history records it), a second PUT 200
    history = client.execute(f"Patient/{rid}/_history", method="get")
    assert history["entry"][0]["response"]["status"].startswith("201")
    patient["active"] = True
    patient.save()
    history = client.execute(f"Patient/{rid}/_history", method="get")
    assert [e["response"]["status"][:3] for e in history["entry"]] == ["200", "201"]

    r = http.put(f"/Patient/evi2-{uid[:24]}", json={**patient_body(uid, 1), "id": f"evi2-{uid[:24]}"})
    assert r.status_code == 201
    assert r.headers["Location"].endswith(f"/Patient/evi2-{uid[:24]}/_history/1")


def test_update_with_mismatching_body_id_is_400(client, uid):
    patient = new_patient(client, uid)
    with pytest.raises(OperationOutcome) as info:
        client.execute(f"Patient/{patient.id}", method="put", data={**patient_body(uid), "id": "someone-else"})
    outcome = outcome_of(info.value)
    assert expressions(outcome) == ["Patient.id"]
    assert client.get("Patient", patient.id)["meta"]["versionId"] == "1"


# --------------------------------------------------------------------------- delete


def test_delete_then_read_is_410_gone(client, http, uid):
    patient = new_patient(client, uid)
    assert patient.delete() is None  # 204 No Content

    with pytest.raises(ResourceNotFound) as info:
        client.get("Patient", patient.id)
    outcome = outcome_of(info.value)
    assert issue_codes(outcome) == ["deleted"], "a deleted resource must answer 410 Gone, not 404"
    assert http.get(f"/Patient/{patient.id}").status_code == 410

    # gone from search, still in history (deletion newest first), old version still vread-able
    assert client.resources("Patient").search(identifier=run_scope(uid)).fetch() == []
    history = client.execute(f"Patient/{patient.id}/_history", method="get")
    assert history["total"] == 2
    assert history["entry"][0]["request"]["method"] == "DELETE"
    assert "resource" not in history["entry"][0]
    assert client.execute(f"Patient/{patient.id}/_history/1", method="get")["id"] == patient.id


def test_delete_via_client_and_reference(client, uid):
    p1, p2 = new_patient(client, uid, 1), new_patient(client, uid, 2)
    client.delete("Patient", p1.id)
    client.reference("Patient", p2.id).delete()
    for p in (p1, p2):
        with pytest.raises(ResourceNotFound):
            client.get("Patient", p.id)


def test_delete_of_unknown_resource_succeeds(client, uid):
    assert client.delete("Patient", f"never-{uid}") is None


def test_update_after_delete_recreates(client, uid):
    patient = new_patient(client, uid)
    patient.delete()
    again = client.resource("Patient", id=patient.id, **patient_body(uid))
    again.save()
    assert again["meta"]["versionId"] == "3"
    assert client.get("Patient", patient.id)["meta"]["versionId"] == "3"


# --------------------------------------------------------------------------- history


def test_instance_history_newest_first(client, uid):
    patient = new_patient(client, uid)
    for active in (True, False):
        patient["active"] = active
        patient.save()

    history = client.execute(f"Patient/{patient.id}/_history", method="get")
    assert history["resourceType"] == "Bundle"
    assert history["type"] == "history"
    assert history["total"] == 3
    assert history_version_ids(history) == ["3", "2", "1"]
    assert history["entry"][0]["resource"]["active"] is False
    assert history["entry"][2]["request"] == {"method": "POST", "url": "Patient"}
    assert history["entry"][0]["request"]["method"] == "PUT"
    stamps = [e["response"]["lastModified"] for e in history["entry"]]
    assert stamps == sorted(stamps, reverse=True)

    limited = client.execute(f"Patient/{patient.id}/_history", method="get", params={"_count": 1})
    assert history_version_ids(limited) == ["3"]
    assert any(link["relation"] == "next" for link in limited["link"])


def test_instance_history_of_unknown_id_is_404(client, uid):
    with pytest.raises(ResourceNotFound):
        client.execute(f"Patient/nobody-{uid}/_history", method="get")


def test_type_history_since(fresh_server, uid):
    client = SyncFHIRClient(fresh_server.base_url)
    before = client.resource("Organization", **organization_body(uid, 0))
    before.save()
    time.sleep(0.005)
    after1 = client.resource("Organization", **organization_body(uid, 1))
    after1.save()
    since = after1["meta"]["lastUpdated"]
    after1["name"] = "BUP Mottagning Kungsholmen"
    after1.save()
    after2 = client.resource("Organization", **organization_body(uid, 2))
    after2.save()
    # another type's write is not in Organization's history
    client.resource("Patient", **patient_body(uid)).save()

    history = client.execute("Organization/_history", method="get", params={"_since": since})
    assert history["type"] == "history"
    keys = [(e["resource"]["id"], e["resource"]["meta"]["versionId"]) for e in history["entry"]]
    assert keys == [(after2.id, "1"), (after1.id, "2"), (after1.id, "1")]
    assert history["total"] == 3
    assert all(e["resource"]["resourceType"] == "Organization" for e in history["entry"])
    assert all(e["response"]["lastModified"] >= since for e in history["entry"])

    everything = client.execute("Organization/_history", method="get")
    assert {e["resource"]["id"] for e in everything["entry"]} == {before.id, after1.id, after2.id}
    assert everything["total"] == 4


def test_history_paging_follows_next_links(client, uid):
    patient = new_patient(client, uid)
    for n in range(4):
        patient["name"] = [{"family": f"Andersson{n}"}]
        patient.save()
    versions: list[str] = []
    page = client.execute(f"Patient/{patient.id}/_history", method="get", params={"_count": 2})
    pages = 1
    while True:
        assert page["total"] == 5
        versions += history_version_ids(page)
        nxt = [link["url"] for link in page["link"] if link["relation"] == "next"]
        if not nxt:
            break
        # a write between pages must not shift what the next page holds
        if pages == 1:
            client.resource("Patient", **patient_body(uid, 1)).save()
        page = client.execute(nxt[0], method="get")  # fhirpy accepts absolute urls under its base
        pages += 1
    assert versions == ["5", "4", "3", "2", "1"]
    assert pages == 3


def test_history_since_in_the_future_is_empty(client, uid):
    patient = new_patient(client, uid)
    history = client.execute(
        f"Patient/{patient.id}/_history", method="get", params={"_since": "2999-01-01T00:00:00Z"}
    )
    assert history["total"] == 0
    assert history.get("entry", []) == []


def test_vread_of_the_deletion_version_is_410(client, uid):
    patient = new_patient(client, uid)
    patient.delete()
    with pytest.raises(ResourceNotFound) as info:
        client.execute(f"Patient/{patient.id}/_history/2", method="get")
    assert issue_codes(outcome_of(info.value)) == ["deleted"]


def test_history_since_must_be_an_instant(client):
    with pytest.raises(OperationOutcome) as info:
        client.execute("Patient/_history", method="get", params={"_since": "yesterday"})
    assert issue_codes(outcome_of(info.value)) == ["invalid"]


# --------------------------------------------------------------------------- search


def test_search_by_identifier_token_forms(client, uid):
    patient = new_patient(client, uid)
    other = new_patient(client, uid, 1)
    value = pnr(uid)
    patients = client.resources("Patient")

    assert entry_ids(patients.search(identifier=f"{PNR_SYSTEM}|{value}").fetch()) == {patient.id}
    assert entry_ids(patients.search(identifier=value).fetch()) == {patient.id}
    # |value: the identifier has no system: the personnummer one does not match
    assert patients.search(identifier=f"|{value}").fetch() == []
    # system|: any value in that system (scoped by the run identifier via AND)
    both = patients.search(identifier=run_scope(uid)).fetch_all()
    assert entry_ids(both) == {patient.id, other.id}
    # OR within one parameter
    either = patients.search(identifier=f"{PNR_SYSTEM}|{value},{PNR_SYSTEM}|{pnr(uid, 1)}").fetch()
    assert entry_ids(either) == {patient.id, other.id}
    # wrong system
    assert patients.search(identifier=f"http://example.org/other|{value}").fetch() == []
    assert patients.search(identifier=f"{PNR_SYSTEM}|{value}").count() == 1


def test_search_identifier_without_system_matches_pipe_value(client, uid):
    body = patient_body(uid)
    body["identifier"] = [{"value": f"nosys-{uid}"}, {"system": RUN_SYSTEM, "value": uid}]
    patient = client.resource("Patient", **body)
    patient.save()
    found = client.resources("Patient").search(identifier=f"|nosys-{uid}").fetch()
    assert entry_ids(found) == {patient.id}
    assert entry_ids(client.resources("Patient").search(identifier=f"nosys-{uid}").fetch()) == {patient.id}


def test_search_by_id(client, uid):
    p1, p2, _p3 = (new_patient(client, uid, n) for n in range(3))
    patients = client.resources("Patient")
    assert entry_ids(patients.search(_id=p1.id).fetch()) == {p1.id}
    assert entry_ids(patients.search(_id=f"{p1.id},{p2.id}").fetch()) == {p1.id, p2.id}
    assert patients.search(_id=f"nope-{uid}").fetch() == []
    assert patients.search(_id=p1.id).first()["id"] == p1.id


def test_search_results_are_searchset_bundles(client, uid):
    patient = new_patient(client, uid)
    bundle = client.resources("Patient").search(identifier=run_scope(uid)).fetch_raw()
    assert bundle["resourceType"] == "Bundle"
    assert bundle["type"] == "searchset"
    assert bundle["total"] == 1
    entry = bundle["entry"][0]
    assert entry["fullUrl"] == f"{client.url}/Patient/{patient.id}"
    assert entry["search"]["mode"] == "match"
    assert any(link["relation"] == "self" for link in bundle["link"])


def test_search_does_not_return_other_types(client, uid):
    new_patient(client, uid)
    org = client.resource("Organization", **organization_body(uid))
    org.save()
    assert entry_ids(client.resources("Organization").search(identifier=run_scope(uid)).fetch()) == {org.id}


def test_search_by_last_updated_prefixes(client, uid):
    first = new_patient(client, uid, 1)
    time.sleep(0.005)
    second = new_patient(client, uid, 2)
    t1 = first["meta"]["lastUpdated"]
    t2 = second["meta"]["lastUpdated"]
    assert t1 < t2

    def ids(expr: str) -> set[str]:
        return entry_ids(client.resources("Patient").search(identifier=run_scope(uid), _lastUpdated=expr).fetch())

    both = {first.id, second.id}
    assert ids(f"eq{t1}") == {first.id}
    assert ids(t1) == {first.id}  # no prefix means eq
    assert ids(f"gt{t1}") == {second.id}
    assert ids(f"ge{t1}") == both
    assert ids(f"lt{t2}") == {first.id}
    assert ids(f"le{t2}") == both
    assert ids(f"lt{t1}") == set()
    assert ids(f"gt{t2}") == set()
    assert ids(f"ne{t1}") == {second.id}
    # coarser precisions are ranges: the day (and the second, the millisecond) containing t1
    day = t1[:10]
    assert ids(day) == (both if t2.startswith(day) else {first.id})
    assert first.id in ids(f"eq{t1[:19]}Z")
    assert ids(f"eq{t1[:23]}Z") == {first.id}  # 5 ms apart: a different millisecond
    assert ids(f"gt{t1[:19]}Z") == (set() if t2[:19] == t1[:19] else {second.id})
    # the same instant written with a +01:00 offset (fhirpy percent-encodes the '+')
    cet = datetime.fromisoformat(t1.replace("Z", "+00:00")).astimezone(timezone(timedelta(hours=1)))
    assert ids(f"eq{cet.isoformat()}") == {first.id}
    assert ids(f"gt{cet.isoformat()}") == {second.id}
    # AND of two bounds (fhirpy: a list value repeats the parameter)
    assert ids([f"ge{t1}", f"le{t1}"]) == {first.id}


def test_search_last_updated_after_update_uses_the_new_instant(client, uid):
    patient = new_patient(client, uid)
    t1 = patient["meta"]["lastUpdated"]
    time.sleep(0.005)
    patient["active"] = True
    patient.save()
    t2 = patient["meta"]["lastUpdated"]
    found = client.resources("Patient").search(identifier=run_scope(uid))
    assert found.search(_lastUpdated=f"eq{t1}").fetch() == []
    assert entry_ids(found.search(_lastUpdated=f"eq{t2}").fetch()) == {patient.id}


def test_count_zero_gives_only_the_total(client, uid):
    for n in range(3):
        new_patient(client, uid, n)
    bundle = client.resources("Patient").search(identifier=run_scope(uid)).limit(0).fetch_raw()
    assert bundle["total"] == 3
    assert [e for e in bundle.get("entry", []) if e["search"]["mode"] == "match"] == []
    summary = client.execute("Patient", method="get", params={"identifier": run_scope(uid), "_summary": "count"})
    assert summary["total"] == 3 and "entry" not in summary


def test_unknown_search_parameter_is_reported_not_applied(client, uid):
    patient = new_patient(client, uid)
    bundle = client.resources("Patient").search(identifier=run_scope(uid), nonsense="x").fetch_raw()
    matches = [e for e in bundle["entry"] if e["search"]["mode"] == "match"]
    outcomes = [e for e in bundle["entry"] if e["search"]["mode"] == "outcome"]
    assert [e["resource"]["id"] for e in matches] == [patient.id]
    assert outcomes and outcomes[0]["resource"]["resourceType"] == "OperationOutcome"
    strict = SyncFHIRClient(client.url, extra_headers={"Prefer": "handling=strict"})
    with pytest.raises(OperationOutcome) as info:
        strict.resources("Patient").search(identifier=run_scope(uid), nonsense="x").fetch()
    assert "nonsense" in expressions(outcome_of(info.value))


def test_invalid_last_updated_value_is_400(client, uid):
    with pytest.raises(OperationOutcome) as info:
        client.resources("Patient").search(_lastUpdated="gtnot-a-date").fetch()
    outcome = outcome_of(info.value)
    assert issue_codes(outcome) == ["invalid"]
    assert "not-a-date" in outcome["issue"][0]["diagnostics"]


def test_count_paging_with_fetch_all_and_iteration(client, uid):
    created = {new_patient(client, uid, n).id for n in range(7)}
    search = client.resources("Patient").search(identifier=run_scope(uid))

    page = search.limit(3).fetch()
    assert len(page) == 3

    raw = search.limit(3).fetch_raw()
    assert raw["total"] == 7
    assert {link["relation"] for link in raw["link"]} >= {"self", "next"}

    everything = search.limit(3).fetch_all()  # follows Bundle.link next
    assert len(everything) == 7
    assert entry_ids(everything) == created

    seen = [p.id for p in search.limit(2)]
    assert len(seen) == 7 and set(seen) == created

    assert search.count() == 7


def test_paging_in_sorted_order(client, uid):
    created = [new_patient(client, uid, n).id for n in range(5)]
    by_id = client.resources("Patient").search(identifier=run_scope(uid)).sort("_id").limit(2).fetch_all()
    assert [p.id for p in by_id] == sorted(created)
    by_time = client.resources("Patient").search(identifier=run_scope(uid)).sort("-_lastUpdated").limit(2).fetch_all()
    assert [p.id for p in by_time] == list(reversed(created))


def test_search_via_post_search(client, uid):
    patient = new_patient(client, uid)
    # fhirpy's execute sends JSON, not a form: _search needs a form body, so use query parameters only
    bundle = client.execute("Patient/_search", method="post", params={"identifier": run_scope(uid)})
    assert [e["resource"]["id"] for e in bundle["entry"]] == [patient.id]


# --------------------------------------------------------------------------- conditional create


def test_conditional_create_with_if_none_exist(server, client, uid):
    value = pnr(uid)
    cc = with_headers(server, If_None_Exist=f"identifier={PNR_SYSTEM}|{value}")

    first, created = cc.resources("Patient").get_or_create(cc.resource("Patient", **patient_body(uid)))
    assert created is True
    assert first["meta"]["versionId"] == "1"

    second, created = cc.resources("Patient").get_or_create(
        cc.resource("Patient", **patient_body(uid, gender="male"))
    )
    assert created is False, "If-None-Exist matched: the server must answer 200, not create"
    assert second.id == first.id
    assert second["gender"] == "female", "the existing resource is returned untouched"

    assert client.resources("Patient").search(identifier=f"{PNR_SYSTEM}|{value}").count() == 1
    assert client.get("Patient", first.id)["meta"]["versionId"] == "1"


def test_conditional_create_with_resource_save(server, client, uid):
    cc = with_headers(server, If_None_Exist=f"identifier={run_scope(uid)}")
    a = cc.resource("Patient", **patient_body(uid))
    a.save()
    b = cc.resource("Patient", **patient_body(uid))
    b.save()
    assert a.id == b.id


def test_conditional_create_with_several_matches_is_412(server, client, uid):
    new_patient(client, uid, 1)
    new_patient(client, uid, 2)
    cc = with_headers(server, If_None_Exist=f"identifier={run_scope(uid)}")
    with pytest.raises(MultipleResourcesFound) as info:  # fhirpy's name for 412
        cc.resource("Patient", **patient_body(uid, 3)).save()
    assert outcome_of(info.value)["resourceType"] == "OperationOutcome"
    assert client.resources("Patient").search(identifier=run_scope(uid)).count() == 2


def test_conditional_create_does_not_match_deleted_resources(server, client, uid):
    old = new_patient(client, uid)
    old.delete()
    cc = with_headers(server, If_None_Exist=f"identifier={PNR_SYSTEM}|{pnr(uid)}")
    fresh, created = cc.resources("Patient").get_or_create(cc.resource("Patient", **patient_body(uid)))
    assert created is True
    assert fresh.id != old.id


def test_conditional_create_without_match_via_id_criteria(server, client, uid):
    cc = with_headers(server, If_None_Exist=f"_id=absent-{uid}")
    resource, created = cc.resources("Patient").get_or_create(cc.resource("Patient", **patient_body(uid)))
    assert created is True
    assert resource.id != f"absent-{uid}"


def test_conditional_create_with_unknown_parameter_is_refused(server, client, uid):
    cc = with_headers(server, If_None_Exist=f"nonsense={uid}")
    with pytest.raises(OperationOutcome) as info:
        cc.resource("Patient", **patient_body(uid)).save()
    assert "nonsense" in outcome_of(info.value)["issue"][0]["diagnostics"]
    assert client.resources("Patient").search(identifier=run_scope(uid)).count() == 0


# --------------------------------------------------------------------------- conditional update / delete / patch


def test_conditional_update_creates_then_updates(client, uid):
    criteria = client.resources("Patient").search(identifier=f"{PNR_SYSTEM}|{pnr(uid)}")

    created_resource, created = criteria.update(client.resource("Patient", **patient_body(uid)))
    assert created is True
    assert created_resource["meta"]["versionId"] == "1"

    updated, created = criteria.update(client.resource("Patient", **patient_body(uid, active=False)))
    assert created is False
    assert updated.id == created_resource.id
    assert updated["meta"]["versionId"] == "2"
    assert client.get("Patient", created_resource.id)["active"] is False
    assert criteria.count() == 1


def test_conditional_update_no_match_with_body_id_creates_that_id(client, uid):
    rid = f"cu-{uid[:20]}"
    resource, created = (
        client.resources("Patient")
        .search(identifier=f"{PNR_SYSTEM}|{pnr(uid)}")
        .update(client.resource("Patient", id=rid, **patient_body(uid)))
    )
    assert created is True
    assert resource.id == rid


def test_conditional_update_with_several_matches_is_412(client, uid):
    new_patient(client, uid, 1)
    new_patient(client, uid, 2)
    with pytest.raises(MultipleResourcesFound):
        client.resources("Patient").search(identifier=run_scope(uid)).update(
            client.resource("Patient", **patient_body(uid, 3))
        )
    found = client.resources("Patient").search(identifier=run_scope(uid)).fetch()
    assert {p["meta"]["versionId"] for p in found} == {"1"}


def test_conditional_update_after_delete_creates_new(client, uid):
    criteria = client.resources("Patient").search(identifier=f"{PNR_SYSTEM}|{pnr(uid)}")
    first, created = criteria.update(client.resource("Patient", **patient_body(uid)))
    assert created
    first.delete()
    second, created = criteria.update(client.resource("Patient", **patient_body(uid)))
    assert created is True, "a deleted resource is not a match for conditional update"
    assert second.id != first.id
    assert second["meta"]["versionId"] == "1"


def test_conditional_update_with_if_match(server, client, uid):
    patient = new_patient(client, uid)
    patient["active"] = True
    patient.save()
    stale = with_headers(server, If_Match='W/"1"')
    with pytest.raises(MultipleResourcesFound):
        stale.resources("Patient").search(identifier=f"{PNR_SYSTEM}|{pnr(uid)}").update(
            stale.resource("Patient", **patient_body(uid, active=False))
        )
    assert client.get("Patient", patient.id)["active"] is True
    fresh = with_headers(server, If_Match='W/"2"')
    updated, created = fresh.resources("Patient").search(identifier=f"{PNR_SYSTEM}|{pnr(uid)}").update(
        fresh.resource("Patient", **patient_body(uid, active=False))
    )
    assert created is False and updated["meta"]["versionId"] == "3"


def test_conditional_criteria_with_unknown_parameter_are_refused(client, uid):
    patient = new_patient(client, uid)
    with pytest.raises(OperationOutcome):
        client.resources("Patient").search(nonsense="x").delete()
    with pytest.raises(OperationOutcome):
        client.resources("Patient").search(nonsense="x").update(client.resource("Patient", **patient_body(uid)))
    assert client.get("Patient", patient.id)["meta"]["versionId"] == "1"


def test_conditional_delete(client, uid):
    keep = new_patient(client, uid, 1)
    doomed = new_patient(client, uid, 2)
    data, status = client.resources("Patient").search(identifier=f"{PNR_SYSTEM}|{pnr(uid, 2)}").delete()
    assert status in (200, 204)
    with pytest.raises(ResourceNotFound):
        client.get("Patient", doomed.id)
    assert client.get("Patient", keep.id)["id"] == keep.id
    assert entry_ids(client.resources("Patient").search(identifier=run_scope(uid)).fetch()) == {keep.id}


def test_conditional_delete_without_match_is_a_no_op(client, uid):
    _, status = client.resources("Patient").search(identifier=f"{PNR_SYSTEM}|{pnr(uid, 99)}").delete()
    assert status in (200, 204)


def test_conditional_delete_with_several_matches_is_412(client, uid):
    new_patient(client, uid, 1)
    new_patient(client, uid, 2)
    with pytest.raises(MultipleResourcesFound):
        client.resources("Patient").search(identifier=run_scope(uid)).delete()
    assert client.resources("Patient").search(identifier=run_scope(uid)).count() == 2


def test_conditional_patch(server, client, uid):
    patient = new_patient(client, uid)
    pc = with_headers(server, Content_Type=JSON_PATCH)
    patched = pc.execute(
        "Patient",
        method="patch",
        data=[{"op": "add", "path": "/active", "value": False}],
        params={"identifier": f"{PNR_SYSTEM}|{pnr(uid)}"},
    )
    assert patched["id"] == patient.id
    assert patched["active"] is False
    assert patched["meta"]["versionId"] == "2"


# --------------------------------------------------------------------------- patch


def test_json_patch(server, client, uid):
    patient = new_patient(client, uid)
    pc = with_headers(server, Content_Type=JSON_PATCH)
    patched = pc.execute(
        f"Patient/{patient.id}",
        method="patch",
        data=[
            {"op": "test", "path": "/gender", "value": "female"},
            {"op": "replace", "path": "/gender", "value": "other"},
            {"op": "add", "path": "/telecom", "value": [{"system": "phone", "value": "+46701234567"}]},
            {"op": "remove", "path": "/birthDate"},
        ],
    )
    assert patched["meta"]["versionId"] == "2"
    assert patched["gender"] == "other"
    assert patched["telecom"] == [{"system": "phone", "value": "+46701234567"}]
    assert "birthDate" not in patched
    stored = client.get("Patient", patient.id)
    assert stored["gender"] == "other" and "birthDate" not in stored
    assert client.execute(f"Patient/{patient.id}/_history/1", method="get")["gender"] == "female"


def test_json_patch_failing_test_op_is_422_and_changes_nothing(server, client, uid):
    patient = new_patient(client, uid)
    pc = with_headers(server, Content_Type=JSON_PATCH)
    with pytest.raises(OperationOutcome) as info:
        pc.execute(
            f"Patient/{patient.id}",
            method="patch",
            data=[{"op": "test", "path": "/gender", "value": "male"}, {"op": "remove", "path": "/gender"}],
        )
    outcome = outcome_of(info.value)
    assert issue_codes(outcome) == ["processing"], "a failed JSON Patch test op is 422 Unprocessable"
    assert client.get("Patient", patient.id)["meta"]["versionId"] == "1"
    assert client.get("Patient", patient.id)["gender"] == "female"


def test_json_patch_producing_an_invalid_resource_is_refused(server, client, uid):
    patient = new_patient(client, uid)
    pc = with_headers(server, Content_Type=JSON_PATCH)
    with pytest.raises(OperationOutcome) as info:
        pc.execute(f"Patient/{patient.id}", method="patch", data=[{"op": "replace", "path": "/gender", "value": "x"}])
    assert "Patient.gender" in expressions(outcome_of(info.value))
    assert client.get("Patient", patient.id)["gender"] == "female"


def test_fhirpy_native_patch_is_a_json_merge_patch(server, client, uid):
    """fhirpy's ``patch`` sends a partial resource as application/json: a JSON Merge
    Patch (RFC 7386), where null removes an element."""
    patient = new_patient(client, uid)
    patched = client.patch("Patient", patient.id, active=False)
    assert patched["active"] is False and patched["meta"]["versionId"] == "2"
    assert patched["gender"] == patient["gender"]  # untouched elements stay
    patient.patch(gender="unknown")
    assert client.get("Patient", patient.id)["gender"] == "unknown"
    merge = with_headers(server, Content_Type="application/merge-patch+json")
    removed = merge.execute(f"Patient/{patient.id}", method="patch", data={"active": None})
    assert "active" not in removed and removed["meta"]["versionId"] == "4"
    # the merged result is validated like any write
    with pytest.raises(OperationOutcome) as info:
        client.patch("Patient", patient.id, gender="nonsense")
    assert "Patient.gender" in expressions(outcome_of(info.value))
    with pytest.raises(OperationOutcome) as info:
        client.patch("Patient", patient.id, id="other")
    assert issue_codes(outcome_of(info.value)) == ["processing"]
    assert client.get("Patient", patient.id)["meta"]["versionId"] == "4"


def test_fhirpath_patch_and_misdeclared_json_patch_are_415(server, client, uid):
    patient = new_patient(client, uid)
    as_json = with_headers(server, Content_Type="application/json")
    with pytest.raises(OperationOutcome) as info:
        as_json.execute(f"Patient/{patient.id}", method="patch", data=[{"op": "add", "path": "/active", "value": True}])
    assert "json-patch+json" in outcome_of(info.value)["issue"][0]["diagnostics"]
    fhirpath_patch = {"resourceType": "Parameters", "parameter": [{"name": "operation", "part": [
        {"name": "type", "valueCode": "replace"}, {"name": "path", "valueString": "Patient.active"},
        {"name": "value", "valueBoolean": False}]}]}
    fhir_json = with_headers(server, Content_Type="application/fhir+json")
    with pytest.raises(OperationOutcome) as info:
        fhir_json.execute(f"Patient/{patient.id}", method="patch", data=fhirpath_patch)
    assert issue_codes(outcome_of(info.value)) == ["not-supported"]
    assert client.get("Patient", patient.id)["meta"]["versionId"] == "1"


def test_patch_of_deleted_or_unknown_resource(server, client, uid):
    pc = with_headers(server, Content_Type=JSON_PATCH)
    ops = [{"op": "add", "path": "/active", "value": True}]
    with pytest.raises(ResourceNotFound) as info:
        pc.execute(f"Patient/ghost-{uid}", method="patch", data=ops)
    assert issue_codes(outcome_of(info.value)) == ["not-found"]
    patient = new_patient(client, uid)
    patient.delete()
    with pytest.raises(ResourceNotFound) as info:
        pc.execute(f"Patient/{patient.id}", method="patch", data=ops)
    assert issue_codes(outcome_of(info.value)) == ["deleted"]


# --------------------------------------------------------------------------- If-Match


def test_if_match_optimistic_locking(server, client, uid):
    patient = new_patient(client, uid)
    stale = client.resource("Patient", **client.get("Patient", patient.id))

    # version 1 is current: If-Match W/"1" succeeds
    v1_client = with_headers(server, If_Match='W/"1"')
    patient["active"] = True
    patient.__client__ = v1_client
    patient.save()
    assert patient["meta"]["versionId"] == "2"

    # a second writer still holding version 1 is refused with 412 and nothing changes
    stale.__client__ = v1_client
    stale["active"] = False
    with pytest.raises(MultipleResourcesFound) as info:  # fhirpy raises this for every 412
        stale.save()
    outcome = outcome_of(info.value)
    assert outcome["resourceType"] == "OperationOutcome"
    assert issue_codes(outcome) == ["conflict"]
    current = client.get("Patient", patient.id)
    assert current["meta"]["versionId"] == "2" and current["active"] is True

    # the plain quoted form is accepted too
    plain = with_headers(server, If_Match='"2"')
    patient.__client__ = plain
    patient["active"] = False
    patient.save()
    assert patient["meta"]["versionId"] == "3"


def test_if_match_on_delete_and_patch(server, client, uid):
    patient = new_patient(client, uid)
    patient["active"] = True
    patient.save()

    with pytest.raises(MultipleResourcesFound):
        with_headers(server, If_Match='W/"1"').delete("Patient", patient.id)
    assert client.get("Patient", patient.id)["meta"]["versionId"] == "2"

    with pytest.raises(MultipleResourcesFound):
        with_headers(server, If_Match='W/"1"', Content_Type=JSON_PATCH).execute(
            f"Patient/{patient.id}", method="patch", data=[{"op": "remove", "path": "/active"}]
        )
    assert client.get("Patient", patient.id)["active"] is True

    with_headers(server, If_Match='W/"2"').delete("Patient", patient.id)
    with pytest.raises(ResourceNotFound):
        client.get("Patient", patient.id)


def test_etag_matches_meta_version(http, client, uid):
    patient = new_patient(client, uid)
    patient["active"] = True
    patient.save()
    r = http.get(f"/Patient/{patient.id}")
    assert r.headers["ETag"] == f'W/"{patient["meta"]["versionId"]}"'
    assert http.get(f"/Patient/{patient.id}", headers={"If-None-Match": r.headers["ETag"]}).status_code == 304


# --------------------------------------------------------------------------- transaction / batch


def _evi_transaction(uid: str) -> dict:
    p, o, sr, t = (f"urn:uuid:{uid[:8]}-0000-4000-8000-{uid[-12:][:-1]}{n}" for n in range(4))
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": t,
                "resource": task_body(uid, sr),
                "request": {"method": "POST", "url": "Task"},
            },
            {
                "fullUrl": sr,
                "resource": service_request_body(uid, p, o),
                "request": {"method": "POST", "url": "ServiceRequest"},
            },
            {"fullUrl": p, "resource": patient_body(uid), "request": {"method": "POST", "url": "Patient"}},
            {"fullUrl": o, "resource": organization_body(uid), "request": {"method": "POST", "url": "Organization"}},
        ],
    }


def test_transaction_rewrites_urn_uuid_references(client, uid):
    response = client.execute("", method="post", data=_evi_transaction(uid))
    assert response["resourceType"] == "Bundle"
    assert response["type"] == "transaction-response"
    assert len(response["entry"]) == 4
    assert all(e["response"]["status"].startswith("201") for e in response["entry"])
    # response entries are in request order
    task_loc, sr_loc, p_loc, o_loc = (e["response"]["location"] for e in response["entry"])
    assert task_loc.startswith("Task/") and sr_loc.startswith("ServiceRequest/")
    assert p_loc.startswith("Patient/") and o_loc.startswith("Organization/")
    pid, oid, srid, tid = (loc.split("/")[1] for loc in (p_loc, o_loc, sr_loc, task_loc))

    sr = client.resources("ServiceRequest").search(identifier=f"{REMISS_SYSTEM}|remiss-{uid}").get()
    assert sr.id == srid
    assert sr["subject"].reference == f"Patient/{pid}"
    assert sr["requester"].reference == f"Organization/{oid}"
    assert sr["subject"].to_resource()["identifier"][0]["value"] == pnr(uid)
    assert sr["requester"].to_resource()["name"] == "BUP Mottagning Södermalm"

    task = client.get("Task", tid)
    assert task["focus"]["reference"] == f"ServiceRequest/{srid}"
    assert task["status"] == "requested"
    assert "urn:uuid" not in str(task) + str(sr)


def test_transaction_conditional_reference_and_if_none_exist(client, uid):
    existing = new_patient(client, uid)
    org = client.resource("Organization", **organization_body(uid))
    org.save()
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:7f0c1c2e-0000-4000-8000-000000000001",
                "resource": patient_body(uid),
                "request": {
                    "method": "POST",
                    "url": "Patient",
                    "ifNoneExist": f"identifier={PNR_SYSTEM}|{pnr(uid)}",
                },
            },
            {
                "resource": service_request_body(
                    uid,
                    "urn:uuid:7f0c1c2e-0000-4000-8000-000000000001",
                    f"Organization?identifier={org['identifier'][0]['system']}|{org['identifier'][0]['value']}",
                ),
                "request": {"method": "POST", "url": "ServiceRequest"},
            },
        ],
    }
    response = client.execute("", method="post", data=bundle)
    assert response["entry"][0]["response"]["status"].startswith("200")
    assert response["entry"][0]["response"]["location"].startswith(f"Patient/{existing.id}/")
    sr_id = response["entry"][1]["response"]["location"].split("/")[1]
    sr = client.get("ServiceRequest", sr_id)
    assert sr["subject"]["reference"] == f"Patient/{existing.id}"
    assert sr["requester"]["reference"] == f"Organization/{org.id}"
    assert client.resources("Patient").search(identifier=run_scope(uid)).count() == 1


def test_transaction_rolls_back_when_an_entry_is_invalid(client, uid):
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:1b7e0a0c-0000-4000-8000-00000000000a",
                "resource": patient_body(uid),
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "resource": service_request_body(
                    uid, "urn:uuid:1b7e0a0c-0000-4000-8000-00000000000a", "Organization/x", status="bogus"
                ),
                "request": {"method": "POST", "url": "ServiceRequest"},
            },
        ],
    }
    with pytest.raises(OperationOutcome) as info:
        client.execute("", method="post", data=bundle)
    outcome = outcome_of(info.value)
    assert outcome["resourceType"] == "OperationOutcome"
    assert "ServiceRequest.status" in expressions(outcome)

    assert client.resources("Patient").search(identifier=f"{PNR_SYSTEM}|{pnr(uid)}").fetch() == []
    assert client.resources("Patient").search(identifier=run_scope(uid)).count() == 0
    assert client.resources("ServiceRequest").search(identifier=run_scope(uid)).count() == 0


def test_transaction_rolls_back_updates_and_deletes_too(client, uid):
    keep = new_patient(client, uid, 1)
    doomed_delete = new_patient(client, uid, 2)
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"request": {"method": "DELETE", "url": f"Patient/{doomed_delete.id}"}},
            {
                "resource": {**patient_body(uid, 1, active=False), "id": keep.id},
                "request": {"method": "PUT", "url": f"Patient/{keep.id}"},
            },
            {"resource": {"resourceType": "Patient", "bogusElement": 1}, "request": {"method": "POST", "url": "Patient"}},
        ],
    }
    with pytest.raises(OperationOutcome):
        client.execute("", method="post", data=bundle)
    assert client.get("Patient", doomed_delete.id)["meta"]["versionId"] == "1"
    assert client.get("Patient", keep.id)["meta"]["versionId"] == "1"
    assert "active" not in client.get("Patient", keep.id)


def test_transaction_with_get_update_and_delete(client, uid):
    a = new_patient(client, uid, 1)
    b = new_patient(client, uid, 2)
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"request": {"method": "GET", "url": f"Patient?identifier={run_scope(uid)}"}},
            {"request": {"method": "DELETE", "url": f"Patient/{b.id}"}},
            {
                "resource": {**patient_body(uid, 1, active=True), "id": a.id},
                "request": {"method": "PUT", "url": f"Patient/{a.id}"},
            },
        ],
    }
    response = client.execute("", method="post", data=bundle)
    statuses = [e["response"]["status"][:3] for e in response["entry"]]
    assert statuses[0] == "200" and statuses[1] in ("200", "204") and statuses[2] == "200"
    # GET runs last: it sees the transaction's own writes
    searchset = response["entry"][0]["resource"]
    assert {e["resource"]["id"] for e in searchset["entry"] if e["search"]["mode"] == "match"} == {a.id}
    with pytest.raises(ResourceNotFound):
        client.get("Patient", b.id)
    assert client.get("Patient", a.id)["active"] is True


def test_batch_with_one_failing_entry(client, uid):
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"resource": patient_body(uid), "request": {"method": "POST", "url": "Patient"}},
            {
                "resource": service_request_body(uid, "Patient/x", "Organization/y", status="bogus"),
                "request": {"method": "POST", "url": "ServiceRequest"},
            },
            {"resource": organization_body(uid), "request": {"method": "POST", "url": "Organization"}},
            {"request": {"method": "GET", "url": f"Patient/missing-{uid}"}},
        ],
    }
    response = client.execute("", method="post", data=bundle)
    assert response["type"] == "batch-response"
    statuses = [e["response"]["status"][:3] for e in response["entry"]]
    assert statuses == ["201", "400", "201", "404"]
    bad = response["entry"][1]["response"]["outcome"]
    assert bad["resourceType"] == "OperationOutcome"
    assert "ServiceRequest.status" in expressions(bad)

    assert client.resources("Patient").search(identifier=run_scope(uid)).count() == 1
    assert client.resources("Organization").search(identifier=run_scope(uid)).count() == 1
    assert client.resources("ServiceRequest").search(identifier=run_scope(uid)).count() == 0


def test_post_to_base_needs_a_transaction_or_batch_bundle(client, uid):
    with pytest.raises(OperationOutcome):
        client.execute("", method="post", data=patient_body(uid))
    with pytest.raises(OperationOutcome) as info:
        client.execute("", method="post", data={"resourceType": "Bundle", "type": "collection"})
    assert "Bundle.type" in expressions(outcome_of(info.value))


def test_full_evi_chain_with_fhirpy_references(client, uid):
    patient = new_patient(client, uid)
    org = client.resource("Organization", **organization_body(uid))
    org.save()
    sr = client.resource(
        "ServiceRequest",
        **service_request_body(uid, "Patient/x", "Organization/y"),
    )
    sr["subject"] = patient.to_reference()
    sr["requester"] = org.to_reference(display=org["name"])
    sr.save()
    task = client.resource("Task", **task_body(uid, f"ServiceRequest/{sr.id}"))
    task["focus"] = sr.to_reference()
    task.save()

    stored = client.get("Task", task.id)
    assert stored["focus"] == {"reference": f"ServiceRequest/{sr.id}"}
    stored_sr = client.get("ServiceRequest", sr.id)
    assert stored_sr["subject"] == {"reference": f"Patient/{patient.id}"}
    assert stored_sr["requester"] == {"reference": f"Organization/{org.id}", "display": "BUP Mottagning Södermalm"}
    assert stored_sr["status"] == "active" and stored_sr["intent"] == "order"


# --------------------------------------------------------------------------- validation errors


def test_invalid_service_request_status_is_400_with_expression(client, http, uid):
    sr = client.resource("ServiceRequest", **service_request_body(uid, "Patient/x", "Organization/y", status="bogus"))
    with pytest.raises(OperationOutcome) as info:
        sr.save()
    outcome = outcome_of(info.value)
    assert outcome["resourceType"] == "OperationOutcome"
    issue = outcome["issue"][0]
    assert issue["severity"] == "error"
    assert issue["expression"] == ["ServiceRequest.status"]
    assert "bogus" in issue["diagnostics"]
    assert sr.id is None

    r = http.post("/ServiceRequest", json=service_request_body(uid, "Patient/x", "Organization/y", status="bogus"))
    assert r.status_code == 400
    assert r.json()["issue"][0]["expression"] == ["ServiceRequest.status"]
    assert client.resources("ServiceRequest").search(identifier=run_scope(uid)).count() == 0


def test_invalid_task_status_and_missing_intent(client, uid):
    with pytest.raises(OperationOutcome) as info:
        client.resource("Task", **task_body(uid, "ServiceRequest/x", status="bogus")).save()
    assert "Task.status" in expressions(outcome_of(info.value))

    body = task_body(uid, "ServiceRequest/x")
    del body["intent"]
    with pytest.raises(OperationOutcome) as info:
        client.resource("Task", **body).save()
    outcome = outcome_of(info.value)
    assert expressions(outcome) == ["Task.intent"]
    assert issue_codes(outcome) == ["required"]


def test_unknown_element_is_400(client, uid):
    with pytest.raises(OperationOutcome) as info:
        client.resource("Patient", **patient_body(uid, favouriteColour="blue")).save()
    outcome = outcome_of(info.value)
    assert outcome["issue"][0]["severity"] == "error"
    assert expressions(outcome) == ["Patient.favouriteColour"]
    assert client.resources("Patient").search(identifier=run_scope(uid)).count() == 0


def test_wrong_resource_type_for_url_is_400(client, uid):
    with pytest.raises(OperationOutcome) as info:
        client.execute("Patient", method="post", data=organization_body(uid))
    outcome = outcome_of(info.value)
    assert expressions(outcome) == ["resourceType"]
    assert "Organization" in outcome["issue"][0]["diagnostics"]

    with pytest.raises(OperationOutcome):
        client.execute(f"Patient/wrong-{uid[:8]}", method="put", data={**organization_body(uid), "id": f"wrong-{uid[:8]}"})
    with pytest.raises(ResourceNotFound):
        client.get("Patient", f"wrong-{uid[:8]}")
    assert client.resources("Organization").search(identifier=run_scope(uid)).count() == 0


def test_json_rules_null_and_empty_array(client, uid):
    with pytest.raises(OperationOutcome) as info:
        client.execute("Patient", method="post", data={**patient_body(uid), "gender": None})
    assert expressions(outcome_of(info.value)) == ["Patient.gender"]
    with pytest.raises(OperationOutcome) as info:
        client.execute("Patient", method="post", data={**patient_body(uid), "name": []})
    assert expressions(outcome_of(info.value)) == ["Patient.name"]
    assert client.resources("Patient").search(identifier=run_scope(uid)).count() == 0


def test_unknown_resource_type_is_404(client):
    with pytest.raises(ResourceNotFound) as info:
        client.get("NoSuchType", "x")
    assert issue_codes(outcome_of(info.value)) == ["not-found"]
    with pytest.raises((ResourceNotFound, OperationOutcome)):
        client.resources("NoSuchType").fetch()


def test_capability_statement_via_fhirpy(client):
    cs = client.execute("metadata", method="get")
    assert cs["resourceType"] == "CapabilityStatement"
    assert cs["fhirVersion"] == "4.0.1"
    types = {r["type"] for r in cs["rest"][0]["resource"]}
    assert {"Patient", "Organization", "ServiceRequest", "Task"} <= types

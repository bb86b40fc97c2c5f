"""batch and transaction Bundles POSTed to the base (R4 http.html#transaction)."""

from __future__ import annotations

import base64
import uuid

import httpx
import orjson

FHIR_JSON = "application/fhir+json"
SYS = "urn:evi:test:transaction"


def urn() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def ident(value: str) -> list[dict]:
    return [{"system": SYS, "value": value}]


def patient(value: str, **extra) -> dict:
    return {"resourceType": "Patient", "identifier": ident(value), **extra}


def service_request(value: str, subject: str, status: str = "active") -> dict:
    return {
        "resourceType": "ServiceRequest",
        "identifier": ident(value),
        "status": status,
        "intent": "order",
        "subject": {"reference": subject},
    }


def task(value: str, focus: str, patient_ref: str) -> dict:
    return {
        "resourceType": "Task",
        "identifier": ident(value),
        "status": "requested",
        "intent": "order",
        "focus": {"reference": focus},
        "for": {"reference": patient_ref},
    }


def entry(resource: dict | None, method: str, url: str, full_url: str | None = None, **request) -> dict:
    e: dict = {"request": {"method": method, "url": url, **request}}
    if full_url:
        e["fullUrl"] = full_url
    if resource is not None:
        e["resource"] = resource
    return e


def bundle(kind: str, *entries: dict) -> dict:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def send(http, body: dict, **headers):
    return http.post("", content=orjson.dumps(body), headers={"Content-Type": FHIR_JSON, **headers})


def count(http, resource_type: str, value: str) -> int:
    r = http.get(f"/{resource_type}", params={"identifier": f"{SYS}|{value}"})
    assert r.status_code == 200, r.text
    return r.json()["total"]


def status_code(e: dict) -> int:
    return int(e["response"]["status"].split()[0])


def assert_outcome(r, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(FHIR_JSON)
    body = r.json()
    assert body["resourceType"] == "OperationOutcome", body
    assert body["issue"][0]["severity"] in ("error", "fatal")
    return body


def outcome_text(body: dict) -> str:
    return " ".join(
        f"{i.get('diagnostics', '')} {' '.join(i.get('expression', []))}" for i in body["issue"]
    )


def create(http, resource: dict) -> str:
    r = http.post(f"/{resource['resourceType']}", json=resource, headers={"Content-Type": FHIR_JSON})
    assert r.status_code == 201, r.text
    return r.json()["id"]


# --------------------------------------------------------------- transaction


def test_transaction_links_new_resources_by_urn_uuid(http, base, uid):
    p, s, t = urn(), urn(), urn()
    # deliberately out of dependency order: Task first, Patient last
    body = bundle(
        "transaction",
        entry(task(uid, s, p), "POST", "Task", t),
        entry(service_request(uid, p), "POST", "ServiceRequest", s),
        entry(patient(uid), "POST", "Patient", p),
    )
    r = send(http, body)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith(FHIR_JSON)
    result = r.json()
    assert result["resourceType"] == "Bundle"
    assert result["type"] == "transaction-response"
    entries = result["entry"]
    assert len(entries) == 3
    types = ["Task", "ServiceRequest", "Patient"]
    ids = []
    for e, rtype in zip(entries, types):
        assert e["response"]["status"].startswith("201"), e
        location = e["response"]["location"]
        assert location.split("/")[0] == rtype or location.startswith(f"{base}/{rtype}/"), location
        assert location.endswith("/_history/1")
        assert e["response"]["etag"] == 'W/"1"'
        rid = location.removeprefix(f"{base}/").split("/")[1]
        ids.append(rid)
        assert e["resource"]["id"] == rid
    task_id, sr_id, patient_id = ids

    stored_task = http.get(f"/Task/{task_id}").json()
    assert stored_task["for"]["reference"] == f"Patient/{patient_id}"
    assert stored_task["focus"]["reference"] == f"ServiceRequest/{sr_id}"
    stored_sr = http.get(f"/ServiceRequest/{sr_id}").json()
    assert stored_sr["subject"]["reference"] == f"Patient/{patient_id}"
    assert http.get(f"/Patient/{patient_id}").json()["identifier"] == ident(uid)
    # the response entries carry the rewritten references too
    assert entries[0]["resource"]["for"]["reference"] == f"Patient/{patient_id}"
    assert "urn:uuid" not in r.text


def test_transaction_with_prefer_minimal_has_no_resources(http, uid):
    r = send(http, bundle("transaction", entry(patient(uid), "POST", "Patient", urn())), Prefer="return=minimal")
    assert r.status_code == 200, r.text
    e = r.json()["entry"][0]
    assert "resource" not in e
    assert e["response"]["status"].startswith("201")
    assert count(http, "Patient", uid) == 1


def test_transaction_rewrites_absolute_full_urls_and_puts(http, base, uid):
    rid = f"tx-{uid}"
    body = bundle(
        "transaction",
        entry(service_request(uid, f"{base}/Patient/{rid}"), "POST", "ServiceRequest", urn()),
        entry({**patient(uid), "id": rid}, "PUT", f"Patient/{rid}", f"{base}/Patient/{rid}"),
    )
    r = send(http, body)
    assert r.status_code == 200, r.text
    sr_loc = r.json()["entry"][0]["response"]["location"]
    sr_id = sr_loc.removeprefix(f"{base}/").split("/")[1]
    assert r.json()["entry"][1]["response"]["status"].startswith("201")
    stored = http.get(f"/ServiceRequest/{sr_id}").json()
    assert stored["subject"]["reference"] == f"Patient/{rid}"


def test_transaction_processing_order_delete_post_put_get(http, uid):
    old = create(http, patient(uid, gender="male"))
    keep = create(http, patient(f"keep-{uid}", gender="male"))
    new_urn = urn()
    body = bundle(
        "transaction",
        # GET first in the Bundle, but GETs run last and see the writes
        entry(None, "GET", f"Patient?identifier={SYS}|{uid}"),
        entry(None, "GET", f"Patient/{keep}"),
        entry({**patient(f"keep-{uid}", gender="female"), "id": keep}, "PUT", f"Patient/{keep}"),
        entry(patient(uid, gender="other"), "POST", "Patient", new_urn),
        entry(None, "DELETE", f"Patient/{old}"),
    )
    r = send(http, body)
    assert r.status_code == 200, r.text
    entries = r.json()["entry"]
    assert [status_code(e) for e in entries] == [200, 200, 200, 201, 204]
    search = entries[0]["resource"]
    assert search["type"] == "searchset"
    found = [e["resource"] for e in search.get("entry", []) if e["search"]["mode"] == "match"]
    # the old one is deleted, the new one created, before the GET runs
    assert [p["gender"] for p in found] == ["other"]
    assert found[0]["id"] != old
    assert entries[1]["resource"]["gender"] == "female"
    assert entries[1]["resource"]["meta"]["versionId"] == "2"
    assert http.get(f"/Patient/{old}").status_code == 410


def test_transaction_delete_and_post_with_the_same_identifier(http, uid):
    """DELETE runs before POST, so a conditional create of the deleted identity creates anew."""
    old = create(http, patient(uid))
    body = bundle(
        "transaction",
        entry(patient(uid), "POST", "Patient", urn(), ifNoneExist=f"identifier={SYS}|{uid}"),
        entry(None, "DELETE", f"Patient/{old}"),
    )
    r = send(http, body)
    assert r.status_code == 200, r.text
    created, deleted = r.json()["entry"]
    assert status_code(created) == 201
    assert status_code(deleted) == 204
    assert http.get(f"/Patient/{old}").status_code == 410
    assert count(http, "Patient", uid) == 1


def test_transaction_resolves_conditional_references(http, uid):
    pid = create(http, patient(uid))
    body = bundle(
        "transaction",
        entry(service_request(uid, f"Patient?identifier={SYS}|{uid}"), "POST", "ServiceRequest", urn()),
    )
    r = send(http, body)
    assert r.status_code == 200, r.text
    location = r.json()["entry"][0]["response"]["location"]
    sr_id = location.split("ServiceRequest/")[1].split("/")[0]
    stored = http.get(f"/ServiceRequest/{sr_id}").json()
    assert stored["subject"]["reference"] == f"Patient/{pid}"


def test_transaction_if_none_exist_matches_existing(http, uid):
    pid = create(http, patient(uid, gender="male"))
    p = urn()
    body = bundle(
        "transaction",
        entry(patient(uid, gender="female"), "POST", "Patient", p, ifNoneExist=f"identifier={SYS}|{uid}"),
        entry(service_request(uid, p), "POST", "ServiceRequest", urn()),
    )
    r = send(http, body)
    assert r.status_code == 200, r.text
    pe, se = r.json()["entry"]
    assert status_code(pe) == 200
    assert pe["response"]["location"].split("Patient/")[1].split("/")[0] == pid
    assert status_code(se) == 201
    sr_id = se["response"]["location"].split("ServiceRequest/")[1].split("/")[0]
    # the urn:uuid of the matched entry points at the existing Patient
    assert http.get(f"/ServiceRequest/{sr_id}").json()["subject"]["reference"] == f"Patient/{pid}"
    assert count(http, "Patient", uid) == 1
    assert http.get(f"/Patient/{pid}").json()["gender"] == "male"
    assert http.get(f"/Patient/{pid}/_history").json()["total"] == 1


def test_transaction_if_none_exist_without_match_creates(http, uid):
    r = send(
        http,
        bundle("transaction", entry(patient(uid), "POST", "Patient", urn(), ifNoneExist=f"identifier={SYS}|{uid}")),
    )
    assert r.status_code == 200, r.text
    assert status_code(r.json()["entry"][0]) == 201
    assert count(http, "Patient", uid) == 1


def test_transaction_conditional_update_and_delete(http, uid):
    pid = create(http, patient(uid, gender="male"))
    gone = create(http, patient(f"gone-{uid}"))
    body = bundle(
        "transaction",
        entry(patient(uid, gender="female"), "PUT", f"Patient?identifier={SYS}|{uid}"),
        entry(None, "DELETE", f"Patient?identifier={SYS}|gone-{uid}"),
    )
    r = send(http, body)
    assert r.status_code == 200, r.text
    assert [status_code(e) for e in r.json()["entry"]] == [200, 204]
    assert http.get(f"/Patient/{pid}").json()["gender"] == "female"
    assert http.get(f"/Patient/{gone}").status_code == 410


def test_transaction_patch_entry_with_binary(http, uid):
    pid = create(http, patient(uid, active=True))
    ops = base64.b64encode(orjson.dumps([{"op": "replace", "path": "/active", "value": False}])).decode()
    binary = {"resourceType": "Binary", "contentType": "application/json-patch+json", "data": ops}
    r = send(http, bundle("transaction", entry(binary, "PATCH", f"Patient/{pid}")))
    assert r.status_code == 200, r.text
    assert status_code(r.json()["entry"][0]) == 200
    assert http.get(f"/Patient/{pid}").json()["active"] is False


def test_transaction_if_match_stale_rolls_back(http, uid):
    pid = create(http, patient(uid))
    body = bundle(
        "transaction",
        entry(patient(f"a-{uid}"), "POST", "Patient", urn()),
        entry({**patient(uid, active=True), "id": pid}, "PUT", f"Patient/{pid}", ifMatch='W/"5"'),
    )
    assert_outcome(send(http, body), 412)
    assert count(http, "Patient", f"a-{uid}") == 0
    assert http.get(f"/Patient/{pid}").headers["etag"] == 'W/"1"'


# ------------------------------------------------------------------- rollback


def test_invalid_last_entry_rolls_back_the_whole_transaction(http, uid):
    p, s = urn(), urn()
    body = bundle(
        "transaction",
        entry(patient(uid), "POST", "Patient", p),
        entry(task(uid, s, p), "POST", "Task", urn()),
        entry(service_request(uid, p, status="bogus"), "POST", "ServiceRequest", s),
    )
    r = send(http, body)
    outcome = assert_outcome(r, 400)
    assert "Bundle.entry[2]" in outcome_text(outcome), outcome
    assert count(http, "Patient", uid) == 0
    assert count(http, "Task", uid) == 0
    assert count(http, "ServiceRequest", uid) == 0


def test_rollback_also_undoes_updates_and_deletes(http, uid):
    pid = create(http, patient(uid, gender="male"))
    victim = create(http, patient(f"v-{uid}"))
    body = bundle(
        "transaction",
        entry({**patient(uid, gender="female"), "id": pid}, "PUT", f"Patient/{pid}"),
        entry(None, "DELETE", f"Patient/{victim}"),
        entry({"resourceType": "Patient", "foo": 1}, "POST", "Patient", urn()),
    )
    outcome = assert_outcome(send(http, body), 400)
    assert "Bundle.entry[2]" in outcome_text(outcome)
    assert http.get(f"/Patient/{pid}").json()["gender"] == "male"
    assert http.get(f"/Patient/{pid}/_history").json()["total"] == 1
    assert http.get(f"/Patient/{victim}").status_code == 200


def test_two_entries_writing_the_same_resource_is_400(http, uid):
    rid = f"dup-{uid}"
    body = bundle(
        "transaction",
        entry({**patient(uid, gender="male"), "id": rid}, "PUT", f"Patient/{rid}"),
        entry({**patient(uid, gender="female"), "id": rid}, "PUT", f"Patient/{rid}"),
    )
    assert_outcome(send(http, body), 400)
    assert http.get(f"/Patient/{rid}").status_code == 404


def test_delete_and_put_of_the_same_resource_is_400(http, uid):
    pid = create(http, patient(uid))
    body = bundle(
        "transaction",
        entry(None, "DELETE", f"Patient/{pid}"),
        entry({**patient(uid, active=True), "id": pid}, "PUT", f"Patient/{pid}"),
    )
    assert_outcome(send(http, body), 400)
    current = http.get(f"/Patient/{pid}")
    assert current.status_code == 200 and current.headers["etag"] == 'W/"1"'


def test_duplicate_full_urls_are_400(http, uid):
    p = urn()
    body = bundle(
        "transaction",
        entry(patient(uid), "POST", "Patient", p),
        entry(patient(uid), "POST", "Patient", p),
    )
    assert_outcome(send(http, body), 400)
    assert count(http, "Patient", uid) == 0


def test_conditional_reference_without_match_is_404_and_rolled_back(http, uid):
    body = bundle(
        "transaction",
        entry(patient(uid), "POST", "Patient", urn()),
        entry(service_request(uid, f"Patient?identifier={SYS}|none-{uid}"), "POST", "ServiceRequest", urn()),
    )
    assert_outcome(send(http, body), 404)
    assert count(http, "Patient", uid) == 0
    assert count(http, "ServiceRequest", uid) == 0


def test_conditional_reference_with_two_matches_is_412_and_rolled_back(http, uid):
    twin = f"twin-{uid}"
    create(http, patient(twin))
    create(http, patient(twin))
    body = bundle(
        "transaction",
        entry(patient(uid), "POST", "Patient", urn()),
        entry(service_request(uid, f"Patient?identifier={SYS}|{twin}"), "POST", "ServiceRequest", urn()),
    )
    assert_outcome(send(http, body), 412)
    assert count(http, "Patient", uid) == 0
    assert count(http, "ServiceRequest", uid) == 0


def test_conditional_reference_with_unknown_parameter_is_400(http, uid):
    create(http, patient(uid))
    body = bundle(
        "transaction",
        entry(service_request(uid, f"Patient?identifier={SYS}|{uid}&nonsense=1"), "POST", "ServiceRequest", urn()),
    )
    assert_outcome(send(http, body), 400)
    assert count(http, "ServiceRequest", uid) == 0


def test_transaction_get_of_missing_resource_fails_the_transaction(http, uid):
    body = bundle(
        "transaction",
        entry(patient(uid), "POST", "Patient", urn()),
        entry(None, "GET", f"Patient/missing-{uid}"),
    )
    assert_outcome(send(http, body), 404)
    assert count(http, "Patient", uid) == 0


def test_transaction_entry_with_unknown_method_or_missing_request_is_400(http, uid):
    bad_method = bundle("transaction", entry(patient(uid), "FETCH", "Patient", urn()))
    assert_outcome(send(http, bad_method), 400)
    no_request = {"resourceType": "Bundle", "type": "transaction", "entry": [{"resource": patient(uid)}]}
    assert_outcome(send(http, no_request), 400)
    post_to_instance = bundle("transaction", entry(patient(uid), "POST", f"Patient/x-{uid}", urn()))
    assert_outcome(send(http, post_to_instance), 400)
    assert count(http, "Patient", uid) == 0


def test_transaction_entry_with_resource_type_not_matching_url_is_400(http, uid):
    body = bundle(
        "transaction",
        entry(patient(uid), "POST", "Patient", urn()),
        entry(patient(f"x-{uid}"), "POST", "Organization", urn()),
    )
    outcome = assert_outcome(send(http, body), 400)
    assert "Bundle.entry[1]" in outcome_text(outcome)
    assert count(http, "Patient", uid) == 0


def test_transaction_put_with_id_mismatch_is_400_and_rolled_back(http, uid):
    body = bundle(
        "transaction",
        entry(patient(uid), "POST", "Patient", urn()),
        entry({**patient(uid), "id": f"b-{uid}"}, "PUT", f"Patient/a-{uid}"),
    )
    outcome = assert_outcome(send(http, body), 400)
    assert "Bundle.entry[1]" in outcome_text(outcome)
    assert count(http, "Patient", uid) == 0
    assert http.get(f"/Patient/a-{uid}").status_code == 404


def test_transaction_reference_to_an_unknown_urn_uuid_is_rejected(http, uid):
    """A urn:uuid names an entry of this Bundle only; stored as-is it would dangle forever."""
    body = bundle(
        "transaction",
        entry(patient(uid), "POST", "Patient", urn()),
        entry(service_request(uid, urn()), "POST", "ServiceRequest", urn()),
    )
    r = send(http, body)
    outcome = assert_outcome(r, 400)
    assert "Bundle.entry[1]" in outcome_text(outcome)
    assert count(http, "Patient", uid) == 0
    assert count(http, "ServiceRequest", uid) == 0


def test_empty_transaction_is_an_empty_response(http):
    r = send(http, {"resourceType": "Bundle", "type": "transaction"})
    assert r.status_code == 200, r.text
    assert r.json()["type"] == "transaction-response"
    assert r.json().get("entry", []) == []


def _overwrite_case(http, uid) -> tuple[str, dict]:
    """Patient p1 exists with identifier B; a conditional PUT for identifier A (no match)
    names p1 in its body: the one resolver refuses it (409) alone, in a transaction, in a batch."""
    p1 = create(http, patient(f"B-{uid}", gender="male"))
    return p1, {**patient(f"A-{uid}", gender="female"), "id": p1}


def test_conditional_update_never_overwrites_alone_or_in_a_transaction(http, uid):
    p1, body = _overwrite_case(http, uid)
    alone = http.put(f"/Patient?identifier={SYS}|A-{uid}", content=orjson.dumps(body),
                     headers={"Content-Type": FHIR_JSON})
    assert_outcome(alone, 409)
    tx = bundle(
        "transaction",
        entry(patient(f"C-{uid}"), "POST", "Patient"),
        entry(body, "PUT", f"Patient?identifier={SYS}|A-{uid}"),
    )
    outcome = assert_outcome(send(http, tx), 409)
    assert "Bundle.entry[1]" in outcome_text(outcome) and f"Patient/{p1}" in outcome_text(outcome)
    assert count(http, "Patient", f"C-{uid}") == 0  # the whole transaction rolled back
    stored = http.get(f"/Patient/{p1}")
    assert (stored.json()["gender"], stored.headers["etag"]) == ("male", 'W/"1"')


def test_conditional_update_never_overwrites_in_a_batch(http, uid):
    p1, body = _overwrite_case(http, uid)
    r = send(http, bundle(
        "batch",
        entry(patient(f"C-{uid}"), "POST", "Patient"),
        entry(body, "PUT", f"Patient?identifier={SYS}|A-{uid}"),
    ))
    assert r.status_code == 200, r.text
    first, second = r.json()["entry"]
    assert status_code(first) == 201
    assert second["response"]["status"] == "409 Conflict"
    assert second["response"]["outcome"]["issue"][0]["code"] == "conflict"
    assert count(http, "Patient", f"C-{uid}") == 1
    assert http.get(f"/Patient/{p1}").headers["etag"] == 'W/"1"'


def test_conditional_update_in_a_transaction_takes_the_match_or_creates(http, uid):
    """The same resolver: one match is updated (the body may leave the id out), none creates."""
    rid = create(http, patient(f"M-{uid}", gender="male"))
    r = send(http, bundle(
        "transaction",
        entry(patient(f"M-{uid}", gender="female"), "PUT", f"Patient?identifier={SYS}|M-{uid}"),
        entry(patient(f"N-{uid}"), "PUT", f"Patient?identifier={SYS}|N-{uid}"),
    ))
    assert r.status_code == 200, r.text
    updated, made = r.json()["entry"]
    assert (status_code(updated), updated["response"]["location"]) == (200, f"Patient/{rid}/_history/2")
    assert status_code(made) == 201 and count(http, "Patient", f"N-{uid}") == 1


def test_too_many_entries_is_413_before_anything_runs(uid):
    """EVI_MAX_BUNDLE_ENTRIES (default 10,000), here set to 50."""
    from tests.support.live_server import LiveServer

    with LiveServer(storage="sqlite://:memory:", max_bundle_entries=50) as live:
        with httpx.Client(base_url=live.base_url, timeout=60) as http:
            entries = [entry(patient(f"T-{uid}"), "POST", "Patient") for _ in range(51)]
            for kind in ("transaction", "batch"):
                r = send(http, bundle(kind, *entries))
                outcome = assert_outcome(r, 413)
                assert outcome["issue"][0]["code"] == "too-costly"
                assert "at most 50" in outcome_text(outcome)
            assert count(http, "Patient", f"T-{uid}") == 0
            assert send(http, bundle("transaction", *entries[:50])).status_code == 200


# ---------------------------------------------------------------------- batch


def test_batch_entries_succeed_or_fail_on_their_own(http, uid):
    existing = create(http, patient(f"e-{uid}"))
    body = bundle(
        "batch",
        entry(patient(uid), "POST", "Patient"),
        entry(service_request(uid, f"Patient/{existing}", status="bogus"), "POST", "ServiceRequest"),
        entry(None, "GET", f"Patient/missing-{uid}"),
        entry(None, "GET", f"Patient/{existing}"),
        entry({**patient(f"e-{uid}", active=True), "id": existing}, "PUT", f"Patient/{existing}", ifMatch='W/"9"'),
        entry({"resourceType": "Patient", "foo": "bar"}, "POST", "Patient"),
    )
    r = send(http, body)
    assert r.status_code == 200, r.text
    result = r.json()
    assert result["type"] == "batch-response"
    entries = result["entry"]
    assert len(entries) == 6
    assert [status_code(e) for e in entries] == [201, 400, 404, 200, 412, 400]
    for e in (entries[1], entries[2], entries[4], entries[5]):
        outcome = e["response"]["outcome"]
        assert outcome["resourceType"] == "OperationOutcome"
        assert outcome["issue"][0]["severity"] == "error"
    assert entries[1]["response"]["outcome"]["issue"][0]["code"] == "code-invalid"
    assert entries[3]["resource"]["id"] == existing
    assert count(http, "Patient", uid) == 1
    assert count(http, "ServiceRequest", uid) == 0
    assert http.get(f"/Patient/{existing}").headers["etag"] == 'W/"1"'


def test_batch_does_not_resolve_urn_uuid_between_entries(http, uid):
    """Entries of a batch may not refer to each other (R4 http.html#brules)."""
    p = urn()
    body = bundle(
        "batch",
        entry(patient(uid), "POST", "Patient", p),
        entry(service_request(uid, p), "POST", "ServiceRequest", urn()),
    )
    r = send(http, body)
    assert r.status_code == 200, r.text
    first, second = r.json()["entry"]
    assert status_code(first) == 201
    if status_code(second) == 201:
        sr_id = second["response"]["location"].split("ServiceRequest/")[1].split("/")[0]
        assert http.get(f"/ServiceRequest/{sr_id}").json()["subject"]["reference"] == p
    else:
        assert 400 <= status_code(second) < 500


# -------------------------------------------------------------- bundle shape


def test_collection_bundle_posted_to_base_is_400(http, uid):
    body = {"resourceType": "Bundle", "type": "collection", "entry": [{"fullUrl": urn(), "resource": patient(uid)}]}
    outcome = assert_outcome(send(http, body), 400)
    assert "Bundle.type" in outcome_text(outcome)
    assert count(http, "Patient", uid) == 0


def test_non_bundle_posted_to_base_is_400(http, uid):
    assert_outcome(send(http, patient(uid)), 400)
    assert count(http, "Patient", uid) == 0


def test_bundle_without_type_is_400(http, uid):
    assert_outcome(send(http, {"resourceType": "Bundle", "entry": [entry(patient(uid), "POST", "Patient")]}), 400)
    assert count(http, "Patient", uid) == 0


def test_transaction_with_malformed_json_is_400(http):
    r = http.post("", content=b'{"resourceType": "Bundle", ', headers={"Content-Type": FHIR_JSON})
    assert_outcome(r, 400)

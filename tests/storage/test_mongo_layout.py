"""The MongoDB document layout of docs/mongodb.md: one current document per
resource with its search values in ``_idx`` arrays, every version in
``history``, an index for every search-parameter kind."""

from __future__ import annotations

import pytest

from fhir_server.storage.mongo import MongoStore
from fhir_server.storage.mongo.compile import compile_filter
from fhir_server.storage.mongo.layout import KINDS
from tests.storage.helpers import delete, plan, put, search_ids
from tests.support.mongo_replica_set import ReplicaSet

SR = {
    "resourceType": "ServiceRequest", "id": "sr1", "status": "active", "intent": "order",
    "code": {"coding": [{"system": "http://snomed.info/sct", "code": "1234", "display": "ADHD assessment"}]},
    "subject": {"reference": "Patient/p1"}, "authoredOn": "2026-03-18T10:00:00Z",
    "identifier": [{"system": "urn:oid:1.2.752.29.4.19", "value": "REF-77"}],
}


@pytest.fixture
def store():
    return MongoStore(ReplicaSet(), "evi")


def test_the_worked_example_of_the_docs(store):
    with store.unit_of_work(write=True) as uow:
        put(uow, SR, last_updated="2026-03-18T10:00:00.123456Z")
        put(uow, dict(SR, status="completed"), version_id=2, last_updated="2026-03-19T08:30:00.000000Z")
    doc = store.resources.find_one({"_id": "ServiceRequest/sr1"})
    assert {k: doc[k] for k in ("t", "i", "v", "lu", "del", "m")} == {
        "t": "ServiceRequest", "i": "sr1", "v": 2, "lu": "2026-03-19T08:30:00.000000Z", "del": False, "m": "PUT",
    }
    assert isinstance(doc["body"], bytes) and b'"completed"' in doc["body"]
    idx = doc["_idx"]
    assert {"p": "code", "s": "http://snomed.info/sct", "c": "1234", "t": "adhd assessment"} in idx["token"]
    assert {"p": "status", "s": None, "c": "completed", "t": None} in idx["token"]
    assert {"p": "status", "s": None, "c": "active", "t": None} not in idx["token"]  # replaced, not added
    assert {"p": "authored", "lo": "2026-03-18T10:00:00.000000Z", "hi": "2026-03-18T10:00:00.999999Z"} in idx["date"]
    assert {"p": "subject", "tt": "Patient", "ti": "p1", "url": None} in idx["reference"]
    versions = list(store.history.find({"t": "ServiceRequest", "i": "sr1"}, sort=[("_id", 1)]))
    assert [(h["v"], h["m"], h.get("end")) for h in versions] == [
        (1, "POST", "2026-03-19T08:30:00.000000Z"), (2, "PUT", None),
    ]
    assert versions[1]["body"] == doc["body"]
    assert doc["seq"] == versions[1]["_id"]
    assert "_idx" not in versions[0]  # history keeps versions, not search values


def test_a_deletion_keeps_the_current_document_without_body_or_search_values(store):
    with store.unit_of_work(write=True) as uow:
        put(uow, SR)
        delete(uow, "ServiceRequest", "sr1", version_id=2, last_updated="2026-03-20T00:00:00.000000Z")
    doc = store.resources.find_one({"_id": "ServiceRequest/sr1"})
    assert doc["del"] is True and doc["body"] is None and "_idx" not in doc and doc["v"] == 2


def test_every_kind_has_a_type_and_code_led_index(store):
    indexes = {ix["name"]: list(ix["key"].keys()) for ix in store.resources.list_indexes()}
    for kind in KINDS:
        assert indexes[f"idx_{kind}"][:2] == ["t", f"_idx.{kind}.p"], kind
    assert indexes["idx_reference_target"][:2] == ["_idx.reference.tt", "_idx.reference.ti"]
    history = {ix["name"]: ix for ix in store.history.list_indexes()}
    assert history["version"]["unique"] and list(history["version"]["key"]) == ["t", "i", "v"]


def test_system_code_and_parameter_match_in_the_same_entry(store):
    patient = {"resourceType": "Patient", "id": "p", "identifier": [{"system": "s1", "value": "A"}, {"system": "s2", "value": "B"}]}
    with store.unit_of_work(write=True) as uow:
        put(uow, patient)
    assert search_ids(store, "Patient", [("identifier", "s1|A")]) == ["p"]
    assert search_ids(store, "Patient", [("identifier", "s1|B")]) == []  # s1 and B sit in different entries
    query = compile_filter(plan("Patient", [("identifier", "s1|A")]), None)
    assert query == {"t": "Patient", "del": False,
                     "$and": [{"_idx.token": {"$elemMatch": {"p": "identifier", "s": "s1", "c": "A"}}}]}


def test_or_values_become_one_elem_match_each(store):
    query = compile_filter(plan("Patient", [("identifier", "s1|A,B")]), None)
    assert query["$and"] == [{"$or": [
        {"_idx.token": {"$elemMatch": {"p": "identifier", "s": "s1", "c": "A"}}},
        {"_idx.token": {"$elemMatch": {"p": "identifier", "c": "B"}}},
    ]}]

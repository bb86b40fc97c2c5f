"""evi-fhir copy round-trips a store with history SQLite -> MongoDB -> SQLite: identical
resources, versions and search results.

Against a real MongoDB (``EVI_TEST_MONGO_URI``, a replica set) the store holds 10,000
resources. mongomock scans every collection in Python for each operation, so a copy
costs it O(n^2) (1,000 resources took 7 s); on mongomock the same test runs with 200
resources, enough for every query below to find something (the seed makes sure the
patients they name are referred to), and tests/engine/test_copy.py copies 10,000
between SQLite stores.
"""

import os
import random
import uuid

import orjson
import pytest

from fhir_server.app import build_runtime
from fhir_server.engine import RequestContext, create, delete, update
from fhir_server.engine.copy import copy_store
from fhir_server.search import parse_search
from fhir_server.settings import Settings
from fhir_server.storage import open_store

BASE = "http://127.0.0.1:8080/fhir"
QUERIES = [
    ("Patient", [("identifier", "urn:evi:test|17")]),
    ("Patient", [("birthdate", "ge2015"), ("_sort", "-birthdate,_id"), ("_count", "50")]),
    ("Patient", [("name", "lind"), ("_count", "30")]),
    ("ServiceRequest", [("subject", "Patient/p-42")]),
    ("ServiceRequest", [("status", "completed"), ("priority", "urgent"), ("_count", "40")]),
    ("ServiceRequest", [("subject.identifier", "urn:evi:test|7")]),
    ("ServiceRequest", [("authored", "lt2026-02-01"), ("_sort", "authored"), ("_count", "25")]),
    ("Patient", [("_has:ServiceRequest:subject:status", "completed"), ("_count", "100")]),
]


def _seed(runtime, n: int) -> None:
    """60% Patients and 40% ServiceRequests; updates and deletes give history."""
    rng = random.Random(7)
    ctx = RequestContext(base_url=BASE)
    names = ["Lindqvist", "Öberg", "Åström", "Karlsson", "Lind"]
    with runtime.work(ctx, write=True) as work:
        for i in range(n * 6 // 10):
            update(work, "Patient", f"p-{i}", {
                "resourceType": "Patient", "id": f"p-{i}", "identifier": [{"system": "urn:evi:test", "value": str(i)}],
                "name": [{"family": names[i % 5]}], "birthDate": f"{2008 + i % 17}-0{1 + i % 9}-1{i % 10}",
            })
        for i in range(n * 4 // 10):
            sr = create(work, "ServiceRequest", {
                "resourceType": "ServiceRequest", "status": "active", "intent": "order",
                "priority": rng.choice(["routine", "urgent", "asap"]),
                # two (not deleted below) refer to the patients QUERIES name, whatever the size
                "subject": {"reference": f"Patient/p-{ {1: 42, 2: 7}.get(i, rng.randrange(n // 5))}"},
                "authoredOn": f"2026-0{1 + i % 3}-{1 + i % 28:02d}T10:00:00Z",
            })
            if i % 4 == 0:
                body = orjson.loads(sr.version.body)
                update(work, "ServiceRequest", sr.version.id, {**body, "status": "completed"})
            if i % 25 == 0:
                delete(work, "ServiceRequest", sr.version.id)


def _snapshot(store, registry):
    with store.unit_of_work(write=False) as uow:
        versions = sorted(
            (v.resource_type, v.id, v.version_id, v.deleted, v.method, v.last_updated, v.body)
            for _, v in uow.versions_since(None, 100_000)
        )
        results = [
            uow.search(parse_search(t, params, registry, base_url=BASE), with_total=True).refs
            for t, params in QUERIES
        ]
        stats = uow.statistics()
    return versions, results, stats


def _mongomock():
    from fhir_server.storage.mongo import MongoStore
    from tests.support.mongo_replica_set import ReplicaSet

    return MongoStore(ReplicaSet(), "evi")


def _mongodb():
    uri = os.environ.get("EVI_TEST_MONGO_URI")
    if not uri:
        pytest.skip("the 10,000-resource round trip through a real MongoDB needs EVI_TEST_MONGO_URI (a replica set)")
    import pymongo

    from fhir_server.storage.mongo import MongoStore

    return MongoStore(pymongo.MongoClient(uri), f"evi_copy_{uuid.uuid4().hex[:12]}", owns_client=True)


@pytest.mark.parametrize("backend, n", [("mongomock", 200), ("mongodb", 10_000)])
def test_copy_round_trips_a_store_with_history_through_mongo(tmp_path, backend, n):
    first, last = f"sqlite://{tmp_path / 'first.db'}", f"sqlite://{tmp_path / 'last.db'}"
    mongo = _mongomock() if backend == "mongomock" else _mongodb()
    # no guide: its resources would only lengthen the copy (tests/engine/test_copy.py copies them)
    (tmp_path / "no-guide").mkdir()
    source = build_runtime(Settings(storage=first, profiles_dir=str(tmp_path / "no-guide")))
    _seed(source, n)
    back = open_store(last)
    registry = source.registry

    there = copy_store(source.store, mongo, registry, BASE, batch=1000)
    assert there.verified and there.copied == sum(v for _, v in there.source.values())
    home = copy_store(mongo, back, registry, BASE, batch=1000)
    assert home.verified

    original = _snapshot(source.store, registry)
    mine = {t: s for t, s in original[2].items() if t in ("Patient", "ServiceRequest")}  # not the guide's
    assert sum(c for c, _ in mine.values()) == n - (n * 4 // 10 + 24) // 25  # current resources
    assert all(original[1]), "every query must find something, or it proves nothing"
    assert _snapshot(mongo, registry) == original
    assert _snapshot(back, registry) == original
    if backend == "mongodb":
        mongo.db.client.drop_database(mongo.db.name)
    source.store.close(), back.close(), mongo.close()

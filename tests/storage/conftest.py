"""The shared storage suite: every backend runs the same tests through ``store``.

``mongomock`` runs the Mongo backend in-process on mongomock dressed as a replica set
(``tests/support/mongo_replica_set.py``: sessions with journalled transactions);
``mongodb`` runs it against a real server when ``EVI_TEST_MONGO_URI`` names one (a
replica set: the store refuses anything else). ``pytest -k mongo`` selects both.
"""

import os
import uuid

import pytest

from fhir_server.storage import open_store

BACKENDS = ["sqlite-memory", "sqlite-file", "mongomock", "mongodb"]


def _mongomock_store():
    from fhir_server.storage.mongo import MongoStore
    from tests.support.mongo_replica_set import ReplicaSet

    return MongoStore(ReplicaSet(), "evi")


def _mongodb_store():
    uri = os.environ.get("EVI_TEST_MONGO_URI")
    if not uri:
        pytest.skip("real MongoDB tests need EVI_TEST_MONGO_URI=mongodb://host:port/?replicaSet=... (a replica set)")
    import pymongo

    from fhir_server.storage.mongo import MongoStore, ReplicaSetRequired

    client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=5000)
    try:
        return MongoStore(client, f"evi_test_{uuid.uuid4().hex[:12]}", owns_client=True)
    except ReplicaSetRequired:
        client.close()
        pytest.skip("EVI_TEST_MONGO_URI is a standalone server: the store needs a replica set (transactions)")


@pytest.fixture(params=BACKENDS)
def store(request, tmp_path):
    if request.param == "mongomock":
        s = _mongomock_store()
    elif request.param == "mongodb":
        s = _mongodb_store()
    else:
        url = {"sqlite-memory": "sqlite://:memory:", "sqlite-file": f"sqlite://{tmp_path / 'evi.db'}"}[request.param]
        s = open_store(url)
    yield s
    if request.param == "mongodb":
        s.db.client.drop_database(s.db.name)
    s.close()

"""History on MongoDB against the SQLite reference: the same writes, then the same
questions (``_since``, ``_at``, paging cursors, ``versions_since``, statistics,
``newest_instant``) must get the same answers. Also the storage URL."""

from __future__ import annotations

import itertools

import pymongo
import pytest

from fhir_server.search import IndexSet
from fhir_server.storage import HistoryQuery, ResourceVersion, open_store
from fhir_server.storage.mongo import MongoStore, ReplicaSetRequired, database_from_url
from tests.support.mongo_replica_set import ReplicaSet, Standalone


def _ts(n: int) -> str:
    return f"2026-01-01T00:{n // 60:02d}:{n % 60:02d}.000000Z"


def _writes():
    """(type, id, version, second, deleted) in write order: creates, updates, deletes, a re-create."""
    clock = itertools.count(1)
    plan = [
        ("Patient", "a", 1), ("Patient", "b", 1), ("Observation", "o1", 1), ("Patient", "a", 2),
        ("Observation", "o2", 1), ("Patient", "a", 3), ("Observation", "o1", 2), ("Patient", "b", 2, True),
        ("Patient", "c", 1), ("Patient", "a", 4, True), ("Patient", "a", 5), ("Observation", "o2", 2),
    ]
    for step in plan:
        t, i, v = step[:3]
        deleted = len(step) > 3
        n = next(clock) * 10
        body = None if deleted else f'{{"resourceType":"{t}","id":"{i}","v":{v}}}'.encode()
        yield ResourceVersion(t, i, v, _ts(n), deleted, "DELETE" if deleted else ("POST" if v == 1 else "PUT"), body)


@pytest.fixture(scope="module")
def pair():
    sqlite = open_store("sqlite://:memory:")
    mongo = MongoStore(ReplicaSet(), "evi")
    for s in (sqlite, mongo):
        for version in _writes():  # one version per unit of work, as the engine writes
            with s.unit_of_work(write=True) as uow:
                uow.write(version, None if version.deleted else IndexSet())
    yield sqlite, mongo
    sqlite.close()


def _pages(store, query: HistoryQuery):
    """Every page of a history query, following the cursors: [(versions, total, has_next)]."""
    out = []
    with store.unit_of_work(write=False) as uow:
        page = uow.history(query)
        out.append((page.versions, page.total, page.next_cursor is not None))
        while page.next_cursor is not None:
            page = uow.history(HistoryQuery(query.resource_type, query.id, query.since, query.at, page.next_cursor, query.count))
            out.append((page.versions, page.total, page.next_cursor is not None))
    return out


QUERIES = [
    HistoryQuery(),
    HistoryQuery(count=3),
    HistoryQuery("Patient", count=2),
    HistoryQuery("Patient", "a", count=2),
    HistoryQuery("Observation"),
    HistoryQuery(since=_ts(60)),
    HistoryQuery("Patient", since=_ts(55), count=1),
    HistoryQuery(at=(_ts(45), _ts(45))),  # the state at one instant
    HistoryQuery(at=(_ts(20), _ts(65)), count=2),  # current at some point in a window
    HistoryQuery("Patient", "a", at=(_ts(61), _ts(99))),
    HistoryQuery("Patient", "b", at=(_ts(200), _ts(300))),  # deleted since: the deletion is current
    HistoryQuery(at=(_ts(0), _ts(5))),  # before everything
    HistoryQuery("Patient", "zz"),
    HistoryQuery(count=0),
]


@pytest.mark.parametrize("query", QUERIES, ids=[str(n) for n in range(len(QUERIES))])
def test_history_answers_like_sqlite(pair, query):
    sqlite, mongo = pair
    assert _pages(mongo, query) == _pages(sqlite, query)


def test_versions_since_statistics_and_newest_instant_like_sqlite(pair):
    sqlite, mongo = pair
    for store in (sqlite, mongo):
        with store.unit_of_work(write=False) as uow:
            assert uow.newest_instant() == _ts(120)
    answers = []
    for store in (sqlite, mongo):
        with store.unit_of_work(write=False) as uow:
            walked, cursor = [], None
            while batch := uow.versions_since(cursor, 5):
                walked.extend(v for _, v in batch)
                assert [c for c, _ in batch] == sorted(c for c, _ in batch)
                cursor = batch[-1][0]
            answers.append((walked, uow.statistics()))
    assert answers[0] == answers[1]
    assert answers[1][1] == {"Patient": (2, 8), "Observation": (2, 4)}


def test_at_uses_the_end_of_each_version(pair):
    _, mongo = pair
    ends = {(d["i"], d["v"]): d.get("end") for d in mongo.history.find({"t": "Patient", "i": "a"})}
    assert ends == {("a", 1): _ts(40), ("a", 2): _ts(60), ("a", 3): _ts(100), ("a", 4): _ts(110), ("a", 5): None}


def test_cursor_pages_ignore_versions_written_meanwhile(pair):
    _, mongo = pair
    store = MongoStore(mongo.db.client, "evi_paging")
    with store.unit_of_work(write=True) as uow:
        for v in range(1, 6):
            uow.write(ResourceVersion("Patient", "p", v, _ts(v), False, "PUT", b"{}"), IndexSet())
    with store.unit_of_work(write=False) as uow:
        first = uow.history(HistoryQuery("Patient", "p", count=2))
    with store.unit_of_work(write=True) as uow:
        uow.write(ResourceVersion("Patient", "p", 6, _ts(6), False, "PUT", b"{}"), IndexSet())
    with store.unit_of_work(write=False) as uow:
        second = uow.history(HistoryQuery("Patient", "p", before_cursor=first.next_cursor, count=2))
    assert [v.version_id for v in first.versions] == [5, 4]
    assert [v.version_id for v in second.versions] == [3, 2]


# -- the storage URL ------------------------------------------------------------------------


@pytest.mark.parametrize("url, database", [
    ("mongodb://localhost:27017/evi_region", "evi_region"),
    ("mongodb://localhost", "evi"),
    ("mongodb://localhost/", "evi"),
    ("mongodb://u:p@h1:27017,h2:27017/stockholm?replicaSet=rs0&w=majority", "stockholm"),
    ("mongodb+srv://cluster.example.net/evi_test?retryWrites=true", "evi_test"),
])
def test_database_comes_from_the_url_path(url, database):
    assert database_from_url(url) == database


def test_open_store_builds_a_mongo_store_from_a_mongodb_url(monkeypatch):
    made = []

    def fake_client(url, **options):
        made.append((url, options))
        return ReplicaSet()

    monkeypatch.setattr(pymongo, "MongoClient", fake_client)
    store = open_store("mongodb://db.example:27017/evi_vg?replicaSet=rs0")
    try:
        assert isinstance(store, MongoStore)
        assert store.db.name == "evi_vg"
        assert made[0][0] == "mongodb://db.example:27017/evi_vg?replicaSet=rs0"
        assert {ix["name"] for ix in store.resources.list_indexes()} >= {"type_id", "idx_token", "idx_reference_target"}
        assert {ix["name"] for ix in store.history.list_indexes()} >= {"version", "type_seq", "updated"}
    finally:
        store.close()


def test_open_store_refuses_a_standalone_server_and_says_how_to_make_a_replica_set(monkeypatch):
    clients = []

    def fake_client(url, **options):
        clients.append(Standalone())
        return clients[-1]

    monkeypatch.setattr(pymongo, "MongoClient", fake_client)
    closed = []
    monkeypatch.setattr(Standalone, "close", lambda self: closed.append(self))
    with pytest.raises(ReplicaSetRequired) as caught:
        open_store("mongodb://db.example:27017/evi_vg")
    message = str(caught.value)
    assert "standalone" in message and "--replSet rs0" in message and "rs.initiate()" in message
    assert "?replicaSet=rs0" in message
    assert closed == clients  # the client the store opened is closed again

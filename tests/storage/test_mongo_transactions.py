"""Units of work on MongoDB: one multi-document transaction per write unit of work, so
a replica set (or mongos) is required and a standalone server is refused at start.

mongomock has no sessions or transactions, so the transaction path is tested with
a FAKE session/client that records what the store asks for (``test_fake_session_*``):
these show the calls (start_transaction, commit, abort, the session on every
operation), not that a real server rolls back. The journalled double of
``tests/support/mongo_replica_set.py`` (which the shared suite uses) shows what a
failed unit of work leaves behind when the transaction is taken back.
"""

from __future__ import annotations

import mongomock
import pytest
from pymongo.errors import OperationFailure

from fhir_server.errors import Conflict
from fhir_server.search import IndexSet, TokenEntry
from fhir_server.storage import ResourceVersion, VersionConflict
from fhir_server.storage.mongo import ConcurrentWrite, MongoStore, ReplicaSetRequired
from fhir_server.storage.mongo.transactions import require_replica_set
from tests.storage.helpers import search_ids
from tests.support.mongo_replica_set import ReplicaSet


def _v(t, i, vid, second, body=b"{}", deleted=False, method="PUT"):
    ts = f"2026-01-01T00:00:{second:02d}.000000Z"
    return ResourceVersion(t, i, vid, ts, deleted, method, None if deleted else body)


def _index(code):
    return IndexSet((TokenEntry("identifier", "s", code),), frozenset({"identifier"}))


# -- a fake replica set: records sessions and the calls made with them -------------------------


class FakeSession:
    def __init__(self, calls: list, commit_error: Exception | None = None):
        self.calls = calls
        self.commit_error = commit_error

    def start_transaction(self, **options):
        self.calls.append(("start_transaction", options))

    def commit_transaction(self):
        self.calls.append(("commit_transaction",))
        if self.commit_error is not None:
            raise self.commit_error

    def abort_transaction(self):
        self.calls.append(("abort_transaction",))

    def end_session(self):
        self.calls.append(("end_session",))


class FakeCollection:
    """A mongomock collection that records each call and the session it came with."""

    def __init__(self, inner, client: "FakeReplicaSetClient"):
        self._inner, self._client = inner, client

    def __getattr__(self, name):
        target = getattr(self._inner, name)
        if not callable(target):
            return target

        def call(*args, **kwargs):
            session = kwargs.pop("session", None)
            self._client.calls.append(("op", self._inner.name, name, session))
            failure = self._client.fail.get((self._inner.name, name))
            if failure is not None:
                raise failure
            return target(*args, **kwargs)

        return call


class FakeDatabase:
    def __init__(self, inner, client):
        self._inner, self._client = inner, client
        self.name = inner.name

    def __getitem__(self, name):
        return FakeCollection(self._inner[name], self._client)


class FakeAdmin:
    def __init__(self, hello):
        self.hello = hello

    def command(self, name):
        if isinstance(self.hello, Exception):
            raise self.hello
        return dict(self.hello)


class FakeReplicaSetClient:
    def __init__(self, hello=None, commit_error=None):
        self._inner = mongomock.MongoClient()
        self.admin = FakeAdmin(hello if hello is not None else {"setName": "rs0", "isWritablePrimary": True})
        self.calls: list = []
        self.sessions: list[FakeSession] = []
        self.fail: dict = {}
        self.commit_error = commit_error

    def __getitem__(self, name):
        return FakeDatabase(self._inner[name], self)

    def start_session(self):
        session = FakeSession(self.calls, self.commit_error)
        self.sessions.append(session)
        self.calls.append(("start_session",))
        return session

    def session_calls(self):
        return [c[0] for c in self.calls if c[0] != "op"]

    def ops(self):
        return [c for c in self.calls if c[0] == "op"]


def test_a_replica_set_or_mongos_is_required_when_the_store_opens():
    """``hello`` with setName (or a mongos) is accepted; a standalone server, or one that
    cannot tell, is refused before anything is created, with how to make a replica set."""
    MongoStore(FakeReplicaSetClient())
    require_replica_set(FakeReplicaSetClient({"msg": "isdbgrid"}))
    for client, why in ((FakeReplicaSetClient({"isWritablePrimary": True}), "standalone mongod"),
                        (mongomock.MongoClient(), "cannot tell")):
        with pytest.raises(ReplicaSetRequired, match=why) as caught:
            MongoStore(client)
        assert "mongod with --replSet rs0" in str(caught.value) and "rs.initiate()" in str(caught.value)
    refused = FakeReplicaSetClient({"isWritablePrimary": True})
    with pytest.raises(ReplicaSetRequired):
        MongoStore(refused)
    assert refused.ops() == []  # no collection or index was made


def test_servers_before_4_4_2_are_asked_is_master():
    class Old(FakeAdmin):
        def command(self, name):
            if name == "hello":
                raise OperationFailure("no such command: hello", code=59)
            return {"setName": "rs0"}

    client = FakeReplicaSetClient()
    client.admin = Old({})
    require_replica_set(client)


def test_fake_session_commits_a_write_unit_of_work_with_the_session_on_every_operation():
    """FAKE session: start_transaction, every resource/history operation inside it, commit, end."""
    client = FakeReplicaSetClient()
    store = MongoStore(client)
    client.calls.clear()
    with store.unit_of_work(write=True) as uow:
        uow.write(_v("Patient", "a", 1, 1, method="POST"), _index("1"))
        uow.write(_v("Patient", "b", 1, 2, method="POST"), _index("2"))
        assert uow.current("Patient", "a").version_id == 1
    assert client.session_calls() == ["start_session", "start_transaction", "commit_transaction", "end_session"]
    options = client.calls[1][1]
    assert options["read_concern"].level == "snapshot" and options["write_concern"].document == {"w": "majority"}
    session = client.sessions[0]
    for _, collection, name, used in client.ops():
        if collection == "counters":
            assert used is None, "the write sequence is taken outside the transaction"
        else:
            assert used is session, f"{collection}.{name} ran outside the transaction"
    assert {c for _, c, _, _ in client.ops()} == {"resources", "history", "counters"}


def test_fake_session_aborts_when_the_unit_of_work_fails():
    """FAKE session: an error inside the unit of work aborts the transaction and never commits."""
    client = FakeReplicaSetClient()
    store = MongoStore(client)
    client.calls.clear()
    with pytest.raises(RuntimeError, match="hook veto"):
        with store.unit_of_work(write=True) as uow:
            uow.write(_v("Patient", "a", 1, 1, method="POST"), _index("1"))
            raise RuntimeError("hook veto")
    assert client.session_calls() == ["start_session", "start_transaction", "abort_transaction", "end_session"]


def test_fake_session_write_conflict_during_a_write_is_a_version_conflict():
    """FAKE session: MongoDB's WriteConflict (112) inside the transaction -> VersionConflict, then abort."""
    client = FakeReplicaSetClient()
    store = MongoStore(client)
    client.fail[("resources", "update_one")] = OperationFailure(
        "WriteConflict", code=112, details={"errorLabels": ["TransientTransactionError"]}
    )
    with pytest.raises(VersionConflict):
        with store.unit_of_work(write=True) as uow:
            uow.write(_v("Patient", "a", 1, 1, method="POST"), _index("1"))
    assert client.session_calls()[-2:] == ["abort_transaction", "end_session"]


def test_fake_session_write_conflict_at_commit_is_a_409():
    """FAKE session: a TransientTransactionError at commit becomes ConcurrentWrite (409, a VersionConflict)."""
    conflict = OperationFailure("WriteConflict", code=112, details={"errorLabels": ["TransientTransactionError"]})
    client = FakeReplicaSetClient(commit_error=conflict)
    store = MongoStore(client)
    with pytest.raises(ConcurrentWrite) as caught:
        with store.unit_of_work(write=True) as uow:
            uow.write(_v("Patient", "a", 1, 1, method="POST"), _index("1"))
    assert isinstance(caught.value, Conflict) and isinstance(caught.value, VersionConflict)
    assert caught.value.status == 409
    assert client.session_calls()[-1] == "end_session"


def test_fake_session_read_units_of_work_use_no_transaction():
    """FAKE session: reads run without a session (nothing to commit)."""
    client = FakeReplicaSetClient()
    store = MongoStore(client)
    client.calls.clear()
    with store.unit_of_work(write=False) as uow:
        assert uow.current("Patient", "a") is None
    assert client.session_calls() == []


# -- what a failed unit of work leaves behind (the journalled double) ---------------------------


@pytest.fixture
def replica_set():
    return MongoStore(ReplicaSet(), "evi")


def test_a_failed_unit_of_work_leaves_nothing_behind(replica_set):
    store = replica_set
    with store.unit_of_work(write=True) as uow:
        uow.write(_v("Patient", "a", 1, 1, b'{"v":1}', method="POST"), _index("1"))
    with pytest.raises(RuntimeError):
        with store.unit_of_work(write=True) as uow:
            uow.write(_v("Patient", "a", 2, 2, b'{"v":2}'), _index("2"))
            uow.write(_v("Patient", "b", 1, 3, method="POST"), _index("3"))
            uow.reindex("Patient", "a", _index("9"))
            uow.guard("Organization/team")
            assert uow.current("Patient", "a").version_id == 2  # its own writes, inside
            raise RuntimeError("abort")
    with store.unit_of_work(write=False) as uow:
        assert uow.current("Patient", "a").body == b'{"v":1}' and uow.current("Patient", "b") is None
        assert uow.newest_instant() == "2026-01-01T00:00:01.000000Z"
    assert store.history.count_documents({}) == 1
    assert store.history.find_one({"v": 1}).get("end") is None  # still current
    assert search_ids(store, "Patient", [("identifier", "1")]) == ["a"]


def test_a_lost_race_takes_back_the_losers_other_writes(replica_set):
    store = replica_set
    with store.unit_of_work(write=True) as uow:
        uow.write(_v("Patient", "a", 1, 1, b'{"v":1}', method="POST"), _index("1"))
    with pytest.raises(VersionConflict):
        with store.unit_of_work(write=True) as loser:
            assert loser.current("Patient", "a").version_id == 1
            loser.write(_v("Patient", "b", 1, 2, method="POST"), _index("loser"))
            with store.unit_of_work(write=True) as winner:  # another process, meanwhile
                winner.write(_v("Patient", "a", 2, 3, b'{"winner":1}'), _index("winner"))
            loser.write(_v("Patient", "a", 2, 4, b'{"loser":1}'), _index("loser"))
    with store.unit_of_work(write=False) as uow:
        assert uow.current("Patient", "a").body == b'{"winner":1}' and uow.current("Patient", "b") is None
        assert [v.body for v in uow.history(_history("Patient", "a")).versions] == [b'{"winner":1}', b'{"v":1}']
    assert search_ids(store, "Patient", [("identifier", "loser")]) == []


def test_reindex_rewrites_many_resources_in_one_unit_of_work(replica_set):
    store = replica_set
    for n, i in enumerate("abc"):
        with store.unit_of_work(write=True) as uow:
            uow.write(_v("Patient", i, 1, n, method="POST"), _index("old"))
    with store.unit_of_work(write=True) as uow:
        for v in uow.load("Patient", uow.current_ids("Patient", None, 10)):
            uow.reindex("Patient", v.id, _index("new"))
    assert search_ids(store, "Patient", [("identifier", "new")]) == ["a", "b", "c"]


def test_a_read_unit_of_work_writes_nothing(replica_set):
    with replica_set.unit_of_work(write=False) as uow:
        with pytest.raises(RuntimeError, match="read-only"):
            uow.write(_v("Patient", "a", 1, 1, method="POST"), _index("1"))
        with pytest.raises(RuntimeError, match="read-only"):
            uow.reindex("Patient", "a", _index("1"))
        uow.guard("Organization/team")  # nothing to serialize with: no-op
    assert replica_set.resources.count_documents({}) == 0


def _history(t, i):
    from fhir_server.storage import HistoryQuery

    return HistoryQuery(t, i)

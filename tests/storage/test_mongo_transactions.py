"""Units of work on MongoDB, by deployment.

mongomock has no sessions or transactions, so the replica-set path is tested with
a FAKE session/client that records what the store asks for (``test_fake_session_*``):
these show the calls (start_transaction, commit, abort, the session on every
operation), not that a real server rolls back. The standalone path runs on
mongomock for real: one version per unit of work, a second one refused.
"""

from __future__ import annotations

import mongomock
import pytest
from pymongo.errors import OperationFailure

from fhir_server.errors import Conflict
from fhir_server.search import IndexSet, TokenEntry
from fhir_server.storage import ResourceVersion, VersionConflict
from fhir_server.storage.mongo import (
    EMULATED,
    REPLICA_SET,
    STANDALONE,
    ConcurrentWrite,
    MongoStore,
    TransactionsUnavailable,
)
from fhir_server.storage.mongo.transactions import detect_mode
from tests.storage.helpers import search_ids


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


def test_fake_session_topology_detection_picks_transactions_on_a_replica_set():
    """FAKE session: ``hello`` with setName (or a mongos) means transactions are used."""
    assert MongoStore(FakeReplicaSetClient()).mode == REPLICA_SET
    assert detect_mode(FakeReplicaSetClient({"msg": "isdbgrid"})) == REPLICA_SET
    assert detect_mode(FakeReplicaSetClient({"isWritablePrimary": True})) == STANDALONE
    assert detect_mode(mongomock.MongoClient()) == STANDALONE  # cannot tell: the safe choice


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
    client.fail[("resources", "replace_one")] = OperationFailure(
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


# -- standalone: one version per unit of work -------------------------------------------------


@pytest.fixture
def standalone():
    return MongoStore(mongomock.MongoClient(), "evi", transactions=STANDALONE)


def test_standalone_single_version_writes_work(standalone):
    with standalone.unit_of_work(write=True) as uow:
        uow.write(_v("Patient", "a", 1, 1, b'{"v":1}', method="POST"), _index("1"))
        # the held-back version is visible to this unit of work
        assert uow.current("Patient", "a").body == b'{"v":1}'
        assert [v.id for v in uow.load("Patient", ["a"])] == ["a"]
    with standalone.unit_of_work(write=True) as uow:
        assert uow.current("Patient", "a").version_id == 1
        uow.write(_v("Patient", "a", 2, 2, b'{"v":2}'), _index("2"))
    with standalone.unit_of_work(write=True) as uow:
        uow.write(_v("Patient", "a", 3, 3, deleted=True, method="DELETE"), None)
    with standalone.unit_of_work(write=False) as uow:
        assert uow.current("Patient", "a").deleted
        assert uow.version("Patient", "a", 2).body == b'{"v":2}'
        assert uow.newest_instant() == "2026-01-01T00:00:03.000000Z"
    assert search_ids(standalone, "Patient", [("identifier", "2")]) == []


def test_standalone_refuses_a_second_version_and_stores_nothing(standalone):
    with pytest.raises(TransactionsUnavailable) as caught:
        with standalone.unit_of_work(write=True) as uow:
            uow.write(_v("Patient", "a", 1, 1, method="POST"), _index("1"))
            uow.write(_v("Patient", "b", 1, 2, method="POST"), _index("2"))
    error = caught.value
    assert error.status == 501
    outcome = error.to_outcome()
    assert outcome["issue"][0]["code"] == "not-supported"
    assert "replica set" in outcome["issue"][0]["diagnostics"] and "nothing was stored" in outcome["issue"][0]["diagnostics"]
    with standalone.unit_of_work(write=False) as uow:
        assert uow.current("Patient", "a") is None and uow.current("Patient", "b") is None
        assert uow.newest_instant() is None
    assert standalone.history.count_documents({}) == 0 and standalone.resources.count_documents({}) == 0


def test_standalone_lost_race_at_commit_is_a_409_and_keeps_the_winner(standalone):
    with standalone.unit_of_work(write=True) as uow:
        uow.write(_v("Patient", "a", 1, 1, b'{"v":1}', method="POST"), _index("1"))
    with pytest.raises(ConcurrentWrite) as caught:
        with standalone.unit_of_work(write=True) as loser:
            assert loser.current("Patient", "a").version_id == 1
            loser.write(_v("Patient", "a", 2, 3, b'{"loser":1}'), _index("loser"))
            with standalone.unit_of_work(write=True) as winner:  # another process, meanwhile
                winner.write(_v("Patient", "a", 2, 2, b'{"winner":1}'), _index("winner"))
    assert caught.value.status == 409
    with standalone.unit_of_work(write=False) as uow:
        assert uow.current("Patient", "a").body == b'{"winner":1}'
        assert [v.body for v in uow.history(_history("Patient", "a")).versions] == [b'{"winner":1}', b'{"v":1}']
    assert search_ids(standalone, "Patient", [("identifier", "loser")]) == []


def test_standalone_reindexes_many_resources_in_one_unit_of_work(standalone):
    for n, i in enumerate("abc"):
        with standalone.unit_of_work(write=True) as uow:
            uow.write(_v("Patient", i, 1, n, method="POST"), _index("old"))
    with standalone.unit_of_work(write=True) as uow:
        for v in uow.load("Patient", uow.current_ids("Patient", None, 10)):
            uow.reindex("Patient", v.id, _index("new"))
    assert search_ids(standalone, "Patient", [("identifier", "new")]) == ["a", "b", "c"]


def test_standalone_reindex_leaves_a_version_written_meanwhile_alone(standalone):
    with standalone.unit_of_work(write=True) as uow:
        uow.write(_v("Patient", "a", 1, 1, method="POST"), _index("v1"))
    with standalone.unit_of_work(write=True) as reindexer:
        assert [v.version_id for v in reindexer.load("Patient", ["a"])] == [1]
        with standalone.unit_of_work(write=True) as writer:
            writer.write(_v("Patient", "a", 2, 2), _index("v2"))
        reindexer.reindex("Patient", "a", _index("stale"))
    assert search_ids(standalone, "Patient", [("identifier", "v2")]) == ["a"]
    assert search_ids(standalone, "Patient", [("identifier", "stale")]) == []


def test_emulated_mode_undoes_every_write_of_a_failed_unit_of_work():
    store = MongoStore(mongomock.MongoClient(), "evi", transactions=EMULATED)
    with store.unit_of_work(write=True) as uow:
        uow.write(_v("Patient", "a", 1, 1, b'{"v":1}', method="POST"), _index("1"))
    with pytest.raises(RuntimeError):
        with store.unit_of_work(write=True) as uow:
            uow.write(_v("Patient", "a", 2, 2, b'{"v":2}'), _index("2"))
            uow.write(_v("Patient", "b", 1, 3, method="POST"), _index("3"))
            uow.reindex("Patient", "a", _index("9"))
            raise RuntimeError("abort")
    with store.unit_of_work(write=False) as uow:
        assert uow.current("Patient", "a").body == b'{"v":1}' and uow.current("Patient", "b") is None
    assert store.history.count_documents({}) == 1
    assert store.history.find_one({"v": 1}).get("end") is None  # still current
    assert search_ids(store, "Patient", [("identifier", "1")]) == ["a"]


def test_unknown_transaction_mode_is_refused():
    with pytest.raises(ValueError):
        MongoStore(mongomock.MongoClient(), transactions="sometimes")


def _history(t, i):
    from fhir_server.storage import HistoryQuery

    return HistoryQuery(t, i)

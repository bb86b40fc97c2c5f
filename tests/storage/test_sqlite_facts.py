"""The counters and the newest instant a SQLite connection remembers under its
``PRAGMA data_version`` (``store._Facts``): never stale, whoever wrote."""

from fhir_server.storage.base import ResourceVersion
from fhir_server.storage.sqlite import SqliteStore


def _version(rid: str, instant: str) -> ResourceVersion:
    return ResourceVersion("Basic", rid, 1, instant, False, "POST", b'{"resourceType":"Basic"}')


def _generation(store: SqliteStore, write: bool = False) -> int:
    with store.unit_of_work(write=write) as uow:
        return uow.generation("search-parameters")


def _newest(store: SqliteStore, write: bool = True) -> str | None:
    with store.unit_of_work(write=write) as uow:
        return uow.newest_instant()


def test_what_another_process_commits_is_seen(tmp_path):
    path = str(tmp_path / "evi.db")
    here, other = SqliteStore(path), SqliteStore(path)  # two processes on one file, as far as SQLite knows
    try:
        assert _generation(here, write=True) == 0 and _generation(here) == 0 and _newest(here) is None
        with other.unit_of_work(write=True) as uow:
            uow.bump("search-parameters")
            uow.write(_version("a", "2026-12-03T10:00:00.000000Z"), None)
        assert _generation(here, write=True) == 1 and _generation(here) == 1
        assert _newest(here) == "2026-12-03T10:00:00.000000Z" == _newest(here, write=False)
    finally:
        here.close()
        other.close()


def test_its_own_commits_keep_the_facts_current_without_reading_again(tmp_path):
    store = SqliteStore(str(tmp_path / "evi.db"))
    statements: list[str] = []
    try:
        assert _newest(store) is None and _generation(store, write=True) == 0
        with store.unit_of_work(write=True) as uow:
            uow.write(_version("a", "2026-12-03T10:00:00.000001Z"), None)
            uow.bump("search-parameters")
        store._writer.set_trace_callback(statements.append)
        assert _newest(store) == "2026-12-03T10:00:00.000001Z"
        assert _generation(store, write=True) == 1
        assert not any("FROM history" in s for s in statements)  # the newest instant was kept
        assert any("FROM counters" in s for s in statements)  # a bumped counter is read again
        statements.clear()
        assert _generation(store, write=True) == 1
        assert not any("FROM counters" in s for s in statements)
    finally:
        store._writer.set_trace_callback(None)
        store.close()


def test_a_rolled_back_transaction_leaves_nothing_behind(tmp_path):
    store = SqliteStore(str(tmp_path / "evi.db"))
    try:
        assert _generation(store, write=True) == 0 and _newest(store) is None
        try:
            with store.unit_of_work(write=True) as uow:
                uow.bump("search-parameters")
                uow.write(_version("a", "2026-12-03T10:00:00.000000Z"), None)
                assert uow.generation("search-parameters") == 1
                assert uow.newest_instant() == "2026-12-03T10:00:00.000000Z"
                raise RuntimeError("the unit of work fails")
        except RuntimeError:
            pass
        assert _generation(store, write=True) == 0 and _newest(store) is None
    finally:
        store.close()

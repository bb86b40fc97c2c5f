import pytest

from fhir_server.search import IndexSet, SearchRegistry, TokenEntry, parse_search
from fhir_server.storage import HistoryQuery, ResourceVersion, VersionConflict


@pytest.fixture(scope="module")
def registry():
    return SearchRegistry.from_spec(frozenset({"identifier"}))


def _v(t, i, vid, ts, body=b"{}", deleted=False, method="PUT"):
    return ResourceVersion(t, i, vid, ts, deleted, method, None if deleted else body)


def test_write_then_read_current_and_versions(store):
    with store.unit_of_work(write=True) as uow:
        uow.write(_v("Patient", "a", 1, "2026-01-01T00:00:00.000000Z", b'{"v":1}', method="POST"), IndexSet())
        uow.write(_v("Patient", "a", 2, "2026-01-02T00:00:00.000000Z", b'{"v":2}'), IndexSet())
    with store.unit_of_work(write=False) as uow:
        assert uow.current("Patient", "a").body == b'{"v":2}'
        assert uow.version("Patient", "a", 1).body == b'{"v":1}'
        assert uow.version("Patient", "a", 3) is None
        assert uow.current("Patient", "b") is None
        assert uow.newest_instant() == "2026-01-02T00:00:00.000000Z"


def test_duplicate_version_is_a_conflict_and_rolls_back(store):
    with store.unit_of_work(write=True) as uow:
        uow.write(_v("Patient", "a", 1, "2026-01-01T00:00:00.000000Z"), IndexSet())
    with pytest.raises(VersionConflict):
        with store.unit_of_work(write=True) as uow:
            uow.write(_v("Patient", "b", 1, "2026-01-01T00:00:01.000000Z"), IndexSet())
            uow.write(_v("Patient", "a", 1, "2026-01-01T00:00:02.000000Z"), IndexSet())
    with store.unit_of_work(write=False) as uow:
        assert uow.current("Patient", "b") is None  # the whole unit of work rolled back


def test_history_pages_newest_first_and_ignores_later_writes(store):
    with store.unit_of_work(write=True) as uow:
        for vid in range(1, 6):
            uow.write(_v("Patient", "a", vid, f"2026-01-0{vid}T00:00:00.000000Z"), IndexSet())
    with store.unit_of_work(write=False) as uow:
        first = uow.history(HistoryQuery("Patient", "a", count=2))
    assert [v.version_id for v in first.versions] == [5, 4] and first.total == 5
    with store.unit_of_work(write=True) as uow:
        uow.write(_v("Patient", "a", 6, "2026-01-06T00:00:00.000000Z"), IndexSet())
    with store.unit_of_work(write=False) as uow:
        second = uow.history(HistoryQuery("Patient", "a", before_cursor=first.next_cursor, count=2))
        third = uow.history(HistoryQuery("Patient", "a", before_cursor=second.next_cursor, count=2))
        since = uow.history(HistoryQuery("Patient", "a", since="2026-01-05T00:00:00.000000Z"))
    assert [v.version_id for v in second.versions] == [3, 2]
    assert [v.version_id for v in third.versions] == [1] and third.next_cursor is None
    assert [v.version_id for v in since.versions] == [6, 5]


def test_search_uses_index_entries_and_skips_deleted(store, registry):
    with store.unit_of_work(write=True) as uow:
        uow.write(_v("Patient", "a", 1, "2026-01-01T00:00:00.000000Z"), IndexSet((TokenEntry("identifier", "s", "1"),)))
        uow.write(_v("Patient", "b", 1, "2026-01-02T00:00:00.000000Z"), IndexSet((TokenEntry("identifier", None, "1"),)))
        uow.write(_v("Patient", "c", 1, "2026-01-03T00:00:00.000000Z"), IndexSet((TokenEntry("identifier", "s", "2"),)))
        uow.write(_v("Patient", "c", 2, "2026-01-04T00:00:00.000000Z", deleted=True, method="DELETE"), None)

    def ids(*params):
        with store.unit_of_work(write=False) as uow:
            return uow.search(parse_search("Patient", list(params), registry), with_total=True)

    assert ids(("identifier", "1")).ids == ["a", "b"]
    assert ids(("identifier", "s|1")).ids == ["a"]
    assert ids(("identifier", "|1")).ids == ["b"]
    assert ids(("identifier", "s|")).ids == ["a"]
    assert ids(("identifier", "2")).ids == []  # c is deleted
    assert ids(("identifier:not", "s|1")).ids == ["b"]
    assert ids(("_id", "a,c")).ids == ["a"]
    assert ids(("_lastUpdated", "ge2026-01-02")).ids == ["b"]
    assert ids(("_sort", "-_lastUpdated")).ids == ["b", "a"]
    result = ids(("_count", "1"))
    assert result.ids == ["a"] and result.total == 2


def test_updates_replace_index_entries(store, registry):
    with store.unit_of_work(write=True) as uow:
        uow.write(_v("Patient", "a", 1, "2026-01-01T00:00:00.000000Z"), IndexSet((TokenEntry("identifier", "s", "old"),)))
        uow.write(_v("Patient", "a", 2, "2026-01-02T00:00:00.000000Z"), IndexSet((TokenEntry("identifier", "s", "new"),)))
    with store.unit_of_work(write=False) as uow:
        assert uow.search(parse_search("Patient", [("identifier", "old")], registry), with_total=False).ids == []
        assert uow.search(parse_search("Patient", [("identifier", "new")], registry), with_total=False).ids == ["a"]


def test_load_keeps_order_and_drops_missing(store):
    with store.unit_of_work(write=True) as uow:
        for i in "abc":
            uow.write(_v("Patient", i, 1, "2026-01-01T00:00:00.000000Z", i.encode()), IndexSet())
    with store.unit_of_work(write=False) as uow:
        assert [v.id for v in uow.load("Patient", ["c", "x", "a"])] == ["c", "a"]


def test_a_version_keeps_whose_data_it_is(store):
    """``ResourceVersion.patients``: stored with the version and given back by every read
    (None, not known, stays None; none at all is an empty tuple)."""
    import dataclasses

    def at(v, patients):
        return dataclasses.replace(v, patients=patients)

    with store.unit_of_work(write=True) as uow:
        uow.write(at(_v("Observation", "o", 1, "2026-01-01T00:00:00.000000Z", b'{"v":1}', method="POST"),
                     ("p1", "p2")), IndexSet())
        uow.write(at(_v("Observation", "o", 2, "2026-01-02T00:00:00.000000Z", b'{"v":2}'), ()), IndexSet())
        uow.write(_v("Observation", "n", 1, "2026-01-03T00:00:00.000000Z"), IndexSet())
    with store.unit_of_work(write=False) as uow:
        assert uow.version("Observation", "o", 1).patients == ("p1", "p2")
        assert uow.current("Observation", "o").patients == ()
        assert uow.current("Observation", "n").patients is None
        assert [v.patients for v in uow.load("Observation", ["o", "n"])] == [(), None]
        assert [v.patients for v in uow.history(HistoryQuery("Observation", "o")).versions] == [(), ("p1", "p2")]
        assert [v.patients for _, v in uow.versions_since(None, 10)] == [("p1", "p2"), (), None]
    with store.unit_of_work(write=True) as uow:  # a deletion names nobody
        uow.write(_v("Observation", "o", 3, "2026-01-04T00:00:00.000000Z", deleted=True, method="DELETE"), None)
    with store.unit_of_work(write=False) as uow:
        assert uow.current("Observation", "o").patients is None

"""A database written before schema versions (text keys in every index row) is converted
when opened, and then answers the shared storage suite's searches as a new one does."""

import pathlib
import sqlite3

import pytest

from fhir_server.storage.sqlite import SqliteStore
from fhir_server.storage.sqlite.migrate import NewerSchema
from fhir_server.storage.sqlite.schema import SCHEMA_VERSION
from tests.storage import test_search_params as tables
from tests.storage.helpers import _dataset_writes, check_cases, put, search_ids

V1 = (pathlib.Path(__file__).parent / "data" / "sqlite_schema_v1.sql").read_text()


def _v1_rows(e) -> tuple[str, tuple]:
    """An index entry as version 1 stored it."""
    k = e.kind
    if k == "token":
        return "INSERT INTO idx_token (type, id, param, system, code, text) VALUES (?, ?, ?, ?, ?, ?)", (
            e.param, e.system, e.code, e.text)
    if k == "string":
        return "INSERT INTO idx_string (type, id, param, normalized, exact) VALUES (?, ?, ?, ?, ?)", (
            e.param, e.normalized, e.exact)
    if k == "number":
        return "INSERT INTO idx_number (type, id, param, low, high) VALUES (?, ?, ?, ?, ?)", (e.param, e.low, e.high)
    if k == "date":
        return "INSERT INTO idx_date (type, id, param, low, high) VALUES (?, ?, ?, ?, ?)", (e.param, e.low, e.high)
    if k == "quantity":
        return "INSERT INTO idx_quantity (type, id, param, system, code, low, high) VALUES (?, ?, ?, ?, ?, ?, ?)", (
            e.param, e.system, e.code, e.low, e.high)
    if k == "uri":
        return "INSERT INTO idx_uri (type, id, param, uri) VALUES (?, ?, ?, ?)", (e.param, e.uri)
    if k == "reference":
        return "INSERT INTO idx_reference (type, id, param, target_type, target_id, url) VALUES (?, ?, ?, ?, ?, ?)", (
            e.param, e.target_type, e.target_id, e.url)
    from fhir_server.storage.sqlite.schema import component_columns

    columns = [c for part in e.components for c in component_columns(part)]
    columns += [None] * (12 - len(columns))
    return "INSERT INTO idx_composite VALUES (?, ?, ?, " + ", ".join("?" * 12) + ")", (e.param, *columns)


def _write_v1(path: pathlib.Path) -> None:
    """The shared dataset, written the way version 1 wrote it."""
    conn = sqlite3.connect(path)
    conn.executescript(V1)
    writes, deletions = _dataset_writes()
    for v, index in [*writes, *((d, None) for d in deletions)]:
        seq = conn.execute(
            "INSERT INTO history (type, id, version_id, last_updated, method, deleted, body) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (v.resource_type, v.id, v.version_id, v.last_updated, v.method, int(v.deleted), v.body),
        ).lastrowid
        conn.execute(
            "INSERT OR REPLACE INTO resource (type, id, version_id, last_updated, deleted, seq) VALUES (?, ?, ?, ?, ?, ?)",
            (v.resource_type, v.id, v.version_id, v.last_updated, int(v.deleted), seq),
        )
        for table in ("token", "string", "number", "date", "quantity", "uri", "reference", "composite"):
            conn.execute(f"DELETE FROM idx_{table} WHERE type = ? AND id = ?", (v.resource_type, v.id))
        for e in index.entries if index is not None else ():
            sql, values = _v1_rows(e)
            conn.execute(sql, (v.resource_type, v.id, *values))
    conn.commit()
    conn.close()


@pytest.fixture(scope="module")
def migrated(tmp_path_factory):
    path = tmp_path_factory.mktemp("v1") / "evi.db"
    _write_v1(path)
    store = SqliteStore(str(path))
    yield store
    store.close()


@pytest.mark.parametrize("table", ["TOKEN", "STRING", "NUMBER", "QUANTITY", "DATE", "URI", "REFERENCE",
                                   "COMPOSITE", "MISSING"])
def test_a_version_1_database_answers_the_shared_cases(migrated, table):
    check_cases(migrated, getattr(tables, table))


def test_the_conversion_is_recorded_and_the_old_tables_are_gone(migrated):
    with migrated.unit_of_work(write=False) as uow:
        conn = uow._conn
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert not {n for n in names if n.endswith("_v1")}
        assert "rid" in [r[1] for r in conn.execute("PRAGMA table_info(resource)")]


def test_a_converted_database_takes_new_writes_and_parameters(migrated):
    with migrated.unit_of_work(write=True) as uow:
        put(uow, {"resourceType": "Patient", "id": "after-migration", "gender": "other", "birthDate": "2014-02-03",
                  "identifier": [{"system": "urn:evi:test:migration", "value": "1"}]})
    assert search_ids(migrated, "Patient", [("identifier", "urn:evi:test:migration|1")]) == ["after-migration"]
    assert "after-migration" in search_ids(migrated, "Patient", [("birthdate", "2014-02-03")])


def test_a_database_from_a_newer_evi_fhir_is_refused(tmp_path):
    path = tmp_path / "newer.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(NewerSchema):
        SqliteStore(str(path))


def _as_left_by(path, version: int, *statements: str) -> None:
    """Turn a current file back into what schema ``version`` left (``statements`` undo what came after)."""
    conn = sqlite3.connect(path)
    for statement in statements:
        conn.execute(statement)
    conn.execute(f"PRAGMA user_version = {version}")
    conn.commit()
    conn.close()


def _written(path, *resources: dict) -> None:
    store = SqliteStore(str(path))
    with store.unit_of_work(write=True) as uow:
        for resource in resources:
            put(uow, resource)
    store.close()


def test_a_version_2_database_gains_the_date_spans_its_range_searches_rely_on(tmp_path):
    path = tmp_path / "v2.db"
    _written(path, {"resourceType": "Patient", "id": "a", "birthDate": "2014-02-03"},
             {"resourceType": "Encounter", "id": "e", "status": "finished", "class": {"code": "AMB"},
              "period": {"start": "2024-01-01", "end": "2025-06-30"}})
    _as_left_by(path, 2, "DROP TABLE date_span")
    store = SqliteStore(str(path))
    try:
        # the long period is found from a week in its middle: the bound uses its span
        assert search_ids(store, "Encounter", [("date", "ge2025-03-01"), ("date", "lt2025-03-08")]) == ["e"]
        assert search_ids(store, "Patient", [("birthdate", "ge2014-02-01"), ("birthdate", "lt2014-03-01")]) == ["a"]
    finally:
        store.close()


def test_a_version_3_database_gains_the_patients_of_versions(tmp_path):
    path = tmp_path / "v3.db"
    _written(path, {"resourceType": "Patient", "id": "a"})
    _as_left_by(path, 3, "ALTER TABLE history DROP COLUMN patients")
    store = SqliteStore(str(path))
    try:
        with store.unit_of_work(write=False) as uow:
            assert uow.current("Patient", "a").patients is None  # not known: read from the body when needed
        with store.unit_of_work(write=True) as uow:
            put(uow, {"resourceType": "Patient", "id": "b"})
        with sqlite3.connect(path) as check:
            assert check.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 4
    finally:
        store.close()

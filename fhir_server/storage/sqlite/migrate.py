"""Opening a database file: making the schema, or bringing an older one up to date.

``PRAGMA user_version`` holds the schema version (``schema.SCHEMA_VERSION``). Version 2
gains the ``date_span`` table of version 3, filled from its date index rows; versions
before 4 gain ``history.patients`` (NULL in the versions they hold). Version 1
(files written before it was set: text keys in every index row) is converted in one
transaction: the resources keep their versions and bodies, and their index rows are
rewritten in the narrow form (the index is derived data, but rewriting it in SQL takes
seconds where re-extracting it from every body would take minutes). The old pages are
left free inside the file: ``VACUUM`` while the server is stopped gives them back.
"""

from __future__ import annotations

import logging
import os
import sqlite3

from fhir_server.storage.sqlite.schema import OPEN_HIGH, OPEN_LOW, SCHEMA, SCHEMA_VERSION, Keys, micros

__all__ = ["open_schema", "NewerSchema"]

log = logging.getLogger("evi.storage")

_V1_TABLES = ("resource", "idx_token", "idx_string", "idx_number", "idx_date", "idx_quantity", "idx_uri",
              "idx_reference", "idx_composite")


class NewerSchema(RuntimeError):
    """The file was written by a newer evi-fhir."""


def open_schema(conn: sqlite3.Connection) -> Keys:
    """Make or update the schema on ``conn`` (autocommit mode); the database's hash keys."""
    conn.execute("BEGIN IMMEDIATE")  # one process migrates; the others wait, then find it done
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise NewerSchema(f"the database has schema version {version}; this evi-fhir knows up to {SCHEMA_VERSION}")
        if version < SCHEMA_VERSION and _is_v1(conn):
            keys = _keys(conn, create=True)
            _migrate_v1(conn, keys)
            _fill_spans(conn)
        else:
            _script(conn, SCHEMA)
            keys = _keys(conn, create=True)
            if 0 < version < 3:
                _fill_spans(conn)
        if version < 4:
            _add_patients(conn)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return keys


def _script(conn: sqlite3.Connection, script: str) -> None:
    """``executescript`` would commit the open transaction first."""
    for statement in script.split(";"):
        if statement.strip():
            conn.execute(statement)


def _keys(conn: sqlite3.Connection, *, create: bool) -> Keys:
    conn.execute("CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value BLOB NOT NULL)")
    if create:
        conn.execute("INSERT OR IGNORE INTO meta (name, value) VALUES ('hash-salt', ?)", (os.urandom(16),))
    return Keys(conn.execute("SELECT value FROM meta WHERE name = 'hash-salt'").fetchone()[0])


def _fill_spans(conn: sqlite3.Connection) -> None:
    """Version 3: each date parameter's longest closed period, from its index rows."""
    conn.execute(
        "INSERT OR REPLACE INTO date_span (pid, span) SELECT pid, MAX(high - low) FROM idx_date "
        "WHERE low != ? AND high != ? GROUP BY pid", (OPEN_LOW, OPEN_HIGH),
    )


def _add_patients(conn: sqlite3.Connection) -> None:
    """Version 4: ``history.patients``. Older versions keep NULL (not known): the PDL log
    reads their patients from their bodies, as before."""
    columns = [r[1] for r in conn.execute("PRAGMA table_info(history)").fetchall()]
    if "patients" not in columns:
        conn.execute("ALTER TABLE history ADD COLUMN patients TEXT")


def _is_v1(conn: sqlite3.Connection) -> bool:
    columns = [r[1] for r in conn.execute("PRAGMA table_info(resource)").fetchall()]
    return bool(columns) and "rid" not in columns


def _migrate_v1(conn: sqlite3.Connection, keys: Keys) -> None:
    count = conn.execute("SELECT COUNT(*) FROM resource").fetchone()[0]
    log.warning("converting the database to schema version %d (%d resources)", SCHEMA_VERSION, count)
    conn.create_function("evi_key", 1, keys, deterministic=True)
    conn.create_function("evi_target", 3, keys.target, deterministic=True)
    conn.create_function("evi_micros", 1, micros, deterministic=True)
    # the old tables step aside (their indexes go: some names are reused)
    for (name,) in conn.execute(
        f"SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL AND tbl_name IN "
        f"({', '.join('?' for _ in _V1_TABLES)})", _V1_TABLES,
    ).fetchall():
        conn.execute(f'DROP INDEX "{name}"')
    for table in _V1_TABLES:
        conn.execute(f"ALTER TABLE {table} RENAME TO {table}_v1")
    _script(conn, SCHEMA)
    conn.execute(
        "INSERT INTO resource (type, id, version_id, last_updated, deleted, seq, hkey) "
        "SELECT type, id, version_id, last_updated, deleted, seq, evi_key(type || '/' || id) FROM resource_v1 ORDER BY seq"
    )
    union = " UNION ".join(f"SELECT type, param FROM {t}_v1" for t in _V1_TABLES[1:])
    conn.execute(f"INSERT INTO search_param (type, code) SELECT DISTINCT type, param FROM ({union}) ORDER BY 1, 2")
    owner = "JOIN resource r ON r.type = o.type AND r.id = o.id JOIN search_param p ON p.type = o.type AND p.code = o.param"
    copies = {
        "idx_token": ("pid, hcode, hsys, rid, code, text",
                      "p.pid, evi_key(o.code), evi_key(o.system), r.rid, o.code, o.text"),
        "idx_string": ("pid, normalized, rid, exact", "p.pid, o.normalized, r.rid, o.exact"),
        "idx_number": ("pid, low, high, rid", "p.pid, o.low, o.high, r.rid"),
        "idx_date": ("pid, high, low, rid", "p.pid, evi_micros(o.high), evi_micros(o.low), r.rid"),
        "idx_quantity": ("pid, code, low, high, rid, system",
                         "p.pid, COALESCE(o.code, ''), o.low, o.high, r.rid, COALESCE(o.system, '')"),
        "idx_uri": ("pid, uri, rid", "p.pid, o.uri, r.rid"),
        "idx_reference": ("pid, htarget, rid, target_type, target_id, url",
                          "p.pid, evi_target(o.target_type, o.target_id, o.url), r.rid, o.target_type, o.target_id, o.url"),
        "idx_composite": ("pid, rid, c0_a, c0_b, c0_low, c0_high, c1_a, c1_b, c1_low, c1_high, "
                          "c2_a, c2_b, c2_low, c2_high",
                          "p.pid, r.rid, o.c0_a, o.c0_b, o.c0_low, o.c0_high, o.c1_a, o.c1_b, o.c1_low, o.c1_high, "
                          "o.c2_a, o.c2_b, o.c2_low, o.c2_high"),
    }
    for table, (columns, values) in copies.items():
        conn.execute(f"INSERT OR IGNORE INTO {table} ({columns}) SELECT {values} FROM {table}_v1 o {owner}")
    for table in _V1_TABLES:
        conn.execute(f"DROP TABLE {table}_v1")

"""SQLite layout: versions in ``history``, the current version per id in ``resource``,
and one index table per search-parameter type (HAPI's HFJ_SPIDX_* tables).

The body is stored once, in ``history``; ``resource`` points at it by ``seq``.
``seq`` orders every version ever written, which makes history paging a keyset
walk that new writes cannot disturb. Every index table has a lookup index that
starts with (type, param), so that one parameter's values sit together, and an
owner index (type, id, param, value) that serves replacing a resource's rows and
the per-resource look-ups of ``_sort`` (with (type, id) alone SQLite preferred the
covering lookup index there and sorted in quadratic time: benchmarks/search.py).
"""

from __future__ import annotations

__all__ = ["SCHEMA", "INDEX_TABLES", "index_rows"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS history (
    seq          INTEGER PRIMARY KEY,  -- history is never deleted from, so rowids are never reused
    type         TEXT NOT NULL,
    id           TEXT NOT NULL,
    version_id   INTEGER NOT NULL,
    last_updated TEXT NOT NULL,
    method       TEXT NOT NULL,
    deleted      INTEGER NOT NULL,
    body         BLOB,
    UNIQUE (type, id, version_id)
);
CREATE INDEX IF NOT EXISTS history_type_seq ON history (type, seq);

-- a number per name that writers raise (e.g. "search-parameters"), so every process
-- sharing the file learns of a change on its next request
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    n    INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS resource (
    type         TEXT NOT NULL,
    id           TEXT NOT NULL,
    version_id   INTEGER NOT NULL,
    last_updated TEXT NOT NULL,
    deleted      INTEGER NOT NULL,
    seq          INTEGER NOT NULL,
    PRIMARY KEY (type, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS resource_type_updated ON resource (type, last_updated, id);

CREATE TABLE IF NOT EXISTS idx_token (
    type TEXT NOT NULL, id TEXT NOT NULL, param TEXT NOT NULL, system TEXT, code TEXT, text TEXT
);
CREATE INDEX IF NOT EXISTS idx_token_lookup ON idx_token (type, param, code, system, id);
CREATE INDEX IF NOT EXISTS idx_token_owner ON idx_token (type, id, param, code, system);

CREATE TABLE IF NOT EXISTS idx_string (
    type TEXT NOT NULL, id TEXT NOT NULL, param TEXT NOT NULL, normalized TEXT NOT NULL, exact TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_string_lookup ON idx_string (type, param, normalized, id);
CREATE INDEX IF NOT EXISTS idx_string_owner ON idx_string (type, id, param, normalized);

CREATE TABLE IF NOT EXISTS idx_number (
    type TEXT NOT NULL, id TEXT NOT NULL, param TEXT NOT NULL, low REAL NOT NULL, high REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_number_lookup ON idx_number (type, param, low, high, id);
CREATE INDEX IF NOT EXISTS idx_number_owner ON idx_number (type, id, param, low, high);

CREATE TABLE IF NOT EXISTS idx_date (
    type TEXT NOT NULL, id TEXT NOT NULL, param TEXT NOT NULL, low TEXT NOT NULL, high TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_date_lookup ON idx_date (type, param, low, high, id);
CREATE INDEX IF NOT EXISTS idx_date_owner ON idx_date (type, id, param, low, high);

CREATE TABLE IF NOT EXISTS idx_quantity (
    type TEXT NOT NULL, id TEXT NOT NULL, param TEXT NOT NULL, system TEXT, code TEXT, low REAL NOT NULL, high REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_quantity_lookup ON idx_quantity (type, param, code, low, high, id);
CREATE INDEX IF NOT EXISTS idx_quantity_owner ON idx_quantity (type, id, param, system, low, high);

CREATE TABLE IF NOT EXISTS idx_uri (
    type TEXT NOT NULL, id TEXT NOT NULL, param TEXT NOT NULL, uri TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_uri_lookup ON idx_uri (type, param, uri, id);
CREATE INDEX IF NOT EXISTS idx_uri_owner ON idx_uri (type, id, param, uri);

CREATE TABLE IF NOT EXISTS idx_reference (
    type TEXT NOT NULL, id TEXT NOT NULL, param TEXT NOT NULL, target_type TEXT, target_id TEXT, url TEXT
);
CREATE INDEX IF NOT EXISTS idx_reference_lookup ON idx_reference (type, param, target_id, target_type, id);
CREATE INDEX IF NOT EXISTS idx_reference_target ON idx_reference (target_type, target_id, param, type);
CREATE INDEX IF NOT EXISTS idx_reference_owner ON idx_reference (type, id, param, target_id, url);

CREATE TABLE IF NOT EXISTS idx_composite (
    type TEXT NOT NULL, id TEXT NOT NULL, param TEXT NOT NULL,
    c0_a, c0_b, c0_low, c0_high,
    c1_a, c1_b, c1_low, c1_high,
    c2_a, c2_b, c2_low, c2_high
);
CREATE INDEX IF NOT EXISTS idx_composite_lookup ON idx_composite (type, param, c0_b, c1_b, id);
CREATE INDEX IF NOT EXISTS idx_composite_owner ON idx_composite (type, id);
"""

#: index table per entry kind
INDEX_TABLES = {
    "token": "idx_token",
    "string": "idx_string",
    "number": "idx_number",
    "date": "idx_date",
    "quantity": "idx_quantity",
    "uri": "idx_uri",
    "reference": "idx_reference",
    "composite": "idx_composite",
}

_INSERTS = {
    "token": "INSERT INTO idx_token (type, id, param, system, code, text) VALUES (?, ?, ?, ?, ?, ?)",
    "string": "INSERT INTO idx_string (type, id, param, normalized, exact) VALUES (?, ?, ?, ?, ?)",
    "number": "INSERT INTO idx_number (type, id, param, low, high) VALUES (?, ?, ?, ?, ?)",
    "date": "INSERT INTO idx_date (type, id, param, low, high) VALUES (?, ?, ?, ?, ?)",
    "quantity": "INSERT INTO idx_quantity (type, id, param, system, code, low, high) VALUES (?, ?, ?, ?, ?, ?, ?)",
    "uri": "INSERT INTO idx_uri (type, id, param, uri) VALUES (?, ?, ?, ?)",
    "reference": "INSERT INTO idx_reference (type, id, param, target_type, target_id, url) VALUES (?, ?, ?, ?, ?, ?)",
    "composite": "INSERT INTO idx_composite VALUES (?, ?, ?, " + ", ".join("?" for _ in range(12)) + ")",
}


def component_columns(entry) -> tuple:
    """A component entry as the (a, b, low, high) columns of idx_composite."""
    kind = entry.kind
    if kind == "token":
        return entry.system, entry.code, None, None
    if kind == "quantity":
        return entry.system, entry.code, entry.low, entry.high
    if kind in ("number", "date"):
        return None, None, entry.low, entry.high
    if kind == "string":
        return None, entry.normalized, None, None
    if kind == "reference":
        return entry.target_type, entry.target_id if entry.target_id else entry.url, None, None
    if kind == "uri":
        return None, entry.uri, None, None
    raise ValueError(f"no composite columns for {kind}")


def _row(t: str, i: str, e) -> tuple:
    kind = e.kind
    if kind == "token":
        return t, i, e.param, e.system, e.code, e.text
    if kind == "string":
        return t, i, e.param, e.normalized, e.exact
    if kind in ("number", "date"):
        return t, i, e.param, e.low, e.high
    if kind == "quantity":
        return t, i, e.param, e.system, e.code, e.low, e.high
    if kind == "uri":
        return t, i, e.param, e.uri
    if kind == "reference":
        return t, i, e.param, e.target_type, e.target_id, e.url
    columns: list = []
    for c in e.components:
        columns.extend(component_columns(c))
    columns.extend([None] * (12 - len(columns)))
    return (t, i, e.param, *columns)


def index_rows(t: str, i: str, entries) -> dict[str, tuple[str, list[tuple]]]:
    """Entries grouped into (INSERT statement, rows) per table."""
    grouped: dict[str, tuple[str, list[tuple]]] = {}
    for e in entries:
        sql_rows = grouped.setdefault(e.kind, (_INSERTS[e.kind], []))
        sql_rows[1].append(_row(t, i, e))
    return grouped

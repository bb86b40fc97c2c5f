"""SQLite layout (schema version 3): versions in ``history``, the current version per id in
``resource``, and one index table per search-parameter type (HAPI's HFJ_SPIDX_* tables).

The body is stored once, in ``history``; ``resource`` points at it by ``seq``. ``seq``
orders every version ever written, which makes history paging a keyset walk that new
writes cannot disturb.

Index rows are narrow, because there are about ten per resource and each is stored in
its table and again in an index (a 1,000,000-resource store took 4.3 kB per resource
with text keys):

- a resource is its integer ``rid`` (``resource``'s rowid, assigned at its first write
  and kept; creation order), a parameter of a type is its integer ``pid`` (the
  ``search_param`` table, interned on first use);
- tokens are matched by 64-bit hashes of the code and of the system (``hcode``,
  ``hsys``; HAPI's HASH_VALUE / HASH_SYS_AND_VALUE), references by a hash of their target
  (``htarget``: of ``Type/id`` for local references, of the URL otherwise; ``resource.hkey``
  is the same hash of each resource's own ``Type/id``). The hashes are keyed with a
  random salt made when the database is (``meta``), so nobody outside can compute two
  values that collide;
- dates are integer microseconds since the epoch (UTC); open ends are ``OPEN_LOW`` /
  ``OPEN_HIGH``; ``date_span`` keeps each date parameter's longest closed period, so a
  range query can bound the (pid, low) index on both sides;
- tables are WITHOUT ROWID with the lookup order as their primary key, so the table is
  the lookup index; one small owner index (``rid``, ``pid``) per table serves replacing a
  resource's rows and per-resource probes.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone

__all__ = ["SCHEMA", "SCHEMA_VERSION", "INDEX_TABLES", "Keys", "index_rows", "micros", "NO_HASH", "OPEN_LOW", "OPEN_HIGH",
           "SPAN_UPSERT", "spans"]

SCHEMA_VERSION = 4

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
    patients     TEXT,                 -- ResourceVersion.patients: ids separated by spaces (NULL: not known)
    UNIQUE (type, id, version_id)
);
CREATE INDEX IF NOT EXISTS history_type_seq ON history (type, seq);

-- facts about the database itself (e.g. "hash-salt")
CREATE TABLE IF NOT EXISTS meta (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
);

-- a number per name that writers raise (e.g. "search-parameters"), so every process
-- sharing the file learns of a change on its next request
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    n    INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS resource (
    rid          INTEGER PRIMARY KEY,
    type         TEXT NOT NULL,
    id           TEXT NOT NULL,
    version_id   INTEGER NOT NULL,
    last_updated TEXT NOT NULL,
    deleted      INTEGER NOT NULL,
    seq          INTEGER NOT NULL,
    hkey         INTEGER NOT NULL   -- Keys.resource(type, id): what references to it hold
);
CREATE UNIQUE INDEX IF NOT EXISTS resource_key ON resource (type, id);
CREATE INDEX IF NOT EXISTS resource_hkey ON resource (hkey);
CREATE INDEX IF NOT EXISTS resource_type_updated ON resource (type, last_updated, rid);

CREATE TABLE IF NOT EXISTS search_param (
    pid  INTEGER PRIMARY KEY,
    type TEXT NOT NULL,
    code TEXT NOT NULL,
    UNIQUE (type, code)
);

CREATE TABLE IF NOT EXISTS idx_token (
    pid INTEGER NOT NULL, hcode INTEGER NOT NULL, hsys INTEGER NOT NULL, rid INTEGER NOT NULL,
    code TEXT, text TEXT,
    PRIMARY KEY (pid, hcode, hsys, rid)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idx_token_owner ON idx_token (rid, pid);

CREATE TABLE IF NOT EXISTS idx_string (
    pid INTEGER NOT NULL, normalized TEXT NOT NULL, rid INTEGER NOT NULL, exact TEXT NOT NULL,
    PRIMARY KEY (pid, normalized, rid, exact)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idx_string_owner ON idx_string (rid, pid);

CREATE TABLE IF NOT EXISTS idx_number (
    pid INTEGER NOT NULL, low REAL NOT NULL, high REAL NOT NULL, rid INTEGER NOT NULL,
    PRIMARY KEY (pid, low, high, rid)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idx_number_owner ON idx_number (rid, pid);

CREATE TABLE IF NOT EXISTS idx_date (
    pid INTEGER NOT NULL, high INTEGER NOT NULL, low INTEGER NOT NULL, rid INTEGER NOT NULL,
    PRIMARY KEY (pid, high, low, rid)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idx_date_low ON idx_date (pid, low, rid);
CREATE INDEX IF NOT EXISTS idx_date_owner ON idx_date (rid, pid);

-- per date parameter, the longest period (high - low) of an index row with both ends
-- (version 3): a date range then bounds the index on both sides (compile.py)
CREATE TABLE IF NOT EXISTS date_span (
    pid  INTEGER PRIMARY KEY,
    span INTEGER NOT NULL
);

-- combined keys of the worklists (combos.py): derived data, rebuilt when declarations change
CREATE TABLE IF NOT EXISTS idx_combo (
    cid INTEGER NOT NULL, k1 INTEGER NOT NULL, k2 INTEGER NOT NULL, k3 INTEGER NOT NULL,
    high INTEGER NOT NULL, rid INTEGER NOT NULL,
    PRIMARY KEY (cid, k1, k2, k3, high, rid)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idx_combo_owner ON idx_combo (rid);

CREATE TABLE IF NOT EXISTS idx_quantity (
    pid INTEGER NOT NULL, code TEXT NOT NULL, low REAL NOT NULL, high REAL NOT NULL, rid INTEGER NOT NULL,
    system TEXT NOT NULL,   -- '' for none
    PRIMARY KEY (pid, code, low, high, rid, system)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idx_quantity_owner ON idx_quantity (rid, pid);

CREATE TABLE IF NOT EXISTS idx_uri (
    pid INTEGER NOT NULL, uri TEXT NOT NULL, rid INTEGER NOT NULL,
    PRIMARY KEY (pid, uri, rid)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idx_uri_owner ON idx_uri (rid, pid);

CREATE TABLE IF NOT EXISTS idx_reference (
    pid INTEGER NOT NULL, htarget INTEGER NOT NULL, rid INTEGER NOT NULL,
    target_type TEXT, target_id TEXT, url TEXT,
    PRIMARY KEY (pid, htarget, rid)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idx_reference_owner ON idx_reference (rid, pid);

CREATE TABLE IF NOT EXISTS idx_composite (
    pid INTEGER NOT NULL, rid INTEGER NOT NULL,
    c0_a, c0_b, c0_low, c0_high,
    c1_a, c1_b, c1_low, c1_high,
    c2_a, c2_b, c2_low, c2_high
);
CREATE INDEX IF NOT EXISTS idx_composite_lookup ON idx_composite (pid, c0_b, c1_b, rid);
CREATE INDEX IF NOT EXISTS idx_composite_owner ON idx_composite (rid, pid);
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

#: the hash of an absent code or system
NO_HASH = 0

_INSERTS = {
    "token": "INSERT OR IGNORE INTO idx_token (pid, hcode, hsys, rid, code, text) VALUES (?, ?, ?, ?, ?, ?)",
    "string": "INSERT OR IGNORE INTO idx_string (pid, normalized, rid, exact) VALUES (?, ?, ?, ?)",
    "number": "INSERT OR IGNORE INTO idx_number (pid, low, high, rid) VALUES (?, ?, ?, ?)",
    "date": "INSERT OR IGNORE INTO idx_date (pid, high, low, rid) VALUES (?, ?, ?, ?)",
    "quantity": "INSERT OR IGNORE INTO idx_quantity (pid, code, low, high, rid, system) VALUES (?, ?, ?, ?, ?, ?)",
    "uri": "INSERT OR IGNORE INTO idx_uri (pid, uri, rid) VALUES (?, ?, ?)",
    "reference": "INSERT OR IGNORE INTO idx_reference (pid, htarget, rid, target_type, target_id, url) "
                 "VALUES (?, ?, ?, ?, ?, ?)",
    "composite": "INSERT INTO idx_composite VALUES (?, ?, " + ", ".join("?" for _ in range(12)) + ")",
}


class Keys:
    """The salted 64-bit hashes (BLAKE2b) that token and reference lookups match on."""

    __slots__ = ("_salt",)

    def __init__(self, salt: bytes):
        self._salt = salt

    def __call__(self, text: str | None) -> int:
        if text is None:
            return NO_HASH
        digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8, key=self._salt).digest()
        return int.from_bytes(digest, "big", signed=True) or 1  # 0 is NO_HASH

    def resource(self, resource_type: str, id: str) -> int:
        """``resource.hkey``: the hash local references to the resource hold."""
        return self(f"{resource_type}/{id}")

    def target(self, target_type: str | None, target_id: str | None, url: str | None) -> int:
        """``htarget`` of a reference: its local ``Type/id``, else its URL."""
        if target_id is not None and target_type is not None and url is None:
            return self(f"{target_type}/{target_id}")
        return self(url if url is not None else target_id)


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
#: the micros of an open start / end (search.params.date MIN_INSTANT / MAX_INSTANT)
OPEN_LOW = -62135596800000000
OPEN_HIGH = 253402300799999999
#: an upsert that only ever raises a date parameter's longest span
SPAN_UPSERT = (
    "INSERT INTO date_span (pid, span) VALUES (?, ?) "
    "ON CONFLICT (pid) DO UPDATE SET span = excluded.span WHERE excluded.span > date_span.span"
)


def spans(rows) -> dict[int, int]:
    """The longest closed period per pid among idx_date rows ``(pid, high, low, rid)``."""
    out: dict[int, int] = {}
    for pid, high, low, _ in rows:
        if low != OPEN_LOW and high != OPEN_HIGH:
            span = high - low
            if span > out.get(pid, -1):
                out[pid] = span
    return out


def micros(instant: str) -> int:
    """A stored instant (``YYYY-MM-DDTHH:MM:SS.ffffffZ``, UTC, fixed width) as integer
    microseconds since the epoch; order is kept."""
    moment = datetime(int(instant[0:4]), int(instant[5:7]), int(instant[8:10]), int(instant[11:13]),
                      int(instant[14:16]), int(instant[17:19]), int(instant[20:26] or 0), tzinfo=timezone.utc)
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


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


def _row(pid: int, rid: int, e, keys: Keys) -> tuple:
    kind = e.kind
    if kind == "token":
        return pid, keys(e.code), keys(e.system), rid, e.code, e.text
    if kind == "string":
        return pid, e.normalized, rid, e.exact
    if kind == "number":
        return pid, e.low, e.high, rid
    if kind == "date":
        return pid, micros(e.high), micros(e.low), rid
    if kind == "quantity":
        return pid, e.code or "", e.low, e.high, rid, e.system or ""
    if kind == "uri":
        return pid, e.uri, rid
    if kind == "reference":
        return pid, keys.target(e.target_type, e.target_id, e.url), rid, e.target_type, e.target_id, e.url
    columns: list = []
    for c in e.components:
        columns.extend(component_columns(c))
    columns.extend([None] * (12 - len(columns)))
    return (pid, rid, *columns)


def index_rows(rid: int, pid_of, entries, keys: Keys) -> dict[str, tuple[str, list[tuple]]]:
    """Entries grouped into (INSERT statement, rows) per table; ``pid_of(param)`` interns
    the parameter of the resource's type."""
    grouped: dict[str, tuple[str, list[tuple]]] = {}
    for e in entries:
        sql_rows = grouped.setdefault(e.kind, (_INSERTS[e.kind], []))
        sql_rows[1].append(_row(pid_of(e.param), rid, e, keys))
    return grouped

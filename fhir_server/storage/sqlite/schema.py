"""SQLite layout: versions in ``history``, the current version per id in ``resource``,
and one index table per search-parameter type (HAPI's HFJ_SPIDX_* tables).

The body is stored once, in ``history``; ``resource`` points at it by ``seq``.
``seq`` orders every version ever written, which makes history paging a keyset
walk that new writes cannot disturb.
"""

SCHEMA = """
CREATE TABLE IF NOT EXISTS history (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
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
    type   TEXT NOT NULL,
    id     TEXT NOT NULL,
    param  TEXT NOT NULL,
    system TEXT,
    code   TEXT
);
CREATE INDEX IF NOT EXISTS idx_token_lookup ON idx_token (type, param, code, system, id);
CREATE INDEX IF NOT EXISTS idx_token_owner ON idx_token (type, id);

CREATE TABLE IF NOT EXISTS idx_date (
    type   TEXT NOT NULL,
    id     TEXT NOT NULL,
    param  TEXT NOT NULL,
    low    TEXT NOT NULL,
    high   TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_date_lookup ON idx_date (type, param, low, high, id);
CREATE INDEX IF NOT EXISTS idx_date_owner ON idx_date (type, id);
"""

#: index tables by parameter type, for deletes on update and ``:missing``
INDEX_TABLES = {"token": "idx_token", "date": "idx_date"}

-- The SQLite layout before schema versions (evi-fhir up to commit 9ee8ab7): what
-- tests/storage/test_sqlite_migration.py converts.
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

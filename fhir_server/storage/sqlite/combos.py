"""Combined index rows for the worklists users open all day (issue 16).

The intake worklist asks ``Task?code=…|intake&owner=…&status=requested&_sort=-authored-on``:
three conditions, none of them small on its own (every Task is an intake Task; an EVI
unit owns a sixth of them; a tenth are requested), so any single index reads tens of
thousands of rows for a page of twenty. A combined row per Task — the owner's target
hash, the status and code hashes, and the newest ``authored-on`` — puts one unit's
requested intake Tasks next to each other, newest first: a page is one index range.

Combinations are declared here as data (``COMBOS``), not written into the query code;
``idx_combo`` is derived data: a changed declaration rebuilds it when the store opens
(``ensure``). A combination serves a search only when each of its parameters has one
plain equality clause (``planner.py``); token keys hash the code alone, so a
system-qualified value is still checked against the token index row by row.
"""

from __future__ import annotations

import itertools
import sqlite3
from dataclasses import dataclass

from fhir_server.storage.sqlite.schema import Keys, micros

__all__ = ["Combo", "COMBOS", "NO_SORT", "combo_rows", "ensure", "for_type"]

#: the sort value of a resource without one: below every instant
NO_SORT = -(2**63)


@dataclass(frozen=True)
class Combo:
    resource_type: str
    #: up to three (parameter code, "token" | "reference") keys, in lookup order
    keys: tuple[tuple[str, str], ...]
    #: a date parameter: rows keep each resource's largest ``high`` (descending sorts walk them)
    sort: str


COMBOS: tuple[Combo, ...] = (
    # the intake worklist (domain.md §3: the EVI unit's queue of intake Tasks)
    Combo("Task", (("owner", "reference"), ("status", "token"), ("code", "token")), "authored-on"),
    # a unit's or practitioner's appointments of a day (booking, the first-visit follow-up)
    Combo("Appointment", (("actor", "reference"),), "date"),
)


def for_type(resource_type: str | None) -> list[tuple[int, Combo]]:
    """(combination id, combination) of a type."""
    return [(n, c) for n, c in enumerate(COMBOS, start=1) if c.resource_type == resource_type]


def _entry_key(entry, keys: Keys) -> int | None:
    if entry.kind == "token":
        return keys(entry.code) if entry.code is not None else None
    if entry.kind == "reference":
        return keys.target(entry.target_type, entry.target_id, entry.url)
    return None


def combo_rows(rid: int, resource_type: str, entries, keys: Keys) -> list[tuple]:
    """The ``idx_combo`` rows ``(cid, k1, k2, k3, high, rid)`` of one resource."""
    combos = for_type(resource_type)
    if not combos:
        return []
    rows: list[tuple] = []
    for cid, combo in combos:
        wanted = {code for code, _ in combo.keys}
        found: dict[str, set[int]] = {code: set() for code in wanted}
        high = NO_SORT
        for e in entries:
            if e.param in wanted:
                key = _entry_key(e, keys)
                if key is not None:
                    found[e.param].add(key)
            elif e.param == combo.sort and e.kind == "date":
                high = max(high, micros(e.high))
        lists = [sorted(found[code]) for code, _ in combo.keys]
        if any(not values for values in lists):
            continue
        lists += [[0]] * (3 - len(lists))
        rows.extend((cid, *ks, high, rid) for ks in itertools.product(*lists))
    return rows


def fingerprint() -> str:
    return repr(COMBOS)


def ensure(conn: sqlite3.Connection) -> None:
    """Rebuild ``idx_combo`` from the index tables when the declarations changed (in SQL:
    seconds for a million resources). ``conn`` is in autocommit mode."""
    row = conn.execute("SELECT value FROM meta WHERE name = 'combos'").fetchone()
    if row is not None and row[0] == fingerprint():
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        row = conn.execute("SELECT value FROM meta WHERE name = 'combos'").fetchone()
        if row is None or row[0] != fingerprint():
            conn.execute("DELETE FROM idx_combo")
            for cid, combo in enumerate(COMBOS, start=1):
                _build(conn, cid, combo)
            conn.execute("INSERT OR REPLACE INTO meta (name, value) VALUES ('combos', ?)", (fingerprint(),))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _pid(conn: sqlite3.Connection, resource_type: str, code: str) -> int | None:
    row = conn.execute("SELECT pid FROM search_param WHERE type = ? AND code = ?", (resource_type, code)).fetchone()
    return row[0] if row else None


def _build(conn: sqlite3.Connection, cid: int, combo: Combo) -> None:
    pids = [_pid(conn, combo.resource_type, code) for code, _ in combo.keys]
    if any(p is None for p in pids):
        return  # nothing indexed for one of them yet: no resource has every key
    sources, args = [], []
    for n, ((_, kind), pid) in enumerate(zip(combo.keys, pids)):
        if kind == "token":
            sources.append(f"(SELECT DISTINCT rid, hcode AS k FROM idx_token WHERE pid = ? AND code IS NOT NULL) s{n}")
        else:
            sources.append(f"(SELECT rid, htarget AS k FROM idx_reference WHERE pid = ?) s{n}")
        args.append(pid)
    joins = sources[0] + "".join(f" JOIN {s} ON s{n + 1}.rid = s0.rid" for n, s in enumerate(sources[1:]))
    ks = [f"s{n}.k" for n in range(len(pids))] + ["0"] * (3 - len(pids))
    sort_pid = _pid(conn, combo.resource_type, combo.sort)
    high = f"COALESCE((SELECT MAX(high) FROM idx_date d WHERE d.rid = s0.rid AND d.pid = ?), {NO_SORT})"
    conn.execute(
        f"INSERT OR IGNORE INTO idx_combo (cid, k1, k2, k3, high, rid) "
        f"SELECT ?, {', '.join(ks)}, {high}, s0.rid FROM {joins}",
        [cid, sort_pid if sort_pid is not None else -1, *args],
    )

"""Search snapshots for paging (HAPI's search result cache, kept in the store).

The first page of a search fixes the ordered list of matches (up to
``SNAPSHOT_LIMIT``); the ``next``/``previous`` links name that snapshot, so
paging never shows a resource twice or skips one, whatever is written
meanwhile (R4 search.html#paging leaves how to the server). A resource deleted
after the snapshot is left out of its page. Results beyond the limit page over
live data (documented in docs/search.md).

On a store that pages by cursor (``keyset``: SQLite), a snapshot holds no list of
matches: it holds the highest resource number when the search started (later creates
are left out) and, per page served, the position of that page's last row (kept in the
page store, never in a link). The next page starts after that position, so it costs
what the first did however deep it is, and a resource deleted meanwhile shifts nothing.
A page asked for by an offset no cursor names starts from the nearest cursor before it.

Snapshots are stored through ``Store.pages``, not in the process: a ``next`` link
works on any server process of the same database and after a restart. A snapshot
holds the search's origin (type, parameters, compartment), not the parsed plan, so
the process serving a later page plans it again with its own registry.
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass, field

import orjson

from fhir_server.storage.pages import PageStore

__all__ = ["Snapshot", "SearchOrigin", "Pages", "SNAPSHOT_LIMIT", "SNAPSHOT_TTL", "MAX_CURSORS"]

SNAPSHOT_LIMIT = 2000
#: seconds a snapshot lives after its first page (a later page after that answers 410)
SNAPSHOT_TTL = 3600.0
#: positions a keyset snapshot keeps (the oldest beyond are dropped: a page before them
#: then starts from an earlier position and skips rows)
MAX_CURSORS = 500


@dataclass(frozen=True)
class SearchOrigin:
    """What a search was asked: enough to plan it again anywhere."""

    resource_type: str | None
    params: tuple[tuple[str, str], ...]
    #: (compartment type, compartment id) of a compartment search or ``$everything``
    compartment: tuple[str, str] | None = None
    #: ``$everything``: the compartment plus what its members reference
    everything: bool = False


@dataclass(frozen=True)
class Snapshot:
    token: str
    refs: tuple[tuple[str, str], ...]
    total: int | None
    #: True when ``refs`` holds every match
    complete: bool
    #: the search's own parameters, for the self link
    params: tuple[tuple[str, str], ...]
    origin: SearchOrigin
    #: the caller it was made for ("" with auth off): nobody else pages through it
    owner: str = ""
    #: keyset paging: the highest resource number the search may show (None: ``refs``)
    high_water: int | None = None
    #: keyset paging: offset -> the position of the row before it (``None`` for 0)
    cursors: dict[int, list] = field(default_factory=dict)

    @property
    def keyset(self) -> bool:
        return self.high_water is not None

    def nearest(self, offset: int) -> tuple[int, list | None]:
        """The largest offset at or before ``offset`` with a known position, and it."""
        start = max((o for o in self.cursors if o <= offset), default=0)
        return start, self.cursors.get(start)


class Pages:
    """Snapshots of one runtime, through its store's ``PageStore``."""

    def __init__(self, store: PageStore, ttl_seconds: float = SNAPSHOT_TTL):
        self._store = store
        self.ttl = ttl_seconds

    def put(
        self, refs, total, complete, params, origin: SearchOrigin, owner: str = "",
        high_water: int | None = None, cursors: dict[int, list] | None = None,
    ) -> Snapshot:
        snap = Snapshot(
            uuid.uuid4().hex, tuple(refs), total, complete, tuple(params), origin, owner, high_water, dict(cursors or {})
        )
        self._save(snap)
        return snap

    def remember(self, snap: Snapshot, offset: int, cursor: list) -> Snapshot:
        """``snap`` with the position before ``offset`` kept (saved again)."""
        if snap.cursors.get(offset) == cursor:
            return snap
        cursors = {**snap.cursors, offset: cursor}
        if len(cursors) > MAX_CURSORS:
            for old in sorted(cursors)[: len(cursors) - MAX_CURSORS]:
                del cursors[old]
        snap = dataclasses.replace(snap, cursors=cursors)
        self._save(snap)
        return snap

    def _save(self, snap: Snapshot) -> None:
        origin = snap.origin
        payload = {
            "refs": snap.refs, "total": snap.total, "complete": snap.complete, "params": snap.params,
            "owner": snap.owner, "high_water": snap.high_water, "cursors": [[o, c] for o, c in snap.cursors.items()],
            "origin": {
                "type": origin.resource_type, "params": origin.params,
                "compartment": origin.compartment, "everything": origin.everything,
            },
        }
        self._store.put(snap.token, orjson.dumps(payload), self.ttl)

    def get(self, token: str) -> Snapshot | None:
        payload = self._store.get(token) if token and len(token) <= 64 else None
        if payload is None:
            return None
        data = orjson.loads(payload)
        o = data["origin"]
        origin = SearchOrigin(
            o["type"], _pairs(o["params"]), tuple(o["compartment"]) if o["compartment"] else None, o["everything"]
        )
        refs = tuple((t, i) for t, i in data["refs"])
        cursors = {o: c for o, c in data.get("cursors", ())}
        return Snapshot(
            token, refs, data["total"], data["complete"], _pairs(data["params"]), origin, data.get("owner", ""),
            data.get("high_water"), cursors,
        )


def _pairs(items) -> tuple[tuple[str, str], ...]:
    return tuple((k, v) for k, v in items)

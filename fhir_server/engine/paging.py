"""Search snapshots for paging (HAPI's search result cache, kept in the store).

The first page of a search fixes the ordered list of matches (up to
``SNAPSHOT_LIMIT``); the ``next``/``previous`` links name that snapshot, so
paging never shows a resource twice or skips one, whatever is written
meanwhile (R4 search.html#paging leaves how to the server). A resource deleted
after the snapshot is left out of its page. Results beyond the limit page over
live data (documented in docs/search.md).

Snapshots are stored through ``Store.pages``, not in the process: a ``next`` link
works on any server process of the same database and after a restart. A snapshot
holds the search's origin (type, parameters, compartment), not the parsed plan, so
the process serving a later page plans it again with its own registry.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import orjson

from fhir_server.storage.pages import PageStore

__all__ = ["Snapshot", "SearchOrigin", "Pages", "SNAPSHOT_LIMIT", "SNAPSHOT_TTL"]

SNAPSHOT_LIMIT = 2000
#: seconds a snapshot lives after its first page (a later page after that answers 410)
SNAPSHOT_TTL = 3600.0


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


class Pages:
    """Snapshots of one runtime, through its store's ``PageStore``."""

    def __init__(self, store: PageStore, ttl_seconds: float = SNAPSHOT_TTL):
        self._store = store
        self.ttl = ttl_seconds

    def put(self, refs, total, complete, params, origin: SearchOrigin, owner: str = "") -> Snapshot:
        snap = Snapshot(uuid.uuid4().hex, tuple(refs), total, complete, tuple(params), origin, owner)
        payload = {
            "refs": snap.refs, "total": total, "complete": complete, "params": snap.params, "owner": owner,
            "origin": {
                "type": origin.resource_type, "params": origin.params,
                "compartment": origin.compartment, "everything": origin.everything,
            },
        }
        self._store.put(snap.token, orjson.dumps(payload), self.ttl)
        return snap

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
        return Snapshot(token, refs, data["total"], data["complete"], _pairs(data["params"]), origin, data.get("owner", ""))


def _pairs(items) -> tuple[tuple[str, str], ...]:
    return tuple((k, v) for k, v in items)

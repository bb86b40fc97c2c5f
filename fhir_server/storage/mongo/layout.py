"""MongoDB layout: one ``resources`` collection of current versions (body and
extracted search values together), one ``history`` collection of every version,
one ``counters`` collection for the global write sequence. See docs/mongodb.md.

Current version, ``resources._id = "Patient/p1"``::

    {_id, t: "Patient", i: "p1", v: 3, lu: "2026-...Z", del: false, m: "PUT", seq: 42, n: 17,
     body: <the resource JSON, bytes>, pt: [<patient ids: ResourceVersion.patients; absent: not known>],
     _idx: {token: [{p, s, c, t}], string: [{p, n, e}], number: [{p, lo, hi}],
            date: [{p, lo, hi}], quantity: [{p, s, c, lo, hi}], uri: [{p, u}],
            reference: [{p, tt, ti, url}], composite: [{p, c0: {a, b, lo, hi}, c1: ..., c2: ...}],
            present: ["code", "identifier", ...]},
     _sh, _sl, _cb}              <- types declared in combos.py only

``n`` is the ``seq`` of the resource's first write, kept by every later one (the
resource's number for keyset paging: keyset.py); ``_sh``, ``_sl``, ``_cb`` are derived
from ``_idx`` (combos.py).

Version, ``history._id = seq``::

    {_id: 42, t, i, v, lu, m, del, body, pt, end: <lu of the next version, absent while current>}

Only the fixed names in this module are ever used as field names: parameter
codes, systems, codes and every other client-supplied text are stored and
queried as values (``p: "identifier"``), never as keys.
"""

from __future__ import annotations

from pymongo import ASCENDING, DESCENDING, IndexModel

from fhir_server.search.index import IndexSet
from fhir_server.search.params.reference import IDENTIFIER_SUFFIX
from fhir_server.storage.base import ResourceVersion
from fhir_server.storage.mongo.combos import DERIVED, derived

__all__ = [
    "RESOURCES",
    "HISTORY",
    "COUNTERS",
    "PAGES",
    "REPLAY",
    "JOBS",
    "KINDS",
    "PRESENT",
    "RESOURCE_INDEXES",
    "HISTORY_INDEXES",
    "key",
    "current_document",
    "current_update",
    "history_document",
    "index_document",
    "to_version",
    "BODY_ONLY",
]

RESOURCES = "resources"
HISTORY = "history"
COUNTERS = "counters"
#: search snapshots (paging state), expired by a TTL index
PAGES = "pages"
#: keys used once (the token endpoint's jti), unique ``_id``, expired by a TTL index
REPLAY = "used_once"
#: background jobs (the Bulk Data export's), leased to one process at a time (``jobs.py``)
JOBS = "jobs"
#: one document per guarded key (UnitOfWork.guard): concurrent transactions that guard it conflict
GUARDS = "guards"

#: the entry kinds of ``search/index.py``; each is one array under ``_idx``
KINDS = ("token", "string", "number", "date", "quantity", "uri", "reference", "composite")

#: ``_idx.present``: codes of the parameters that have a value (a reference given
#: only as an identifier counts, though its entry is a token)
PRESENT = "present"

#: projection for reading a current version without its search values
BODY_ONLY = {"_idx": 0}


def _idx(kind: str, *fields: str) -> list[tuple[str, int]]:
    return [(f"_idx.{kind}.{f}", ASCENDING) for f in fields]


#: created at start-up (idempotent). Every lookup index starts with the type and
#: the parameter code, like SQLite's (type, param, value..., id) indexes; the
#: sub-fields of one ``_idx`` array form one compound multikey index, which
#: ``$elemMatch`` bounds on all its fields at once.
RESOURCE_INDEXES = [
    IndexModel([("t", ASCENDING), ("i", ASCENDING)], name="type_id", unique=True),
    IndexModel([("t", ASCENDING), ("lu", ASCENDING), ("i", ASCENDING)], name="type_updated"),
    # -_lastUpdated breaks ties by ascending id, as every order does: a walk needs both directions
    IndexModel([("t", ASCENDING), ("lu", DESCENDING), ("i", ASCENDING)], name="type_updated_desc"),
    IndexModel([("t", ASCENDING), *_idx("token", "p", "c", "s")], name="idx_token"),
    IndexModel([("t", ASCENDING), *_idx("string", "p", "n")], name="idx_string"),
    IndexModel([("t", ASCENDING), *_idx("number", "p", "lo", "hi")], name="idx_number"),
    IndexModel([("t", ASCENDING), *_idx("date", "p", "lo", "hi")], name="idx_date"),
    IndexModel([("t", ASCENDING), *_idx("quantity", "p", "c", "lo", "hi")], name="idx_quantity"),
    IndexModel([("t", ASCENDING), *_idx("uri", "p", "u")], name="idx_uri"),
    IndexModel([("t", ASCENDING), *_idx("reference", "p", "ti", "tt")], name="idx_reference"),
    # reverse direction: _revinclude, _has and compartments start from the target
    IndexModel([*_idx("reference", "tt", "ti", "p"), ("t", ASCENDING)], name="idx_reference_target"),
    IndexModel([("t", ASCENDING), *_idx("composite", "p", "c0.b", "c1.b")], name="idx_composite"),
    # tabulations (storage/tabulation.py): the resources that reference one id, whatever
    # their type, as ``$lookup`` asks (its foreignField is one field)
    IndexModel(_idx("reference", "ti"), name="idx_reference_id"),
    # the derived fields (combos.py), only on the documents of declared types; a query
    # names ``{_sh: {$exists: true}}`` (or a ``_cb`` key) to use them
    IndexModel([("t", ASCENDING), ("_sh", DESCENDING), ("i", ASCENDING)], name="type_sort_high",
               partialFilterExpression={"_sh": {"$exists": True}}),
    IndexModel([("t", ASCENDING), ("_sl", ASCENDING), ("i", ASCENDING)], name="type_sort_low",
               partialFilterExpression={"_sl": {"$exists": True}}),
    IndexModel([("t", ASCENDING), ("_cb", ASCENDING), ("_sh", DESCENDING), ("i", ASCENDING)], name="combo",
               partialFilterExpression={"_cb": {"$exists": True}}),
]

HISTORY_INDEXES = [
    # the last line of defence against two writers storing the same version
    IndexModel([("t", ASCENDING), ("i", ASCENDING), ("v", ASCENDING)], name="version", unique=True),
    IndexModel([("t", ASCENDING), ("_id", DESCENDING)], name="type_seq"),
    IndexModel([("lu", DESCENDING)], name="updated"),
]


def key(resource_type: str, id: str) -> str:
    """``resources._id``: FHIR ids are [A-Za-z0-9.-], so ``Type/id`` is unambiguous."""
    return f"{resource_type}/{id}"


def _component(entry) -> dict:
    """One component of a composite entry as {a, b, lo, hi} (the SQLite columns' meaning)."""
    kind = entry.kind
    if kind == "token":
        return {"a": entry.system, "b": entry.code, "lo": None, "hi": None}
    if kind == "quantity":
        return {"a": entry.system, "b": entry.code, "lo": entry.low, "hi": entry.high}
    if kind in ("number", "date"):
        return {"a": None, "b": None, "lo": entry.low, "hi": entry.high}
    if kind == "string":
        return {"a": None, "b": entry.normalized, "lo": None, "hi": None}
    if kind == "reference":
        return {"a": entry.target_type, "b": entry.target_id or entry.url, "lo": None, "hi": None}
    if kind == "uri":
        return {"a": None, "b": entry.uri, "lo": None, "hi": None}
    raise ValueError(f"no composite component for {kind}")


def _entry(e) -> dict:
    # every field is written, null included, so that {field: null} and $ifNull behave alike everywhere
    kind = e.kind
    if kind == "token":
        return {"p": e.param, "s": e.system, "c": e.code, "t": e.text}
    if kind == "string":
        return {"p": e.param, "n": e.normalized, "e": e.exact}
    if kind in ("number", "date"):
        return {"p": e.param, "lo": e.low, "hi": e.high}
    if kind == "quantity":
        return {"p": e.param, "s": e.system, "c": e.code, "lo": e.low, "hi": e.high}
    if kind == "uri":
        return {"p": e.param, "u": e.uri}
    if kind == "reference":
        return {"p": e.param, "tt": e.target_type, "ti": e.target_id, "url": e.url}
    doc = {"p": e.param}
    for n, component in enumerate(e.components):
        doc[f"c{n}"] = _component(component)
    return doc


def index_document(index: IndexSet) -> dict:
    """The ``_idx`` sub-document: one array per kind that has entries, and
    ``present``: the parameters with at least one value (for ``:missing``)."""
    out: dict[str, list] = {}
    for e in index.entries:
        out.setdefault(e.kind, []).append(_entry(e))
    # as SQLite's :missing: a parameter with an entry, or a reference given only as an identifier
    present = {e.param for e in index.entries}
    present |= {p.removesuffix(IDENTIFIER_SUFFIX) for p in present if p.endswith(IDENTIFIER_SUFFIX)}
    if present:
        out[PRESENT] = sorted(present)
    return out


def current_document(version: ResourceVersion, seq: int, index: IndexSet | None) -> dict:
    doc = {
        "_id": key(version.resource_type, version.id),
        "t": version.resource_type,
        "i": version.id,
        "v": version.version_id,
        "lu": version.last_updated,
        "del": version.deleted,
        "m": version.method,
        "seq": seq,
        "body": version.body,
    }
    if version.patients is not None:
        doc["pt"] = list(version.patients)
    if index is not None and not version.deleted:
        doc["_idx"] = index_document(index)
    if not version.deleted:
        doc.update(derived(version.resource_type, doc.get("_idx", {})))
    return doc


def current_update(version: ResourceVersion, seq: int, index: IndexSet | None) -> dict:
    """The upsert that makes ``version`` current: every field set (search values and derived
    fields unset when it has none), and the resource's number ``n`` set at its first write only."""
    doc = current_document(version, seq, index)
    del doc["_id"]
    update: dict = {"$set": doc, "$setOnInsert": {"n": seq}}
    unset = {f: "" for f in ("_idx", "pt", *DERIVED) if f not in doc}
    if unset:
        update["$unset"] = unset
    return update


def history_document(version: ResourceVersion, seq: int) -> dict:
    doc = {
        "_id": seq,
        "t": version.resource_type,
        "i": version.id,
        "v": version.version_id,
        "lu": version.last_updated,
        "del": version.deleted,
        "m": version.method,
        "body": version.body,
    }
    if version.patients is not None:
        doc["pt"] = list(version.patients)
    return doc


def to_version(doc: dict) -> ResourceVersion:
    body = doc.get("body")
    patients = doc.get("pt")
    return ResourceVersion(
        doc["t"], doc["i"], doc["v"], doc["lu"], bool(doc["del"]), doc["m"], bytes(body) if body is not None else None,
        tuple(patients) if patients is not None else None,
    )

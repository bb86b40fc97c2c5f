"""What an export covers, for its caller: the resource types, and per type the search that
decides which resources go out, run through the engine's search with the caller's rights
(scopes, the access policy's export view, protected identity) like any other search.

- **Types.** System level: every type (``_type`` narrows). Patient and Group level: the
  patients' data, i.e. the R4 Patient compartment's types plus ``Task`` (EVI's intake and
  handover Tasks point at the child through ``Task.for``; R4's compartment predates
  them), and Patient itself. A type the token's scopes do not let the caller search is
  left out, or refused (403) when ``_type`` names it; a type the policy does not list
  for the caller has nothing to export.
- **Per type**: ``_since`` becomes ``_lastUpdated=gt…``; each ``_typeFilter`` query of
  the type is one alternative (OR); the policy's criteria are AND-ed to each.
- **Patients.** At Patient level the patients are those the caller may see (and that
  match the Patient ``_typeFilter`` queries, if any); at Group level the Group's active
  Patient members among them. ``_since`` narrows which resources are written, never which
  patients count: a patient unchanged since then may have new data.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime

import orjson

from fhir_server.engine import access, plan_search, read
from fhir_server.engine.work import Work
from fhir_server.errors import BadRequest
from fhir_server.model import format_instant, resource_types
from fhir_server.reporting.export_request import ExportRequest
from fhir_server.search.extract import extract_index
from fhir_server.search.plan import AnyOf, SearchPlan, parse_search
from fhir_server.spec import load_table
from fhir_server.storage.base import ResourceVersion

__all__ = [
    "TypePlan", "export_types", "patient_data_types", "compartment_params", "type_plan", "matching",
    "group_members", "compartment_patients", "unknown_parameters", "since_instant",
]

#: EVI's Tasks are about the child (``Task.for``), though R4's Patient compartment lists no Task
_EXTRA_PATIENT_DATA = {"Task": ("patient",)}
#: ids per match query
_ID_CHUNK = 1000


@dataclass(frozen=True)
class TypePlan:
    resource_type: str
    #: the caller's search for what goes out (without the ids of a batch)
    plan: SearchPlan
    #: nothing to test: every current resource of the type goes out (no query per batch)
    open: bool


def compartment_params() -> dict[str, tuple[str, ...]]:
    """Per type of the patients' data, the reference parameters that tie it to a patient."""
    table = {t: tuple(codes) for t, codes in load_table("compartments")["Patient"].items() if codes and t != "Patient"}
    return {**table, **_EXTRA_PATIENT_DATA}


def patient_data_types() -> tuple[str, ...]:
    return ("Patient", *sorted(compartment_params()))


def export_types(work: Work, request: ExportRequest, *, lenient: bool = False) -> tuple[str, ...]:
    """The types this export covers for this caller, in the order they are written."""
    level_types = resource_types() if request.level == "system" else patient_data_types()
    asked = request.types
    if asked:
        outside = [t for t in asked if t not in level_types]
        if outside and not lenient:
            raise BadRequest(f"_type names {', '.join(outside)}, which are not patient data (the Patient compartment "
                             "and Task); a system-level $export covers every type", expression="_type")
        asked = tuple(t for t in asked if t in level_types)
        for rtype in asked:
            access.require_scope(work, rtype, "s")
    candidates = asked or tuple(level_types)
    return tuple(t for t in candidates if t in access.searchable_types(work, candidates))


def type_plan(work: Work, request: ExportRequest, resource_type: str, *, since: bool = True,
              ignored: frozenset[str] = frozenset()) -> TypePlan:
    """The caller's search for the resources of ``resource_type`` that go out. A search
    parameter the server does not know is 400, unless it is among ``ignored`` (reported at
    kick-off under ``Prefer: handling=lenient``)."""
    extra = [("_lastUpdated", f"gt{since_instant(request.since)}")] if since and request.since else []
    queries = [list(f.params) + extra for f in request.filters_for(resource_type)] or [extra]
    plans = [plan_search(work, resource_type, query) for query in queries]
    unknown = [name for p in plans for name, _ in p.unknown if name not in ignored]
    if unknown:
        raise BadRequest(f"_typeFilter for {resource_type}: unknown or unsupported search parameters "
                         f"{', '.join(dict.fromkeys(unknown))}", expression="_typeFilter")
    plan = plans[0]
    if len(plans) > 1:
        plan = dataclasses.replace(plan, clauses=(AnyOf(tuple(p.clauses for p in plans)),))
    return TypePlan(resource_type, plan, open=not plan.clauses)


def since_instant(value: str) -> str:
    """``_since`` at full precision: a search date of whole seconds is the whole second
    (R4 search.html#date), and ``gt`` would leave out what changed later in that second."""
    return format_instant(datetime.fromisoformat(value))


def unknown_parameters(work: Work, request: ExportRequest) -> list[str]:
    """The ``_typeFilter`` parameters the server does not know (for a lenient kick-off)."""
    names = []
    for f in request.type_filters:
        names.extend(n for n, _ in plan_search(work, f.resource_type, list(f.params)).unknown)
    return list(dict.fromkeys(names))


def matching(work: Work, tp: TypePlan, ids: list[str]) -> list[str]:
    """Of ``ids`` (current resources of the type), those the plan finds, in order."""
    if tp.open or not ids:
        return ids
    found: set[str] = set()
    for start in range(0, len(ids), _ID_CHUNK):
        chunk = ids[start:start + _ID_CHUNK]
        by_id = parse_search(tp.resource_type, [("_id", ",".join(chunk))], work.registry).clauses
        plan = dataclasses.replace(tp.plan, clauses=(*by_id, *tp.plan.clauses), count=len(chunk), sort=())
        found.update(i for _, i in work.uow.search(plan, with_total=False, limit=len(chunk), offset=0).refs)
    return [i for i in ids if i in found]


def group_members(work: Work, group_id: str) -> list[str]:
    """The ids of the Group's active Patient members, sorted (404 for a Group the caller
    may not read, as a read would answer)."""
    group = read(work, "Group", group_id)
    members = set()
    base = work.ctx.base_url.rstrip("/") + "/"
    for member in orjson.loads(group.body).get("member") or ():
        if not isinstance(member, dict) or member.get("inactive") is True:
            continue
        reference = (member.get("entity") or {}).get("reference")
        if isinstance(reference, str):
            reference = reference.removeprefix(base)
            rtype, _, rid = reference.partition("/")
            if rtype == "Patient" and rid and "/" not in rid:
                members.add(rid)
    return sorted(members)


def compartment_patients(work: Work, version: ResourceVersion, params: tuple[str, ...]) -> set[str]:
    """The ids of the Patients ``version`` points at through ``params``: the same
    extraction that indexed it, so the same links the store's reference index holds."""
    index = extract_index(work.registry, orjson.loads(version.body), work.ctx.base_url)
    return {e.target_id for e in index.entries
            if e.kind == "reference" and e.param in params and e.target_type == "Patient" and e.url is None}


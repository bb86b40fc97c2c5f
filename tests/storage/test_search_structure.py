"""The shared search suite, structure: chains, ``_has``, compartments, sorting, paging,
totals, the include primitives, reindexing, ``current_ids`` and deletions.

Every backend runs these through the ``store`` fixture, over the dataset of
``helpers``. Without ``_sort`` results come in (type, id) order.
"""

from __future__ import annotations

import json

import pytest

from fhir_server.engine.search import compartment_clause
from fhir_server.search import IndexSet, SearchParamDef, SearchRegistry, extract_index
from fhir_server.storage import HistoryQuery
from tests.storage.helpers import (
    BASE,
    LOINC,
    PATIENTS,
    PNR,
    case,
    check_cases,
    delete,
    instant,
    put,
    search,
    search_ids,
    search_refs,
    stamp,
    store_dataset,
)


@pytest.fixture
def data(store):
    store_dataset(store)
    return store



# -- chains ---------------------------------------------------------------------------------

CHAINS = [
    case("ServiceRequest", ("subject:Patient.name", "oberg"), ["sr-1", "sr-2"], "typed"),
    case("ServiceRequest", ("subject.family", "andersson"), ["sr-3"], "untyped"),
    case("ServiceRequest", ("subject:Patient.gender", "female"), ["sr-1", "sr-3"], "token"),
    case("ServiceRequest", ("subject:Patient.identifier", f"{PNR}|201203042385"), ["sr-1"], "identifier"),
    case("ServiceRequest", ("subject:Patient.birthdate", "lt2012"), ["sr-2"], "date"),
    case("ServiceRequest", ("subject:Patient._id", "pat-3"), ["sr-3"], "_id"),
    case("ServiceRequest", ("requester:Organization.name", "ängel"), ["sr-1"], "organization"),
    # Öberg (pat-1) and Oberg (pat-2) match; obs-8's subject pat-del is deleted
    case("Observation", ("subject:Patient.family", "öberg"), ["obs-1", "obs-2", "obs-3", "obs-5", "obs-6"], "deleted-target-never-matches"),
    case("Observation", ("subject:Patient.family:exact", "Öberg"), ["obs-1", "obs-2", "obs-6"], "modifier-inside-chain"),
    case("Observation", ("subject:Patient.family", "andersson,berg"), ["obs-4", "obs-7"], "or"),
    case("Observation", [("code", "29463-7"), ("subject:Patient.gender", "female")], ["obs-2", "obs-4"], "and-with-own-clause"),
    case("Observation", [("subject:Patient.gender", "female"), ("subject:Patient.active", "true")],
         ["obs-1", "obs-2", "obs-4", "obs-6", "obs-7"], "two-chains"),
    case("Observation", ("subject:Patient.organization.name", "barn"), ["obs-1", "obs-2", "obs-6"], "two-levels"),
    case("Observation", ("subject:Patient.organization.name", "angelholm"), ["obs-3", "obs-5"], "two-levels-own-base-url"),
    case("Observation", ("subject:Patient.organization:Organization.partof.name", "region"),
         ["obs-1", "obs-2", "obs-3", "obs-5", "obs-6"], "three-levels"),
    case("Patient", ("organization.partof.name", "region"), ["pat-1", "pat-2"], "patient-two-levels"),
    case("Task", ("focus:ServiceRequest.subject:Patient.name", "åsa"), ["task-1"], "task-two-levels"),
    case("Task", ("focus:ServiceRequest.requester.name", "angel"), ["task-1"], "task-two-levels-untyped"),
    case("Task", ("focus:ServiceRequest.status", "completed,draft"), ["task-2", "task-3"], "task-focus-status"),
    case("Task", ("owner.active", "false"), ["task-2"], "owner"),
    case("Observation", ("subject:Patient.organization:missing", "true"), ["obs-4", "obs-7"], "missing-inside-chain"),
    case("Observation", ("subject:Patient._lastUpdated", "lt2026-01-01T00:00:05Z"), ["obs-1", "obs-2", "obs-3", "obs-5", "obs-6"], "column-at-the-end"),
    case("Observation", [("subject:Patient.gender", "female"), ("_sort", "-date")], ["obs-2", "obs-1", "obs-4", "obs-6", "obs-7"], "sorted"),
    case("Patient", [("_has:Observation:subject:code", "29463-7"), ("organization.name", "barn")], ["pat-1"], "with-has"),
]


def test_chain(data):
    check_cases(data, CHAINS)


# -- _has -----------------------------------------------------------------------------------

HAS = [
    case("Patient", ("_has:Observation:subject:code", f"{LOINC}|29463-7"), ["pat-1", "pat-3"], "deleted-sources-never-match"),
    case("Patient", ("_has:Observation:patient:code", "29463-7"), ["pat-1", "pat-3"], "patient-param"),
    case("Patient", ("_has:ServiceRequest:subject:status", "completed"), ["pat-2"], "status"),
    case("Patient", ("_has:ServiceRequest:subject:status", "completed,draft"), ["pat-2", "pat-3"], "or"),
    case("Patient", [("_has:ServiceRequest:subject:status", "active,completed"), ("_has:Observation:subject:code", "29463-7")],
         ["pat-1"], "and"),
    case("Patient", ("_has:RiskAssessment:subject:probability", "gt0.5"), ["pat-1"], "number"),
    case("Patient", ("_has:ServiceRequest:subject:_has:Task:focus:status", "completed"), ["pat-2"], "nested"),
    case("Patient", ("_has:ServiceRequest:subject:_has:Task:focus:owner", "Organization/org-a"), ["pat-1"], "nested-reference"),
    case("Organization", ("_has:Patient:organization:gender", "male"), ["org-b"], "own-base-url"),
    case("Organization", ("_has:Patient:organization:gender", "female"), ["org-a"], "deleted-patient"),
    case("Organization", ("_has:Task:owner:status", "requested,completed"), ["org-a", "org-b"], "task-owner"),
    case("Organization", ("_has:ServiceRequest:requester:subject:Patient.family", "öberg"), ["org-b"], "chain-inside"),
    case("Organization", ("_has:Patient:organization:_has:Observation:subject:code", "8302-2"), ["org-a"], "nested-two"),
    case("Patient", [("gender", "female"), ("_has:Observation:subject:status", "preliminary")], ["pat-1"], "with-own-clause"),
    case("Patient", ("_has:Observation:subject:_id", "obs-4,obs-del"), ["pat-3"], "_id"),
    case("Patient", [("_has:Observation:subject:code", "29463-7"), ("_sort", "-family")], ["pat-1", "pat-3"], "sorted"),
]


def test_has(data):
    check_cases(data, HAS)


# -- compartments ---------------------------------------------------------------------------


def test_compartment_of_one_type(data):
    clause = compartment_clause("Patient", "pat-1", "Observation")
    assert search_ids(data, "Observation", [], extra_clauses=(clause,)) == ["obs-1", "obs-2", "obs-6"]
    assert search_ids(data, "Observation", [("code", "29463-7")], extra_clauses=(clause,)) == ["obs-2"]
    assert search_ids(data, "Observation", [("subject:Patient.gender", "female"), ("_sort", "-_id")], extra_clauses=(clause,)) == [
        "obs-6", "obs-2", "obs-1",
    ]
    other = compartment_clause("Patient", "pat-3", "ServiceRequest")
    assert search_ids(data, "ServiceRequest", [], extra_clauses=(other,)) == ["sr-3"]


def test_compartment_owner_belongs_to_its_own_compartment(data):
    clause = compartment_clause("Patient", "pat-1", "Patient")
    assert search_ids(data, "Patient", [], extra_clauses=(clause,)) == ["pat-1"]


def test_compartment_of_a_deleted_or_unknown_owner_holds_no_owner(data):
    clause = compartment_clause("Patient", "nobody", None)
    types = tuple(t for t, _ in clause.params_by_type)
    assert search_refs(data, None, [], extra_clauses=(clause,), types=types) == []


def test_compartment_across_types(data):
    clause = compartment_clause("Patient", "pat-1", None)
    types = tuple(t for t, _ in clause.params_by_type)
    assert search_refs(data, None, [], extra_clauses=(clause,), types=types) == [
        ("Observation", "obs-1"), ("Observation", "obs-2"), ("Observation", "obs-6"),
        ("Patient", "pat-1"), ("RiskAssessment", "ra-1"), ("ServiceRequest", "sr-1"),
    ]
    result = search(data, None, [("_lastUpdated", "ge2026-01-01"), ("_count", "2")], extra_clauses=(clause,), types=types)
    assert result.total == 6 and result.refs == [("Observation", "obs-1"), ("Observation", "obs-2")]


# -- system searches ------------------------------------------------------------------------


def test_system_search_orders_by_type_then_id(data):
    assert search_refs(data, None, [("_id", "pat-1,org-a,sr-2,pat-del")]) == [
        ("Organization", "org-a"), ("Patient", "pat-1"), ("ServiceRequest", "sr-2"),
    ]
    assert search_refs(data, None, [("_type", "Patient,Organization"), ("_id", "pat-1,org-a,sr-2")]) == [
        ("Organization", "org-a"), ("Patient", "pat-1"),
    ]
    assert search_refs(data, None, [("_type", "Task"), ("_sort", "-_id")]) == [
        ("Task", "task-3"), ("Task", "task-2"), ("Task", "task-1"),
    ]


# -- sorting --------------------------------------------------------------------------------
# family: pat-1 Öberg, pat-2 Oberg, pat-3 Andersson, pat-4 Berg; gender: f, m, f, none
# birthdate: pat-1 2012-03-04, pat-2 2010, pat-3 2015-06, pat-4 2011-12-31

SORTS = [
    case("Patient", ("_sort", "family"), ["pat-3", "pat-4", "pat-1", "pat-2"], "string-accents-ignored-tie-by-id"),
    case("Patient", ("_sort", "-family"), ["pat-1", "pat-2", "pat-4", "pat-3"], "string-desc-tie-by-id"),
    case("Patient", ("_sort", "family,-birthdate"), ["pat-3", "pat-4", "pat-1", "pat-2"], "two-keys"),
    case("Patient", ("_sort", "family,birthdate"), ["pat-3", "pat-4", "pat-2", "pat-1"], "two-keys-asc"),
    case("Patient", [("_sort", "family"), ("_sort", "birthdate")], ["pat-3", "pat-4", "pat-2", "pat-1"], "repeated-sort"),
    case("Patient", ("_sort", "gender"), ["pat-1", "pat-3", "pat-2", "pat-4"], "missing-last"),
    case("Patient", ("_sort", "-gender"), ["pat-2", "pat-1", "pat-3", "pat-4"], "missing-last-desc"),
    case("Patient", ("_sort", "-gender,-_id"), ["pat-2", "pat-3", "pat-1", "pat-4"], "explicit-id-tie-break"),
    case("Patient", ("_sort", "birthdate"), ["pat-2", "pat-4", "pat-1", "pat-3"], "date"),
    case("Patient", ("_sort", "-birthdate"), ["pat-3", "pat-1", "pat-4", "pat-2"], "date-desc"),
    case("Patient", ("_sort", "-_id"), ["pat-4", "pat-3", "pat-2", "pat-1"], "_id-desc"),
    case("Patient", ("_sort", "-_lastUpdated"), ["pat-4", "pat-3", "pat-2", "pat-1"], "_lastUpdated-desc"),
    case("Patient", [("gender", "female"), ("_sort", "-birthdate")], ["pat-3", "pat-1"], "filtered"),
    case("Task", ("_sort", "-authored-on"), ["task-1", "task-3", "task-2"], "tie-by-id"),
    case("Task", ("_sort", "authored-on,-_id"), ["task-2", "task-3", "task-1"], "tie-by-id-desc"),
    case("Task", ("_sort", "status"), ["task-3", "task-2", "task-1"], "token"),
    case("RiskAssessment", ("_sort", "probability"), ["ra-2", "ra-3", "ra-1"], "number-range-low"),
    case("RiskAssessment", ("_sort", "-probability"), ["ra-1", "ra-2", "ra-3"], "number-range-high"),
    case("Observation", ("_sort", "date"), ["obs-4", "obs-3", "obs-5", "obs-2", "obs-1", "obs-6", "obs-7", "obs-8"], "date-low"),
    case("Observation", ("_sort", "-date"), ["obs-2", "obs-1", "obs-5", "obs-3", "obs-4", "obs-6", "obs-7", "obs-8"], "date-high"),
    case("Observation", ("_sort", "code,-date"), ["obs-2", "obs-4", "obs-8", "obs-7", "obs-6", "obs-1", "obs-3", "obs-5"], "token-then-date"),
    case("ValueSet", ("_sort", "url"), ["vs-4", "vs-1", "vs-2", "vs-3"], "uri"),
    case("ValueSet", ("_sort", "-url"), ["vs-3", "vs-2", "vs-1", "vs-4"], "uri-desc"),
    case("Organization", ("_sort", "name"), ["org-b", "org-a", "org-region"], "accented-first-letter"),
]


def test_sort(data):
    check_cases(data, SORTS)


# -- paging and totals ----------------------------------------------------------------------


def test_limit_offset_and_total(data):
    def page(**kw):
        result = search(data, "Patient", [], with_total=True, **kw)
        return result.ids, result.total

    assert page(limit=2, offset=0) == (["pat-1", "pat-2"], 4)
    assert page(limit=2, offset=2) == (["pat-3", "pat-4"], 4)
    assert page(limit=2, offset=3) == (["pat-4"], 4)
    assert page(limit=2, offset=4) == ([], 4)
    assert page(limit=0) == ([], 4)


def test_plan_count_and_offset_apply_without_overrides(data):
    assert search_ids(data, "Patient", [("_count", "2"), ("_offset", "1")]) == ["pat-2", "pat-3"]
    # the call's limit and offset win over the plan's
    assert search_ids(data, "Patient", [("_count", "2"), ("_offset", "1")], limit=1, offset=3) == ["pat-4"]


def test_paging_follows_the_sort(data):
    params = [("_sort", "-birthdate")]
    pages = [search_ids(data, "Patient", params, limit=3, offset=o) for o in (0, 3)]
    assert pages == [["pat-3", "pat-1", "pat-4"], ["pat-2"]]
    ties = [("_sort", "authored-on")]
    assert [search_ids(data, "Task", ties, limit=1, offset=o) for o in range(3)] == [["task-2"], ["task-1"], ["task-3"]]


def test_totals_count_matches_not_pages(data):
    result = search(data, "Patient", [("gender", "female")], with_total=True, limit=1)
    assert (result.ids, result.total) == (["pat-1"], 2)
    result = search(data, "Observation", [("code", "29463-7"), ("_sort", "-_id")], with_total=True, limit=2, offset=1)
    assert (result.ids, result.total) == (["obs-4", "obs-2"], 3)
    assert search(data, "Patient", [("family", "nobody")], with_total=True).total == 0
    # totals of chained and reverse-chained queries
    result = search(data, "Observation", [("subject:Patient.gender", "female"), ("_sort", "-date")], with_total=True, limit=2)
    assert (result.ids, result.total) == (["obs-2", "obs-1"], 5)
    result = search(data, "Patient", [("_has:Observation:subject:code", "29463-7")], with_total=True, limit=1, offset=1)
    assert (result.ids, result.total) == (["pat-3"], 2)
    assert search(data, "Patient", [], with_total=True).total == 4  # pat-del is deleted
    assert search(data, "Observation", [], with_total=True).total == 8  # obs-del is deleted


def test_refs_carry_the_type(data):
    result = search(data, "Task", [("status", "completed")])
    assert result.refs == [("Task", "task-2")] and result.ids == ["task-2"]


# -- include primitives ---------------------------------------------------------------------


def _from(data, source_type, ids, param, target_type):
    with data.unit_of_work(write=False) as uow:
        return sorted(uow.references_from(source_type, ids, param, target_type))


def _to(data, source_type, param, targets):
    with data.unit_of_work(write=False) as uow:
        return sorted(uow.references_to(source_type, param, targets))


def test_references_from(data):
    assert _from(data, "ServiceRequest", ["sr-1"], None, None) == [
        ("Organization", "org-a"), ("Organization", "org-b"), ("Patient", "pat-1"),
    ]
    assert _from(data, "ServiceRequest", ["sr-1", "sr-2", "sr-3"], "subject", None) == [
        ("Patient", "pat-1"), ("Patient", "pat-2"), ("Patient", "pat-3"),
    ]
    # identifier-only and contained references are no local targets
    assert _from(data, "ServiceRequest", ["sr-1", "sr-2"], None, "Organization") == [
        ("Organization", "org-a"), ("Organization", "org-b"),
    ]
    assert _from(data, "ServiceRequest", ["sr-2"], "requester", None) == []
    assert _from(data, "ServiceRequest", ["sr-2"], "performer", None) == []
    # canonical references are urls, not local targets
    assert _from(data, "ServiceRequest", ["sr-1"], "instantiates-canonical", None) == []
    # an absolute url to this server's base is local; one to another server is not
    assert _from(data, "Patient", ["pat-2", "pat-4"], "organization", None) == [("Organization", "org-b")]
    assert _from(data, "Observation", ["obs-2"], "subject", None) == [("Patient", "pat-1")]
    assert _from(data, "Task", ["task-3"], "part-of", "Task") == [("Task", "task-1")]
    assert _from(data, "Task", ["task-3"], "part-of", "Patient") == []
    assert _from(data, "Task", [], None, None) == []


def test_references_to(data):
    assert _to(data, "Task", "focus", [("ServiceRequest", "sr-1"), ("ServiceRequest", "sr-2")]) == [
        ("Task", "task-1"), ("Task", "task-2"),
    ]
    assert _to(data, "Observation", None, [("Patient", "pat-1")]) == [
        ("Observation", "obs-1"), ("Observation", "obs-2"), ("Observation", "obs-6"),
    ]
    # pat-del is deleted and pat-4 points at another server
    assert _to(data, "Patient", "organization", [("Organization", "org-a")]) == [("Patient", "pat-1")]
    assert _to(data, "Patient", "organization", [("Organization", "org-b")]) == [("Patient", "pat-2")]
    # obs-del (deleted) was the only Observation of pat-4
    assert _to(data, "Observation", "subject", [("Patient", "pat-4")]) == []
    assert _to(data, "ServiceRequest", "subject", [("Group", "pat-1")]) == []
    assert _to(data, "Task", None, [("Organization", "org-a"), ("Task", "task-1"), ("Patient", "pat-3")]) == [
        ("Task", "task-1"), ("Task", "task-3"),
    ]
    assert _to(data, "Organization", "partof", [("Organization", "org-region")]) == [
        ("Organization", "org-a"), ("Organization", "org-b"),
    ]


def test_load_and_load_refs_skip_missing_and_deleted(data):
    with data.unit_of_work(write=False) as uow:
        loaded = uow.load("Patient", ["pat-del", "pat-2", "nobody", "pat-1"])
        refs = uow.load_refs([("Observation", "obs-1"), ("Patient", "pat-del"), ("Patient", "x"), ("Organization", "org-a")])
    assert [v.id for v in loaded] == ["pat-2", "pat-1"]
    assert [json.loads(v.body)["id"] for v in loaded] == ["pat-2", "pat-1"]
    assert [(v.resource_type, v.id) for v in refs] == [("Observation", "obs-1"), ("Organization", "org-a")]


# -- deletions ------------------------------------------------------------------------------


def test_deleted_resources_never_match(data):
    queries = [
        [("_id", "pat-del")],
        [("identifier", f"{PNR}|201203042385"), ("name", "åsa")],
        [("organization", "org-a"), ("gender", "female")],
        [("birthdate", "2012-03-04"), ("_sort", "family")],
        [("_lastUpdated", "ge2026-01-01")],
        [("gender:missing", "false"), ("family:exact", "Öberg")],
    ]
    for params in queries:
        assert "pat-del" not in search_ids(data, "Patient", params), params


def test_a_recreated_resource_matches_again_with_its_new_index(data):
    revived = dict(PATIENTS[0], id="pat-del", name=[{"family": "Lindqvist"}])
    with data.unit_of_work(write=True) as uow:
        put(uow, revived, version_id=3, last_updated=instant(500))
    assert search_ids(data, "Patient", [("family", "lindqvist")]) == ["pat-del"]
    assert search_ids(data, "Patient", [("family:exact", "Öberg")]) == ["pat-1"]
    with data.unit_of_work(write=False) as uow:
        history = uow.history(HistoryQuery("Patient", "pat-del"))
    assert [(v.version_id, v.deleted) for v in history.versions] == [(3, False), (2, True), (1, False)]


def test_deleting_removes_a_resource_from_every_search(data):
    with data.unit_of_work(write=True) as uow:
        delete(uow, "ServiceRequest", "sr-1", version_id=2, last_updated=instant(600))
    assert search_ids(data, "ServiceRequest", []) == ["sr-2", "sr-3"]
    assert search_ids(data, "Task", [("focus:ServiceRequest.status", "active")]) == []
    assert search_ids(data, "Patient", [("_has:ServiceRequest:subject:status", "active")]) == []
    assert _to(data, "ServiceRequest", None, [("Patient", "pat-1")]) == []
    assert search(data, "ServiceRequest", [], with_total=True).total == 2


# -- updates and reindexing -----------------------------------------------------------------


def test_an_update_replaces_the_index(data):
    changed = dict(PATIENTS[2], gender="other", name=[{"family": "Holm"}])
    with data.unit_of_work(write=True) as uow:
        put(uow, changed, version_id=2, last_updated=instant(700))
    assert search_ids(data, "Patient", [("gender", "female")]) == ["pat-1"]
    assert search_ids(data, "Patient", [("gender", "other")]) == ["pat-3"]
    assert search_ids(data, "Patient", [("family", "andersson")]) == []
    assert search_ids(data, "Patient", [("family", "holm")]) == ["pat-3"]


def test_reindex_replaces_entries_without_a_new_version(data):
    with data.unit_of_work(write=False) as uow:
        before = uow.current("Patient", "pat-1")
    renamed = stamp(dict(PATIENTS[0], name=[{"family": "Svensson"}]), 1, before.last_updated)
    with data.unit_of_work(write=True) as uow:
        uow.reindex("Patient", "pat-1", extract_index(SearchRegistry.from_spec(), renamed, BASE))
    assert search_ids(data, "Patient", [("family", "oberg")]) == ["pat-2"]
    assert search_ids(data, "Patient", [("family", "svensson")]) == ["pat-1"]
    assert search_ids(data, "Patient", [("gender", "female")]) == ["pat-1", "pat-3"]
    with data.unit_of_work(write=False) as uow:
        after = uow.current("Patient", "pat-1")
    assert (after.version_id, after.body, after.last_updated) == (before.version_id, before.body, before.last_updated)


def test_reindex_with_an_empty_index_leaves_every_parameter_missing(data):
    with data.unit_of_work(write=True) as uow:
        uow.reindex("Patient", "pat-3", IndexSet())
    assert search_ids(data, "Patient", [("gender", "female")]) == ["pat-1"]
    assert search_ids(data, "Patient", [("gender:missing", "true")]) == ["pat-3", "pat-4"]
    assert search_ids(data, "Patient", []) == ["pat-1", "pat-2", "pat-3", "pat-4"]  # still current
    assert _to(data, "Observation", None, [("Patient", "pat-3")]) == [("Observation", "obs-4"), ("Observation", "obs-7")]


def test_reindex_applies_a_new_search_parameter(data):
    school = SearchParamDef(
        code="school", type="string", url="http://evi.example/fhir/SearchParameter/Patient-school", base=("Patient",),
        expression="Patient.extension('http://evi.example/fhir/StructureDefinition/school').value",
    )
    reg = SearchRegistry.from_spec(extra=[school])
    extension = [{"url": "http://evi.example/fhir/StructureDefinition/school", "valueString": "Tallkrogens skola"}]
    with data.unit_of_work(write=False) as uow:
        current = uow.current("Patient", "pat-2")
    body = dict(json.loads(current.body), extension=extension)
    assert search_ids(data, "Patient", [("school", "tallkrog")], reg=reg) == []
    with data.unit_of_work(write=True) as uow:
        uow.reindex("Patient", "pat-2", extract_index(reg, body, BASE))
    assert search_ids(data, "Patient", [("school", "tallkrog")], reg=reg) == ["pat-2"]
    assert search_ids(data, "Patient", [("school:missing", "true")], reg=reg) == ["pat-1", "pat-3", "pat-4"]
    assert search_ids(data, "Patient", [("organization", "org-b")], reg=reg) == ["pat-2"]  # the rest stays


# -- current_ids ----------------------------------------------------------------------------


def test_current_ids_pages_in_id_order_without_deleted(data):
    with data.unit_of_work(write=False) as uow:
        assert uow.current_ids("Patient", None, 2) == ["pat-1", "pat-2"]
        assert uow.current_ids("Patient", "pat-2", 2) == ["pat-3", "pat-4"]
        assert uow.current_ids("Patient", "pat-4", 2) == []
        assert uow.current_ids("Patient", "pat-1", 10) == ["pat-2", "pat-3", "pat-4"]
        assert uow.current_ids("Observation", None, 100) == [f"obs-{i}" for i in range(1, 9)]
        assert uow.current_ids("Observation", "obs-7", 100) == ["obs-8"]
        assert uow.current_ids("Encounter", None, 10) == []


def test_current_ids_walks_a_whole_type(data):
    seen, after = [], None
    with data.unit_of_work(write=False) as uow:
        while True:
            batch = uow.current_ids("Observation", after, 3)
            if not batch:
                break
            seen.extend(batch)
            after = batch[-1]
    assert seen == [f"obs-{i}" for i in range(1, 9)]


def test_sorting_by_quantity_ignores_the_base_unit_copies(store):
    """5 mg is stored again as 0.005 g for UCUM-equal search; sorting must use 5, not 0.005."""
    from tests.storage.helpers import put, search_ids

    ucum = "http://unitsofmeasure.org"
    with store.unit_of_work(write=True) as uow:
        put(uow, {"resourceType": "Observation", "id": "mg5", "status": "final", "code": {"text": "x"},
                  "valueQuantity": {"value": 5, "system": ucum, "code": "mg"}})
        put(uow, {"resourceType": "Observation", "id": "plain1", "status": "final", "code": {"text": "x"},
                  "valueQuantity": {"value": 1, "unit": "tablets"}})
    assert search_ids(store, "Observation", [("_sort", "value-quantity")]) == ["plain1", "mg5"]
    assert search_ids(store, "Observation", [("_sort", "-value-quantity")]) == ["mg5", "plain1"]

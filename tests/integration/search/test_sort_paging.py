"""_sort by several keys with ``-`` (R4 search.html#sort) and paging
(R4 search.html#count, http.html#paging): ``next`` / ``previous`` links, a
snapshot that new writes do not disturb, the ``_count`` cap and ``_total``."""

from __future__ import annotations

import time

import pytest

from tests.integration.search.conftest import SearchClient, all_pages, link, link_params, match_ids, patient, service_request
from tests.support.live_server import LiveServer

SORT = "urn:evi:test:sort"
PAGE = "urn:evi:test:page"
DEFAULT_PAGE, MAX_PAGE = 7, 10


@pytest.fixture(scope="module")
def fhir():
    with LiveServer(storage="sqlite://:memory:", default_page_size=DEFAULT_PAGE, max_page_size=MAX_PAGE) as live:
        client = SearchClient(live)
        ident = lambda v: [{"system": SORT, "value": v}]  # noqa: E731
        client.seed(
            patient("s-1", family="Andersson", given=["Karl"], birth="1990-01-01", identifier=ident("1")),
            patient("s-2", family="Öberg", given=["Åsa"], birth="1985-06-01", identifier=ident("2")),
            patient("s-3", family="Andersson", given=["Anna"], birth="1970-03-03", identifier=ident("3")),
            patient("s-4", family="Berg", given=["Zlatan"], birth="1990-01-01", identifier=ident("4")),
            patient("s-5", family="Lind", given=["Bo"], birth="1990", identifier=ident("5")),
            service_request("sr-1", "Patient/s-1", authoredOn="2024-03-10T08:00:00+01:00", status="active"),
            service_request("sr-2", "Patient/s-1", authoredOn="2024-03-10T07:30:00Z", status="completed"),
            service_request("sr-3", "Patient/s-2", authoredOn="2024-03-09T23:00:00-05:00", status="active"),
            *[patient(f"p-{i:02d}", family="Pagesson", identifier=[{"system": PAGE, "value": str(i)}]) for i in range(23)],
        )
        try:
            yield client
        finally:
            client.close()


S = f"Patient?identifier={SORT}|"

SORT_CASES = [
    (f"{S}&_sort=family,given", ["s-3", "s-1", "s-4", "s-5", "s-2"]),  # Öberg sorts as oberg (and last in Swedish too)
    (f"{S}&_sort=-family,given", ["s-2", "s-5", "s-4", "s-3", "s-1"]),
    (f"{S}&_sort=family,-given", ["s-1", "s-3", "s-4", "s-5", "s-2"]),
    (f"{S}&_sort=-family,-given", ["s-2", "s-5", "s-4", "s-1", "s-3"]),
    (f"{S}&_sort=given", ["s-3", "s-2", "s-5", "s-1", "s-4"]),
    # a date sorts by its start ascending and by its end descending: "1990" starts
    # with 1990-01-01 (a tie, broken by family) and ends after it
    (f"{S}&_sort=birthdate,family", ["s-3", "s-2", "s-1", "s-4", "s-5"]),
    (f"{S}&_sort=birthdate,-family", ["s-3", "s-2", "s-5", "s-4", "s-1"]),
    (f"{S}&_sort=-birthdate,family", ["s-5", "s-1", "s-4", "s-2", "s-3"]),
    (f"{S}&_sort=-birthdate,-family", ["s-5", "s-4", "s-1", "s-2", "s-3"]),
    (f"{S}&_sort=_id", ["s-1", "s-2", "s-3", "s-4", "s-5"]),
    (f"{S}&_sort=-_id", ["s-5", "s-4", "s-3", "s-2", "s-1"]),
    (f"{S}&family=andersson&_sort=-given", ["s-1", "s-3"]),
    # instants compare in UTC: sr-3 04:00Z, sr-1 07:00Z, sr-2 07:30Z (all 2024-03-10)
    ("ServiceRequest?_sort=authored", ["sr-3", "sr-1", "sr-2"]),
    ("ServiceRequest?_sort=-authored", ["sr-2", "sr-1", "sr-3"]),
    ("ServiceRequest?_sort=status,-authored", ["sr-1", "sr-3", "sr-2"]),
    ("ServiceRequest?_sort=-status,authored", ["sr-2", "sr-3", "sr-1"]),
    ("ServiceRequest?status=active&_sort=-authored", ["sr-1", "sr-3"]),
]


@pytest.mark.parametrize("query,expected", SORT_CASES, ids=[c[0] for c in SORT_CASES])
def test_sort(fhir, query, expected):
    found = [e["resource"]["id"] for e in all_pages(fhir, query) if e["search"]["mode"] == "match"]
    assert found == expected


def test_sort_birthdate_ignores_ties_order_but_not_keys(fhir):
    found = match_ids(fhir.bundle(f"{S}&_sort=birthdate"))
    assert found[:2] == ["s-3", "s-2"]
    assert set(found[2:]) == {"s-1", "s-4", "s-5"}


def test_sort_by_last_updated(fhir):
    for rid in ("lu-c", "lu-a", "lu-b"):
        fhir.put(patient(rid, identifier=[{"system": "urn:evi:test:lu", "value": rid}]))
        time.sleep(0.002)
    q = "Patient?identifier=urn:evi:test:lu|"
    assert match_ids(fhir.bundle(q + "&_sort=_lastUpdated")) == ["lu-c", "lu-a", "lu-b"]
    assert match_ids(fhir.bundle(q + "&_sort=-_lastUpdated")) == ["lu-b", "lu-a", "lu-c"]


# -- paging ------------------------------------------------------------------------------

P = f"Patient?identifier={PAGE}|"
ALL_PAGED = {f"p-{i:02d}" for i in range(23)}


def _walk(fhir, query: str, between=None) -> list[list[str]]:
    pages = []
    body = fhir.bundle(query)
    while True:
        pages.append(match_ids(body))
        nxt = link(body, "next")
        if not nxt:
            return pages
        if between:
            between(len(pages))
        body = fhir.bundle(nxt)


@pytest.mark.parametrize("sort", ["", "&_sort=_id", "&_sort=-_id", "&_sort=family,-_id"])
def test_next_links_visit_every_match_once(fhir, sort):
    pages = _walk(fhir, f"{P}&_count=5{sort}")
    assert [len(p) for p in pages] == [5, 5, 5, 5, 3]
    flat = [i for p in pages for i in p]
    assert len(flat) == len(set(flat)) == 23
    assert set(flat) == ALL_PAGED
    if sort == "&_sort=_id":
        assert flat == sorted(ALL_PAGED)
    if sort == "&_sort=-_id":
        assert flat == sorted(ALL_PAGED, reverse=True)


def test_every_page_reports_the_total_and_the_last_has_no_next(fhir):
    body = fhir.bundle(f"{P}&_count=10")
    assert body["total"] == 23
    assert link(body, "previous") is None
    assert link(body, "self")
    body = fhir.bundle(link(body, "next"))
    assert body["total"] == 23
    body = fhir.bundle(link(body, "next"))
    assert body["total"] == 23
    assert len(match_ids(body)) == 3
    assert link(body, "next") is None


def test_snapshot_is_stable_while_matching_resources_are_created(fhir):
    """New matches written between page fetches are not shown; nothing repeats, nothing is skipped.
    The new ids sort first, so a live re-query would shift every later page."""
    created = []

    def create_more(page_no):
        for k in range(2):
            rid = f"a-new-{page_no}-{k}"
            fhir.put(patient(rid, family="Pagesson", identifier=[{"system": PAGE, "value": rid}]))
            created.append(rid)

    try:
        pages = _walk(fhir, f"{P}&_count=4&_sort=_id", between=create_more)
        flat = [i for p in pages for i in p]
        assert len(flat) == len(set(flat)), "a resource was shown twice"
        assert set(flat) == ALL_PAGED, "the snapshot gained or lost resources"
        assert flat == sorted(ALL_PAGED)
        assert created and not set(created) & set(flat)
        # a new search sees them
        assert set(created) <= fhir.ids(f"{P}&_count=10")
    finally:
        for rid in created:
            fhir.http.delete(f"/Patient/{rid}")


def test_snapshot_with_default_order_and_creations(fhir):
    created = []

    def create_more(page_no):
        rid = f"a-def-{page_no}"
        fhir.put(patient(rid, family="Pagesson", identifier=[{"system": PAGE, "value": rid}]))
        created.append(rid)

    try:
        pages = _walk(fhir, f"{P}&_count=3", between=create_more)
        flat = [i for p in pages for i in p]
        assert len(flat) == len(set(flat))
        assert set(flat) == ALL_PAGED
    finally:
        for rid in created:
            fhir.http.delete(f"/Patient/{rid}")


def test_previous_links_walk_back(fhir):
    forward = []
    body = fhir.bundle(f"{P}&_count=5&_sort=_id")
    bodies = [body]
    while link(body, "next"):
        body = fhir.bundle(link(body, "next"))
        bodies.append(body)
    forward = [match_ids(b) for b in bodies]
    backward = [match_ids(body)]
    while link(body, "previous"):
        body = fhir.bundle(link(body, "previous"))
        backward.append(match_ids(body))
    assert list(reversed(backward)) == forward
    assert link(bodies[0], "previous") is None


def test_default_page_size(fhir):
    body = fhir.bundle(P)
    assert len(match_ids(body)) == DEFAULT_PAGE
    assert body["total"] == 23
    assert link(body, "next")


def test_count_is_capped_at_the_maximum(fhir):
    body = fhir.bundle(f"{P}&_count=50")
    assert len(match_ids(body)) == MAX_PAGE
    assert link(body, "next")
    pages = _walk(fhir, f"{P}&_count=50")
    assert [len(p) for p in pages] == [10, 10, 3]
    assert {i for p in pages for i in p} == ALL_PAGED


def test_count_larger_than_the_result_has_no_next(fhir):
    body = fhir.bundle(f"{S}&_count=10")
    assert len(match_ids(body)) == 5
    assert link(body, "next") is None and link(body, "previous") is None


def test_next_link_keeps_the_count(fhir):
    body = fhir.bundle(f"{P}&_count=4")
    nxt = link(body, "next")
    assert link_params(nxt).get("_count") == "4"
    assert len(match_ids(fhir.bundle(nxt))) == 4


def test_total_none_omits_total(fhir):
    body = fhir.bundle(f"{P}&_count=5&_total=none")
    assert "total" not in body
    assert len(match_ids(body)) == 5
    body = fhir.bundle(link(body, "next"))
    assert "total" not in body


def test_total_accurate(fhir):
    assert fhir.bundle(f"{P}&_count=5&_total=accurate")["total"] == 23


def test_total_estimate_is_a_number_if_present(fhir):
    body = fhir.bundle(f"{P}&_count=5&_total=estimate")
    assert "total" not in body or isinstance(body["total"], int)


def test_deleted_after_the_snapshot_is_not_shown(fhir):
    fhir.put(patient("p-zz-del", family="Pagesson", identifier=[{"system": PAGE, "value": "del"}]))
    body = fhir.bundle(f"{P}&_count=20&_sort=_id")
    assert "p-zz-del" not in match_ids(body)
    assert fhir.http.delete("/Patient/p-zz-del").status_code in (200, 204)
    rest = fhir.bundle(link(body, "next"))
    assert "p-zz-del" not in match_ids(rest)
    assert "p-zz-del" not in fhir.ids(f"{P}&_count=10")


@pytest.mark.parametrize("query", [f"{P}&_count=-1", f"{P}&_count=abc", f"{P}&_total=sometimes"])
def test_bad_paging_parameters_are_400(fhir, query):
    r = fhir.get(query)
    assert r.status_code == 400, f"{query}: {r.status_code} {r.text}"


def test_expired_page_link_is_gone(fhir):
    r = fhir.get("?_getpages=0000000000000000&_getpagesoffset=5&_count=5")
    assert r.status_code == 410, r.text

"""The route index (``api.routes._ByMethod``) must answer exactly what trying every
route in order answers: the same route for a full match, a partial match (405) where
only another method serves the path, nothing otherwise."""

from __future__ import annotations

import itertools

import pytest
from starlette.routing import Match

from fhir_server.api.routes import ROUTES, build_routes

PREFIX = "/fhir"
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")


def _paths() -> list[str]:
    """Every route's path with its parameters filled in several ways, plus near misses."""
    fills = ("Patient", "AuditEvent", "Task", "_history", "$export", "")
    found = {"", "/", "/fhir", "/fhir/", "/fhirx", "/other/Patient", "/fhir//", "/fhir/Patient/", "/fhir/a/b/c/d/e"}
    for route in ROUTES:
        segments = route.path.split("/")
        slots = [i for i, s in enumerate(segments) if s.startswith("{")]
        for values in itertools.product(fills, repeat=len(slots)):
            filled = list(segments)
            for slot, value in zip(slots, values):
                filled[slot] = value
            path = PREFIX + "/".join(filled)
            found.update({path, path + "/", path + "/extra"})
    return sorted(found)


def _naive(routes, scope):
    partial = None
    for route in routes:
        match, child = route.matches(scope)
        if match is Match.FULL:
            return Match.FULL, route
        if match is Match.PARTIAL and partial is None:
            partial = route
    return (Match.PARTIAL, partial) if partial is not None else (Match.NONE, None)


@pytest.mark.parametrize("root_path", ["", "/mounted"])
def test_index_answers_what_trying_every_route_answers(root_path):
    (router,) = build_routes(PREFIX)
    checked = 0
    for path, method in itertools.product(_paths(), METHODS):
        scope = {"type": "http", "method": method, "path": root_path + path, "root_path": root_path}
        match, child = router.matches(scope)
        expected, route = _naive(router.routes, scope)
        assert match is expected, (method, path)
        if route is not None:
            assert child["evi.route"] is route, (method, path)
        checked += 1
    assert checked > 2000


def test_a_read_is_matched_with_its_parameters():
    (router,) = build_routes(PREFIX)
    match, child = router.matches({"type": "http", "method": "GET", "path": "/fhir/Patient/p1"})
    assert match is Match.FULL
    assert child["path_params"] == {"resource_type": "Patient", "id": "p1"}
    match, _ = router.matches({"type": "http", "method": "GET", "path": "/fhir/Patient/p1/_history/2/x"})
    assert match is Match.NONE

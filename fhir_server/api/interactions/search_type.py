"""search: type (GET and POST [type]/_search), system ([base]?) and compartment
([base]/Patient/[id]/[type]) searches, and the paging links of all of them
(R4 search.html)."""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response

from fhir_server import engine
from fhir_server.api.content import check_accept, fhir_response, body_of
from fhir_server.api.deps import check_type, context_of, is_pretty, query_pairs, runtime_of
from fhir_server.errors import InvalidSearch

_FORM = frozenset({"application/x-www-form-urlencoded"})


def _paging_request(params: list[tuple[str, str]]) -> tuple[str, int, int | None] | None:
    values = dict(params)
    token = values.get("_getpages")
    if token is None:
        return None
    try:
        offset = int(values.get("_getpagesoffset", "0"))
        count = int(values["_count"]) if "_count" in values else None
    except ValueError:
        raise InvalidSearch("_getpagesoffset and _count must be integers") from None
    if offset < 0 or (count is not None and count < 0):
        raise InvalidSearch("_getpagesoffset and _count must not be negative")
    return token, offset, count


def run_search(
    request: Request, resource_type: str | None, params: list[tuple[str, str]], *,
    origin: engine.SearchOrigin | None = None, self_path: str | None = None,
) -> Response:
    """Run a search, or fetch a page of an earlier one. ``origin``: a compartment search
    or ``$everything`` (planned from it, and named by its snapshot for later pages)."""
    check_accept(request)
    ctx = context_of(request)
    paging = _paging_request(params)
    with runtime_of(request).work(ctx, write=False) as work:
        if paging is not None:
            found = engine.page(work, *paging)
        elif origin is not None:
            found = engine.search(work, engine.plan_origin(work, origin), params, origin=origin)
        else:
            found = engine.search(work, engine.plan_search(work, resource_type, params), params)
    path = self_path or (f"/{found.plan.resource_type}" if found.plan.resource_type else "")
    bundle = engine.searchset_bundle(ctx.base_url, f"{ctx.base_url}{path}", found)
    return fhir_response(bundle, pretty=is_pretty(request))


def search_type(request: Request, resource_type: str) -> Response:
    check_type(resource_type)
    return run_search(request, resource_type, query_pairs(request))


def _form(request: Request) -> list[tuple[str, str]]:
    body = body_of(request, allowed=_FORM)
    return parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True)


def search_type_post(request: Request, resource_type: str) -> Response:
    check_type(resource_type)
    return run_search(request, resource_type, [*query_pairs(request), *_form(request)])


def search_system(request: Request) -> Response:
    return run_search(request, None, query_pairs(request))


def search_system_post(request: Request) -> Response:
    return run_search(request, None, [*query_pairs(request), *_form(request)])


def search_compartment(request: Request, compartment_type: str, compartment_id: str, resource_type: str) -> Response:
    check_type(compartment_type)
    target = None if resource_type == "*" else resource_type
    if target is not None:
        check_type(target)
    engine.compartment_clause(compartment_type, compartment_id, target)  # 404 for an unknown compartment
    params = query_pairs(request)
    kept = tuple((k, v) for k, v in params if k not in engine.PAGING_PARAMS)
    origin = engine.SearchOrigin(target, kept, (compartment_type, compartment_id))
    path = f"/{compartment_type}/{compartment_id}/{resource_type}"
    return run_search(request, target, params, origin=origin, self_path=path)

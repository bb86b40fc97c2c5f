"""type search by GET and by POST [type]/_search (R4 search.html#2.21.1.3)."""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response

from fhir_server import engine
from fhir_server.api.content import check_accept, fhir_response, read_body
from fhir_server.api.deps import check_type, context_of, is_pretty, query_pairs, runtime_of, settings_of

_FORM = frozenset({"application/x-www-form-urlencoded"})
_PAGING = frozenset({"_count", "_offset"})


def _search(request: Request, resource_type: str, params: list[tuple[str, str]]) -> Response:
    check_type(resource_type)
    check_accept(request)
    ctx = context_of(request)
    with runtime_of(request).work(ctx, write=False) as work:
        plan = engine.plan_search(work, resource_type, params)
        found = engine.search(work, plan)
    bundle = engine.searchset_bundle(
        ctx.base_url,
        f"{ctx.base_url}/{resource_type}",
        [(k, v) for k, v in params if k not in _PAGING],
        found.versions,
        total=found.total,
        offset=plan.offset,
        count=plan.count,
        warnings=found.warnings,
    )
    return fhir_response(bundle, pretty=is_pretty(request))


async def search_type(request: Request, resource_type: str) -> Response:
    return _search(request, resource_type, query_pairs(request))


async def search_type_post(request: Request, resource_type: str) -> Response:
    body = await read_body(request, settings_of(request).max_body_size, allowed=_FORM)
    form = parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    return _search(request, resource_type, [*query_pairs(request), *form])

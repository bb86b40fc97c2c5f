"""$reindex (system and type level): re-extract the search index of stored resources,
so that SearchParameters added at run time apply to what was stored before."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from fhir_server import engine
from fhir_server.api.content import fhir_response
from fhir_server.api.deps import check_type, context_of, runtime_of


def _result(counts: dict[str, int]) -> dict:
    return {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "count", "valueInteger": sum(counts.values())},
            *({"name": "type", "part": [{"name": "type", "valueCode": t}, {"name": "count", "valueInteger": n}]}
              for t, n in sorted(counts.items()) if n),
        ],
    }


def reindex_system(request: Request) -> Response:
    counts = engine.reindex(runtime_of(request), context_of(request), None)
    return fhir_response(_result(counts))


def reindex_type(request: Request, resource_type: str) -> Response:
    check_type(resource_type)
    counts = engine.reindex(runtime_of(request), context_of(request), resource_type)
    return fhir_response(_result(counts))

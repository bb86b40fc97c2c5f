"""EVI's operations on intake Tasks (domain.md §3 rules 4 and 6):

  POST Task/{id}/$triage        Parameters in, Parameters (task, created...) out
  GET  Task/$triage-queue       a searchset Bundle of the open intake Tasks of an owner

The rules live in ``fhir_server.workflow``; this module only speaks HTTP.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from fhir_server.api.content import check_accept, fhir_response, body_of
from fhir_server.api.deps import context_of, is_pretty, query_pairs, runtime_of, settings_of
from fhir_server.errors import BadRequest
from fhir_server.model import parse_json
from fhir_server.workflow import triage as triage_rules
from fhir_server.workflow import triage_queue as queue_rules


def triage(request: Request, id: str) -> Response:
    check_accept(request)
    raw = body_of(request)
    if not raw:
        raise BadRequest("$triage needs a Parameters body with at least 'outcome'")
    parameters = parse_json(raw, settings_of(request).max_json_depth)
    if parameters.get("resourceType") != "Parameters":
        raise BadRequest(
            f"$triage expects a Parameters resource, got {parameters.get('resourceType')!r}", expression="resourceType"
        )
    result = triage_rules(runtime_of(request), context_of(request), id, parameters)
    return fhir_response(result, pretty=is_pretty(request))


def triage_queue(request: Request) -> Response:
    check_accept(request)
    bundle = queue_rules(runtime_of(request), context_of(request), query_pairs(request))
    return fhir_response(bundle, pretty=is_pretty(request))

"""The backport IG's operations on a Subscription (domain.md §7; logic in ``notify/status.py``):

  GET|POST Subscription/{id}/$status   a searchset Bundle of the status Parameters
  GET|POST Subscription/{id}/$events   past events (eventsSinceNumber, eventsUntilNumber, content)

Inputs come from the query string or a Parameters body (R4 operations.html#request);
``$status`` takes none at the instance level, ``$events`` only its three.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from fhir_server.api.content import fhir_response
from fhir_server.api.deps import context_of, is_pretty, runtime_of
from fhir_server.api.operations.expand import operation_request
from fhir_server.errors import BadRequest
from fhir_server.notify import EVENTS_PARAMETERS, subscription_events, subscription_status

__all__ = ["status", "events"]


def _inputs(request: Request, allowed: frozenset[str]) -> dict[str, str]:
    inputs = operation_request(request)
    unknown = sorted(set(inputs) - allowed)
    if unknown:
        raise BadRequest(f"Unknown parameter(s) {', '.join(unknown)}; this operation takes "
                         f"{', '.join(sorted(allowed)) or 'none at the instance level'}")
    out = {}
    for name, values in inputs.items():
        if len(values) != 1 or not isinstance(values[0], str):
            raise BadRequest(f"The parameter {name} takes one value", expression=name)
        out[name] = values[0]
    return out


def status(request: Request, id: str) -> Response:
    _inputs(request, frozenset())
    with runtime_of(request).work(context_of(request), write=False) as work:
        bundle = subscription_status(work, id)
    return fhir_response(bundle, pretty=is_pretty(request))


def events(request: Request, id: str) -> Response:
    params = _inputs(request, EVENTS_PARAMETERS)
    with runtime_of(request).work(context_of(request), write=False) as work:
        bundle = subscription_events(work, id, params)
    return fhir_response(bundle, pretty=is_pretty(request))

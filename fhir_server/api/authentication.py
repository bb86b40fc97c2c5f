"""The authentication step of every FHIR request (``routes``), with auth on: the bearer
token made into the Caller that ``deps.context_of`` puts on the RequestContext.

It runs before the body is read. A token of this server, or a person's token whose
keys and care unit are known already, is checked on the event loop (no I/O); one that
needs the provider's keys fetched or its care unit's Organization looked up is
checked again in a reader thread.
"""

from __future__ import annotations

import orjson
from starlette.requests import Request

from fhir_server.api.deps import base_of, runtime_of, state_of
from fhir_server.api.workers import workers_of
from fhir_server.engine import RequestContext, Runtime, find_matches, read
from fhir_server.errors import Gone, NotFound
from fhir_server.security import HSA_SYSTEM, Authentication, Caller, OrganizationLookup, OrganizationRef, hsa_of

__all__ = ["authenticate", "authentication_of", "organization_lookup"]


def authentication_of(request: Request) -> Authentication | None:
    """None with auth off."""
    return request.app.state.authentication


async def authenticate(request: Request, authentication: Authentication) -> Caller:
    """The request's Caller, also kept in its state; ``Unauthorized`` otherwise."""
    header = request.headers.get("authorization")
    lookup = organization_lookup(request)
    caller = authentication.authenticate(header, lookup, wait=False)
    if caller is None:
        caller = await workers_of(request).run(False, _authenticate_waiting, authentication, header, lookup)
    state_of(request)["caller"] = caller
    return caller


def _authenticate_waiting(authentication: Authentication, header: str | None, lookup: OrganizationLookup) -> Caller:
    return authentication.authenticate(header, lookup, wait=True)


def organization_lookup(request: Request) -> OrganizationLookup:
    runtime, base = runtime_of(request), base_of(request)
    return lambda spec: _look_up(runtime, base, spec)


def _look_up(runtime: Runtime, base_url: str, spec: str) -> OrganizationRef:
    """What the store holds about ``Organization/{id}`` or ``system|value``, as the
    server's own work (no caller: nothing is hidden from this lookup)."""
    with runtime.work(RequestContext(base_url=base_url), write=False) as work:
        if spec.startswith("Organization/"):
            try:
                found = read(work, "Organization", spec.removeprefix("Organization/"))
            except (NotFound, Gone):
                return OrganizationRef(spec, None)
            return OrganizationRef(spec, hsa_of(orjson.loads(found.body)))
        system, _, value = spec.partition("|")
        ids = find_matches(work, "Organization", [("identifier", f"{_escaped(system)}|{_escaped(value)}")], limit=2)
    return OrganizationRef(f"Organization/{ids[0]}" if len(ids) == 1 else None, value if system == HSA_SYSTEM else None)


def _escaped(text: str) -> str:
    """A literal search value (R4 search.html#escaping): a care unit ``A,B`` is one value."""
    for special in ("\\", ",", "$", "|"):
        text = text.replace(special, "\\" + special)
    return text
